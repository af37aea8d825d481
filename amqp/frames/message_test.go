package frames

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// Section order rules of AMQP 1.0 §3.2.
func TestMessageSectionOrder(t *testing.T) {
	const (
		header = `00 53 70 c0 02 01 41 # header, durable`
		da     = `00 53 71 c1 01 00 # delivery-annotations {}`
		ma     = `00 53 72 c1 01 00 # message-annotations {}`
		props  = `00 53 73 c0 03 01 a1 00 # properties, message-id ""`
		ap     = `00 53 74 c1 05 02 a1 01 "k" 41 # application-properties {"k": true}`
		data   = `00 53 75 a0 01 "d" # data "d"`
		seq    = `00 53 76 c0 02 01 43 # amqp-sequence [0]`
		value  = `00 53 77 40 # amqp-value null`
		footer = `00 53 78 c1 01 00 # footer {}`
	)
	ok := []struct {
		name     string
		sections []string
		body     BodyType
	}{
		{"all sections, data", []string{header, da, ma, props, ap, data, footer}, BodyData},
		{"two data sections", []string{props, data, data}, BodyData},
		{"three sequences", []string{seq, seq, seq}, BodySequence},
		{"value null", []string{header, value}, BodyValue},
		{"no body", []string{header, props}, BodyNone},
		{"empty", nil, BodyNone},
		{"symbolic descriptor", []string{`00 a3 10 "amqp:data:binary" a0 00`}, BodyData},
	}
	for _, c := range ok {
		var b []byte
		for _, s := range c.sections {
			b = append(b, hx(s)...)
		}
		var m Message
		if err := m.Decode(b); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if m.BodyType != c.body {
			t.Errorf("%s: body %v, want %v", c.name, m.BodyType, c.body)
		}
	}
	bad := []struct {
		name     string
		sections []string
		field    string
	}{
		{"header after properties", []string{props, header}, "header"},
		{"two headers", []string{header, header}, "header"},
		{"footer before body", []string{footer, data}, "data"},
		{"two values", []string{value, value}, "amqp-value"},
		{"data then sequence", []string{data, seq}, "amqp-sequence"},
		{"value then data", []string{value, data}, "data"},
		{"properties after body", []string{data, props}, "properties"},
		{"unknown section", []string{`00 53 79 45`}, "section"},
		{"a performative", []string{`00 53 10 45`}, "section"},
		{"not described", []string{`a1 01 "x"`}, "section"},
		{"sequence of a map", []string{`00 53 76 c1 01 00`}, "amqp-sequence"},
		{"annotations of a list", []string{`00 53 72 45`}, "message-annotations"},
		{"truncated data", []string{`00 53 75 a0 05 "ab"`}, "data"},
	}
	for _, c := range bad {
		var b []byte
		for _, s := range c.sections {
			b = append(b, hx(s)...)
		}
		var m Message
		err := m.Decode(b)
		var de *DecodeError
		if !errors.As(err, &de) || de.Type != "message" || de.Field != c.field || de.Condition != CondDecodeError {
			t.Errorf("%s: %v, want a decode error on %s", c.name, err, c.field)
		}
	}
}

