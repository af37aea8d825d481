package frames

import (
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// Malformed bodies: each must fail with a *DecodeError carrying the condition and naming the field.
func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, bytes string
		decode      func([]byte) error
		cond        Symbol
		typ, field  string
	}{
		{"attach without name", `00 53 12 45`, perf, CondDecodeError, "attach", "name"},
		{"attach null handle", `00 53 12 c0 06 03 a1 01 "l" 40 41`, perf, CondDecodeError, "attach", "handle"},
		{"attach without role", `00 53 12 c0 05 02 a1 01 "l" 43`, perf, CondDecodeError, "attach", "role"},
		{"open without container-id", `00 53 10 c0 02 01 40`, perf, CondDecodeError, "open", "container-id"},
		{"begin without windows", `00 53 11 c0 03 02 40 43`, perf, CondDecodeError, "begin", "incoming-window"},
		{"flow without next-outgoing-id", `00 53 13 c0 03 02 40 43`, perf, CondDecodeError, "flow", "next-outgoing-id"},
		{"transfer without handle", `00 53 14 45`, perf, CondDecodeError, "transfer", "handle"},
		{"disposition without first", `00 53 15 c0 02 01 41`, perf, CondDecodeError, "disposition", "first"},
		{"detach without handle", `00 53 16 45`, perf, CondDecodeError, "detach", "handle"},
		{"sasl-init without mechanism", `00 53 41 45`, sasl, CondDecodeError, "sasl-init", "mechanism"},
		{"sasl-outcome without code", `00 53 44 c0 02 01 40`, sasl, CondDecodeError, "sasl-outcome", "code"},
		{"sasl-mechanisms empty array", `00 53 40 c0 05 01 e0 02 00 a3`, sasl, CondDecodeError, "sasl-mechanisms", "sasl-server-mechanisms"},
		{"sasl-challenge without challenge", `00 53 42 45`, sasl, CondDecodeError, "sasl-challenge", "challenge"},
		{"handle of the wrong type", `00 53 16 c0 03 01 a1 00`, perf, CondDecodeError, "detach", "handle"},
		{"delivery-tag of 33 bytes", `00 53 14 c0 25 03 43 43 a0 21 ` + strings.Repeat("00 ", 33), perf, CondDecodeError, "transfer", "delivery-tag"},
		{"snd-settle-mode 3", `00 53 12 c0 08 04 a1 01 "l" 43 41 50 03`, perf, CondDecodeError, "attach", "snd-settle-mode"},
		{"rcv-settle-mode 2", `00 53 12 c0 09 05 a1 01 "l" 43 41 40 50 02`, perf, CondDecodeError, "attach", "rcv-settle-mode"},
		{"nested: error condition missing", `00 53 18 c0 05 01 00 53 1d 45`, perf, CondDecodeError, "close", "error.condition"},
		{"nested: source durable 9", `00 53 12 c0 11 06 a1 01 "l" 43 41 40 40 00 53 28 c0 04 02 40 52 09`, perf, CondDecodeError, "attach", "source.durable"},
		{"nested: rejected error in disposition", `00 53 15 c0 0f 05 41 43 40 40 00 53 25 c0 05 01 00 53 1d 45`, perf, CondDecodeError, "disposition", "state.error.condition"},
		{"target of the wrong type", `00 53 12 c0 0c 07 a1 01 "l" 43 41 40 40 40 00 53 28 45`, perf, CondDecodeError, "attach", "target"},
		{"outcome that is not one", `00 53 28 c0 0a 09 40 40 40 40 40 40 40 40 00 53 23 45`, comp(new(Source)), CondDecodeError, "source", "default-outcome"},
		{"filter value not described", `00 53 28 c0 0f 08 40 40 40 40 40 40 40 c1 05 02 a3 01 "f" 43`, comp(new(Source)), CondDecodeError, "source", "filter.f"},
		{"message-id of the wrong type", `00 53 73 c0 02 01 41`, comp(new(MessageProperties)), CondDecodeError, "properties", "message-id"},
		{"unknown performative", `00 53 99 45`, perf, CondDecodeError, "performative", "descriptor"},
		{"sasl frame in an AMQP frame", `00 53 40 45`, perf, CondDecodeError, "performative", "descriptor"},
		{"performative in a SASL frame", `00 53 10 45`, sasl, CondDecodeError, "sasl-frame", "descriptor"},
		{"not described", `45`, perf, CondDecodeError, "frame", "descriptor"},
		{"descriptor of the wrong type", `00 a1 01 "x" 45`, perf, CondDecodeError, "frame", "descriptor"},
		{"wrong composite", `00 53 11 45`, comp(new(Open)), CondDecodeError, "open", ""},
		{"list body is a map", `00 53 17 c1 01 00`, perf, CondDecodeError, "end", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(hx(c.bytes))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want *DecodeError", err, err)
			}
			if de.Condition != c.cond || de.Type != c.typ || de.Field != c.field {
				t.Fatalf("got condition %q type %q field %q (%v), want %q %q %q", de.Condition, de.Type, de.Field, err,
					c.cond, c.typ, c.field)
			}
			if ae := de.AMQPError(); ae.Condition != c.cond || !strings.Contains(ae.Description.V, c.typ) {
				t.Fatalf("AMQPError %+v", ae)
			}
		})
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func perf(b []byte) error { _, _, err := DecodePerformative(b); return err }
func sasl(b []byte) error { _, err := DecodeSASLFrame(b); return err }

