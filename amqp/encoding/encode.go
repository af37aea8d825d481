package encoding

import (
	"encoding/binary"
	"math"
)

// Encoders append one complete value (constructor and body) to b and return the extended slice,
// like strconv.AppendInt. Where a type has several encodings they pick the smallest one that holds
// the value; every choice is legal for any decoder (AMQP 1.0 Part 1 §1.2). They never fail; the
// caller must not pass strings, binaries or symbols longer than 2^32-1 bytes (they panic).

// AppendNull appends null (0x40). AMQP 1.0 Part 1 §1.6.1.
func AppendNull(b []byte) []byte { return append(b, byte(CodeNull)) }

// AppendBool appends true (0x41) or false (0x42). AMQP 1.0 Part 1 §1.6.2.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, byte(CodeTrue))
	}
	return append(b, byte(CodeFalse))
}

// AppendUbyte appends a ubyte (0x50). AMQP 1.0 Part 1 §1.6.3.
func AppendUbyte(b []byte, v uint8) []byte { return append(b, byte(CodeUbyte), v) }

// AppendUshort appends a ushort (0x60). AMQP 1.0 Part 1 §1.6.4.
func AppendUshort(b []byte, v uint16) []byte {
	return binary.BigEndian.AppendUint16(append(b, byte(CodeUshort)), v)
}

// AppendUint appends a uint as uint0 (0x43) for 0, smalluint (0x52) below 256, else uint (0x70).
// AMQP 1.0 Part 1 §1.6.5.
func AppendUint(b []byte, v uint32) []byte {
	switch {
	case v == 0:
		return append(b, byte(CodeUint0))
	case v < 256:
		return append(b, byte(CodeSmallUint), byte(v))
	}
	return binary.BigEndian.AppendUint32(append(b, byte(CodeUint)), v)
}

// AppendUlong appends a ulong as ulong0 (0x44) for 0, smallulong (0x53) below 256, else ulong (0x80).
// AMQP 1.0 Part 1 §1.6.6.
func AppendUlong(b []byte, v uint64) []byte {
	switch {
	case v == 0:
		return append(b, byte(CodeUlong0))
	case v < 256:
		return append(b, byte(CodeSmallUlong), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, byte(CodeUlong)), v)
}

// AppendByte appends an AMQP byte (signed, 0x51). AMQP 1.0 Part 1 §1.6.7.
func AppendByte(b []byte, v int8) []byte { return append(b, byte(CodeByte), byte(v)) }

// AppendShort appends a short (0x61). AMQP 1.0 Part 1 §1.6.8.
func AppendShort(b []byte, v int16) []byte {
	return binary.BigEndian.AppendUint16(append(b, byte(CodeShort)), uint16(v))
}

// AppendInt appends an int as smallint (0x54) within -128..127, else int (0x71). AMQP 1.0 Part 1 §1.6.9.
func AppendInt(b []byte, v int32) []byte {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		return append(b, byte(CodeSmallInt), byte(int8(v)))
	}
	return binary.BigEndian.AppendUint32(append(b, byte(CodeInt)), uint32(v))
}

// AppendLong appends a long as smalllong (0x55) within -128..127, else long (0x81). AMQP 1.0 Part 1 §1.6.10.
func AppendLong(b []byte, v int64) []byte {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		return append(b, byte(CodeSmallLong), byte(int8(v)))
	}
	return binary.BigEndian.AppendUint64(append(b, byte(CodeLong)), uint64(v))
}

// AppendFloat appends an IEEE 754 binary32 float (0x72), NaN payloads included. AMQP 1.0 Part 1 §1.6.11.
func AppendFloat(b []byte, v float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, byte(CodeFloat)), math.Float32bits(v))
}

// AppendDouble appends an IEEE 754 binary64 double (0x82). AMQP 1.0 Part 1 §1.6.12.
func AppendDouble(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, byte(CodeDouble)), math.Float64bits(v))
}

// AppendDecimal32 appends a decimal32 (0x74). AMQP 1.0 Part 1 §1.6.13.
func AppendDecimal32(b []byte, v Decimal32) []byte {
	return append(append(b, byte(CodeDecimal32)), v[:]...)
}

