package encoding

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Raw is one complete encoded value (constructor included) that AppendValue writes verbatim; for
// relaying a field read with Reader.ReadRaw, or embedding a value encoded elsewhere.
type Raw []byte

// AppendValue appends the generic value v with the smallest encoding of its type. The Go types and
// the AMQP types they encode as:
//
//	nil → null; bool → boolean; uint8 → ubyte; uint16 → ushort; uint32 → uint; uint64, uint → ulong;
//	int8 → byte; int16 → short; int32 → int; int64, int → long; float32 → float; float64 → double;
//	Decimal32/64/128; Char → char; Timestamp, time.Time → timestamp; UUID → uuid; []byte → binary;
//	string → string; Symbol → symbol; List, []any → list; Map → map; Array → array;
//	Described → described value; Raw → written as is.
//
// Nothing is validated that the decoder would reject except the structure: strings must be UTF-8 and
// symbols ASCII (checked; *EncodeError otherwise). Other types give an *EncodeError.
func AppendValue(b []byte, v any) ([]byte, error) { return appendValue(b, v, 0) }

func encErr(format string, args ...any) error { return &EncodeError{Msg: fmt.Sprintf(format, args...)} }

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, encErr("nesting deeper than MaxDepth")
	}
	switch x := v.(type) {
	case nil:
		return AppendNull(b), nil
	case bool:
		return AppendBool(b, x), nil
	case uint8:
		return AppendUbyte(b, x), nil
	case uint16:
		return AppendUshort(b, x), nil
	case uint32:
		return AppendUint(b, x), nil
	case uint64:
		return AppendUlong(b, x), nil
	case uint:
		return AppendUlong(b, uint64(x)), nil
	case int8:
		return AppendByte(b, x), nil
	case int16:
		return AppendShort(b, x), nil
	case int32:
		return AppendInt(b, x), nil
	case int64:
		return AppendLong(b, x), nil
	case int:
		return AppendLong(b, int64(x)), nil
	case float32:
		return AppendFloat(b, x), nil
	case float64:
		return AppendDouble(b, x), nil
	case Decimal32:
		return AppendDecimal32(b, x), nil
	case Decimal64:
		return AppendDecimal64(b, x), nil
	case Decimal128:
		return AppendDecimal128(b, x), nil
	case Char:
		if !utf8.ValidRune(rune(x)) {
			return b, encErr("char %#x is not a Unicode scalar value", int32(x))
		}
		return AppendChar(b, x), nil
	case Timestamp:
		return AppendTimestamp(b, x), nil
	case time.Time:
		return AppendTimestamp(b, TimestampOf(x)), nil
	case UUID:
		return AppendUUID(b, x), nil
	case []byte:
		return AppendBinary(b, x), nil
	case string:
		if !utf8.ValidString(x) {
			return b, encErr("string is not valid UTF-8")
		}
		return AppendString(b, x), nil
	case Symbol:
		if !isASCII([]byte(x)) {
			return b, encErr("symbol %q is not ASCII", string(x))
		}
		return AppendSymbol(b, x), nil
	case List:
		return appendList(b, x, depth)
	case []any:
		return appendList(b, x, depth)
	case Map:
		b, c := BeginMap(b)
		var err error
		for _, e := range x {
			if b, err = appendValue(b, e.Key, depth+1); err != nil {
				return b, err
			}
			if b, err = appendValue(b, e.Value, depth+1); err != nil {
				return b, err
			}
			c.Entry(b)
		}
		return c.End(b), nil
	case Array:
		return appendArray(b, x, depth)
	case Described:
		if x.Raw != nil {
			return append(b, x.Raw...), nil
		}
		b, err := appendDescriptor(b, x.Descriptor)
		if err != nil {
			return b, err
		}
		return appendValue(b, x.Value, depth+1)
	case Raw:
		if len(x) == 0 {
			return b, encErr("empty Raw value")
		}
		return append(b, x...), nil
	}
	return b, encErr("unsupported Go type %T", v)
}

func appendList(b []byte, x []any, depth int) ([]byte, error) {
	b, c := BeginList(b)
	var err error
	for _, e := range x {
		if b, err = appendValue(b, e, depth+1); err != nil {
			return b, err
		}
		c.Elem(b)
	}
	return c.End(b), nil
}

func appendDescriptor(b []byte, d any) ([]byte, error) {
	switch d := d.(type) {
	case uint64:
		return AppendDescriptor(b, d), nil
	case Symbol:
		if !isASCII([]byte(d)) {
			return b, encErr("descriptor symbol %q is not ASCII", string(d))
		}
		return AppendSymbolicDescriptor(b, d), nil
	}
	// AMQP 1.0 Part 1 §1.5: descriptors are symbols or ulongs.
	return b, encErr("descriptor must be uint64 or Symbol, not %T", d)
}

