package encoding

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// typedReaders maps each AMQP type to the Reader method that reads it.
var typedReaders = map[string]func(r *Reader) error{
	"null":       func(r *Reader) error { return r.ReadNull() },
	"boolean":    func(r *Reader) error { _, err := r.ReadBool(); return err },
	"ubyte":      func(r *Reader) error { _, err := r.ReadUbyte(); return err },
	"ushort":     func(r *Reader) error { _, err := r.ReadUshort(); return err },
	"uint":       func(r *Reader) error { _, err := r.ReadUint(); return err },
	"ulong":      func(r *Reader) error { _, err := r.ReadUlong(); return err },
	"byte":       func(r *Reader) error { _, err := r.ReadInt8(); return err },
	"short":      func(r *Reader) error { _, err := r.ReadShort(); return err },
	"int":        func(r *Reader) error { _, err := r.ReadInt(); return err },
	"long":       func(r *Reader) error { _, err := r.ReadLong(); return err },
	"float":      func(r *Reader) error { _, err := r.ReadFloat(); return err },
	"double":     func(r *Reader) error { _, err := r.ReadDouble(); return err },
	"decimal32":  func(r *Reader) error { _, err := r.ReadDecimal32(); return err },
	"decimal64":  func(r *Reader) error { _, err := r.ReadDecimal64(); return err },
	"decimal128": func(r *Reader) error { _, err := r.ReadDecimal128(); return err },
	"char":       func(r *Reader) error { _, err := r.ReadChar(); return err },
	"timestamp":  func(r *Reader) error { _, err := r.ReadTimestamp(); return err },
	"uuid":       func(r *Reader) error { _, err := r.ReadUUID(); return err },
	"binary":     func(r *Reader) error { _, err := r.ReadBinary(); return err },
	"string":     func(r *Reader) error { _, err := r.ReadStringBytes(); return err },
	"symbol":     func(r *Reader) error { _, err := r.ReadSymbolBytes(); return err },
	"list":       func(r *Reader) error { _, err := r.ReadList(); return err },
	"map":        func(r *Reader) error { _, err := r.ReadMap(); return err },
	"array":      func(r *Reader) error { _, err := r.ReadArray(); return err },
	"described":  func(r *Reader) error { _, err := r.ReadDescriptor(); return err },
}

