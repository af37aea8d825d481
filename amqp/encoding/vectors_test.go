package encoding

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

// vector is an annotated encoding from types.bare.xml. canonical marks the bytes AppendValue itself
// produces for value (the smallest form); the others are legal forms other encoders choose, which
// every decoder must accept.
type vector struct {
	name      string
	hex       string // spaces separate the constructor, size/count and body for reading
	value     any
	canonical bool
}

var (
	uuidBytes = UUID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	d128      = Decimal128{0x22, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}
	long256   = strings.Repeat("x", 256)
)

var vectors = []vector{
	// AMQP 1.0 Part 1 §1.6.1 null
	{"null", "40", nil, true},
	// §1.6.2 boolean: true, false, and the one-byte form
	{"true", "41", true, true},
	{"false", "42", false, true},
	{"boolean 0x56 true", "56 01", true, false},
	{"boolean 0x56 false", "56 00", false, false},
	// §1.6.3–§1.6.6 unsigned
	{"ubyte", "50 ff", uint8(255), true},
	{"ushort", "60 12 34", uint16(0x1234), true},
	{"uint0", "43", uint32(0), true},
	{"smalluint", "52 ff", uint32(255), true},
	{"uint", "70 00 00 01 00", uint32(256), true},
	{"uint, wide form of a small value", "70 00 00 00 07", uint32(7), false},
	{"uint max", "70 ff ff ff ff", uint32(math.MaxUint32), true},
	{"ulong0", "44", uint64(0), true},
	{"smallulong", "53 10", uint64(0x10), true},
	{"ulong", "80 00 00 00 01 00 00 00 00", uint64(1 << 32), true},
	{"ulong, wide form of 0", "80 00 00 00 00 00 00 00 00", uint64(0), false},
	// §1.6.7–§1.6.10 signed; the small forms are sign-extended
	{"byte", "51 80", int8(-128), true},
	{"short", "61 ff fe", int16(-2), true},
	{"smallint -128", "54 80", int32(-128), true},
	{"smallint 127", "54 7f", int32(127), true},
	{"int -129", "71 ff ff ff 7f", int32(-129), true},
	{"int, wide form of 5", "71 00 00 00 05", int32(5), false},
	{"smalllong -1", "55 ff", int64(-1), true},
	{"long 128", "81 00 00 00 00 00 00 00 80", int64(128), true},
	{"long min", "81 80 00 00 00 00 00 00 00", int64(math.MinInt64), true},
	// §1.6.11–§1.6.12 IEEE 754 binary
	{"float 1.5", "72 3f c0 00 00", float32(1.5), true},
	{"float NaN payload", "72 7f c0 12 34", math.Float32frombits(0x7fc01234), true},
	{"double 1.5", "82 3f f8 00 00 00 00 00 00", 1.5, true},
	{"double -Inf", "82 ff f0 00 00 00 00 00 00", math.Inf(-1), true},
	// §1.6.13–§1.6.15 IEEE 754 decimal (BID), carried opaquely
	{"decimal32", "74 22 50 00 01", Decimal32{0x22, 0x50, 0x00, 0x01}, true},
	{"decimal64", "84 22 38 00 00 00 00 00 01", Decimal64{0x22, 0x38, 0, 0, 0, 0, 0, 0x01}, true},
	{"decimal128", "94 22 08 00 00 00 00 00 00 00 00 00 00 00 00 00 01", d128, true},
	// §1.6.16 char: UTF-32BE
	{"char U+1F600", "73 00 01 f6 00", Char(0x1f600), true},
	{"char A", "73 00 00 00 41", Char('A'), true},
	// §1.6.17 timestamp: ms since the epoch, signed
	{"timestamp 2023-11-14", "83 00 00 01 8b cf e5 68 00", Timestamp(1700000000000), true},
	{"timestamp -1 ms", "83 ff ff ff ff ff ff ff ff", Timestamp(-1), true},
	// §1.6.18 uuid
	{"uuid", "98 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", uuidBytes, true},
	// §1.6.19 binary
	{"vbin8", "a0 03 01 02 03", []byte{1, 2, 3}, true},
	{"vbin8 empty", "a0 00", []byte{}, true},
	{"vbin32", "b0 00 00 00 02 ab cd", []byte{0xab, 0xcd}, false},
	{"vbin32 256 bytes", "b0 00 00 01 00 " + strings.Repeat("78", 256), []byte(long256), true},
	// §1.6.20 string
	{"str8-utf8", "a1 05 68 65 6c 6c 6f", "hello", true},
	{"str8-utf8 two-byte rune", "a1 02 c3 a9", "é", true},
	{"str32-utf8", "b1 00 00 00 01 61", "a", false},
	{"str32-utf8 256 bytes", "b1 00 00 01 00 " + strings.Repeat("78", 256), long256, true},
	// §1.6.21 symbol
	{"sym8", "a3 0e " + hex.EncodeToString([]byte("amqp:open:list")), Symbol("amqp:open:list"), true},
	{"sym32", "b3 00 00 00 01 61", Symbol("a"), false},
	{"sym32 256 bytes", "b3 00 00 01 00 " + strings.Repeat("78", 256), Symbol(long256), true},
	// §1.6.22 list: size counts the bytes after the size field, count included
	{"list0", "45", List{}, true},
	{"list8", "c0 04 02 41 52 07", List{true, uint32(7)}, true},
	{"list8 empty", "c0 01 00", List{}, false},
	{"list32 (Proton's form)", "d0 00 00 00 09 00 00 00 02 55 01 a1 01 61", List{int64(1), "a"}, false},
	{"list32 256 elements", "d0 00 00 01 04 00 00 01 00 " + strings.Repeat("40", 256), make(List, 256), true},
	{"list8 of nested list", "c0 04 01 c0 01 00", List{List{}}, false},
	// §1.6.23 map: count is keys plus values
	{"map8", "c1 07 02 a3 01 6b a1 01 76", Map{{Symbol("k"), "v"}}, true},
	{"map8 empty", "c1 01 00", Map{}, true},
	{"map32 empty (Proton's form)", "d1 00 00 00 04 00 00 00 00", Map{}, false},
	{"map32 with ulong and list keys", "d1 00 00 00 09 00 00 00 04 53 01 40 45 41", Map{{uint64(1), nil}, {List{}, true}}, false},
	// §1.6.24 array: size, count, one element constructor, bodies
	{"array8 smalluint", "e0 04 02 52 01 02", Array{Code: CodeSmallUint, Values: []any{uint32(1), uint32(2)}}, true},
	{"array8 empty sym8", "e0 02 00 a3", Array{Code: CodeSym8, Values: []any{}}, true},
	{"array32 sym32 (Proton's form)", "f0 00 00 00 0a 00 00 00 01 b3 00 00 00 01 61", Array{Code: CodeSym32, Values: []any{Symbol("a")}}, false},
	{"array32 300 ubytes", "f0 00 00 01 31 00 00 01 2c 50 " + strings.Repeat("07", 300), Array{Code: CodeUbyte, Values: repeat(uint8(7), 300)}, true},
	{"array8 of null", "e0 02 03 40", Array{Code: CodeNull, Values: []any{nil, nil, nil}}, true},
	{"array8 of true", "e0 02 02 41", Array{Code: CodeTrue, Values: []any{true, true}}, true},
	{"array8 of false", "e0 02 01 42", Array{Code: CodeFalse, Values: []any{false}}, true},
	{"array8 of boolean", "e0 04 02 56 01 00", Array{Code: CodeBool, Values: []any{true, false}}, true},
	{"array8 of uint0", "e0 02 02 43", Array{Code: CodeUint0, Values: []any{uint32(0), uint32(0)}}, true},
	{"array8 of uint", "e0 06 01 70 00 00 00 01", Array{Code: CodeUint, Values: []any{uint32(1)}}, true},
	{"array8 of ulong0", "e0 02 01 44", Array{Code: CodeUlong0, Values: []any{uint64(0)}}, true},
	{"array8 of smallulong", "e0 03 01 53 09", Array{Code: CodeSmallUlong, Values: []any{uint64(9)}}, true},
	{"array8 of ulong", "e0 0a 01 80 00 00 00 00 00 00 00 09", Array{Code: CodeUlong, Values: []any{uint64(9)}}, true},
	{"array8 of byte", "e0 04 02 51 ff 01", Array{Code: CodeByte, Values: []any{int8(-1), int8(1)}}, true},
	{"array8 of ushort", "e0 04 01 60 01 02", Array{Code: CodeUshort, Values: []any{uint16(0x0102)}}, true},
	{"array8 of short", "e0 04 01 61 ff ff", Array{Code: CodeShort, Values: []any{int16(-1)}}, true},
	{"array8 of smallint", "e0 03 01 54 fe", Array{Code: CodeSmallInt, Values: []any{int32(-2)}}, true},
	{"array8 of int", "e0 06 01 71 ff ff ff fe", Array{Code: CodeInt, Values: []any{int32(-2)}}, true},
	{"array8 of smalllong", "e0 03 01 55 fe", Array{Code: CodeSmallLong, Values: []any{int64(-2)}}, true},
	{"array8 of long", "e0 0a 01 81 ff ff ff ff ff ff ff fe", Array{Code: CodeLong, Values: []any{int64(-2)}}, true},
	{"array8 of float", "e0 06 01 72 3f c0 00 00", Array{Code: CodeFloat, Values: []any{float32(1.5)}}, true},
	{"array8 of double", "e0 0a 01 82 3f f8 00 00 00 00 00 00", Array{Code: CodeDouble, Values: []any{1.5}}, true},
	{"array8 of decimal32", "e0 06 01 74 22 50 00 01", Array{Code: CodeDecimal32, Values: []any{Decimal32{0x22, 0x50, 0, 1}}}, true},
	{"array8 of decimal64", "e0 0a 01 84 22 38 00 00 00 00 00 01", Array{Code: CodeDecimal64, Values: []any{Decimal64{0x22, 0x38, 0, 0, 0, 0, 0, 1}}}, true},
	{"array8 of decimal128", "e0 22 02 94 " + strings.Repeat("22 08 00 00 00 00 00 00 00 00 00 00 00 00 00 01 ", 2), Array{Code: CodeDecimal128, Values: []any{d128, d128}}, true},
	{"array8 of char", "e0 0a 02 73 00 00 00 41 00 01 f6 00", Array{Code: CodeChar, Values: []any{Char('A'), Char(0x1f600)}}, true},
	{"array8 of timestamp", "e0 0a 01 83 00 00 01 8b cf e5 68 00", Array{Code: CodeTimestamp, Values: []any{Timestamp(1700000000000)}}, true},
	{"array8 of uuid", "e0 12 01 98 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", Array{Code: CodeUUID, Values: []any{uuidBytes}}, true},
	{"array8 of vbin8", "e0 05 02 a0 00 01 ff", Array{Code: CodeVbin8, Values: []any{[]byte{}, []byte{0xff}}}, true},
	{"array8 of vbin32", "e0 07 01 b0 00 00 00 01 ff", Array{Code: CodeVbin32, Values: []any{[]byte{0xff}}}, true},
	{"array8 of str8", "e0 04 01 a1 01 61", Array{Code: CodeStr8, Values: []any{"a"}}, true},
	{"array8 of str32", "e0 07 01 b1 00 00 00 01 61", Array{Code: CodeStr32, Values: []any{"a"}}, true},
	{"array8 of list0", "e0 02 02 45", Array{Code: CodeList0, Values: []any{List{}, List{}}}, true},
	{"array8 of list8", "e0 08 02 c0 03 01 50 07 01 00", Array{Code: CodeList8, Values: []any{List{uint8(7)}, List{}}}, true},
	{"array8 of list32", "e0 0b 01 d0 00 00 00 05 00 00 00 01 40", Array{Code: CodeList32, Values: []any{List{nil}}}, true},
	{"array8 of map8", "e0 08 01 c1 05 02 a1 01 61 40", Array{Code: CodeMap8, Values: []any{Map{{"a", nil}}}}, true},
	{"array8 of map32", "e0 0e 01 d1 00 00 00 08 00 00 00 02 a1 01 61 40", Array{Code: CodeMap32, Values: []any{Map{{"a", nil}}}}, true},
	{"array8 of array8", "e0 09 02 e0 03 01 54 ff 02 02 41", Array{Code: CodeArray8, Values: []any{
		Array{Code: CodeSmallInt, Values: []any{int32(-1)}}, Array{Code: CodeTrue, Values: []any{true, true}}}}, true},
	{"array8 of array32", "e0 0b 01 f0 00 00 00 05 00 00 00 01 40", Array{Code: CodeArray32, Values: []any{Array{Code: CodeNull, Values: []any{nil}}}}, true},
	{"array8 of described list8 (symbolic)", "e0 0b 01 00 a3 04 64 65 73 63 c0 01 00", Array{Descriptor: Symbol("desc"), Code: CodeList8, Values: []any{List{}}}, true},
	{"array8 of described list0 (numeric)", "e0 05 02 00 53 29 45", Array{Descriptor: uint64(0x29), Code: CodeList0, Values: []any{List{}, List{}}}, true},
	// AMQP 1.0 Part 1 §1.2, §1.5: described values; descriptors are ulong (any form) or symbol
	{"described smallulong", "00 53 77 a1 01 78", Described{Descriptor: uint64(0x77), Value: "x"}, true},
	{"described ulong (domain 0x468c id 4)", "00 80 00 00 46 8c 00 00 00 04 a1 05 61 20 3d 20 31", Described{Descriptor: DomainCode(0x468c, 4), Value: "a = 1"}, true},
	{"described ulong0", "00 44 45", Described{Descriptor: uint64(0), Value: List{}}, false},
	{"described sym8", "00 a3 0e " + hex.EncodeToString([]byte("amqp:open:list")) + " 45", Described{Descriptor: Symbol("amqp:open:list"), Value: List{}}, true},
	{"described sym32", "00 b3 00 00 00 01 78 40", Described{Descriptor: Symbol("x"), Value: nil}, false},
	{"described of described", "00 53 01 00 53 02 40", Described{Descriptor: uint64(1), Value: Described{Descriptor: uint64(2), Value: nil}}, true},
	{"transfer performative", "00 53 14 c0 18 06 43 43 a0 10 " + strings.Repeat("ab ", 16) + "43 41 42",
		Described{Descriptor: uint64(0x14), Value: List{uint32(0), uint32(0), []byte(strings.Repeat("\xab", 16)), uint32(0), true, false}}, true},
}

