package encoding

import (
	"bytes"
	"encoding/hex"
	"math"
	"strconv"
	"time"
)

// Code is an AMQP format code: the one-byte constructor that precedes every encoded value,
// or 0x00, which introduces a described value. AMQP 1.0 Part 1 §1.2.
type Code uint8

// Format codes from types.bare.xml, named after the spec's encoding names.
const (
	CodeDescribed Code = 0x00 // AMQP 1.0 Part 1 §1.2: 0x00 descriptor constructor

	CodeNull       Code = 0x40 // AMQP 1.0 Part 1 §1.6.1
	CodeTrue       Code = 0x41 // AMQP 1.0 Part 1 §1.6.2
	CodeFalse      Code = 0x42
	CodeBool       Code = 0x56 // one byte, 0x00 or 0x01
	CodeUbyte      Code = 0x50 // §1.6.3
	CodeUshort     Code = 0x60 // §1.6.4
	CodeUint       Code = 0x70 // §1.6.5
	CodeSmallUint  Code = 0x52
	CodeUint0      Code = 0x43
	CodeUlong      Code = 0x80 // §1.6.6
	CodeSmallUlong Code = 0x53
	CodeUlong0     Code = 0x44
	CodeByte       Code = 0x51 // §1.6.7
	CodeShort      Code = 0x61 // §1.6.8
	CodeInt        Code = 0x71 // §1.6.9
	CodeSmallInt   Code = 0x54
	CodeLong       Code = 0x81 // §1.6.10
	CodeSmallLong  Code = 0x55
	CodeFloat      Code = 0x72 // §1.6.11
	CodeDouble     Code = 0x82 // §1.6.12
	CodeDecimal32  Code = 0x74 // §1.6.13
	CodeDecimal64  Code = 0x84 // §1.6.14
	CodeDecimal128 Code = 0x94 // §1.6.15
	CodeChar       Code = 0x73 // §1.6.16
	CodeTimestamp  Code = 0x83 // §1.6.17
	CodeUUID       Code = 0x98 // §1.6.18
	CodeVbin8      Code = 0xa0 // §1.6.19
	CodeVbin32     Code = 0xb0
	CodeStr8       Code = 0xa1 // §1.6.20
	CodeStr32      Code = 0xb1
	CodeSym8       Code = 0xa3 // §1.6.21
	CodeSym32      Code = 0xb3
	CodeList0      Code = 0x45 // §1.6.22
	CodeList8      Code = 0xc0
	CodeList32     Code = 0xd0
	CodeMap8       Code = 0xc1 // §1.6.23
	CodeMap32      Code = 0xd1
	CodeArray8     Code = 0xe0 // §1.6.24
	CodeArray32    Code = 0xf0
)

// codeNames holds the spec's name of every defined code; an empty entry marks an undefined code.
var codeNames = [256]string{
	CodeDescribed: "described", CodeNull: "null", CodeTrue: "true", CodeFalse: "false", CodeBool: "boolean",
	CodeUbyte: "ubyte", CodeUshort: "ushort", CodeUint: "uint", CodeSmallUint: "smalluint", CodeUint0: "uint0",
	CodeUlong: "ulong", CodeSmallUlong: "smallulong", CodeUlong0: "ulong0", CodeByte: "byte", CodeShort: "short",
	CodeInt: "int", CodeSmallInt: "smallint", CodeLong: "long", CodeSmallLong: "smalllong", CodeFloat: "float",
	CodeDouble: "double", CodeDecimal32: "decimal32", CodeDecimal64: "decimal64", CodeDecimal128: "decimal128",
	CodeChar: "char", CodeTimestamp: "timestamp", CodeUUID: "uuid", CodeVbin8: "vbin8", CodeVbin32: "vbin32",
	CodeStr8: "str8-utf8", CodeStr32: "str32-utf8", CodeSym8: "sym8", CodeSym32: "sym32", CodeList0: "list0",
	CodeList8: "list8", CodeList32: "list32", CodeMap8: "map8", CodeMap32: "map32", CodeArray8: "array8",
	CodeArray32: "array32",
}