// The forwarding path: decode, replace header and annotations, re-encode: the bare message
// (properties … body) comes out byte-identical even though its encoding is not ours (list32/map32
// as Proton writes them).
func TestMessageForwardBare(t *testing.T) {
	orig := hx(`
		00 53 70 d0 00 00 00 05 00 00 00 01 41            # header (list32): durable
		00 53 72 d1 00 00 00 0e 00 00 00 02 a3 05 "x-opt" a1 01 "v"  # message-annotations (map32)
		00 53 73 d0 00 00 00 0a 00 00 00 02 a1 03 "id1" 40  # properties (list32), a trailing null
		00 53 74 d1 00 00 00 0c 00 00 00 02 a1 01 "n" 71 00 00 00 07  # application-properties, int as 0x71
		00 53 75 b0 00 00 00 02 "hi"                      # data as vbin32
		00 53 75 a0 01 "!"                                # a second data section
		00 53 78 c1 01 00                                 # footer {}
		`)
	var m Message
	if err := m.Decode(orig); err != nil {
		t.Fatal(err)
	}
	bareStart := bytes.Index(orig, hx(`00 53 73`))
	bareEnd := bytes.Index(orig, hx(`00 53 78`))
	if !bytes.Equal(m.Bare, orig[bareStart:bareEnd]) {
		t.Fatalf("Bare\n% x\nwant\n% x", m.Bare, orig[bareStart:bareEnd])
	}
	if m.Properties.MessageID != "id1" || !m.Header.Durable.V || string(m.Data[0]) != "hi" || string(m.Data[1]) != "!" {
		t.Fatalf("decoded %#v", m)
	}
	if v, _ := m.ApplicationProperties.Get("n"); v != int32(7) {
		t.Fatalf("application-properties %#v", m.ApplicationProperties)
	}
	// A gateway bumps delivery-count, adds an annotation, drops the footer.
	m.Header.DeliveryCount = Some[uint32](1)
	m.MessageAnnotations = append(m.MessageAnnotations, encoding.MapEntry{Key: Symbol("x-opt-mqtt-topic"), Value: "a/b"})
	m.Footer = nil
	out, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, orig[bareStart:bareEnd]) {
		t.Fatal("the bare message was re-encoded")
	}
	var m2 Message
	if err := m2.Decode(out); err != nil {
		t.Fatal(err)
	}
	if m2.Header.DeliveryCount.V != 1 || len(m2.MessageAnnotations) != 2 || m2.Footer != nil || !bytes.Equal(m2.Bare, m.Bare) {
		t.Fatalf("forwarded %#v", m2)
	}
	// With Bare cleared the bare message is encoded from the fields (our encoding: shorter).
	m.Bare = nil
	out2, _ := m.Encode(nil)
	if bytes.Contains(out2, orig[bareStart:bareEnd]) || len(out2) >= len(out) {
		t.Fatal("Bare = nil did not re-encode the bare message")
	}
}