func repeat(v any, n int) []any {
	s := make([]any, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			b := mustHex(t, v.hex)
			r := NewReader(b)
			got, err := r.ReadValue()
			if err != nil {
				t.Fatalf("ReadValue(% x): %v", b, err)
			}
			if r.More() {
				t.Fatalf("%d bytes left", len(r.Rest()))
			}
			if !Equal(got, v.value) {
				t.Fatalf("decoded %#v, want %#v", got, v.value)
			}
			enc, err := AppendValue(nil, v.value)
			if err != nil {
				t.Fatalf("AppendValue: %v", err)
			}
			if v.canonical && !bytes.Equal(enc, b) {
				t.Fatalf("AppendValue = % x, want % x", enc, b)
			}
			if !v.canonical && bytes.Equal(enc, b) {
				t.Fatalf("vector marked non-canonical but AppendValue produces it; fix the table")
			}
			// A decoded described value re-encodes byte for byte, whatever forms it used.
			if d, ok := got.(Described); ok {
				if re, _ := AppendValue(nil, d); !bytes.Equal(re, b) {
					t.Fatalf("described re-encoded as % x, want % x", re, b)
				}
			}
		})
	}
}

// The vectors cover every format code of types.bare.xml, as a value and as an array element.
func TestVectorsCoverEveryCode(t *testing.T) {
	seen := map[Code]bool{}
	elems := map[Code]bool{}
	for _, v := range vectors {
		sk, err := skeleton(mustHex(t, v.hex))
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		for _, c := range sk {
			seen[c] = true
		}
		if a, ok := v.value.(Array); ok {
			elems[a.Code] = true
			if a.Descriptor != nil {
				elems[CodeDescribed] = true
			}
		}
	}
	n := 0
	for c := 0; c < 256; c++ {
		code := Code(c)
		if !code.Valid() {
			continue
		}
		n++
		if !seen[code] {
			t.Errorf("no vector uses %s (%#02x)", code, c)
		}
		if !elems[code] {
			t.Errorf("no vector has an array of %s", code)
		}
	}
	if n != 39 {
		t.Errorf("%d valid codes, want the 39 of types.bare.xml", n)
	}
	if !seen[CodeDescribed] || !elems[CodeDescribed] {
		t.Errorf("described values and arrays of described values must be covered")
	}
}