func comp(c compositeDecoder) func([]byte) error {
	return func(b []byte) error { _, err := c.Decode(b); return err }
}

// Extension types where the spec allows them: a delivery state with an unknown descriptor decodes
// to *Extension and re-encodes byte for byte. AMQP 1.0 §3.4.
func TestExtensionState(t *testing.T) {
	state := hx(`00 80 00 00 46 8c 00 00 99 99 c0 03 01 a1 00  # vendor delivery state, list of one empty string`)
	disp := append(hx(`00 53 15 c0 14 05 41 43 40 40`), state...)
	p, _, err := DecodePerformative(disp)
	if err != nil {
		t.Fatal(err)
	}
	ext, ok := p.(*Disposition).State.(*Extension)
	if !ok || ext.Descriptor != uint64(0x0000468c00009999) || !reflect.DeepEqual(ext.Value, encoding.List{""}) {
		t.Fatalf("state %#v", p.(*Disposition).State)
	}
	enc, err := p.Encode(nil)
	if err != nil || string(enc) != string(disp) {
		t.Fatalf("re-encode % x %v", enc, err)
	}
	// The same in an outcome position.
	src := append(hx(`00 53 28 c0 18 09 40 40 40 40 40 40 40 40`), state...)
	var s Source
	if _, err := s.Decode(src); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.DefaultOutcome.(*Extension); !ok {
		t.Fatalf("default-outcome %#v", s.DefaultOutcome)
	}
}

// Encoding refuses what it cannot write.
func TestEncodeErrors(t *testing.T) {
	long := &Transfer{DeliveryTag: make([]byte, 33)}
	if _, err := long.Encode(nil); err == nil {
		t.Fatal("33-byte delivery-tag encoded")
	}
	bad := &Open{ContainerID: "c", Properties: Fields{{Key: Symbol("k"), Value: struct{}{}}}}
	if _, err := bad.Encode(nil); err == nil {
		t.Fatal("unencodable property encoded")
	}
	if _, err := (&SASLMechanisms{}).Encode(nil); err == nil {
		t.Fatal("sasl-mechanisms without mechanisms encoded (mandatory multiple field)")
	}
	buf := []byte("prefix")
	out, err := AppendFrame(buf, FrameAMQP, 0, bad, nil)
	if err == nil || string(out) != "prefix" {
		t.Fatalf("AppendFrame on error: %q %v", out, err)
	}
}

// Every strict prefix of a frame, performative or SASL frame fails to decode; the whole decodes.
func TestEveryPrefixFails(t *testing.T) {
	for _, v := range vectors {
		b := hx(v.bytes)
		for i := range b {
			c := newComposite(v.want.Descriptor())
			if _, err := c.Decode(b[:i]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded", v.name, i, len(b))
			}
		}
		frame, err := AppendFrame(nil, FrameAMQP, 3, v.want, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range frame {
			if _, _, err := ParseFrame(frame[:i], 1<<20); err == nil {
				t.Fatalf("%s: frame prefix of %d/%d bytes parsed", v.name, i, len(frame))
			} else if i >= HeaderSize && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: frame prefix of %d bytes: %v, want io.ErrUnexpectedEOF", v.name, i, err)
			}
			if _, err := ReadFrame(strings.NewReader(string(frame[:i])), 1<<20); err == nil {
				t.Fatalf("%s: ReadFrame of a %d-byte prefix succeeded", v.name, i)
			}
		}
	}
	// Transcripts recorded from Proton: every frame's every prefix.
	for _, name := range []string{"testdata/proton/rich.c2s", "testdata/proton/tx_send.s2c"} {
		stream := readFile(t, name)
		for off := 0; off < len(stream); {
			if string(stream[off:off+4]) == "AMQP" {
				off += 8
				continue
			}
			f, n, err := ParseFrame(stream[off:], 1<<24)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == FrameAMQP && len(f.Body) > 0 {
				_, payload, err := DecodePerformative(f.Body)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(f.Body)-len(payload); i++ {
					if _, _, err := DecodePerformative(f.Body[:i]); err == nil {
						t.Fatalf("%s@%d: performative prefix of %d bytes decoded", name, off, i)
					}
				}
			}
			off += n
		}
	}
}
