package encoding

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of lists, maps, arrays and described values a Reader enters, so
// that hostile input cannot exhaust the stack of a recursive consumer.
const MaxDepth = 64

// zeroWidthAllowance is how many zero-width array elements (arrays of null, true, false, uint0,
// ulong0 or list0, AMQP 1.0 Part 1 §1.6.24) a decoder accepts beyond one per input byte. Such elements
// take no bytes, so their count is the only thing in the input that is not bounded by its length.
const zeroWidthAllowance = 1024

// Presence says what the next element of a list is, for composite fields. AMQP 1.0 Part 1 §1.4:
// trailing fields may be omitted, and null means "use the default"; the two are kept apart so a
// caller can tell a peer that omitted a field from one that sent null.
type Presence uint8

const (
	Absent  Presence = iota // past the end of the list: the field was omitted
	Null                    // an encoded null, already consumed
	Present                 // a non-null value, not consumed
)

func (p Presence) String() string {
	switch p {
	case Absent:
		return "absent"
	case Null:
		return "null"
	case Present:
		return "present"
	}
	return "presence(?)"
}

// Descriptor is the descriptor of a described value as read by Reader.ReadDescriptor: a ulong or a
// symbol (AMQP 1.0 Part 1 §1.5). Name aliases the input, like ReadSymbolBytes.
type Descriptor struct {
	Code uint64 // the numeric descriptor; 0 when Symbolic
	Name []byte // the symbolic descriptor; nil when numeric
}

// Symbolic reports whether the descriptor was a symbol.
func (d Descriptor) Symbolic() bool { return d.Name != nil }

// Is reports whether d is the numeric code or the symbolic name, the two spellings every standard
// descriptor has (0x14 and "amqp:transfer:list"); decoders must accept both. AMQP 1.0 Part 1 §1.5.
func (d Descriptor) Is(code uint64, name string) bool {
	if d.Name != nil {
		return string(d.Name) == name
	}
	return d.Code == code
}

// Value returns the descriptor in its generic form: uint64 or Symbol (allocates for a Symbol).
func (d Descriptor) Value() any {
	if d.Name != nil {
		return Symbol(d.Name)
	}
	return d.Code
}

// Reader decodes AMQP values from a bounded byte slice without copying it. The zero value reads
// nothing; NewReader reads a byte stream; ReadList, ReadMap, ReadArray and ReadMultiple return
// sub-readers bounded to one compound value that count its elements.
//
// Every Read method checks the constructor and accepts every legal encoding of its type (ReadUint
// takes uint0, smalluint and uint). A method that fails leaves the Reader where it was, so a caller
// may PeekCode, or try another type. Slices returned by the *Bytes methods, ReadBinary, ReadRaw,
// Rest and Descriptor.Name alias the input: they are valid only while the input is not modified,
// and must be copied before they are kept beyond that. Readers are small values: copy them freely,
// keep them on the stack; no method allocates except ReadString, ReadSymbol, ReadValue and errors.
type Reader struct {
	buf   []byte
	off   int // next unread byte in buf
	base  int // offset of buf[0] in the input given to NewReader, for errors
	n     int // values left in this compound; -1 for a stream reader (bounded by bytes only)
	depth int

	// Array sub-readers: elements carry no constructor; elem is the shared one (never 0x00),
	// buf[descOff:descEnd] its descriptor when the elements are described.
	elem             Code
	descOff, descEnd int
	descRead         bool // the current element's descriptor has been read
}

// NewReader returns a stream Reader over b: it reads values one after another until b is exhausted.
func NewReader(b []byte) Reader { return Reader{buf: b, n: -1} }

// Len returns the number of values left in a compound sub-reader (for a map, keys and values count
// separately), or -1 for a stream reader.
func (r *Reader) Len() int { return r.n }

// More reports whether a value is left to read: the element count is not exhausted (sub-readers)
// or bytes remain (stream readers).
func (r *Reader) More() bool {
	if r.n >= 0 {
		return r.n > 0
	}
	return r.off < len(r.buf)
}

// Offset returns the offset of the next value in the input given to NewReader.
func (r *Reader) Offset() int { return r.base + r.off }