// AppendArray appends an array, as array8 when size and count fit in a byte, else array32. The
// element code a.Code is used for every element; each value must be of its Go type and fit it
// (CodeSmallUint needs uint32 values below 256, CodeTrue needs every value true, CodeList8 needs each
// list body below 256 bytes). A zero Code is inferred from the values (smallest code that fits all of
// them; list32/map32/array32 for compound elements). AMQP 1.0 Part 1 §1.6.24.
func AppendArray(b []byte, a Array) ([]byte, error) { return appendArray(b, a, 0) }

func appendArray(b []byte, a Array, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, encErr("nesting deeper than MaxDepth")
	}
	code := a.Code
	if code == CodeDescribed {
		var err error
		if code, err = inferArrayCode(a.Values); err != nil {
			return b, err
		}
	}
	if !code.Valid() {
		return b, encErr("array element code %s is not a type code", code)
	}
	start := len(b)
	b = append(b, byte(CodeArray32), 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	if a.Descriptor != nil {
		if b, err = appendDescriptor(b, a.Descriptor); err != nil {
			return b, err
		}
	}
	b = append(b, byte(code))
	for _, v := range a.Values {
		if b, err = appendBody(b, code, v, depth+1); err != nil {
			return b, err
		}
	}
	return endArray(b, start, len(a.Values)), nil
}

// endArray patches the reserved array32 header at start, compacting to array8 when it fits.
func endArray(b []byte, start, count int) []byte {
	body := len(b) - start - compoundHeader
	if body+1 <= math.MaxUint8 && count <= math.MaxUint8 {
		b[start], b[start+1], b[start+2] = byte(CodeArray8), byte(body+1), byte(count)
		copy(b[start+3:], b[start+compoundHeader:])
		return b[:len(b)-(compoundHeader-3)]
	}
	if uint64(body)+4 > math.MaxUint32 {
		panic("amqp/encoding: array larger than 2^32-1 bytes")
	}
	binary.BigEndian.PutUint32(b[start+1:], uint32(body+4))
	binary.BigEndian.PutUint32(b[start+5:], uint32(count))
	return b
}

// AppendSymbolArray appends symbols as an array of sym8 (or sym32 when one is longer than 255 bytes),
// the usual encoding of capabilities; an empty slice gives an empty sym8 array. The symbols must be
// ASCII. AMQP 1.0 Part 1 §1.6.24.
func AppendSymbolArray(b []byte, v []Symbol) []byte {
	code := CodeSym8
	for _, s := range v {
		if len(s) > math.MaxUint8 {
			code = CodeSym32
		}
	}
	start := len(b)
	b = append(b, byte(CodeArray32), 0, 0, 0, 0, 0, 0, 0, 0, byte(code))
	for _, s := range v {
		if code == CodeSym8 {
			b = append(b, byte(len(s)))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		}
		b = append(b, s...)
	}
	return endArray(b, start, len(v))
}

func inferArrayCode(vs []any) (Code, error) {
	if len(vs) == 0 {
		return 0, encErr("empty Array needs an explicit Code")
	}
	small := true // every value fits the one-byte form
	var code Code
	switch vs[0].(type) {
	case nil:
		return CodeNull, nil
	case bool:
		return CodeBool, nil
	case uint8:
		return CodeUbyte, nil
	case uint16:
		return CodeUshort, nil
	case uint32:
		for _, v := range vs {
			if x, ok := v.(uint32); ok && x > math.MaxUint8 {
				small = false
			}
		}
		return pick(small, CodeSmallUint, CodeUint), nil
	case uint64:
		for _, v := range vs {
			if x, ok := v.(uint64); ok && x > math.MaxUint8 {
				small = false
			}
		}
		return pick(small, CodeSmallUlong, CodeUlong), nil
	case int8:
		return CodeByte, nil
	case int16:
		return CodeShort, nil
	case int32:
		for _, v := range vs {
			if x, ok := v.(int32); ok && (x < math.MinInt8 || x > math.MaxInt8) {
				small = false
			}
		}
		return pick(small, CodeSmallInt, CodeInt), nil
	case int64:
		for _, v := range vs {
			if x, ok := v.(int64); ok && (x < math.MinInt8 || x > math.MaxInt8) {
				small = false
			}
		}
		return pick(small, CodeSmallLong, CodeLong), nil
	case float32:
		return CodeFloat, nil
	case float64:
		return CodeDouble, nil
	case Decimal32:
		return CodeDecimal32, nil
	case Decimal64:
		return CodeDecimal64, nil
	case Decimal128:
		return CodeDecimal128, nil
	case Char:
		return CodeChar, nil
	case Timestamp:
		return CodeTimestamp, nil
	case UUID:
		return CodeUUID, nil
	case []byte:
		for _, v := range vs {
			if x, ok := v.([]byte); ok && len(x) > math.MaxUint8 {
				small = false
			}
		}
		return pick(small, CodeVbin8, CodeVbin32), nil
	case string:
		for _, v := range vs {
			if x, ok := v.(string); ok && len(x) > math.MaxUint8 {
				small = false
			}
		}
		return pick(small, CodeStr8, CodeStr32), nil
	case Symbol:
		for _, v := range vs {
			if x, ok := v.(Symbol); ok && len(x) > math.MaxUint8 {
				small = false
			}
		}
		return pick(small, CodeSym8, CodeSym32), nil
	case List, []any:
		code = CodeList32
	case Map:
		code = CodeMap32
	case Array:
		code = CodeArray32
	default:
		return 0, encErr("cannot infer an array element code for %T (described elements: set Array.Descriptor)", vs[0])
	}
	return code, nil
}

