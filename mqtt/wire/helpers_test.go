package wire

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Builders for annotated test vectors. Every vector in the tables is written
// field by field with these, so the bytes read like the spec's figures.

// cat concatenates fields.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// b is a run of literal bytes.
func b(v ...byte) []byte { return v }

// str is a UTF-8 Encoded String or Binary Data: two length bytes, then s.
func str(s string) []byte { return append(u16(uint16(len(s))), s...) }

// u16 is a Two Byte Integer.
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// u32 is a Four Byte Integer.
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// vbi is a minimal Variable Byte Integer.
func vbi(v int) []byte {
	var out []byte
	for {
		d := byte(v % 128)
		v /= 128
		if v > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if v == 0 {
			return out
		}
	}
}

// pk is a packet: the first byte, a computed Remaining Length, the fields.
func pk(first byte, fields ...[]byte) []byte {
	body := cat(fields...)
	return cat(b(first), vbi(len(body)), body)
}

// props is an MQTT 5 property list: its length, then the properties.
func props(ps ...[]byte) []byte {
	body := cat(ps...)
	return cat(vbi(len(body)), body)
}

// prop is one property: identifier and value.
func prop(id byte, value ...[]byte) []byte { return cat(b(id), cat(value...)) }

// hx parses "82 06 00 01" style hex.
func hx(s string) []byte {
	out, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return out
}

// Well-formed CONNECTs for each version, clean start, keep alive 60, id "c1".
var (
	connect3 = pk(0x10, str("MQIsdp"), b(3), b(0x02), u16(60), str("c1"))
	connect4 = pk(0x10, str("MQTT"), b(4), b(0x02), u16(60), str("c1"))
	connect5 = pk(0x10, str("MQTT"), b(5), b(0x02), u16(60), props(), str("c1"))
)

// crashSubscribe is the MQTT 5 SUBSCRIBE that panics mochi 2.7.9's
// SubscribeDecode: packet id 1, no properties, filter "t", and no options byte.
var crashSubscribe = hx("82 06 00 01 00 00 01 74")