// Rest returns the unread bytes (aliasing the input). After a frame body's performative, this is the
// transfer payload.
func (r *Reader) Rest() []byte { return r.buf[r.off:len(r.buf):len(r.buf)] }

// ArrayCode returns the element code of an array sub-reader, 0 for other readers.
func (r *Reader) ArrayCode() Code { return r.elem }

// ArrayDescriptor returns the shared descriptor of an array of described elements; ok is false when
// r is not such an array.
func (r *Reader) ArrayDescriptor() (d Descriptor, ok bool) {
	if r.descEnd <= r.descOff {
		return Descriptor{}, false
	}
	d, _, err := parseDescriptor(r.buf, r.descOff, r.base)
	return d, err == nil
}

func (r *Reader) errAt(off int, msg string) error {
	return &DecodeError{Offset: r.base + off, Msg: msg}
}

func (r *Reader) truncated() error {
	return r.errAt(r.off, "unexpected end of input")
}

func (r *Reader) mismatch(want string, got Code) error {
	return r.errAt(r.off, "expected "+want+", got "+got.String())
}

// head returns the code of the next value and where its body starts, consuming nothing.
func (r *Reader) head() (Code, int, error) {
	if r.n == 0 {
		return 0, 0, r.errAt(r.off, "value absent: no elements left")
	}
	if r.elem != 0 {
		if r.descEnd > r.descOff && !r.descRead {
			return CodeDescribed, r.off, nil
		}
		return r.elem, r.off, nil
	}
	if r.off >= len(r.buf) {
		return 0, 0, r.truncated()
	}
	return Code(r.buf[r.off]), r.off + 1, nil
}

// done consumes one value ending at end.
func (r *Reader) done(end int) {
	r.off = end
	if r.n > 0 {
		r.n--
	}
	r.descRead = false
}

// fixed returns the w body bytes at p.
func (r *Reader) fixed(p, w int) ([]byte, error) {
	if p+w > len(r.buf) {
		return nil, r.truncated()
	}
	return r.buf[p : p+w : p+w], nil
}

// PeekCode returns the constructor of the next value without consuming it: CodeDescribed for a
// described value (also for the elements of an array of described values until ReadDescriptor).
func (r *Reader) PeekCode() (Code, error) {
	c, _, err := r.head()
	return c, err
}

// NextField reports whether the next element of a composite's list is Absent (omitted: the list
// ended), Null (consumed) or Present (left for a typed Read). AMQP 1.0 Part 1 §1.4. A stream reader
// at the end of its input reports Absent.
func (r *Reader) NextField() (Presence, error) {
	if r.n == 0 || (r.n < 0 && r.off >= len(r.buf)) {
		return Absent, nil
	}
	c, p, err := r.head()
	if err != nil {
		return Absent, err
	}
	if c == CodeNull {
		r.done(p)
		return Null, nil
	}
	return Present, nil
}

// ReadNull reads a null. AMQP 1.0 Part 1 §1.6.1.
func (r *Reader) ReadNull() error {
	c, p, err := r.head()
	if err != nil {
		return err
	}
	if c != CodeNull {
		return r.mismatch("null", c)
	}
	r.done(p)
	return nil
}

// ReadBool reads a boolean encoded as true (0x41), false (0x42) or 0x56 with a byte 0x00 or 0x01;
// other bytes are rejected. AMQP 1.0 Part 1 §1.6.2.
func (r *Reader) ReadBool() (bool, error) {
	c, p, err := r.head()
	if err != nil {
		return false, err
	}
	switch c {
	case CodeTrue:
		r.done(p)
		return true, nil
	case CodeFalse:
		r.done(p)
		return false, nil
	case CodeBool:
		v, err := r.fixed(p, 1)
		if err != nil {
			return false, err
		}
		if v[0] > 1 {
			return false, r.errAt(p, "boolean byte must be 0x00 or 0x01")
		}
		r.done(p + 1)
		return v[0] == 1, nil
	}
	return false, r.mismatch("boolean", c)
}

// ReadUbyte reads a ubyte (0x50). AMQP 1.0 Part 1 §1.6.3.
func (r *Reader) ReadUbyte() (uint8, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	if c != CodeUbyte {
		return 0, r.mismatch("ubyte", c)
	}
	v, err := r.fixed(p, 1)
	if err != nil {
		return 0, err
	}
	r.done(p + 1)
	return v[0], nil
}