// Each typed reader accepts every encoding of its type and rejects every other type, leaving the
// Reader where it was.
func TestTypedReadersAcceptExactlyTheirType(t *testing.T) {
	checked := 0
	for _, v := range vectors {
		b := mustHex(t, v.hex)
		want := codeKind(Code(b[0]))
		for typ, read := range typedReaders {
			r := NewReader(b)
			err := read(&r)
			if typ == want {
				if err != nil {
					t.Errorf("%s: %s reader rejected % x: %v", v.name, typ, b, err)
				} else if typ != "described" && r.More() {
					t.Errorf("%s: %s reader left %d bytes", v.name, typ, len(r.Rest()))
				}
				continue
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%s: %s reader accepted % x (err %v)", v.name, typ, b, err)
				continue
			}
			if r.Offset() != 0 {
				t.Errorf("%s: failed %s read moved the reader to %d", v.name, typ, r.Offset())
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no rejections checked")
	}
}

func TestTypedValues(t *testing.T) {
	r := NewReader(mustHex(t, "43 52 07 70 00 01 00 00 44 53 ff 80 00 00 00 00 00 00 01 00 54 ff 71 ff ff ff 00 55 80 81 00 00 00 01 00 00 00 00 56 01 42"))
	if v, err := r.ReadUint(); err != nil || v != 0 {
		t.Fatalf("uint0: %v %v", v, err)
	}
	if v, err := r.ReadUint(); err != nil || v != 7 {
		t.Fatalf("smalluint: %v %v", v, err)
	}
	if v, err := r.ReadUint(); err != nil || v != 0x10000 {
		t.Fatalf("uint: %v %v", v, err)
	}
	if v, err := r.ReadUlong(); err != nil || v != 0 {
		t.Fatalf("ulong0: %v %v", v, err)
	}
	if v, err := r.ReadUlong(); err != nil || v != 255 {
		t.Fatalf("smallulong: %v %v", v, err)
	}
	if v, err := r.ReadUlong(); err != nil || v != 256 {
		t.Fatalf("ulong: %v %v", v, err)
	}
	if v, err := r.ReadInt(); err != nil || v != -1 {
		t.Fatalf("smallint sign extension: %v %v", v, err)
	}
	if v, err := r.ReadInt(); err != nil || v != -256 {
		t.Fatalf("int: %v %v", v, err)
	}
	if v, err := r.ReadLong(); err != nil || v != -128 {
		t.Fatalf("smalllong sign extension: %v %v", v, err)
	}
	if v, err := r.ReadLong(); err != nil || v != 1<<32 {
		t.Fatalf("long: %v %v", v, err)
	}
	if v, err := r.ReadBool(); err != nil || !v {
		t.Fatalf("boolean 0x56 01: %v %v", v, err)
	}
	if v, err := r.ReadBool(); err != nil || v {
		t.Fatalf("false: %v %v", v, err)
	}
	if r.More() {
		t.Fatal("bytes left")
	}
	if _, err := r.ReadUint(); err == nil {
		t.Fatal("read past the end")
	}
}

func TestRejectsMalformed(t *testing.T) {
	for _, tc := range []struct{ name, hex string }{
		{"boolean byte 2", "56 02"},
		{"char above U+10FFFF", "73 00 11 00 00"},
		{"char surrogate", "73 00 00 d8 00"},
		{"string not UTF-8", "a1 02 c3 28"},
		{"symbol not ASCII", "a3 01 80"},
		{"descriptor is a string", "00 a1 01 78 40"},
		{"descriptor is described", "00 00 53 01 53 02 40"},
		{"undefined code 0x57", "57"},
		{"undefined code 0xff", "ff"},
		{"map with odd count", "c1 02 01 40"},
		{"list size below its count field", "d0 00 00 00 02 00 00 00 00"},
		{"list8 size 0", "c0 00"},
		{"list count beyond its bytes", "c0 02 05 40"},
		{"list size beyond input", "c0 05 01 40"},
		{"list elements do not fill size", "c0 03 01 40 40"},
		{"list elements overrun size", "c0 02 01 52 01"},
		{"array without constructor", "e0 01 00"},
		{"array with undefined element code", "e0 02 00 57"},
		{"array element code 0x00 described twice", "e0 06 01 00 53 01 00 53"},
		{"array count beyond its bytes", "e0 03 05 52 01"},
		{"array elements do not fill size", "e0 04 01 52 01 02"},
		{"array of boolean with byte 2", "e0 03 01 56 02"},
		{"array of string not UTF-8", "e0 05 01 a1 02 c3 28"},
		{"array of char out of range", "e0 06 01 73 00 11 00 00"},
		{"vbin32 length beyond input", "b0 ff ff ff ff 00"},
		{"list32 claims 2^31 elements in 10 bytes", "d0 00 00 00 05 80 00 00 00 40"},
		{"map32 claims 2^31 entries", "d1 00 00 00 05 ff ff ff fe 40"},
		{"array32 claims 2^31 uints", "f0 00 00 00 06 80 00 00 00 70 00"},
		{"array32 of 2^32-1 nulls", "f0 00 00 00 05 ff ff ff ff 40"},
		{"array32 of 2^32-1 list0", "f0 00 00 00 05 ff ff ff ff 45"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustHex(t, tc.hex)
			r := NewReader(b)
			v, err := r.ReadValue()
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("ReadValue(% x) = %#v, %v; want a *DecodeError", b, v, err)
			}
			if de.Condition() != "amqp:decode-error" || de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("bad error %#v", de)
			}
		})
	}
}

// Hostile counts must fail before allocating: the checks happen on the header.
func TestHostileCountsDoNotAllocate(t *testing.T) {
	for _, h := range []string{
		"d0 00 00 00 05 80 00 00 00 40",
		"f0 00 00 00 06 80 00 00 00 70 00",
		"f0 00 00 00 05 ff ff ff ff 40",
		"f0 00 00 00 0a 00 00 00 01 f0 00 00 00 05 ff ff ff ff 40",
	} {
		b := mustHex(t, h)
		allocs := testing.AllocsPerRun(50, func() {
			r := NewReader(b)
			if _, err := r.ReadValue(); err == nil {
				t.Fatalf("% x accepted", b)
			}
		})
		// The only allocations are the error and, for the nested case, the outer Array's slice of one.
		if allocs > 6 {
			t.Errorf("% x: %.0f allocations", b, allocs)
		}
	}
}