// AppendDecimal64 appends a decimal64 (0x84). AMQP 1.0 Part 1 §1.6.14.
func AppendDecimal64(b []byte, v Decimal64) []byte {
	return append(append(b, byte(CodeDecimal64)), v[:]...)
}

// AppendDecimal128 appends a decimal128 (0x94). AMQP 1.0 Part 1 §1.6.15.
func AppendDecimal128(b []byte, v Decimal128) []byte {
	return append(append(b, byte(CodeDecimal128)), v[:]...)
}

// AppendChar appends a char as UTF-32BE (0x73). AMQP 1.0 Part 1 §1.6.16. The caller must pass a valid
// Unicode scalar value; decoders reject surrogates and values above U+10FFFF.
func AppendChar(b []byte, v Char) []byte {
	return binary.BigEndian.AppendUint32(append(b, byte(CodeChar)), uint32(v))
}

// AppendTimestamp appends a timestamp in ms since the Unix epoch (0x83). AMQP 1.0 Part 1 §1.6.17.
func AppendTimestamp(b []byte, v Timestamp) []byte {
	return binary.BigEndian.AppendUint64(append(b, byte(CodeTimestamp)), uint64(v))
}

// AppendUUID appends a uuid (0x98). AMQP 1.0 Part 1 §1.6.18.
func AppendUUID(b []byte, v UUID) []byte { return append(append(b, byte(CodeUUID)), v[:]...) }

// AppendBinary appends binary data as vbin8 (0xa0) up to 255 bytes, else vbin32 (0xb0).
// AMQP 1.0 Part 1 §1.6.19.
func AppendBinary(b []byte, v []byte) []byte {
	return append(appendVarHeader(b, CodeVbin8, CodeVbin32, len(v)), v...)
}

// AppendString appends a UTF-8 string as str8-utf8 (0xa1) up to 255 bytes, else str32-utf8 (0xb1).
// AMQP 1.0 Part 1 §1.6.20. The caller must pass valid UTF-8: decoders reject anything else.
func AppendString(b []byte, v string) []byte {
	return append(appendVarHeader(b, CodeStr8, CodeStr32, len(v)), v...)
}

// AppendSymbol appends a symbol as sym8 (0xa3) up to 255 bytes, else sym32 (0xb3). AMQP 1.0 Part 1
// §1.6.21. The caller must pass ASCII: decoders reject other bytes.
func AppendSymbol(b []byte, v Symbol) []byte {
	return append(appendVarHeader(b, CodeSym8, CodeSym32, len(v)), v...)
}

func appendVarHeader(b []byte, c8, c32 Code, n int) []byte {
	if n <= math.MaxUint8 {
		return append(b, byte(c8), byte(n))
	}
	if uint64(n) > math.MaxUint32 {
		panic("amqp/encoding: variable-width value longer than 2^32-1 bytes")
	}
	return binary.BigEndian.AppendUint32(append(b, byte(c32)), uint32(n))
}

// AppendDescriptor appends the described-type constructor 0x00 and a numeric descriptor, as a
// smallulong when it fits (as every standard code does: 0x00 0x53 0x14 for transfer), else as ulong.
// ulong0 is never used so that descriptor 0 reads clearly. The value (typically a list) follows.
// AMQP 1.0 Part 1 §1.2, §1.5.
func AppendDescriptor(b []byte, code uint64) []byte {
	b = append(b, byte(CodeDescribed))
	if code < 256 {
		return append(b, byte(CodeSmallUlong), byte(code))
	}
	return binary.BigEndian.AppendUint64(append(b, byte(CodeUlong)), code)
}

// AppendSymbolicDescriptor appends 0x00 and a symbolic descriptor such as "amqp:open:list".
// AMQP 1.0 Part 1 §1.5.
func AppendSymbolicDescriptor(b []byte, name Symbol) []byte {
	return AppendSymbol(append(b, byte(CodeDescribed)), name)
}

// DomainCode builds the numeric descriptor of a spec-style "domain-id:descriptor-id" pair, for example
// DomainCode(0x468C, 4) for apache.org:selector-filter:string. AMQP 1.0 Part 1 §1.5.
func DomainCode(domain, id uint32) uint64 { return uint64(domain)<<32 | uint64(id) }
