package mapping

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

func u32(v uint32) *uint32 { return &v }
func u8(v byte) *byte      { return &v }

// roundTrip encodes an AMQP message and decodes it again: what the translation builds must be
// valid on the wire, not just in memory.
func roundTrip(t *testing.T, m *frames.Message) *frames.Message {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var out frames.Message
	if err := out.Decode(b); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return &out
}

// TestMQTTToAMQP checks SPEC §5.5 field by field, MQTT → AMQP.
func TestMQTTToAMQP(t *testing.T) {
	env := Env{Sequence: 42, Received: time.UnixMilli(1700000000123)}
	tests := []struct {
		field string
		msg   MQTTMessage
		check func(t *testing.T, m *frames.Message)
	}{
		{"payload → one data section, byte-exact", MQTTMessage{Payload: []byte{0, 1, 0xff, 'x'}}, func(t *testing.T, m *frames.Message) {
			if m.BodyType != frames.BodyData || len(m.Data) != 1 || !bytes.Equal(m.Data[0], []byte{0, 1, 0xff, 'x'}) {
				t.Errorf("body %v %q", m.BodyType, m.Data)
			}
		}},
		{"empty payload → one empty data section", MQTTMessage{}, func(t *testing.T, m *frames.Message) {
			if m.BodyType != frames.BodyData || len(m.Data) != 1 || len(m.Data[0]) != 0 {
				t.Errorf("body %v %q", m.BodyType, m.Data)
			}
		}},
		{"QoS 0 → no header", MQTTMessage{QoS: 0}, func(t *testing.T, m *frames.Message) {
			if m.Header != nil && m.Header.Durable.V {
				t.Errorf("header %+v", m.Header)
			}
		}},
		{"QoS 1 → durable", MQTTMessage{QoS: 1}, func(t *testing.T, m *frames.Message) {
			if m.Header == nil || !m.Header.Durable.V {
				t.Errorf("header %+v", m.Header)
			}
		}},
		{"QoS 2 → durable", MQTTMessage{QoS: 2}, func(t *testing.T, m *frames.Message) {
			if m.Header == nil || !m.Header.Durable.V {
				t.Errorf("header %+v", m.Header)
			}
		}},
		{"expiry s → ttl ms", MQTTMessage{MessageExpiry: u32(90)}, func(t *testing.T, m *frames.Message) {
			if m.Header == nil || m.Header.TTL != frames.Some(uint32(90000)) {
				t.Errorf("header %+v", m.Header)
			}
		}},
		{"expiry capped", MQTTMessage{MessageExpiry: u32(math.MaxUint32)}, func(t *testing.T, m *frames.Message) {
			if m.Header == nil || m.Header.TTL != frames.Some(uint32(math.MaxUint32)) {
				t.Errorf("header %+v", m.Header)
			}
		}},
		{"content type → content-type", MQTTMessage{ContentType: "application/json"}, func(t *testing.T, m *frames.Message) {
			if m.Properties.ContentType != frames.Some(encoding.Symbol("application/json")) {
				t.Errorf("content-type %+v", m.Properties.ContentType)
			}
		}},
		{"correlation data → correlation-id binary", MQTTMessage{CorrelationData: []byte{1, 2, 3}}, func(t *testing.T, m *frames.Message) {
			if b, ok := m.Properties.CorrelationID.([]byte); !ok || !bytes.Equal(b, []byte{1, 2, 3}) {
				t.Errorf("correlation-id %#v", m.Properties.CorrelationID)
			}
		}},
		{"response topic → reply-to", MQTTMessage{ResponseTopic: "replies/x"}, func(t *testing.T, m *frames.Message) {
			if m.Properties.ReplyTo != frames.Some("replies/x") {
				t.Errorf("reply-to %+v", m.Properties.ReplyTo)
			}
		}},
		{"user properties → application-properties, last wins", MQTTMessage{UserProperties: []UserProperty{{"a", "1"}, {"b", "2"}, {"a", "3"}}}, func(t *testing.T, m *frames.Message) {
			want := encoding.Map{{Key: "a", Value: "3"}, {Key: "b", Value: "2"}}
			if !reflect.DeepEqual(m.ApplicationProperties, want) {
				t.Errorf("application-properties %v", m.ApplicationProperties)
			}
		}},
		{"identity → user-id and device-id", MQTTMessage{Identity: "sensor-42", UserProperties: []UserProperty{{"device-id", "spoofed"}}}, func(t *testing.T, m *frames.Message) {
			if string(m.Properties.UserID) != "sensor-42" {
				t.Errorf("user-id %q", m.Properties.UserID)
			}
			if v, _ := m.ApplicationProperties.Get("device-id"); v != "sensor-42" || len(m.ApplicationProperties) != 1 {
				t.Errorf("application-properties %v: the identity must win over a device's own device-id", m.ApplicationProperties)
			}
		}},
		{"anonymous → neither", MQTTMessage{ClientID: "c"}, func(t *testing.T, m *frames.Message) {
			if m.Properties.UserID != nil || m.ApplicationProperties != nil {
				t.Errorf("user-id %q, application-properties %v", m.Properties.UserID, m.ApplicationProperties)
			}
		}},
		{"message-id and creation-time", MQTTMessage{}, func(t *testing.T, m *frames.Message) {
			if m.Properties.MessageID != "gw-1:42" {
				t.Errorf("message-id %#v", m.Properties.MessageID)
			}
			if m.Properties.CreationTime != frames.Some(encoding.Timestamp(1700000000123)) {
				t.Errorf("creation-time %+v", m.Properties.CreationTime)
			}
		}},
		{"annotations: topic and QoS", MQTTMessage{Topic: "a/b", QoS: 2}, func(t *testing.T, m *frames.Message) {
			want := encoding.Map{{Key: AnnotationTopic, Value: "a/b"}, {Key: AnnotationQoS, Value: uint8(2)}}
			if !reflect.DeepEqual(m.MessageAnnotations, want) {
				t.Errorf("message-annotations %#v", m.MessageAnnotations)
			}
		}},
		{"annotations: retain and will", MQTTMessage{Topic: "t", Retain: true, Will: true}, func(t *testing.T, m *frames.Message) {
			if v, _ := m.MessageAnnotations.Get(AnnotationRetain); v != true {
				t.Errorf("x-opt-retain %v", m.MessageAnnotations)
			}
			if v, _ := m.MessageAnnotations.Get(AnnotationWill); v != true {
				t.Errorf("x-opt-mqtt-will %v", m.MessageAnnotations)
			}
		}},
		{"payload format has no counterpart", MQTTMessage{PayloadFormat: u8(1), Payload: []byte("x")}, func(t *testing.T, m *frames.Message) {
			if m.Properties.ContentEncoding.Valid || m.Properties.ContentType.Valid {
				t.Errorf("properties %+v", m.Properties)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			m, skipped := MQTTToAMQP(&tt.msg, "gw-1", env)
			if skipped != nil {
				t.Errorf("skipped %v", skipped)
			}
			tt.check(t, m)
			tt.check(t, roundTrip(t, m))
		})
	}
	t.Run("non-ASCII content type is skipped", func(t *testing.T) {
		m, skipped := MQTTToAMQP(&MQTTMessage{ContentType: "text/plain; ü"}, "gw", env)
		if m.Properties.ContentType.Valid || len(skipped) != 1 || !strings.HasPrefix(skipped[0], "content-type") {
			t.Errorf("content-type %+v, skipped %v", m.Properties.ContentType, skipped)
		}
	})
	t.Run("many repeated user properties stay linear and last wins", func(t *testing.T) {
		var ups []UserProperty
		for i := range 10000 {
			ups = append(ups, UserProperty{Key: "k" + string(rune('a'+i%20)), Value: string(rune('a' + i%7))})
		}
		m, _ := MQTTToAMQP(&MQTTMessage{UserProperties: ups}, "gw", env)
		if len(m.ApplicationProperties) != 20 {
			t.Fatalf("%d application-properties, want 20", len(m.ApplicationProperties))
		}
		if v, _ := m.ApplicationProperties.Get("kt"); v != string(rune('a'+9999%7)) {
			t.Errorf("kt = %v, want the last value", v)
		}
	})
}

// TestAMQPToMQTT checks SPEC §5.5 field by field, AMQP → MQTT.
func TestAMQPToMQTT(t *testing.T) {
	uuid := encoding.UUID{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		field   string
		msg     frames.Message
		check   func(t *testing.T, m *MQTTMessage)
		skipped int
	}{
		{"one data section", frames.Message{Data: [][]byte{{1, 2, 3}}}, func(t *testing.T, m *MQTTMessage) {
			if !bytes.Equal(m.Payload, []byte{1, 2, 3}) || m.PayloadFormat != nil || m.ContentType != "" {
				t.Errorf("%+v", m)
			}
		}, 0},
		{"data sections concatenated", frames.Message{Data: [][]byte{[]byte("ab"), {}, []byte("cd")}}, func(t *testing.T, m *MQTTMessage) {
			if string(m.Payload) != "abcd" {
				t.Errorf("payload %q", m.Payload)
			}
		}, 0},
		{"amqp-value string → UTF-8, format 1", frames.Message{BodyType: frames.BodyValue, Value: "héllo"}, func(t *testing.T, m *MQTTMessage) {
			if string(m.Payload) != "héllo" || m.PayloadFormat == nil || *m.PayloadFormat != 1 || m.ContentType != "" {
				t.Errorf("%+v", m)
			}
		}, 0},
		{"amqp-value binary → bytes", frames.Message{BodyType: frames.BodyValue, Value: []byte{9, 8}}, func(t *testing.T, m *MQTTMessage) {
			if !bytes.Equal(m.Payload, []byte{9, 8}) || m.PayloadFormat != nil {
				t.Errorf("%+v", m)
			}
		}, 0},
		{"amqp-value map → JSON", frames.Message{BodyType: frames.BodyValue, Value: encoding.Map{{Key: "t", Value: 21.5}, {Key: "ok", Value: true}},
			Properties: &frames.MessageProperties{ContentType: frames.Some[encoding.Symbol]("text/plain")}}, func(t *testing.T, m *MQTTMessage) {
			if string(m.Payload) != `{"t":21.5,"ok":true}` || m.ContentType != "application/json" || m.PayloadFormat == nil || *m.PayloadFormat != 1 {
				t.Errorf("%+v %s", m, m.Payload)
			}
		}, 0},
		{"amqp-value null → JSON null", frames.Message{BodyType: frames.BodyValue}, func(t *testing.T, m *MQTTMessage) {
			if string(m.Payload) != "null" || m.ContentType != "application/json" {
				t.Errorf("%+v", m)
			}
		}, 0},
		{"amqp-sequence → one JSON array", frames.Message{Sequence: []encoding.List{{int32(1), "a"}, {nil}}}, func(t *testing.T, m *MQTTMessage) {
			if string(m.Payload) != `[1,"a",null]` || m.ContentType != "application/json" {
				t.Errorf("%+v %s", m, m.Payload)
			}
		}, 0},
		{"no body → empty payload", frames.Message{}, func(t *testing.T, m *MQTTMessage) {
			if len(m.Payload) != 0 || m.ContentType != "" {
				t.Errorf("%+v", m)
			}
		}, 0},
		{"ttl ms → expiry s rounded up", frames.Message{Header: &frames.MessageHeader{TTL: frames.Some(uint32(1001))}}, func(t *testing.T, m *MQTTMessage) {
			if m.MessageExpiry == nil || *m.MessageExpiry != 2 {
				t.Errorf("expiry %v", m.MessageExpiry)
			}
		}, 0},
		{"ttl exact seconds", frames.Message{Header: &frames.MessageHeader{TTL: frames.Some(uint32(3000))}}, func(t *testing.T, m *MQTTMessage) {
			if m.MessageExpiry == nil || *m.MessageExpiry != 3 {
				t.Errorf("expiry %v", m.MessageExpiry)
			}
		}, 0},
		{"ttl 0 → 1 s", frames.Message{Header: &frames.MessageHeader{TTL: frames.Some(uint32(0))}}, func(t *testing.T, m *MQTTMessage) {
			if m.MessageExpiry == nil || *m.MessageExpiry != 1 {
				t.Errorf("expiry %v", m.MessageExpiry)
			}
		}, 0},
		{"ttl max", frames.Message{Header: &frames.MessageHeader{TTL: frames.Some(uint32(math.MaxUint32))}}, func(t *testing.T, m *MQTTMessage) {
			if m.MessageExpiry == nil || *m.MessageExpiry != 4294968 {
				t.Errorf("expiry %v", *m.MessageExpiry)
			}
		}, 0},
		{"no ttl → no expiry", frames.Message{Header: &frames.MessageHeader{Durable: frames.Some(true)}}, func(t *testing.T, m *MQTTMessage) {
			if m.MessageExpiry != nil {
				t.Errorf("expiry %v", *m.MessageExpiry)
			}
		}, 0},
		{"content-type", frames.Message{Data: [][]byte{{}}, Properties: &frames.MessageProperties{ContentType: frames.Some[encoding.Symbol]("text/csv")}}, func(t *testing.T, m *MQTTMessage) {
			if m.ContentType != "text/csv" {
				t.Errorf("content type %q", m.ContentType)
			}
		}, 0},
		{"correlation-id binary", frames.Message{Properties: &frames.MessageProperties{CorrelationID: []byte{7}}}, func(t *testing.T, m *MQTTMessage) {
			if !bytes.Equal(m.CorrelationData, []byte{7}) {
				t.Errorf("%v", m.CorrelationData)
			}
		}, 0},
		{"correlation-id string", frames.Message{Properties: &frames.MessageProperties{CorrelationID: "req-1"}}, func(t *testing.T, m *MQTTMessage) {
			if string(m.CorrelationData) != "req-1" {
				t.Errorf("%v", m.CorrelationData)
			}
		}, 0},
		{"correlation-id uuid", frames.Message{Properties: &frames.MessageProperties{CorrelationID: uuid}}, func(t *testing.T, m *MQTTMessage) {
			if !bytes.Equal(m.CorrelationData, uuid[:]) {
				t.Errorf("%v", m.CorrelationData)
			}
		}, 0},
		{"correlation-id ulong", frames.Message{Properties: &frames.MessageProperties{CorrelationID: uint64(0x0102030405060708)}}, func(t *testing.T, m *MQTTMessage) {
			if !bytes.Equal(m.CorrelationData, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("%v", m.CorrelationData)
			}
		}, 0},
		{"reply-to → response topic", frames.Message{Properties: &frames.MessageProperties{ReplyTo: frames.Some("replies/7")}}, func(t *testing.T, m *MQTTMessage) {
			if m.ResponseTopic != "replies/7" {
				t.Errorf("%q", m.ResponseTopic)
			}
		}, 0},
		{"wildcard reply-to skipped", frames.Message{Properties: &frames.MessageProperties{ReplyTo: frames.Some("replies/#")}}, func(t *testing.T, m *MQTTMessage) {
			if m.ResponseTopic != "" {
				t.Errorf("%q", m.ResponseTopic)
			}
		}, 1},
		{"application-properties → user properties", frames.Message{ApplicationProperties: encoding.Map{
			{Key: "s", Value: "x"}, {Key: "sym", Value: encoding.Symbol("y")}, {Key: "b", Value: false},
			{Key: "u8", Value: uint8(255)}, {Key: "i64", Value: int64(-9)}, {Key: "u64", Value: uint64(math.MaxUint64)},
			{Key: "f", Value: float32(0.1)}, {Key: "d", Value: 1e21}, {Key: "ts", Value: encoding.Timestamp(1700000000123)},
			{Key: "id", Value: uuid}, {Key: "c", Value: encoding.Char('ß')}, {Key: "dec", Value: encoding.Decimal32{0x31, 0x80, 0x30, 0x39}},
			{Key: "bin", Value: []byte{1}}, {Key: "null", Value: nil}, {Key: "list", Value: encoding.List{1}},
			{Key: "desc", Value: encoding.Described{Descriptor: uint64(1), Value: "x"}}, {Key: encoding.Symbol("symkey"), Value: "v"},
			{Key: "nul", Value: "a\x00b"},
		}}, func(t *testing.T, m *MQTTMessage) {
			want := []UserProperty{{"s", "x"}, {"sym", "y"}, {"b", "false"}, {"u8", "255"}, {"i64", "-9"}, {"u64", "18446744073709551615"},
				{"f", "0.1"}, {"d", "1e+21"}, {"ts", "2023-11-14T22:13:20.123Z"}, {"id", "12345678-9abc-def0-0102-030405060708"},
				{"c", "ß"}, {"dec", "123.45"}}
			if !reflect.DeepEqual(m.UserProperties, want) {
				t.Errorf("user properties\n%v\nwant\n%v", m.UserProperties, want)
			}
		}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			m, skipped := AMQPToMQTT(&tt.msg)
			tt.check(t, m)
			if len(skipped) != tt.skipped {
				t.Errorf("skipped %q, want %d", skipped, tt.skipped)
			}
			// The same through the wire, as the gateway will see it.
			m, _ = AMQPToMQTT(roundTrip(t, &tt.msg))
			tt.check(t, m)
		})
	}
}