func TestZeroWidthArrayBudget(t *testing.T) {
	// 1024 nulls in 9 bytes is within the allowance; a list of 40 such arrays is not.
	one := mustHex(t, "f0 00 00 00 05 00 00 04 00 40")
	r := NewReader(one)
	v, err := r.ReadValue()
	if err != nil || len(v.(Array).Values) != 1024 {
		t.Fatalf("1024 nulls: %v", err)
	}
	b, l := BeginList(nil)
	for i := 0; i < 40; i++ {
		b = append(b, one...)
		l.Elem(b)
	}
	b = l.End(b)
	r = NewReader(b)
	if _, err := r.ReadValue(); err == nil {
		t.Fatal("40960 zero-width elements in 400 bytes accepted")
	}
	// The typed path never materialises elements, so it may walk them.
	r = NewReader(b)
	sub, err := r.ReadList()
	if err != nil || sub.Len() != 40 {
		t.Fatalf("typed list: %v", err)
	}
	a, err := sub.ReadArray()
	if err != nil || a.Len() != 1024 || a.ArrayCode() != CodeNull {
		t.Fatalf("typed array: %v", err)
	}
}

func TestDepthLimit(t *testing.T) {
	nest := func(levels int) []byte { // a null inside levels one-element lists
		b := AppendNull(nil)
		for i := 0; i < levels; i++ {
			outer, l := BeginList(nil)
			outer = append(outer, b...)
			l.Elem(outer)
			b = l.End(outer)
		}
		return b
	}
	r := NewReader(nest(MaxDepth + 5))
	if _, err := r.ReadValue(); err == nil || !strings.Contains(err.Error(), "MaxDepth") {
		t.Fatalf("nesting %d deep: %v", MaxDepth+5, err)
	}
	r = NewReader(nest(MaxDepth - 1))
	if _, err := r.ReadValue(); err != nil {
		t.Fatalf("nesting %d deep: %v", MaxDepth-1, err)
	}
	// Described chains: 00 53 01 00 53 01 ... 40, for the generic decoder and for Skip.
	chain := mustHex(t, strings.Repeat("005301", 10000)+"40")
	r = NewReader(chain)
	if _, err := r.ReadValue(); err == nil {
		t.Fatal("10000 nested described values accepted")
	}
	r = NewReader(chain)
	if err := r.Skip(); err == nil {
		t.Fatal("Skip accepted 10000 nested described values")
	}
	// Typed readers stop entering lists at the limit.
	r = NewReader(nest(MaxDepth + 5))
	var err error
	for i := 0; i <= MaxDepth && err == nil; i++ {
		r, err = r.ReadList()
	}
	if err == nil {
		t.Fatal("typed ReadList entered more than MaxDepth levels")
	}
	// Encoding is bounded the same way.
	var v any
	for i := 0; i < MaxDepth+5; i++ {
		v = List{v}
	}
	if _, err := AppendValue(nil, v); err == nil {
		t.Fatal("AppendValue encoded a value nested beyond MaxDepth")
	}
}

// AMQP 1.0 Part 1 §1.4: omitted trailing fields are absent, distinct from null.
func TestNextFieldAbsentVersusNull(t *testing.T) {
	b, l := BeginList(nil)
	b = AppendUint(b, 5)
	l.Elem(b)
	b = AppendNull(b)
	l.Elem(b)
	b = l.End(b)
	r := NewReader(b)
	fields, err := r.ReadList()
	if err != nil || fields.Len() != 2 {
		t.Fatalf("ReadList: %v", err)
	}
	if p, err := fields.NextField(); p != Present || err != nil {
		t.Fatalf("field 0: %v %v", p, err)
	}
	if v, err := fields.ReadUint(); v != 5 || err != nil {
		t.Fatalf("field 0 value: %v %v", v, err)
	}
	if p, err := fields.NextField(); p != Null || err != nil {
		t.Fatalf("field 1: %v %v", p, err)
	}
	for i := 2; i < 5; i++ {
		if p, err := fields.NextField(); p != Absent || err != nil {
			t.Fatalf("field %d: %v %v", i, p, err)
		}
	}
	if _, err := fields.ReadUint(); err == nil {
		t.Fatal("read an absent field")
	}
	// list0 and a stream at its end are all-absent.
	r = NewReader([]byte{byte(CodeList0)})
	empty, err := r.ReadList()
	if err != nil || empty.Len() != 0 || empty.More() {
		t.Fatalf("list0: %v", err)
	}
	if p, _ := empty.NextField(); p != Absent {
		t.Fatalf("list0 field: %v", p)
	}
	if p, _ := r.NextField(); p != Absent {
		t.Fatalf("end of stream: %v", p)
	}
	// Elements past the ones a decoder knows are left unread and skipped with the list.
	r = NewReader(mustHex(t, "c0 04 03 41 41 41 52 09"))
	l3, _ := r.ReadList()
	if v, err := l3.ReadBool(); !v || err != nil {
		t.Fatal(err)
	}
	if v, err := r.ReadUint(); v != 9 || err != nil {
		t.Fatalf("after a partly read list: %v %v", v, err)
	}
}

