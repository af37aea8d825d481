package frames

import (
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"4KiB", 4096}}

// benchMessage is a typical gateway message: properties, application properties, one data section.
func benchMessage(n int) *Message {
	return &Message{
		Header: &MessageHeader{Durable: Some(true)},
		Properties: &MessageProperties{MessageID: "msg-000001", To: Some("telemetry/site-1"),
			Subject: Some("temperature"), ContentType: Some[Symbol]("application/json"),
			CreationTime: Some(Timestamp(1700000000000))},
		ApplicationProperties: encoding.Map{{Key: "device-id", Value: "sensor-42"}, {Key: "qos", Value: int64(1)},
			{Key: "retain", Value: false}},
		Data: [][]byte{make([]byte, n)},
	}
}

func benchGoAMQPMessage(n int) *goamqp.Message {
	s := func(v string) *string { return &v }
	ct := time.UnixMilli(1700000000000)
	return &goamqp.Message{
		Header: &goamqp.MessageHeader{Durable: true, Priority: 4},
		Properties: &goamqp.MessageProperties{MessageID: "msg-000001", To: s("telemetry/site-1"),
			Subject: s("temperature"), ContentType: s("application/json"), CreationTime: &ct},
		ApplicationProperties: map[string]any{"device-id": "sensor-42", "qos": int64(1), "retain": false},
		Data:                  [][]byte{make([]byte, n)},
	}
}

func benchTransfer() *Transfer {
	return &Transfer{Handle: 1, DeliveryID: Some[uint32](12345), DeliveryTag: []byte("tag-0001"),
		MessageFormat: Some[uint32](0), Settled: Some(false)}
}

// BenchmarkTransferFrame encodes/decodes a whole frame: header, transfer performative, message.
func BenchmarkTransferFrame(b *testing.B) {
	for _, sz := range benchSizes {
		m := benchMessage(sz.n)
		tr := benchTransfer()
		b.Run("encode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			var msg, frame []byte
			for b.Loop() {
				var err error
				if msg, err = m.Encode(msg[:0]); err != nil {
					b.Fatal(err)
				}
				if frame, err = AppendFrame(frame[:0], FrameAMQP, 0, tr, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(frame)))
		})
		msg, _ := m.Encode(nil)
		frame, _ := AppendFrame(nil, FrameAMQP, 0, tr, msg)
		b.Run("decode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			var t Transfer
			var dm Message
			for b.Loop() {
				f, _, err := ParseFrame(frame, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				n, err := t.Decode(f.Body)
				if err != nil {
					b.Fatal(err)
				}
				if err := dm.Decode(f.Body[n:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessage compares message encoding/decoding with go-amqp's Message.MarshalBinary and
// UnmarshalBinary (go-amqp has no public frame encoder, so this is the like-for-like comparison).
func BenchmarkMessage(b *testing.B) {
	for _, sz := range benchSizes {
		m := benchMessage(sz.n)
		gm := benchGoAMQPMessage(sz.n)
		enc, _ := m.Encode(nil)
		genc, _ := gm.MarshalBinary()
		b.Run("frames/encode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var buf []byte
			for b.Loop() {
				buf, _ = m.Encode(buf[:0])
			}
		})
		b.Run("go-amqp/encode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(genc)))
			for b.Loop() {
				if _, err := gm.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("frames/decode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var dm Message
			for b.Loop() {
				if err := dm.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("go-amqp/decode/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(genc)))
			for b.Loop() {
				var dm goamqp.Message
				if err := dm.UnmarshalBinary(genc); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The gateway's forwarding path: decode, then re-emit the raw bare message with a new header.
		b.Run("frames/forward/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var dm Message
			var buf []byte
			for b.Loop() {
				if err := dm.Decode(enc); err != nil {
					b.Fatal(err)
				}
				dm.Header.DeliveryCount = Some[uint32](1)
				buf, _ = dm.Encode(buf[:0])
			}
		})
	}
}

// BenchmarkTransferPerformative is the per-frame cost the session loop pays.
func BenchmarkTransferPerformative(b *testing.B) {
	tr := benchTransfer()
	enc, _ := tr.Encode(nil)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = tr.Encode(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var t Transfer
		for b.Loop() {
			if _, err := t.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