func pick(small bool, c8, c32 Code) Code {
	if small {
		return c8
	}
	return c32
}

func typeErr(code Code, v any) error {
	return encErr("array element of Go type %T does not fit element code %s", v, code)
}

// appendBody appends v encoded with code, without the constructor: an array element.
func appendBody(b []byte, code Code, v any, depth int) ([]byte, error) {
	switch code {
	case CodeNull:
		if v != nil {
			return b, typeErr(code, v)
		}
		return b, nil
	case CodeTrue, CodeFalse, CodeBool:
		x, ok := v.(bool)
		if !ok || (code == CodeTrue && !x) || (code == CodeFalse && x) {
			return b, typeErr(code, v)
		}
		if code == CodeBool {
			if x {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
		return b, nil
	case CodeUbyte:
		x, ok := v.(uint8)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, x), nil
	case CodeUshort:
		x, ok := v.(uint16)
		if !ok {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint16(b, x), nil
	case CodeUint0, CodeSmallUint, CodeUint:
		x, ok := v.(uint32)
		if !ok || (code == CodeUint0 && x != 0) || (code == CodeSmallUint && x > math.MaxUint8) {
			return b, typeErr(code, v)
		}
		switch code {
		case CodeSmallUint:
			return append(b, byte(x)), nil
		case CodeUint:
			return binary.BigEndian.AppendUint32(b, x), nil
		}
		return b, nil
	case CodeUlong0, CodeSmallUlong, CodeUlong:
		x, ok := v.(uint64)
		if !ok || (code == CodeUlong0 && x != 0) || (code == CodeSmallUlong && x > math.MaxUint8) {
			return b, typeErr(code, v)
		}
		switch code {
		case CodeSmallUlong:
			return append(b, byte(x)), nil
		case CodeUlong:
			return binary.BigEndian.AppendUint64(b, x), nil
		}
		return b, nil
	case CodeByte:
		x, ok := v.(int8)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, byte(x)), nil
	case CodeShort:
		x, ok := v.(int16)
		if !ok {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint16(b, uint16(x)), nil
	case CodeSmallInt, CodeInt:
		x, ok := v.(int32)
		if !ok || (code == CodeSmallInt && (x < math.MinInt8 || x > math.MaxInt8)) {
			return b, typeErr(code, v)
		}
		if code == CodeSmallInt {
			return append(b, byte(int8(x))), nil
		}
		return binary.BigEndian.AppendUint32(b, uint32(x)), nil
	case CodeSmallLong, CodeLong:
		x, ok := v.(int64)
		if !ok || (code == CodeSmallLong && (x < math.MinInt8 || x > math.MaxInt8)) {
			return b, typeErr(code, v)
		}
		if code == CodeSmallLong {
			return append(b, byte(int8(x))), nil
		}
		return binary.BigEndian.AppendUint64(b, uint64(x)), nil
	case CodeFloat:
		x, ok := v.(float32)
		if !ok {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint32(b, math.Float32bits(x)), nil
	case CodeDouble:
		x, ok := v.(float64)
		if !ok {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case CodeDecimal32:
		x, ok := v.(Decimal32)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, x[:]...), nil
	case CodeDecimal64:
		x, ok := v.(Decimal64)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, x[:]...), nil
	case CodeDecimal128:
		x, ok := v.(Decimal128)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, x[:]...), nil
	case CodeChar:
		x, ok := v.(Char)
		if !ok || !utf8.ValidRune(rune(x)) {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint32(b, uint32(x)), nil
	case CodeTimestamp:
		x, ok := v.(Timestamp)
		if !ok {
			return b, typeErr(code, v)
		}
		return binary.BigEndian.AppendUint64(b, uint64(x)), nil
	case CodeUUID:
		x, ok := v.(UUID)
		if !ok {
			return b, typeErr(code, v)
		}
		return append(b, x[:]...), nil
	case CodeVbin8, CodeVbin32:
		x, ok := v.([]byte)
		if !ok {
			return b, typeErr(code, v)
		}
		return appendVarBody(b, code, x)
	case CodeStr8, CodeStr32:
		x, ok := v.(string)
		if !ok || !utf8.ValidString(x) {
			return b, typeErr(code, v)
		}
		return appendVarBody(b, code, []byte(x))
	case CodeSym8, CodeSym32:
		x, ok := v.(Symbol)
		if !ok || !isASCII([]byte(x)) {
			return b, typeErr(code, v)
		}
		return appendVarBody(b, code, []byte(x))
	case CodeList0:
		if !isEmptyList(v) {
			return b, typeErr(code, v)
		}
		return b, nil
	case CodeList8, CodeList32, CodeMap8, CodeMap32:
		return appendCompoundBody(b, code, v, depth)
	case CodeArray8, CodeArray32:
		x, ok := v.(Array)
		if !ok {
			return b, typeErr(code, v)
		}
		start := len(b)
		nb, err := appendArray(b, x, depth)
		if err != nil {
			return nb, err
		}
		return rewidth(nb, start, code)
	}
	return b, encErr("array element code %s is not a type code", code)
}

func isEmptyList(v any) bool {
	switch x := v.(type) {
	case List:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func appendVarBody(b []byte, code Code, x []byte) ([]byte, error) {
	if sizeWidth(code) == 1 {
		if len(x) > math.MaxUint8 {
			return b, encErr("%d bytes do not fit %s", len(x), code)
		}
		b = append(b, byte(len(x)))
	} else {
		if uint64(len(x)) > math.MaxUint32 {
			return b, encErr("%d bytes do not fit %s", len(x), code)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
	}
	return append(b, x...), nil
}

// appendCompoundBody appends a list or map as an array element in exactly the width code asks for.
func appendCompoundBody(b []byte, code Code, v any, depth int) ([]byte, error) {
	start := len(b)
	var err error
	switch x := v.(type) {
	case List:
		if code != CodeList8 && code != CodeList32 {
			return b, typeErr(code, v)
		}
		b, err = appendList(b, x, depth)
	case []any:
		if code != CodeList8 && code != CodeList32 {
			return b, typeErr(code, v)
		}
		b, err = appendList(b, x, depth)
	case Map:
		if code != CodeMap8 && code != CodeMap32 {
			return b, typeErr(code, v)
		}
		b, err = appendValue(b, x, depth)
	default:
		return b, typeErr(code, v)
	}
	if err != nil {
		return b, err
	}
	return rewidth(b, start, code)
}

// rewidth rewrites the list, map or array just appended at start (in whatever form End chose,
// list0 included) as a body of exactly want's width, without its constructor: an array element.
// Arrays of compounds are rare, so this copies rather than predicting the width.
func rewidth(b []byte, start int, want Code) ([]byte, error) {
	var size, count int
	var body []byte
	switch Code(b[start]) {
	case CodeList0:
	case CodeList8, CodeMap8, CodeArray8:
		size, count, body = int(b[start+1])-1, int(b[start+2]), b[start+3:]
	default:
		size, count = int(binary.BigEndian.Uint32(b[start+1:]))-4, int(binary.BigEndian.Uint32(b[start+5:]))
		body = b[start+9:]
	}
	tmp := append([]byte(nil), body...)
	b = b[:start]
	if sizeWidth(want) == 1 {
		if size+1 > math.MaxUint8 || count > math.MaxUint8 {
			return b, encErr("array element does not fit %s", want)
		}
		b = append(b, byte(size+1), byte(count))
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(size+4))
		b = binary.BigEndian.AppendUint32(b, uint32(count))
	}
	return append(b, tmp...), nil
}

// ReadValue decodes the next value into its generic Go form (see AppendValue for the mapping; lists
// decode to List, arrays to Array, described values to Described with Raw set). It copies everything
// it returns, so the result outlives the input, and it checks every nested size exactly: a compound
// whose elements do not fill its size is rejected. Allocation is bounded by the input: counts are
// checked against the bytes before any slice is made, and arrays of zero-width elements may not
// claim more elements in total than the input has bytes plus 1024.
func (r *Reader) ReadValue() (any, error) {
	d := decoder{budget: len(r.buf) - r.off + zeroWidthAllowance}
	return d.value(r, 0)
}

type decoder struct {
	budget int // zero-width array elements still allowed
}

func (d *decoder) value(r *Reader, depth int) (any, error) {
	c, _, err := r.head()
	if err != nil {
		return nil, err
	}
	if depth+r.depth >= MaxDepth && (c == CodeDescribed || c >= CodeList8 || c == CodeList0) {
		return nil, r.errAt(r.off, "nesting deeper than MaxDepth")
	}
	switch c {
	case CodeDescribed:
		start := r.off
		desc, err := r.ReadDescriptor()
		if err != nil {
			return nil, err
		}
		v, err := d.value(r, depth+1)
		if err != nil {
			return nil, err
		}
		out := Described{Descriptor: desc.Value(), Value: v}
		if r.elem == 0 {
			out.Raw = append([]byte(nil), r.buf[start:r.off]...)
		}
		return out, nil
	case CodeNull:
		return nil, r.ReadNull()
	case CodeTrue, CodeFalse, CodeBool:
		return checked(r.ReadBool())
	case CodeUbyte:
		return checked(r.ReadUbyte())
	case CodeUshort:
		return checked(r.ReadUshort())
	case CodeUint0, CodeSmallUint, CodeUint:
		return checked(r.ReadUint())
	case CodeUlong0, CodeSmallUlong, CodeUlong:
		return checked(r.ReadUlong())
	case CodeByte:
		return checked(r.ReadInt8())
	case CodeShort:
		return checked(r.ReadShort())
	case CodeSmallInt, CodeInt:
		return checked(r.ReadInt())
	case CodeSmallLong, CodeLong:
		return checked(r.ReadLong())
	case CodeFloat:
		return checked(r.ReadFloat())
	case CodeDouble:
		return checked(r.ReadDouble())
	case CodeDecimal32:
		return checked(r.ReadDecimal32())
	case CodeDecimal64:
		return checked(r.ReadDecimal64())
	case CodeDecimal128:
		return checked(r.ReadDecimal128())
	case CodeChar:
		return checked(r.ReadChar())
	case CodeTimestamp:
		return checked(r.ReadTimestamp())
	case CodeUUID:
		return checked(r.ReadUUID())
	case CodeVbin8, CodeVbin32:
		v, err := r.ReadBinary()
		if err != nil {
			return nil, err
		}
		return append(make([]byte, 0, len(v)), v...), nil
	case CodeStr8, CodeStr32:
		return checked(r.ReadString())
	case CodeSym8, CodeSym32:
		return checked(r.ReadSymbol())
	case CodeList0, CodeList8, CodeList32:
		sub, err := r.ReadList()
		if err != nil {
			return nil, err
		}
		l := make(List, sub.n)
		for i := range l {
			if l[i], err = d.value(&sub, depth); err != nil {
				return nil, err
			}
		}
		if err := sub.filled(); err != nil {
			return nil, err
		}
		return l, nil
	case CodeMap8, CodeMap32:
		sub, err := r.ReadMap()
		if err != nil {
			return nil, err
		}
		m := make(Map, sub.n/2)
		for i := range m {
			if m[i].Key, err = d.value(&sub, depth); err != nil {
				return nil, err
			}
			if m[i].Value, err = d.value(&sub, depth); err != nil {
				return nil, err
			}
		}
		if err := sub.filled(); err != nil {
			return nil, err
		}
		return m, nil
	case CodeArray8, CodeArray32:
		sub, err := r.ReadArray()
		if err != nil {
			return nil, err
		}
		a := Array{Code: sub.elem}
		if desc, ok := sub.ArrayDescriptor(); ok {
			a.Descriptor = desc.Value()
		}
		if minBodySize(sub.elem) == 0 {
			if d.budget -= sub.n; d.budget < 0 {
				return nil, r.errAt(r.off, "too many zero-width array elements for the input size")
			}
		}
		a.Values = make([]any, sub.n)
		for i := range a.Values {
			if sub.descEnd > sub.descOff {
				if _, err := sub.ReadDescriptor(); err != nil {
					return nil, err
				}
			}
			if a.Values[i], err = d.value(&sub, depth); err != nil {
				return nil, err
			}
		}
		if err := sub.filled(); err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, r.errAt(r.off, "undefined format code "+c.String())
}

// filled checks that a fully read compound used exactly its declared size.
func (r *Reader) filled() error {
	if r.off != len(r.buf) {
		return r.errAt(r.off, "compound size larger than its elements")
	}
	return nil
}

func checked[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
