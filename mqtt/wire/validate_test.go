package wire

import (
	"errors"
	"testing"
)

func TestValidateVectors(t *testing.T) {
	for _, v := range allVectors() {
		err := Validate(v.v, v.pkt)
		if ok, why := v.matches(err); !ok {
			t.Errorf("%s: Validate(%d, % X) = %v: %s (want reason 0x%02X %q)", v.name, v.v, v.pkt, err, why, v.reason, v.msg)
		}
	}
}

// Every error is an *Error with a reason code of 0x80 or more: the MQTT 5
// failure range, usable as is in a CONNACK or DISCONNECT.
func TestValidateErrorsAreTyped(t *testing.T) {
	for _, v := range invalidVectors {
		err := Validate(v.v, v.pkt)
		var e *Error
		if !errors.As(err, &e) || e.Reason < 0x80 || e.Msg == "" {
			t.Errorf("%s: error %#v is not a failing *Error", v.name, err)
		}
	}
}

// Every strict prefix of a valid packet is refused: no cut of a packet can
// pass for a complete one.
func TestValidateStrictPrefixes(t *testing.T) {
	for _, v := range validVectors {
		for n := 0; n < len(v.pkt); n++ {
			if err := Validate(v.v, v.pkt[:n]); err == nil {
				t.Errorf("%s: prefix of %d/%d bytes accepted: % X", v.name, n, len(v.pkt), v.pkt[:n])
			}
		}
	}
}

// Accepting a packet allocates nothing: Validate sits on every packet's path.
func TestValidateAcceptAllocatesNothing(t *testing.T) {
	for _, v := range validVectors {
		allocs := testing.AllocsPerRun(50, func() {
			if Validate(v.v, v.pkt) != nil {
				t.Fatalf("%s refused", v.name)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Validate", v.name, allocs)
		}
	}
}

// The same packet is judged by the connection's version: the MQTT 5 layout of
// a PUBLISH (with a property length) is a different topic/payload split in
// 3.1.1, and MQTT 5 fields are refused where they make no sense.
func TestValidateDependsOnVersion(t *testing.T) {
	pub5 := pk(0x30, str("a"), props(prop(propTopicAlias, u16(1))), []byte("p"))
	if err := Validate(5, pub5); err != nil {
		t.Fatalf("v5: %v", err)
	}
	if err := Validate(4, pub5); err != nil {
		t.Fatalf("v4 reads the properties as payload and must accept: %v", err)
	}
	ack5 := pk(0x40, u16(1), b(0x10))
	if err := Validate(5, ack5); err != nil {
		t.Fatalf("v5 PUBACK with reason: %v", err)
	}
	var e *Error
	if err := Validate(4, ack5); !errors.As(err, &e) || e.Reason != ReasonMalformedPacket {
		t.Fatalf("v4 PUBACK with a reason code: %v, want malformed", err)
	}
	// The SUBSCRIBE options byte: 0x04 is No Local in 5 and a reserved bit before.
	sub := func(v byte) []byte {
		if v == 5 {
			return pk(0x82, u16(1), props(), str("a"), b(0x04))
		}
		return pk(0x82, u16(1), str("a"), b(0x04))
	}
	if err := Validate(5, sub(5)); err != nil {
		t.Fatalf("v5 No Local: %v", err)
	}
	if err := Validate(3, sub(3)); err == nil {
		t.Fatal("v3 reserved bit accepted")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Reason: ReasonMalformedPacket, Msg: "SUBSCRIBE topic filter 2: '#' must be the last level"}
	want := "mqtt malformed packet (0x81): SUBSCRIBE topic filter 2: '#' must be the last level"
	if e.Error() != want {
		t.Fatalf("got %q, want %q", e.Error(), want)
	}
}