// TestForwardAMQP: the bare message goes on byte for byte (AMQP 1.0 §3.2), the header and
// annotations are the gateway's, delivery-annotations stop here.
func TestForwardAMQP(t *testing.T) {
	in := &frames.Message{
		Header:                &frames.MessageHeader{Durable: frames.Some(true), DeliveryCount: frames.Some(uint32(2))},
		DeliveryAnnotations:   encoding.Map{{Key: encoding.Symbol("x-opt-hop"), Value: "1"}},
		MessageAnnotations:    encoding.Map{{Key: encoding.Symbol("x-opt-a"), Value: int32(1)}},
		Properties:            &frames.MessageProperties{MessageID: "m1", Subject: frames.Some("s")},
		ApplicationProperties: encoding.Map{{Key: "k", Value: "v"}},
		Data:                  [][]byte{[]byte("body")},
		Footer:                encoding.Map{{Key: encoding.Symbol("x-opt-sig"), Value: []byte{1}}},
	}
	wire, err := in.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Hand-craft a non-canonical bare section (a long 1 as 0x81, not smalllong) to prove that
	// the bytes, not a re-encoding, are forwarded.
	var dec frames.Message
	if err := dec.Decode(wire); err != nil {
		t.Fatal(err)
	}
	bare := append([]byte(nil), dec.Bare...)
	odd := append(encoding.AppendDescriptor(nil, 0x77), 0x81, 0, 0, 0, 0, 0, 0, 0, 1) // amqp-value long 1
	wire = append(wire[:len(wire)-len(dec.Bare)-footerLen(t, in.Footer)], append(append(bare[:len(bare)-len(dataSection("body"))], odd...), encodeFooter(t, in.Footer)...)...)
	if err := dec.Decode(wire); err != nil {
		t.Fatalf("crafted message: %v", err)
	}
	out := ForwardAMQP(&dec)
	out.Header.DeliveryCount = frames.Some(uint32(3))
	enc, err := out.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got frames.Message
	if err := got.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bare, dec.Bare) || !bytes.Contains(enc, odd) {
		t.Errorf("bare message changed:\n%x\n%x", got.Bare, dec.Bare)
	}
	if got.DeliveryAnnotations != nil {
		t.Errorf("delivery-annotations forwarded: %v", got.DeliveryAnnotations)
	}
	if !reflect.DeepEqual(got.MessageAnnotations, in.MessageAnnotations) || !reflect.DeepEqual(got.Footer, in.Footer) {
		t.Errorf("annotations or footer lost: %v %v", got.MessageAnnotations, got.Footer)
	}
	if dec.Header.DeliveryCount.V != 2 || got.Header.DeliveryCount.V != 3 {
		t.Errorf("header not copied: in %+v, out %+v", dec.Header, got.Header)
	}
}