// go-amqp encodes, we decode; and the reverse. Compares every field both ways.
func TestMessageGoAMQPDifferential(t *testing.T) {
	str := func(s string) *string { return &s }
	u32 := func(v uint32) *uint32 { return &v }
	tm := func(ms int64) *time.Time { v := time.UnixMilli(ms).UTC(); return &v }
	base := func() *goamqp.Message {
		return &goamqp.Message{
			Header:              &goamqp.MessageHeader{Durable: true, Priority: 7, TTL: 5 * time.Second, FirstAcquirer: true, DeliveryCount: 3},
			DeliveryAnnotations: goamqp.Annotations{"x-opt-hop": "1"},
			Annotations:         goamqp.Annotations{"x-opt-mqtt-topic": "a/b", int64(5): int64(9)}, // go-amqp writes int64 keys as long, not ulong
			Properties: &goamqp.MessageProperties{MessageID: "id-1", UserID: []byte("u"), To: str("to"), Subject: str("subj"),
				ReplyTo: str("rt"), CorrelationID: uint64(77), ContentType: str("application/json"), ContentEncoding: str("gzip"),
				AbsoluteExpiryTime: tm(1700000000123), CreationTime: tm(1600000000456), GroupID: str("g"),
				GroupSequence: u32(9), ReplyToGroupID: str("rg")},
			ApplicationProperties: map[string]any{"device-id": "d1", "n": int64(7), "ok": true, "f": 1.5},
			Footer:                goamqp.Annotations{"x-sig": []byte{1, 2, 3}},
		}
	}
	bodies := map[string]func(*goamqp.Message){
		"data":     func(m *goamqp.Message) { m.Data = [][]byte{[]byte("one"), []byte("two")} },
		"value":    func(m *goamqp.Message) { m.Value = "a string" },
		"sequence": func(m *goamqp.Message) { m.Sequence = [][]any{{int64(1), "x"}, {true}} },
	}
	for name, setBody := range bodies {
		t.Run(name, func(t *testing.T) {
			gm := base()
			setBody(gm)
			b, err := gm.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var m Message
			if err := m.Decode(b); err != nil {
				t.Fatalf("decoding go-amqp's encoding: %v\n% x", err, b)
			}
			compareWithGoAMQP(t, &m, gm)

			// Ours → go-amqp.
			m.Bare = nil
			ours, err := m.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			var back goamqp.Message
			if err := back.UnmarshalBinary(ours); err != nil {
				t.Fatalf("go-amqp decoding ours: %v\n% x", err, ours)
			}
			compareWithGoAMQP(t, &m, &back)
		})
	}
	// Random headers, properties and application properties, both directions.
	r := rand.New(rand.NewPCG(5, 6))
	g := &gen{r: r}
	for i := 0; i < 500; i++ {
		gm := &goamqp.Message{
			Header: &goamqp.MessageHeader{Durable: r.IntN(2) == 0, Priority: uint8(r.IntN(10)),
				TTL: time.Duration(r.IntN(1e6)) * time.Millisecond, DeliveryCount: r.Uint32()},
			Properties: &goamqp.MessageProperties{MessageID: r.Uint64(), Subject: str(g.str()),
				CreationTime: tm(r.Int64N(1 << 42)), GroupSequence: u32(r.Uint32())},
			ApplicationProperties: map[string]any{g.str(): g.str(), "i": r.Int64(), "u": r.Uint32()},
			Data:                  [][]byte{g.bin(200)},
		}
		b, err := gm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m Message
		if err := m.Decode(b); err != nil {
			t.Fatalf("%v\n% x", err, b)
		}
		compareWithGoAMQP(t, &m, gm)
		m.Bare = nil
		ours, _ := m.Encode(nil)
		var back goamqp.Message
		if err := back.UnmarshalBinary(ours); err != nil {
			t.Fatal(err)
		}
		compareWithGoAMQP(t, &m, &back)
	}
}