func TestCompoundBuilder(t *testing.T) {
	// Trailing nulls dropped; inner nulls kept.
	b, l := BeginList([]byte{0xee})
	for _, v := range []any{nil, uint32(1), nil, nil} {
		b, _ = AppendValue(b, v)
		l.Elem(b)
	}
	if got := l.EndTrimNulls(b); !bytes.Equal(got, mustHex(t, "ee c0 04 02 40 52 01")) {
		t.Fatalf("EndTrimNulls = % x", got)
	}
	// All null: list0.
	b, l = BeginList(nil)
	b = AppendNull(b)
	l.Elem(b)
	if got := l.EndTrimNulls(b); !bytes.Equal(got, []byte{0x45}) {
		t.Fatalf("all-null list = % x", got)
	}
	// End keeps them.
	b, l = BeginList(nil)
	b = AppendNull(b)
	l.Elem(b)
	if got := l.End(b); !bytes.Equal(got, mustHex(t, "c0 02 01 40")) {
		t.Fatalf("End = % x", got)
	}
	// A null inside an element (a list ending in 0x40) is not a null element.
	b, l = BeginList(nil)
	b = append(b, mustHex(t, "c0 02 01 40")...)
	l.Elem(b)
	if got := l.EndTrimNulls(b); !bytes.Equal(got, mustHex(t, "c0 05 01 c0 02 01 40")) {
		t.Fatalf("nested = % x", got)
	}
	// The list8/list32 boundary: body of 254 bytes + count fits size 255; one more byte does not.
	for _, tc := range []struct {
		strLen int
		code   Code
	}{{252, CodeList8}, {253, CodeList32}} {
		b, l = BeginList(nil)
		b = AppendString(b, strings.Repeat("s", tc.strLen)) // 2-byte header + strLen
		l.Elem(b)
		b = l.End(b)
		if Code(b[0]) != tc.code {
			t.Fatalf("string of %d: %s", tc.strLen, Code(b[0]))
		}
		r := NewReader(b)
		if v, err := r.ReadValue(); err != nil || len(v.(List)[0].(string)) != tc.strLen {
			t.Fatalf("decode: %v", err)
		}
	}
	// Count beyond 255 forces list32 even when small.
	b, l = BeginList(nil)
	for i := 0; i < 256; i++ {
		b = AppendNull(b)
		l.Elem(b)
	}
	if b = l.End(b); Code(b[0]) != CodeList32 {
		t.Fatalf("256 elements: %s", Code(b[0]))
	}
	// Maps: Entry counts two; empty map is map8.
	b, m := BeginMap(nil)
	b = AppendSymbol(b, "k")
	b = AppendNull(b)
	m.Entry(b)
	if got := m.EndTrimNulls(b); !bytes.Equal(got, mustHex(t, "c1 05 02 a3 01 6b 40")) {
		t.Fatalf("map = % x", got)
	}
	b, m = BeginMap(nil)
	if got := m.End(b); !bytes.Equal(got, mustHex(t, "c1 01 00")) {
		t.Fatalf("empty map = % x", got)
	}
}

// multiple="true" fields: AMQP 1.0 Part 1 §1.4.
func TestReadMultiple(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want []string
	}{
		{"single symbol", "a3 01 61", []string{"a"}},
		{"array of symbols", "e0 06 02 a3 01 61 01 62", []string{"a", "b"}},
		{"array32 of sym32", "f0 00 00 00 0a 00 00 00 01 b3 00 00 00 01 61", []string{"a"}},
		{"null", "40", nil},
		{"empty array", "e0 02 00 a3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append(mustHex(t, tc.hex), byte(CodeTrue)) // a following value must stay readable
			r := NewReader(b)
			e, err := r.ReadMultiple()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for e.More() {
				s, err := e.ReadSymbolBytes()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(s))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %q want %q", got, tc.want)
			}
			if v, err := r.ReadBool(); !v || err != nil {
				t.Fatalf("value after the field: %v %v", v, err)
			}
		})
	}
	// Absent.
	r := NewReader([]byte{byte(CodeList0)})
	l, _ := r.ReadList()
	e, err := l.ReadMultiple()
	if err != nil || e.More() {
		t.Fatalf("absent: %v %v", err, e.More())
	}
}