// skeleton lists the constructors of an encoding in pre-order: every value's code, descriptor codes,
// array element constructors. Two encodings of one value with equal skeletons must be equal bytes.
func skeleton(b []byte) ([]Code, error) {
	r := NewReader(b)
	var out []Code
	err := skel(&r, &out)
	return out, err
}

func skel(r *Reader, out *[]Code) error {
	c, err := r.PeekCode()
	if err != nil {
		return err
	}
	*out = append(*out, c)
	switch c {
	case CodeDescribed:
		if r.ArrayCode() == 0 {
			if rest := r.Rest(); len(rest) > 1 {
				*out = append(*out, Code(rest[1]))
			}
		}
		if _, err := r.ReadDescriptor(); err != nil {
			return err
		}
		return skel(r, out)
	case CodeList0, CodeList8, CodeList32, CodeMap8, CodeMap32:
		var sub Reader
		if c == CodeMap8 || c == CodeMap32 {
			sub, err = r.ReadMap()
		} else {
			sub, err = r.ReadList()
		}
		if err != nil {
			return err
		}
		for sub.More() {
			if err := skel(&sub, out); err != nil {
				return err
			}
		}
		return nil
	case CodeArray8, CodeArray32:
		rest, w := r.Rest(), sizeWidth(c)
		at := 2 * w // element constructor offset in an array element's body
		if r.ArrayCode() == 0 {
			at++ // past the array's own constructor
		}
		if at+1 < len(rest) {
			*out = append(*out, Code(rest[at]))
			if rest[at] == byte(CodeDescribed) {
				*out = append(*out, Code(rest[at+1]))
			}
		}
		sub, err := r.ReadArray()
		if err != nil {
			return err
		}
		for sub.More() {
			if err := skel(&sub, out); err != nil {
				return err
			}
		}
		return nil
	}
	return r.Skip()
}