// ReadUshort reads a ushort (0x60). AMQP 1.0 Part 1 §1.6.4.
func (r *Reader) ReadUshort() (uint16, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	if c != CodeUshort {
		return 0, r.mismatch("ushort", c)
	}
	v, err := r.fixed(p, 2)
	if err != nil {
		return 0, err
	}
	r.done(p + 2)
	return binary.BigEndian.Uint16(v), nil
}

// ReadUint reads a uint encoded as uint0 (0x43), smalluint (0x52) or uint (0x70). AMQP 1.0 Part 1 §1.6.5.
func (r *Reader) ReadUint() (uint32, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	switch c {
	case CodeUint0:
		r.done(p)
		return 0, nil
	case CodeSmallUint:
		v, err := r.fixed(p, 1)
		if err != nil {
			return 0, err
		}
		r.done(p + 1)
		return uint32(v[0]), nil
	case CodeUint:
		v, err := r.fixed(p, 4)
		if err != nil {
			return 0, err
		}
		r.done(p + 4)
		return binary.BigEndian.Uint32(v), nil
	}
	return 0, r.mismatch("uint", c)
}

// ReadUlong reads a ulong encoded as ulong0 (0x44), smallulong (0x53) or ulong (0x80).
// AMQP 1.0 Part 1 §1.6.6.
func (r *Reader) ReadUlong() (uint64, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	switch c {
	case CodeUlong0:
		r.done(p)
		return 0, nil
	case CodeSmallUlong:
		v, err := r.fixed(p, 1)
		if err != nil {
			return 0, err
		}
		r.done(p + 1)
		return uint64(v[0]), nil
	case CodeUlong:
		v, err := r.fixed(p, 8)
		if err != nil {
			return 0, err
		}
		r.done(p + 8)
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, r.mismatch("ulong", c)
}

// ReadInt8 reads an AMQP byte (signed, 0x51). (Not named ReadByte, which Go reserves for io.ByteReader.)
// AMQP 1.0 Part 1 §1.6.7.
func (r *Reader) ReadInt8() (int8, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	if c != CodeByte {
		return 0, r.mismatch("byte", c)
	}
	v, err := r.fixed(p, 1)
	if err != nil {
		return 0, err
	}
	r.done(p + 1)
	return int8(v[0]), nil
}

// ReadShort reads a short (0x61). AMQP 1.0 Part 1 §1.6.8.
func (r *Reader) ReadShort() (int16, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	if c != CodeShort {
		return 0, r.mismatch("short", c)
	}
	v, err := r.fixed(p, 2)
	if err != nil {
		return 0, err
	}
	r.done(p + 2)
	return int16(binary.BigEndian.Uint16(v)), nil
}

// ReadInt reads an int encoded as smallint (0x54, sign-extended) or int (0x71). AMQP 1.0 Part 1 §1.6.9.
func (r *Reader) ReadInt() (int32, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	switch c {
	case CodeSmallInt:
		v, err := r.fixed(p, 1)
		if err != nil {
			return 0, err
		}
		r.done(p + 1)
		return int32(int8(v[0])), nil
	case CodeInt:
		v, err := r.fixed(p, 4)
		if err != nil {
			return 0, err
		}
		r.done(p + 4)
		return int32(binary.BigEndian.Uint32(v)), nil
	}
	return 0, r.mismatch("int", c)
}

// ReadLong reads a long encoded as smalllong (0x55, sign-extended) or long (0x81). AMQP 1.0 Part 1 §1.6.10.
func (r *Reader) ReadLong() (int64, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	switch c {
	case CodeSmallLong:
		v, err := r.fixed(p, 1)
		if err != nil {
			return 0, err
		}
		r.done(p + 1)
		return int64(int8(v[0])), nil
	case CodeLong:
		v, err := r.fixed(p, 8)
		if err != nil {
			return 0, err
		}
		r.done(p + 8)
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	return 0, r.mismatch("long", c)
}

// readFixed reads a value whose type has the single fixed-width code c.
func (r *Reader) readFixed(c Code, want string, w int) ([]byte, error) {
	got, p, err := r.head()
	if err != nil {
		return nil, err
	}
	if got != c {
		return nil, r.mismatch(want, got)
	}
	v, err := r.fixed(p, w)
	if err != nil {
		return nil, err
	}
	r.done(p + w)
	return v, nil
}

// ReadFloat reads a float (0x72). AMQP 1.0 Part 1 §1.6.11.
func (r *Reader) ReadFloat() (float32, error) {
	v, err := r.readFixed(CodeFloat, "float", 4)
	if err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.BigEndian.Uint32(v)), nil
}

// ReadDouble reads a double (0x82). AMQP 1.0 Part 1 §1.6.12.
func (r *Reader) ReadDouble() (float64, error) {
	v, err := r.readFixed(CodeDouble, "double", 8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
}

// ReadDecimal32 reads a decimal32 (0x74). AMQP 1.0 Part 1 §1.6.13.
func (r *Reader) ReadDecimal32() (Decimal32, error) {
	v, err := r.readFixed(CodeDecimal32, "decimal32", 4)
	if err != nil {
		return Decimal32{}, err
	}
	return Decimal32(v), nil
}

// ReadDecimal64 reads a decimal64 (0x84). AMQP 1.0 Part 1 §1.6.14.
func (r *Reader) ReadDecimal64() (Decimal64, error) {
	v, err := r.readFixed(CodeDecimal64, "decimal64", 8)
	if err != nil {
		return Decimal64{}, err
	}
	return Decimal64(v), nil
}

// ReadDecimal128 reads a decimal128 (0x94). AMQP 1.0 Part 1 §1.6.15.
func (r *Reader) ReadDecimal128() (Decimal128, error) {
	v, err := r.readFixed(CodeDecimal128, "decimal128", 16)
	if err != nil {
		return Decimal128{}, err
	}
	return Decimal128(v), nil
}

// ReadChar reads a char (0x73, UTF-32BE); surrogates and values above U+10FFFF are rejected.
// AMQP 1.0 Part 1 §1.6.16.
func (r *Reader) ReadChar() (Char, error) {
	save := *r
	v, err := r.readFixed(CodeChar, "char", 4)
	if err != nil {
		return 0, err
	}
	u := binary.BigEndian.Uint32(v)
	if u > utf8.MaxRune || !utf8.ValidRune(rune(u)) {
		*r = save
		return 0, r.errAt(r.off, "char is not a Unicode scalar value")
	}
	return Char(u), nil
}

// ReadTimestamp reads a timestamp (0x83). AMQP 1.0 Part 1 §1.6.17.
func (r *Reader) ReadTimestamp() (Timestamp, error) {
	v, err := r.readFixed(CodeTimestamp, "timestamp", 8)
	if err != nil {
		return 0, err
	}
	return Timestamp(binary.BigEndian.Uint64(v)), nil
}

// ReadUUID reads a uuid (0x98). AMQP 1.0 Part 1 §1.6.18.
func (r *Reader) ReadUUID() (UUID, error) {
	v, err := r.readFixed(CodeUUID, "uuid", 16)
	if err != nil {
		return UUID{}, err
	}
	return UUID(v), nil
}

// variable reads a variable-width value whose type has codes c8 and c32 and returns its bytes.
func (r *Reader) variable(c8, c32 Code, want string) ([]byte, int, error) {
	c, p, err := r.head()
	if err != nil {
		return nil, 0, err
	}
	var n, start int
	switch c {
	case c8:
		if p+1 > len(r.buf) {
			return nil, 0, r.truncated()
		}
		n, start = int(r.buf[p]), p+1
	case c32:
		if p+4 > len(r.buf) {
			return nil, 0, r.truncated()
		}
		n64 := uint64(binary.BigEndian.Uint32(r.buf[p:]))
		if n64 > uint64(len(r.buf)-(p+4)) {
			return nil, 0, r.truncated()
		}
		n, start = int(n64), p+4
	default:
		return nil, 0, r.mismatch(want, c)
	}
	if n > len(r.buf)-start {
		return nil, 0, r.truncated()
	}
	return r.buf[start : start+n : start+n], start + n, nil
}

// ReadBinary reads binary data (vbin8 0xa0 or vbin32 0xb0) and returns it aliasing the input, without
// copying. AMQP 1.0 Part 1 §1.6.19.
func (r *Reader) ReadBinary() ([]byte, error) {
	v, end, err := r.variable(CodeVbin8, CodeVbin32, "binary")
	if err != nil {
		return nil, err
	}
	r.done(end)
	return v, nil
}

// ReadStringBytes reads a string (str8-utf8 0xa1 or str32-utf8 0xb1), checks it is valid UTF-8, and
// returns its bytes aliasing the input. AMQP 1.0 Part 1 §1.6.20.
func (r *Reader) ReadStringBytes() ([]byte, error) {
	v, end, err := r.variable(CodeStr8, CodeStr32, "string")
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(v) {
		return nil, r.errAt(r.off, "string is not valid UTF-8")
	}
	r.done(end)
	return v, nil
}

// ReadString is ReadStringBytes returning a (copied) Go string.
func (r *Reader) ReadString() (string, error) {
	v, err := r.ReadStringBytes()
	return string(v), err
}

// ReadSymbolBytes reads a symbol (sym8 0xa3 or sym32 0xb3), checks it is ASCII, and returns its bytes
// aliasing the input. AMQP 1.0 Part 1 §1.6.21.
func (r *Reader) ReadSymbolBytes() ([]byte, error) {
	v, end, err := r.variable(CodeSym8, CodeSym32, "symbol")
	if err != nil {
		return nil, err
	}
	if !isASCII(v) {
		return nil, r.errAt(r.off, "symbol is not ASCII")
	}
	r.done(end)
	return v, nil
}

// ReadSymbol is ReadSymbolBytes returning a (copied) Symbol.
func (r *Reader) ReadSymbol() (Symbol, error) {
	v, err := r.ReadSymbolBytes()
	return Symbol(v), err
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// parseDescriptor parses a descriptor value (ulong or symbol, AMQP 1.0 Part 1 §1.5) at buf[off] and
// returns where it ends.
func parseDescriptor(buf []byte, off, base int) (Descriptor, int, error) {
	d := Reader{buf: buf, off: off, base: base, n: -1}
	c, _, err := d.head()
	if err != nil {
		return Descriptor{}, 0, err
	}
	switch c {
	case CodeUlong0, CodeSmallUlong, CodeUlong:
		v, err := d.ReadUlong()
		if err != nil {
			return Descriptor{}, 0, err
		}
		return Descriptor{Code: v}, d.off, nil
	case CodeSym8, CodeSym32:
		v, err := d.ReadSymbolBytes()
		if err != nil {
			return Descriptor{}, 0, err
		}
		return Descriptor{Name: v}, d.off, nil
	}
	return Descriptor{}, 0, d.errAt(off, "descriptor must be a ulong or a symbol, got "+c.String())
}

// ReadDescriptor reads the 0x00 constructor and the descriptor of a described value, leaving the
// described value itself to be read next (typically with ReadList). AMQP 1.0 Part 1 §1.2, §1.5.
// In an array of described elements it returns the shared descriptor for the current element.
func (r *Reader) ReadDescriptor() (Descriptor, error) {
	c, p, err := r.head()
	if err != nil {
		return Descriptor{}, err
	}
	if c != CodeDescribed {
		return Descriptor{}, r.mismatch("described value", c)
	}
	if r.elem != 0 {
		d, _, err := parseDescriptor(r.buf, r.descOff, r.base)
		if err != nil {
			return Descriptor{}, err
		}
		r.descRead = true
		return d, nil
	}
	if r.depth >= MaxDepth {
		return Descriptor{}, r.errAt(r.off, "nesting deeper than MaxDepth")
	}
	d, end, err := parseDescriptor(r.buf, p, r.base)
	if err != nil {
		return Descriptor{}, err
	}
	r.off = end // the value that follows is this one's element: no count change
	return d, nil
}

// compound parses the size and count of a list, map or array body at p and checks them against
// the bytes available. AMQP 1.0 Part 1 §1.2.3, §1.2.4.
func (r *Reader) compound(c Code, p int) (start, end, count int, err error) {
	w := sizeWidth(c)
	if p+w > len(r.buf) {
		return 0, 0, 0, r.truncated()
	}
	var size uint64
	if w == 1 {
		size = uint64(r.buf[p])
	} else {
		size = uint64(binary.BigEndian.Uint32(r.buf[p:]))
	}
	if size > uint64(len(r.buf)-(p+w)) {
		return 0, 0, 0, r.truncated()
	}
	if size < uint64(w) {
		return 0, 0, 0, r.errAt(r.off, c.String()+" size smaller than its count field")
	}
	end = p + w + int(size)
	start = p + 2*w
	var n uint64
	if w == 1 {
		n = uint64(r.buf[p+1])
	} else {
		n = uint64(binary.BigEndian.Uint32(r.buf[p+w:]))
	}
	if r.depth >= MaxDepth {
		return 0, 0, 0, r.errAt(r.off, "nesting deeper than MaxDepth")
	}
	return start, end, int(n), nil
}

func (r *Reader) listOrMap(want string, isMap bool) (Reader, error) {
	c, p, err := r.head()
	if err != nil {
		return Reader{}, err
	}
	switch {
	case c == CodeList0 && !isMap:
		r.done(p)
		return Reader{buf: r.buf[p:p:p], base: r.base + p, depth: r.depth + 1}, nil
	case !isMap && (c == CodeList8 || c == CodeList32), isMap && (c == CodeMap8 || c == CodeMap32):
		start, end, n, err := r.compound(c, p)
		if err != nil {
			return Reader{}, err
		}
		// Every element needs at least its constructor byte: a count beyond the bytes is a lie,
		// caught before anyone sizes a slice by it.
		if n > end-start {
			return Reader{}, r.errAt(r.off, c.String()+" count exceeds its size")
		}
		if isMap && n%2 != 0 { // AMQP 1.0 Part 1 §1.6.23: keys and values alternate
			return Reader{}, r.errAt(r.off, "map with an odd number of elements")
		}
		r.done(end)
		return Reader{buf: r.buf[start:end:end], base: r.base + start, n: n, depth: r.depth + 1}, nil
	}
	return Reader{}, r.mismatch(want, c)
}

// ReadList enters a list (list0 0x45, list8 0xc0, list32 0xd0) and returns a sub-reader over its
// elements; Len gives the count, NextField tells absent from null. The Reader moves past the whole
// list at once: unread elements are skipped. AMQP 1.0 Part 1 §1.6.22.
func (r *Reader) ReadList() (Reader, error) {
	return r.listOrMap("list", false)
}

// ReadMap enters a map (map8 0xc1, map32 0xd1) and returns a sub-reader over its keys and values
// in wire order: key, value, key, value. Len counts both. AMQP 1.0 Part 1 §1.6.23.
func (r *Reader) ReadMap() (Reader, error) {
	return r.listOrMap("map", true)
}

// ReadArray enters an array (array8 0xe0, array32 0xf0) and returns a sub-reader over its elements,
// which it reads through the shared element constructor (ArrayCode, ArrayDescriptor): the same typed
// Read methods work on it. An element constructor that is itself described is supported one level
// deep (0x00 descriptor code); deeper chains are rejected. AMQP 1.0 Part 1 §1.6.24.
func (r *Reader) ReadArray() (Reader, error) {
	c, p, err := r.head()
	if err != nil {
		return Reader{}, err
	}
	if c != CodeArray8 && c != CodeArray32 {
		return Reader{}, r.mismatch("array", c)
	}
	start, end, n, err := r.compound(c, p)
	if err != nil {
		return Reader{}, err
	}
	if start >= end {
		return Reader{}, r.errAt(r.off, "array without an element constructor")
	}
	sub := Reader{buf: r.buf[start:end:end], base: r.base + start, n: n, depth: r.depth + 1}
	q := 0
	if Code(sub.buf[0]) == CodeDescribed {
		_, dend, err := parseDescriptor(sub.buf, 1, sub.base)
		if err != nil {
			return Reader{}, err
		}
		sub.descOff, sub.descEnd, q = 1, dend, dend
	}
	if q >= len(sub.buf) {
		return Reader{}, sub.errAt(q, "array without an element constructor")
	}
	ec := Code(sub.buf[q])
	if !ec.Valid() {
		if ec == CodeDescribed {
			return Reader{}, sub.errAt(q, "array element constructor described more than once")
		}
		return Reader{}, sub.errAt(q, "array element constructor "+ec.String()+" is not a type code")
	}
	sub.elem, sub.off = ec, q+1
	// Bound the count by the bytes before trusting it. Zero-width elements take no bytes; allow a
	// count proportional to the enclosing input instead, so iterating stays bounded too.
	if m := minBodySize(ec); m > 0 {
		if uint64(n) > uint64(len(sub.buf)-sub.off)/uint64(m) {
			return Reader{}, r.errAt(r.off, c.String()+" count exceeds its size")
		}
	} else if n > len(r.buf)+zeroWidthAllowance {
		return Reader{}, r.errAt(r.off, c.String()+" of zero-width elements with a count beyond the input size")
	}
	r.done(end)
	return sub, nil
}

// ReadMultiple reads a field declared multiple="true" (AMQP 1.0 Part 1 §1.4): null, absence, a
// single value or an array of values. It returns a sub-reader over 0, 1 or n elements that the typed
// Read methods consume the same way in every case.
func (r *Reader) ReadMultiple() (Reader, error) {
	if r.n == 0 || (r.n < 0 && r.off >= len(r.buf)) {
		return Reader{n: 0, base: r.base + r.off, depth: r.depth + 1}, nil
	}
	c, p, err := r.head()
	if err != nil {
		return Reader{}, err
	}
	switch c {
	case CodeNull:
		r.done(p)
		return Reader{n: 0, base: r.base + r.off, depth: r.depth + 1}, nil
	case CodeArray8, CodeArray32:
		return r.ReadArray()
	}
	end, err := r.valueEnd(0)
	if err != nil {
		return Reader{}, err
	}
	sub := *r
	sub.buf, sub.n = r.buf[:end:end], 1
	r.done(end)
	return sub, nil
}

// valueEnd returns where the next value ends, checking only sizes (not contents).
func (r *Reader) valueEnd(depth int) (int, error) {
	c, p, err := r.head()
	if err != nil {
		return 0, err
	}
	if c == CodeDescribed {
		if r.elem != 0 { // the shared descriptor is not in the element's bytes
			return r.bodyEnd(r.elem, p)
		}
		if r.depth+depth >= MaxDepth {
			return 0, r.errAt(r.off, "nesting deeper than MaxDepth")
		}
		_, dend, err := parseDescriptor(r.buf, p, r.base)
		if err != nil {
			return 0, err
		}
		inner := *r
		inner.off = dend
		return inner.valueEnd(depth + 1)
	}
	return r.bodyEnd(c, p)
}

// bodyEnd returns where the body of a value with code c starting at p ends.
func (r *Reader) bodyEnd(c Code, p int) (int, error) {
	if w := fixedWidth(c); w >= 0 {
		if p+w > len(r.buf) {
			return 0, r.truncated()
		}
		return p + w, nil
	}
	w := sizeWidth(c)
	if w < 0 {
		return 0, r.errAt(r.off, "undefined format code "+c.String())
	}
	if p+w > len(r.buf) {
		return 0, r.truncated()
	}
	var size uint64
	if w == 1 {
		size = uint64(r.buf[p])
	} else {
		size = uint64(binary.BigEndian.Uint32(r.buf[p:]))
	}
	if size > uint64(len(r.buf)-(p+w)) {
		return 0, r.truncated()
	}
	if c >= CodeList8 && size < uint64(w) { // compounds and arrays hold at least their count
		return 0, r.errAt(r.off, c.String()+" size smaller than its count field")
	}
	return p + w + int(size), nil
}

// Skip consumes the next value, whatever its type, checking only that its sizes fit the input.
func (r *Reader) Skip() error {
	end, err := r.valueEnd(0)
	if err != nil {
		return err
	}
	r.done(end)
	return nil
}

// ReadRaw consumes the next value and returns its complete encoding (constructor included, aliasing
// the input), checking only its sizes; for keeping a field to decode later or relay unchanged.
// Array elements have no constructor of their own, so ReadRaw on an array sub-reader fails.
func (r *Reader) ReadRaw() ([]byte, error) {
	if r.elem != 0 {
		return nil, r.errAt(r.off, "array elements have no standalone encoding")
	}
	start := r.off
	end, err := r.valueEnd(0)
	if err != nil {
		return nil, err
	}
	r.done(end)
	return r.buf[start:end:end], nil
}
