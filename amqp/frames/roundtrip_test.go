package frames

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// gen fills values of this package's types at random, within what the spec allows.
type gen struct {
	r     *rand.Rand
	depth int
}

func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *gen) str() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz-:/0123456789é€"
	rs := []rune(alphabet)
	n := g.r.IntN(12)
	out := make([]rune, n)
	for i := range out {
		out[i] = rs[g.r.IntN(len(rs))]
	}
	return string(out)
}

func (g *gen) sym() Symbol {
	b := make([]byte, 1+g.r.IntN(20))
	for i := range b {
		b[i] = byte('a' + g.r.IntN(26))
	}
	return Symbol(b)
}

func (g *gen) bin(max int) []byte {
	b := make([]byte, g.r.IntN(max+1))
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *gen) uint(bits int) uint64 {
	switch g.r.IntN(4) {
	case 0:
		return 0
	case 1:
		return uint64(g.r.IntN(256))
	}
	if bits == 64 {
		return g.r.Uint64()
	}
	return g.r.Uint64() & (1<<bits - 1)
}

// simple returns a generic value whose Go type survives an encode/decode round trip.
func (g *gen) simple() any {
	switch g.r.IntN(10) {
	case 0:
		return g.str()
	case 1:
		return int64(g.r.Uint64())
	case 2:
		return uint32(g.r.Uint32())
	case 3:
		return g.r.IntN(2) == 0
	case 4:
		return g.sym()
	case 5:
		return g.bin(20)
	case 6:
		return g.r.Float64()
	case 7:
		return Timestamp(int64(g.r.Uint64()))
	case 8:
		var u encoding.UUID
		copy(u[:], g.bin(16))
		return u
	}
	return nil
}

func (g *gen) fields(keyOf func() any) encoding.Map {
	if g.chance(3) {
		return nil
	}
	m := make(encoding.Map, g.r.IntN(4))
	for i := range m {
		m[i] = encoding.MapEntry{Key: keyOf(), Value: g.simple()}
	}
	return m
}

func (g *gen) symbols() []Symbol {
	if g.chance(2) {
		return nil
	}
	s := make([]Symbol, 1+g.r.IntN(3))
	for i := range s {
		s[i] = g.sym()
	}
	return s
}

// described returns a generic described value with its Raw bytes set, as a decoder returns it.
func (g *gen) described() *encoding.Described {
	d := encoding.Described{Descriptor: g.r.Uint64(), Value: g.str()}
	if g.chance(2) {
		d.Descriptor = g.sym()
	}
	raw, err := encoding.AppendValue(nil, d)
	if err != nil {
		panic(err)
	}
	d.Raw = raw
	return &d
}

func (g *gen) state(outcomeOnly bool) DeliveryState {
	if g.depth > 3 {
		return &Accepted{}
	}
	types := []DeliveryState{&Accepted{}, &Rejected{}, &Released{}, &Modified{}, &Declared{}, &Extension{}}
	if !outcomeOnly {
		types = append(types, &Received{}, &TransactionalState{})
	}
	s := types[g.r.IntN(len(types))]
	if e, ok := s.(*Extension); ok {
		e.Described = *g.described()
		return e
	}
	g.fill(reflect.ValueOf(s).Elem())
	return s
}

// composite returns a random value of the composite type with descriptor code.
func (g *gen) composite(code uint64) compositeDecoder {
	c := newComposite(code)
	c.Reset()
	g.fill(reflect.ValueOf(c).Elem())
	return c
}

// fill sets every field of a generated struct at random (absent fields stay zero).
func (g *gen) fill(v reflect.Value) {
	g.depth++
	defer func() { g.depth-- }()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if g.chance(4) && !isMandatory(v.Type(), i) {
			continue // absent
		}
		g.value(f, sf.Name)
	}
}

func isMandatory(t reflect.Type, i int) bool {
	for _, st := range specTypes {
		if st.class == "composite" && reflect.TypeOf(newComposite(st.code)).Elem() == t {
			return st.fields[i].mandatory
		}
	}
	return false
}

