// Package encoding implements the AMQP 1.0 type system (OASIS AMQP 1.0 Part 1: Types): the 24
// primitive types and their 39 encodings, described types, and the compound list, map and array
// types. It has no network code and no goroutines; package frames builds performatives, SASL frames
// and message sections on top of it.
//
// # Wire format
//
// Every value starts with a constructor: a one-byte format code (AMQP 1.0 Part 1 §1.2), or 0x00
// followed by a descriptor value and a further constructor, which makes a described value (§1.2,
// §1.5). The code's high nibble gives its category and the width of what follows (§1.2.1–§1.2.4):
//
//	0x4_ fixed, 0 bytes   null 40, true 41, false 42, uint0 43, ulong0 44, list0 45
//	0x5_ fixed, 1 byte    ubyte 50, byte 51, smalluint 52, smallulong 53, smallint 54, smalllong 55, boolean 56
//	0x6_ fixed, 2 bytes   ushort 60, short 61
//	0x7_ fixed, 4 bytes   uint 70, int 71, float 72, char 73, decimal32 74
//	0x8_ fixed, 8 bytes   ulong 80, long 81, double 82, timestamp 83, decimal64 84
//	0x9_ fixed, 16 bytes  decimal128 94, uuid 98
//	0xa_ variable, 1-byte length   vbin8 a0, str8-utf8 a1, sym8 a3
//	0xb_ variable, 4-byte length   vbin32 b0, str32-utf8 b1, sym32 b3
//	0xc_ compound, 1-byte size and count   list8 c0, map8 c1
//	0xd_ compound, 4-byte size and count   list32 d0, map32 d1
//	0xe_ array, 1-byte size and count      array8 e0
//	0xf_ array, 4-byte size and count      array32 f0
//
// All multi-byte numbers are big-endian. A compound's size counts the bytes after the size field,
// including the count; a map's count is twice its number of entries (§1.6.23). An array has one
// element constructor after its count, then count bodies without constructors (§1.6.24); the
// constructor may be described, so arrays of described values share one descriptor.
//
// Composite types (performatives, outcomes, termini, message sections) are described lists whose
// elements are the fields in order; trailing null fields may be omitted (§1.4), and a standard
// descriptor may arrive as its ulong code (0x53 0x14) or its symbol ("amqp:transfer:list").
//
// # Encoding
//
// The Append functions append one value to a caller's buffer and choose the smallest legal encoding
// (uint0/smalluint/uint, str8/str32, list0/list8/list32 ...). Lists and maps are built in one pass
// with BeginList/BeginMap and a Compound that fixes up its header at the end (see Compound), which
// can also drop trailing null fields. AppendValue encodes the generic Go forms below.
//
// # Decoding
//
// A Reader walks a bounded []byte without copying. Typed methods accept every legal encoding of
// their type and nothing else; ReadDescriptor, ReadList, ReadMap and ReadArray enter structure;
// NextField separates an omitted field (Absent) from an encoded null; ReadMultiple reads the
// single-value-or-array form of multiple="true" fields; ReadValue decodes any value into its generic
// Go form. Errors are *DecodeError with the input offset, and Condition "amqp:decode-error".
//
// Decoding is defensive by construction: no method panics on any input; a size or count is checked
// against the bytes that remain before anything is sized by it (so a list claiming 2^31 elements in
// ten bytes fails before allocating); nesting is bounded by MaxDepth; arrays of zero-width elements
// (whose count is not bounded by their size) are bounded by the input length.
//
// # Generic values
//
//	null nil              boolean bool          ubyte..ulong uint8..uint64   byte..long int8..int64
//	float float32         double float64        decimal32/64/128 Decimal32/64/128 (opaque BID bytes)
//	char Char             timestamp Timestamp   uuid UUID                    binary []byte
//	string string         symbol Symbol         list List                    map Map (ordered pairs)
//	array Array           described Described
//
// A Described decoded by ReadValue keeps its original bytes in Raw, so described types this package
// does not interpret are relayed byte for byte.
//
// # Strictness
//
// Strings must be valid UTF-8 (§1.6.20) and symbols ASCII (§1.6.21); a boolean byte other than 0 or
// 1 and a char that is not a Unicode scalar value are rejected; descriptors must be ulong or symbol
// (§1.5). Map key uniqueness (§1.6.23) is not checked. Compounds decoded by ReadValue must be filled
// exactly by their elements; the typed sub-readers ignore bytes after the last element they read, so
// that fields added by later versions of a composite are skipped.
package encoding