// String returns the spec's encoding name ("smalluint", "str8-utf8", ...) or "0xNN" for an undefined code.
func (c Code) String() string {
	if n := codeNames[c]; n != "" {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// Valid reports whether c is one of the 39 format codes of AMQP 1.0 Part 1 (0x00 excluded).
func (c Code) Valid() bool { return c != CodeDescribed && codeNames[c] != "" }

// fixedWidth is the value width of fixed-category codes, -1 for others. AMQP 1.0 Part 1 §1.2.1:
// the high nibble of a fixed code gives its width (0x4_ 0, 0x5_ 1, 0x6_ 2, 0x7_ 4, 0x8_ 8, 0x9_ 16).
func fixedWidth(c Code) int {
	if !c.Valid() {
		return -1
	}
	switch c >> 4 {
	case 0x4:
		return 0
	case 0x5:
		return 1
	case 0x6:
		return 2
	case 0x7:
		return 4
	case 0x8:
		return 8
	case 0x9:
		return 16
	}
	return -1
}

// sizeWidth is the width of the length/size prefix of variable, compound and array codes
// (AMQP 1.0 Part 1 §1.2.2–§1.2.4: 0xa_/0xc_/0xe_ one byte, 0xb_/0xd_/0xf_ four bytes), -1 for others.
func sizeWidth(c Code) int {
	if !c.Valid() {
		return -1
	}
	switch c >> 4 {
	case 0xa, 0xc, 0xe:
		return 1
	case 0xb, 0xd, 0xf:
		return 4
	}
	return -1
}

// minBodySize is the smallest number of bytes one value of code c occupies after its constructor;
// decoders multiply it by a claimed element count before trusting the count.
func minBodySize(c Code) int {
	if w := fixedWidth(c); w >= 0 {
		return w
	}
	switch c >> 4 {
	case 0xa, 0xb: // length only
		return sizeWidth(c)
	case 0xc, 0xd: // size and count
		return 2 * sizeWidth(c)
	case 0xe, 0xf: // size, count and at least one constructor byte
		return 2*sizeWidth(c) + 1
	}
	return 1
}

// Symbol is an AMQP symbol: an ASCII string from a constrained domain. AMQP 1.0 Part 1 §1.6.21.
type Symbol string

// Char is an AMQP char: one Unicode code point, encoded UTF-32BE. AMQP 1.0 Part 1 §1.6.16.
type Char rune

// Timestamp is an AMQP timestamp: signed milliseconds since the Unix epoch. AMQP 1.0 Part 1 §1.6.17.
type Timestamp int64

// Time converts t to a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(int64(t)).UTC() }

// TimestampOf converts a time.Time, truncating to milliseconds.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMilli()) }

// UUID is an AMQP uuid in RFC 4122 byte order. AMQP 1.0 Part 1 §1.6.18.
type UUID [16]byte

// String formats u as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (u UUID) String() string {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// Decimal32, Decimal64 and Decimal128 hold IEEE 754-2008 decimal floating point numbers in the
// Binary Integer Decimal form, exactly as they appear on the wire (big-endian). The package carries
// them opaquely; it does no decimal arithmetic. AMQP 1.0 Part 1 §1.6.13–§1.6.15.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// List is the generic form of an AMQP list: a sequence of values of any type. AMQP 1.0 Part 1 §1.6.22.
type List []any

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key   any
	Value any
}

// Map is the generic form of an AMQP map. It keeps the wire order and allows keys of any type
// (including []byte, List and other non-comparable Go types), so it is a slice, not a Go map.
// AMQP 1.0 Part 1 §1.6.23 requires unique keys; decoders do not check this (it would cost a hash per key).
type Map []MapEntry

// Get returns the value of the first entry whose key is Equal to key.
func (m Map) Get(key any) (any, bool) {
	for _, e := range m {
		if Equal(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// Array is the generic form of an AMQP array: values of one type sharing one element constructor.
// AMQP 1.0 Part 1 §1.6.24.
//
// Code is the element encoding (for example CodeSym8, CodeInt, CodeList32, CodeArray8). When the elements
// are described, Descriptor holds the shared descriptor (uint64 or Symbol) and Values hold the underlying
// values only. Decoders always set Code. When encoding, a zero Code (CodeDescribed) asks AppendValue to
// choose the smallest code that fits every element; an empty Array then needs an explicit Code.
type Array struct {
	Descriptor any
	Code       Code
	Values     []any
}

// Described is the generic form of a described value: a descriptor (uint64 or Symbol, AMQP 1.0 Part 1
// §1.5) and the underlying value. ReadValue decodes every described type it meets to Described.
//
// Raw, when non-nil, is the exact original encoding of the whole described value (0x00, descriptor and
// value). ReadValue sets it (to a copy) so that described types this package does not interpret re-encode
// byte-identically: AppendValue writes Raw verbatim and ignores Descriptor and Value. Set Raw to nil after
// changing Descriptor or Value.
type Described struct {
	Descriptor any
	Value      any
	Raw        []byte
}

// Equal reports whether a and b are the same AMQP value: same Go type (hence same AMQP type) and same
// contents. Floats compare by bits (so a NaN equals itself), []byte by contents, List, Map and Array
// element by element (Array also compares Code and Descriptor), Described by Descriptor and Value
// (Raw is ignored). Values of types this package does not produce compare false unless both are nil,
// and so do values nested deeper than MaxDepth (which no decoder produces), to stay finite on cycles.
func Equal(a, b any) bool {
	return equalDepth(a, b, 0)
}

func equalDepth(a, b any, depth int) bool {
	if depth > MaxDepth+1 {
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case List:
		y, ok := b.(List)
		return ok && equalSlice(x, y, depth)
	case Map:
		y, ok := b.(Map)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalDepth(x[i].Key, y[i].Key, depth+1) || !equalDepth(x[i].Value, y[i].Value, depth+1) {
				return false
			}
		}
		return true
	case Array:
		y, ok := b.(Array)
		return ok && x.Code == y.Code && equalDepth(x.Descriptor, y.Descriptor, depth+1) &&
			equalSlice(x.Values, y.Values, depth)
	case Described:
		y, ok := b.(Described)
		return ok && equalDepth(x.Descriptor, y.Descriptor, depth+1) && equalDepth(x.Value, y.Value, depth+1)
	case bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64, Char, Timestamp, UUID,
		Decimal32, Decimal64, Decimal128, string, Symbol:
		return a == b
	}
	return false
}

func equalSlice(x, y []any, depth int) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !equalDepth(x[i], y[i], depth+1) {
			return false
		}
	}
	return true
}