// compareWithGoAMQP checks that our decoded message m carries what go-amqp's gm carries.
func compareWithGoAMQP(t *testing.T, m *Message, gm *goamqp.Message) {
	t.Helper()
	if gh := gm.Header; gh != nil {
		h := m.Header
		if h == nil {
			t.Fatal("header lost")
		}
		// go-amqp omits durable/first-acquirer false, priority 4, ttl 0 and delivery-count 0 (their defaults).
		if h.Durable.Or(false) != gh.Durable || h.Priority.Or(4) != gh.Priority ||
			time.Duration(h.TTL.Or(0))*time.Millisecond != gh.TTL || h.FirstAcquirer.Or(false) != gh.FirstAcquirer ||
			h.DeliveryCount.Or(0) != gh.DeliveryCount {
			t.Fatalf("header %+v vs go-amqp %+v", h, gh)
		}
	}
	cmpAnn := func(name string, ours Annotations, theirs goamqp.Annotations) {
		if len(ours) != len(theirs) {
			t.Fatalf("%s: %d entries vs %d", name, len(ours), len(theirs))
		}
		for _, e := range ours {
			k := e.Key
			if s, ok := k.(Symbol); ok {
				k = string(s) // go-amqp: string keys are symbols on the wire
			}
			v, ok := theirs[k]
			if !ok || !reflect.DeepEqual(normalize(e.Value), normalize(v)) {
				t.Fatalf("%s[%v]: %#v vs %#v", name, k, e.Value, v)
			}
		}
	}
	cmpAnn("delivery-annotations", m.DeliveryAnnotations, gm.DeliveryAnnotations)
	cmpAnn("message-annotations", m.MessageAnnotations, gm.Annotations)
	cmpAnn("footer", m.Footer, gm.Footer)
	if gp := gm.Properties; gp != nil {
		p := m.Properties
		optS := func(o Optional[string]) *string {
			if !o.Valid {
				return nil
			}
			return &o.V
		}
		optSym := func(o Optional[Symbol]) *string {
			if !o.Valid {
				return nil
			}
			s := string(o.V)
			return &s
		}
		optT := func(o Optional[Timestamp]) *time.Time {
			if !o.Valid {
				return nil
			}
			v := o.V.Time()
			return &v
		}
		var gs *uint32
		if p.GroupSequence.Valid {
			gs = &p.GroupSequence.V
		}
		eq := reflect.DeepEqual
		userID := p.UserID
		if len(userID) == 0 {
			userID = nil
		}
		theirsUserID := gp.UserID
		if len(theirsUserID) == 0 {
			theirsUserID = nil
		}
		if !eq(normalize(p.MessageID), normalize(gp.MessageID)) || !bytes.Equal(userID, theirsUserID) ||
			!eq(optS(p.To), gp.To) || !eq(optS(p.Subject), gp.Subject) || !eq(optS(p.ReplyTo), gp.ReplyTo) ||
			!eq(normalize(p.CorrelationID), normalize(gp.CorrelationID)) || !eq(optSym(p.ContentType), gp.ContentType) ||
			!eq(optSym(p.ContentEncoding), gp.ContentEncoding) || !eqTime(optT(p.AbsoluteExpiryTime), gp.AbsoluteExpiryTime) ||
			!eqTime(optT(p.CreationTime), gp.CreationTime) || !eq(optS(p.GroupID), gp.GroupID) || !eq(gs, gp.GroupSequence) ||
			!eq(optS(p.ReplyToGroupID), gp.ReplyToGroupID) {
			t.Fatalf("properties %+v vs go-amqp %+v", p, gp)
		}
	}
	if len(m.ApplicationProperties) != len(gm.ApplicationProperties) {
		t.Fatalf("application-properties %v vs %v", m.ApplicationProperties, gm.ApplicationProperties)
	}
	for _, e := range m.ApplicationProperties {
		v, ok := gm.ApplicationProperties[e.Key.(string)]
		if !ok || !reflect.DeepEqual(normalize(e.Value), normalize(v)) {
			t.Fatalf("application-properties[%v]: %#v vs %#v", e.Key, e.Value, v)
		}
	}
	switch {
	case gm.Data != nil:
		if m.BodyType != BodyData || len(m.Data) != len(gm.Data) {
			t.Fatalf("data body %v %d vs %d", m.BodyType, len(m.Data), len(gm.Data))
		}
		for i := range m.Data {
			if !bytes.Equal(m.Data[i], gm.Data[i]) {
				t.Fatalf("data[%d]", i)
			}
		}
	case gm.Sequence != nil:
		if m.BodyType != BodySequence || len(m.Sequence) != len(gm.Sequence) {
			t.Fatalf("sequence body %v", m.BodyType)
		}
		for i := range m.Sequence {
			if !reflect.DeepEqual(normalize(m.Sequence[i]), normalize(gm.Sequence[i])) {
				t.Fatalf("sequence[%d] %#v vs %#v", i, m.Sequence[i], gm.Sequence[i])
			}
		}
	case gm.Value != nil:
		if m.BodyType != BodyValue || !reflect.DeepEqual(normalize(m.Value), normalize(gm.Value)) {
			t.Fatalf("value body %#v vs %#v", m.Value, gm.Value)
		}
	}
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// normalize maps both libraries' generic values to plain Go values for comparison.
func normalize(v any) any {
	switch x := v.(type) {
	case Symbol:
		return "sym:" + string(x)
	case goamqp.Symbol:
		return "sym:" + string(x)
	case encoding.UUID:
		return [16]byte(x)
	case goamqp.UUID:
		return [16]byte(x)
	case Timestamp:
		return x.Time().UnixMilli()
	case time.Time:
		return x.UnixMilli()
	case encoding.List:
		return normalize([]any(x))
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	}
	return v
}
