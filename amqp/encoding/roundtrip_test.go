package encoding

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestRoundTripGenerated(t *testing.T) {
	g := newGen(1)
	const n = 20000
	kinds := map[string]int{}
	for i := 0; i < n; i++ {
		v := g.value(0)
		kinds[kindOf(v)]++
		b, err := AppendValue(nil, v)
		if err != nil {
			t.Fatalf("value %d: AppendValue(%#v): %v", i, v, err)
		}
		r := NewReader(b)
		got, err := r.ReadValue()
		if err != nil {
			t.Fatalf("value %d: ReadValue(% x): %v", i, b, err)
		}
		if r.More() {
			t.Fatalf("value %d: %d bytes left after ReadValue(% x)", i, len(r.Rest()), b)
		}
		if !Equal(got, v) {
			t.Fatalf("value %d: decoded %#v, want %#v (bytes % x)", i, got, v, b)
		}
		// Re-encoding the decoded form reproduces the bytes: Array codes and Described.Raw are kept.
		b2, err := AppendValue(nil, got)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("value %d: re-encoded % x, %v; want % x", i, b2, err, b)
		}
		s := NewReader(b)
		if err := s.Skip(); err != nil || s.More() {
			t.Fatalf("value %d: Skip: %v, more=%v", i, err, s.More())
		}
		s = NewReader(b)
		if raw, err := s.ReadRaw(); err != nil || !bytes.Equal(raw, b) {
			t.Fatalf("value %d: ReadRaw = % x, %v", i, raw, err)
		}
	}
	for _, k := range genKinds {
		if kinds[k] == 0 {
			t.Errorf("generator produced no %s at top level", k)
		}
	}
	t.Logf("%d generated values round-tripped; top-level kinds: %v", n, kinds)
}

// kindOf names the AMQP type of a generic value (the generator's kind names).
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case uint8:
		return "ubyte"
	case uint16:
		return "ushort"
	case uint32:
		return "uint"
	case uint64:
		return "ulong"
	case int8:
		return "byte"
	case int16:
		return "short"
	case int32:
		return "int"
	case int64:
		return "long"
	case float32:
		return "float"
	case float64:
		return "double"
	case Decimal32:
		return "decimal32"
	case Decimal64:
		return "decimal64"
	case Decimal128:
		return "decimal128"
	case Char:
		return "char"
	case Timestamp:
		return "timestamp"
	case UUID:
		return "uuid"
	case []byte:
		return "binary"
	case string:
		return "string"
	case Symbol:
		return "symbol"
	case List:
		return "list"
	case Map:
		return "map"
	case Array:
		return "array"
	case Described:
		return "described"
	}
	return fmt.Sprintf("%T", v)
}

// Every strict prefix of a valid encoding must fail, for the generic decoder and for Skip: a
// decoder that accepts a truncated value would read past a frame boundary or invent data.
func TestEveryStrictPrefixFails(t *testing.T) {
	g := newGen(2)
	var values [][]byte
	for _, v := range vectors {
		values = append(values, mustHex(t, v.hex))
	}
	for i := 0; i < 3000; i++ {
		b, err := AppendValue(nil, g.value(0))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 4096 {
			values = append(values, b)
		}
	}
	prefixes := 0
	for _, b := range values {
		for i := 0; i < len(b); i++ {
			p := b[:i:i]
			r := NewReader(p)
			if v, err := r.ReadValue(); err == nil {
				t.Fatalf("ReadValue accepted the %d-byte prefix % x of % x as %#v", i, p, b, v)
			} else {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("prefix % x: error %T is not *DecodeError", p, err)
				}
			}
			r = NewReader(p)
			if err := r.Skip(); err == nil {
				t.Fatalf("Skip accepted the %d-byte prefix % x of % x", i, p, b)
			}
			prefixes++
		}
	}
	t.Logf("%d encodings, %d strict prefixes, all rejected", len(values), prefixes)
}