func (g *gen) value(f reflect.Value, name string) {
	switch x := f.Addr().Interface().(type) {
	case *bool:
		*x = g.r.IntN(2) == 0
	case *Role:
		*x = Role(g.r.IntN(2) == 0)
	case *uint8:
		*x = uint8(g.uint(8))
	case *uint16:
		*x = uint16(g.uint(16))
	case *uint32:
		*x = uint32(g.uint(32))
	case *uint64:
		*x = g.uint(64)
	case *SASLCode:
		*x = SASLCode(g.uint(8))
	case *SenderSettleMode:
		*x = SenderSettleMode(g.r.IntN(3))
	case *ReceiverSettleMode:
		*x = ReceiverSettleMode(g.r.IntN(2))
	case *TerminusDurability:
		*x = TerminusDurability(g.r.IntN(3))
	case *TerminusExpiryPolicy:
		*x = []TerminusExpiryPolicy{TerminusExpiryPolicyLinkDetach, TerminusExpiryPolicySessionEnd,
			TerminusExpiryPolicyConnectionClose, TerminusExpiryPolicyNever}[g.r.IntN(4)]
	case *string:
		*x = g.str()
	case *Symbol:
		*x = g.sym()
	case *Timestamp:
		*x = Timestamp(int64(g.r.Uint64()))
	case *[]Symbol:
		*x = g.symbols()
		if name == "SASLServerMechanisms" && *x == nil { // mandatory: never empty
			*x = []Symbol{g.sym()}
		}
	case *[]byte:
		max := 64
		if name == "DeliveryTag" {
			max = MaxDeliveryTagSize
		}
		*x = g.bin(max)
	case *encoding.Map: // fields, node-properties
		*x = g.fields(func() any { return g.sym() })
	case *Unsettled:
		u := make(Unsettled, g.r.IntN(3))
		for i := range u {
			u[i] = UnsettledDelivery{Tag: g.bin(MaxDeliveryTagSize)}
			if !g.chance(3) {
				u[i].State = g.state(false)
			}
		}
		*x = u
	case *FilterSet:
		fs := make(FilterSet, 1+g.r.IntN(3))
		for i := range fs {
			fs[i] = Filter{Key: g.sym()}
			if !g.chance(4) {
				fs[i].Value = g.described()
			}
		}
		*x = fs
	case **Error:
		e := &Error{}
		g.fill(reflect.ValueOf(e).Elem())
		*x = e
	case **Source:
		s := &Source{}
		s.Reset()
		g.fill(reflect.ValueOf(s).Elem())
		*x = s
	case *LinkTarget:
		if g.chance(2) {
			c := &Coordinator{}
			g.fill(reflect.ValueOf(c).Elem())
			*x = c
		} else {
			tg := &Target{}
			tg.Reset()
			g.fill(reflect.ValueOf(tg).Elem())
			*x = tg
		}
	case *DeliveryState:
		*x = g.state(false)
	case *Outcome:
		*x = g.state(true).(Outcome)
	case *any:
		switch name {
		case "MessageID", "CorrelationID":
			var u encoding.UUID
			copy(u[:], g.bin(16))
			*x = []any{g.uint(64), u, g.bin(8), g.str()}[g.r.IntN(4)]
		default:
			*x = g.simple()
		}
	default:
		if f.Kind() == reflect.Struct && f.Type().Name() != "" && f.NumField() == 2 { // Optional[T]
			g.value(f.Field(0), name)
			f.Field(1).SetBool(true)
			return
		}
		panic("roundtrip: no generator for " + f.Type().String())
	}
}

// Every composite type: random values survive Encode → Decode unchanged, the encoding uses all
// its bytes, and Encode(Decode(b)) == b.
func TestRoundTripAllTypes(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	for _, st := range specTypes {
		if st.class != "composite" {
			continue
		}
		t.Run(st.name, func(t *testing.T) {
			for i := 0; i < 300; i++ {
				want := g.composite(st.code)
				b, err := want.Encode(nil)
				if err != nil {
					t.Fatalf("encode %#v: %v", want, err)
				}
				got := newComposite(st.code)
				n, err := got.Decode(b)
				if err != nil || n != len(b) {
					t.Fatalf("decode (%d/%d): %v\n%#v\n% x", n, len(b), err, want, b)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round trip changed the value:\n%#v\n%#v", want, got)
				}
				b2, _ := got.Encode(nil)
				if !bytes.Equal(b, b2) {
					t.Fatalf("re-encoding differs:\n% x\n% x", b, b2)
				}
			}
		})
	}
}

func (g *gen) message() *Message {
	m := &Message{}
	if g.chance(2) {
		m.Header = &MessageHeader{}
		g.fill(reflect.ValueOf(m.Header).Elem())
	}
	annKey := func() any {
		if g.chance(3) {
			return g.uint(64)
		}
		return g.sym()
	}
	m.DeliveryAnnotations = g.fields(annKey)
	m.MessageAnnotations = g.fields(annKey)
	if g.chance(2) {
		m.Properties = &MessageProperties{}
		g.fill(reflect.ValueOf(m.Properties).Elem())
	}
	m.ApplicationProperties = g.fields(func() any { return g.str() })
	switch g.r.IntN(4) {
	case 0:
		m.BodyType = BodyData
		m.Data = make([][]byte, 1+g.r.IntN(3))
		for i := range m.Data {
			m.Data[i] = g.bin(300)
		}
	case 1:
		m.BodyType = BodySequence
		m.Sequence = make([]encoding.List, 1+g.r.IntN(3))
		for i := range m.Sequence {
			m.Sequence[i] = encoding.List{g.simple(), g.simple()}
		}
	case 2:
		m.BodyType = BodyValue
		m.Value = g.simple()
	}
	m.Footer = g.fields(annKey)
	return m
}

func TestRoundTripMessage(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(3, 4))}
	for i := 0; i < 2000; i++ {
		want := g.message()
		b, err := want.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Message
		if err := got.Decode(b); err != nil {
			t.Fatalf("decode: %v\n%#v\n% x", err, want, b)
		}
		// Bare is exactly the encoded properties … body.
		bare, err := want.AppendBare(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(bare) == 0 && got.Bare != nil || len(bare) > 0 && !bytes.Equal(got.Bare, bare) {
			t.Fatalf("Bare\n% x\nwant\n% x", got.Bare, bare)
		}
		got.Bare = nil
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("message changed:\n%#v\n%#v", want, &got)
		}
	}
}