func TestDescribedArrayTypedAccess(t *testing.T) {
	b := mustHex(t, "e0 09 02 00 53 24 c0 01 00 01 00")
	r := NewReader(b)
	a, err := r.ReadArray()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := a.ArrayDescriptor()
	if !ok || !d.Is(0x24, "amqp:accepted:list") || a.ArrayCode() != CodeList8 {
		t.Fatalf("descriptor %+v %v code %s", d, ok, a.ArrayCode())
	}
	for i := 0; i < 2; i++ {
		if c, _ := a.PeekCode(); c != CodeDescribed {
			t.Fatalf("element %d peek %s", i, c)
		}
		if _, err := a.ReadList(); err == nil {
			t.Fatal("read a described element without its descriptor")
		}
		d, err := a.ReadDescriptor()
		if err != nil || d.Code != 0x24 {
			t.Fatalf("element %d descriptor %v %v", i, d, err)
		}
		l, err := a.ReadList()
		if err != nil || l.Len() != 0 {
			t.Fatalf("element %d list %v", i, err)
		}
	}
	if a.More() {
		t.Fatal("elements left")
	}
	if _, err := a.ReadRaw(); err == nil {
		t.Fatal("ReadRaw on an array element")
	}
}

func TestDescriptorForms(t *testing.T) {
	for _, h := range []string{"00 53 10 45", "00 80 00 00 00 00 00 00 00 10 45", "00 a3 0e 616d71703a6f70656e3a6c697374 45"} {
		r := NewReader(mustHex(t, h))
		d, err := r.ReadDescriptor()
		if err != nil || !d.Is(0x10, "amqp:open:list") || d.Is(0x11, "amqp:begin:list") {
			t.Fatalf("% s: %+v %v", h, d, err)
		}
		if _, err := r.ReadList(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrorsNameFieldAndOffset(t *testing.T) {
	r := NewReader(mustHex(t, "00 53 12 c0 04 02 a1 01 61"))
	r.ReadDescriptor()
	l, _ := r.ReadList()
	if _, err := l.ReadString(); err != nil {
		t.Fatal(err)
	}
	_, err := l.ReadUint() // the second element is missing: count says 2
	err = WithField(WithField(err, "handle"), "attach")
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "attach.handle" || de.Offset != 9 {
		t.Fatalf("%#v", err)
	}
	if !strings.Contains(de.Error(), "attach.handle") || de.Condition() != "amqp:decode-error" {
		t.Fatal(de.Error())
	}
	if WithField(nil, "x") != nil {
		t.Fatal("WithField(nil) != nil")
	}
	// Offsets count from the start of the outer input through sub-readers.
	r = NewReader(mustHex(t, "41 c0 04 02 40 56 07"))
	r.ReadBool()
	l, _ = r.ReadList()
	l.ReadNull()
	_, err = l.ReadBool()
	if !errors.As(err, &de) || de.Offset != 6 {
		t.Fatalf("offset: %v", err)
	}
}

func TestAppendValueRejects(t *testing.T) {
	for _, v := range []any{
		struct{}{},
		"\xff",
		Symbol("é"),
		Char(0xd800),
		Described{Descriptor: "string descriptor", Value: nil},
		Array{},
		Array{Code: CodeSmallUint, Values: []any{uint32(256)}},
		Array{Code: CodeTrue, Values: []any{false}},
		Array{Code: CodeSym8, Values: []any{"a string, not a symbol"}},
		Array{Code: CodeStr8, Values: []any{strings.Repeat("x", 256)}},
		Array{Code: CodeList8, Values: []any{List{strings.Repeat("x", 300)}}},
		Array{Code: Code(0x57), Values: []any{nil}},
		Array{Values: []any{Described{}}},
		List{make(chan int)},
	} {
		if b, err := AppendValue(nil, v); err == nil {
			t.Errorf("AppendValue(%#v) = % x, want an error", v, b)
		} else if _, ok := err.(*EncodeError); !ok {
			t.Errorf("AppendValue(%#v): %T", v, err)
		}
	}
}

func TestAppendHelpers(t *testing.T) {
	if got := AppendSymbolArray(nil, []Symbol{"a", "bc"}); !bytes.Equal(got, mustHex(t, "e0 07 02 a3 01 61 02 62 63")) {
		t.Fatalf("AppendSymbolArray = % x", got)
	}
	if got := AppendSymbolArray(nil, nil); !bytes.Equal(got, mustHex(t, "e0 02 00 a3")) {
		t.Fatalf("empty AppendSymbolArray = % x", got)
	}
	long := Symbol(strings.Repeat("y", 300))
	got := AppendSymbolArray(nil, []Symbol{"a", long})
	r := NewReader(got)
	v, err := r.ReadValue()
	if err != nil || !Equal(v, Array{Code: CodeSym32, Values: []any{Symbol("a"), long}}) {
		t.Fatalf("long symbol array: %v", err)
	}
	if got := AppendDescriptor(nil, 0x468C00000004); !bytes.Equal(got, mustHex(t, "00 80 00 00 46 8c 00 00 00 04")) {
		t.Fatalf("AppendDescriptor = % x", got)
	}
	if got := AppendSymbolicDescriptor(nil, "a:b"); !bytes.Equal(got, mustHex(t, "00 a3 03 61 3a 62")) {
		t.Fatalf("AppendSymbolicDescriptor = % x", got)
	}
	// Inferred array codes pick the smallest form that fits every element.
	for _, tc := range []struct {
		vs   []any
		code Code
	}{
		{[]any{uint32(1), uint32(255)}, CodeSmallUint},
		{[]any{uint32(1), uint32(256)}, CodeUint},
		{[]any{int64(-128)}, CodeSmallLong},
		{[]any{int64(-129)}, CodeLong},
		{[]any{"a", strings.Repeat("b", 256)}, CodeStr32},
		{[]any{true, false}, CodeBool},
		{[]any{List{}}, CodeList32},
	} {
		b, err := AppendValue(nil, Array{Values: tc.vs})
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(b)
		if a, err := r.ReadArray(); err != nil || a.ArrayCode() != tc.code {
			t.Fatalf("%v: %v %v", tc.vs, a.ArrayCode(), err)
		}
	}
	// time.Time and Go int/uint are accepted for convenience.
	b, _ := AppendValue(nil, List{Timestamp(5).Time(), 7, uint(8)})
	r = NewReader(b)
	v, err = r.ReadValue()
	if err != nil || !Equal(v, List{Timestamp(5), int64(7), uint64(8)}) {
		t.Fatalf("%#v %v", v, err)
	}
	if s := (UUID{0: 0x12, 15: 0xff}).String(); s != "12000000-0000-0000-0000-0000000000ff" {
		t.Fatal(s)
	}
	if CodeStr8.String() != "str8-utf8" || Code(0x57).String() != "0x57" {
		t.Fatal("Code.String")
	}
	m := Map{{List{}, 1}, {[]byte("k"), 2}}
	if v, ok := m.Get([]byte("k")); !ok || v != 2 {
		t.Fatal("Map.Get with a []byte key")
	}
}

// Raw values and Described.Raw are written verbatim.
func TestRawAndDescribedRaw(t *testing.T) {
	b, err := AppendValue(nil, List{Raw{0x52, 0x07}, Described{Descriptor: uint64(1), Value: nil, Raw: []byte{0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0x40}}})
	if err != nil || !bytes.Equal(b, mustHex(t, "c0 0e 02 52 07 00 80 00 00 00 00 00 00 00 01 40")) {
		t.Fatalf("% x %v", b, err)
	}
}

func TestRestAndOffset(t *testing.T) {
	// A performative followed by its payload.
	b := mustHex(t, "00 53 14 c0 02 01 43 de ad")
	r := NewReader(b)
	if _, err := r.ReadDescriptor(); err != nil {
		t.Fatal(err)
	}
	if err := r.Skip(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Rest(), []byte{0xde, 0xad}) || r.Offset() != 7 {
		t.Fatalf("rest % x offset %d", r.Rest(), r.Offset())
	}
	// Returned subslices cannot be appended into the following bytes.
	r = NewReader(mustHex(t, "a0 01 61 41"))
	bin, _ := r.ReadBinary()
	_ = append(bin, 0)
	if v, err := r.ReadBool(); !v || err != nil {
		t.Fatal("append to a returned subslice overwrote the input")
	}
}