func dataSection(s string) []byte {
	return encoding.AppendBinary(encoding.AppendDescriptor(nil, 0x75), []byte(s))
}

func encodeFooter(t *testing.T, f encoding.Map) []byte {
	b, err := (&frames.Message{Footer: f}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func footerLen(t *testing.T, f encoding.Map) int { return len(encodeFooter(t, f)) }

// TestFromMQTT runs whole MQTT messages through routes: destination, policy, route properties on
// top of the translation.
func TestFromMQTT(t *testing.T) {
	tele := route("telemetry", mq("devices/{device}/telemetry/#"), aq("telemetry"))
	tele.Properties = map[string]string{"subject": "{device}", "content-type": "application/json", "reply-to": "replies/{device}"}
	tele.ApplicationProperties = map[string]string{"device-id": "{device}", "kind": "{#}", "who": "{identity}"}
	rewrite := route("rewrite", mq("devices/{device}/telemetry/#"), map[string]any{"mqtt": "site/{device}/{#}", "qos": 0, "retain": true})
	rewrite.Properties = map[string]string{"content-type": "text/plain", "response-topic": "r/{device}", "correlation-data": "{client-id}"}
	rewrite.ApplicationProperties = map[string]string{"unit": "K"}
	up := route("up", mq("devices/{device}/telemetry/#"), map[string]any{"uplink": "b", "address": "t.{device}.{#}", "separator": "."})
	r, err := Compile([]RouteConfig{tele, rewrite, up}, Options{GatewayID: "edge", Uplinks: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	msg := &MQTTMessage{Topic: "devices/d.1/telemetry/temp", Payload: []byte("21"), QoS: 1, Retain: false, ClientID: "cid", Identity: "d.1",
		UserProperties: []UserProperty{{"unit", "C"}, {"device-id", "forged"}}}
	ms := r.MatchMQTT(msg.Topic)
	if len(ms) != 3 {
		t.Fatalf("%d matches", len(ms))
	}
	env := Env{Sequence: 7, Received: time.Unix(1, 0)}

	out, err := ms[0].FromMQTT(msg, env)
	if err != nil {
		t.Fatal(err)
	}
	a := roundTrip(t, out.AMQP)
	if out.To != KindAMQP || out.Address != "telemetry" || out.Policy.Settled || !out.Policy.Await {
		t.Errorf("output %+v", out)
	}
	if a.Properties.Subject.V != "d.1" || a.Properties.ContentType.V != "application/json" || a.Properties.ReplyTo.V != "replies/d.1" || a.Properties.MessageID != "edge:7" {
		t.Errorf("properties %+v", a.Properties)
	}
	wantApp := encoding.Map{{Key: "unit", Value: "C"}, {Key: "device-id", Value: "d.1"}, {Key: "kind", Value: "temp"}, {Key: "who", Value: "d.1"}}
	if !reflect.DeepEqual(a.ApplicationProperties, wantApp) {
		t.Errorf("application-properties %v", a.ApplicationProperties)
	}

	out, err = ms[1].FromMQTT(msg, env)
	if err != nil {
		t.Fatal(err)
	}
	m := out.MQTT
	if out.To != KindMQTT || m.Topic != "site/d.1/temp" || m.QoS != 0 || !m.Retain || m.ContentType != "text/plain" || m.ResponseTopic != "r/d.1" || string(m.CorrelationData) != "cid" {
		t.Errorf("mqtt output %+v", m)
	}
	if want := []UserProperty{{"device-id", "forged"}, {"unit", "K"}}; !reflect.DeepEqual(m.UserProperties, want) {
		t.Errorf("user properties %v, want %v", m.UserProperties, want)
	}
	if msg.UserProperties[0].Value != "C" || msg.Topic != "devices/d.1/telemetry/temp" {
		t.Errorf("the source message was modified: %+v", msg)
	}

	out, err = ms[2].FromMQTT(msg, env)
	if err != nil || out.To != KindUplink || out.Uplink != "b" || out.Address != "t.d%2E1.temp" {
		t.Errorf("uplink output %+v %v", out, err)
	}

	// A property template can reject the message too.
	anon := *msg
	anon.Identity, anon.Topic = "", "devices/+/telemetry/x"
	if _, err := r.MatchMQTT(anon.Topic)[0].FromMQTT(&anon, env); !errors.Is(err, ErrUnsafeCapture) {
		t.Errorf("a wildcard capture in reply-to was accepted: %v", err)
	}
}

// TestFromAMQP runs AMQP messages through routes to MQTT and to AMQP.
func TestFromAMQP(t *testing.T) {
	cmd := route("commands", aq("commands/{device}"), mq("devices/{device}/commands"))
	cmd.ApplicationProperties = map[string]string{"from": "{client-id}"}
	keep := route("keep", aq("commands/{device}"), mq("all/{device}"))
	fwd := route("fwd", aq("commands/{device}"), map[string]any{"uplink": "b", "address": "/queues/cmd-{device}"})
	r, err := Compile([]RouteConfig{cmd, keep, fwd}, Options{Uplinks: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	in := &AMQPMessage{Message: &frames.Message{BodyType: frames.BodyValue, Value: "reboot",
		MessageAnnotations: encoding.Map{{Key: AnnotationRetain, Value: true}}}, ContainerID: "app-1"}
	ms := r.MatchAMQP("commands/d7")
	if len(ms) != 3 {
		t.Fatalf("%d matches", len(ms))
	}
	out, err := ms[0].FromAMQP(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.MQTT
	if m.Topic != "devices/d7/commands" || m.QoS != 1 || !m.Retain || string(m.Payload) != "reboot" || m.ClientID != "app-1" {
		t.Errorf("mqtt %+v", m)
	}
	if want := []UserProperty{{"from", "app-1"}}; !reflect.DeepEqual(m.UserProperties, want) {
		t.Errorf("user properties %v", m.UserProperties)
	}
	in.Settled = true
	out, _ = ms[1].FromAMQP(in)
	if out.MQTT.QoS != 0 || out.Policy.Await {
		t.Errorf("pre-settled: %+v", out.Policy)
	}
	out, err = ms[2].FromAMQP(in)
	if err != nil || out.AMQP == nil || out.MQTT != nil || out.Address != "/queues/cmd-d7" || !out.Policy.Settled {
		t.Errorf("forward %+v %v", out, err)
	}
}
