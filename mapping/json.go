package mapping

import (
	"encoding/base64"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// AppendJSON appends the JSON form (RFC 8259) of a generic AMQP value (the forms ReadValue
// produces) to b. The mapping keeps every value readable and, except where noted, lossless:
//
//	null                        null
//	boolean                     true / false
//	ubyte … ulong, byte … long  a number, all digits (beyond 2^53 JavaScript readers round)
//	float, double               a number in the shortest form that reads back the same;
//	                            NaN and ±Inf, which JSON lacks, as "NaN", "Infinity", "-Infinity"
//	decimal32/64/128            a number in IEEE 754 to-scientific-string form ("123.45",
//	                            "1.5E+10"); NaN and infinities as strings as for floats
//	char                        a one-character string
//	timestamp                   an RFC 3339 UTC string with milliseconds
//	                            ("2024-05-01T12:00:00.000Z"); outside years 0–9999, the number
//	                            of milliseconds since the epoch
//	uuid                        a string, 8-4-4-4-12 lowercase hex
//	binary                      a string, standard base64 with padding (RFC 4648 §4)
//	string, symbol              a string
//	list, array                 an array
//	map                         an object when every key is a string or a symbol (in wire order;
//	                            a repeated key is written twice, as received); otherwise, so that
//	                            no key is lost or merged, an array of [key, value] pairs
//	described value             {"descriptor": code or symbol, "value": …}; an array of described
//	                            elements is an array of such objects
func AppendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case int8:
		return strconv.AppendInt(b, int64(x), 10)
	case int16:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float32:
		return appendJSONFloat(b, float64(x), 32)
	case float64:
		return appendJSONFloat(b, x, 64)
	case encoding.Decimal32:
		return appendJSONDecimal(b, x[:], decimal32)
	case encoding.Decimal64:
		return appendJSONDecimal(b, x[:], decimal64)
	case encoding.Decimal128:
		return appendJSONDecimal(b, x[:], decimal128)
	case encoding.Char:
		return appendJSONString(b, string(rune(x)))
	case encoding.Timestamp:
		if t, ok := appendTimestamp(nil, x); ok {
			return appendJSONString(b, string(t))
		}
		return strconv.AppendInt(b, int64(x), 10)
	case encoding.UUID:
		return appendJSONString(b, x.String())
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"')
	case string:
		return appendJSONString(b, x)
	case encoding.Symbol:
		return appendJSONString(b, string(x))
	case encoding.List:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSON(b, e)
		}
		return append(b, ']')
	case encoding.Array:
		b = append(b, '[')
		for i, e := range x.Values {
			if i > 0 {
				b = append(b, ',')
			}
			if x.Descriptor != nil {
				b = appendJSONDescribed(b, x.Descriptor, e)
			} else {
				b = AppendJSON(b, e)
			}
		}
		return append(b, ']')
	case encoding.Map:
		return appendJSONMap(b, x)
	case encoding.Described:
		return appendJSONDescribed(b, x.Descriptor, x.Value)
	case *encoding.Described:
		return appendJSONDescribed(b, x.Descriptor, x.Value)
	}
	// Not a form ReadValue produces; null keeps the document well formed.
	return append(b, "null"...)
}

// appendSequenceJSON writes the amqp-sequence sections of a body as one array: like data
// sections, several sections are parts of one body.
func appendSequenceJSON(b []byte, seq []encoding.List) []byte {
	b = append(b, '[')
	first := true
	for _, l := range seq {
		for _, e := range l {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = AppendJSON(b, e)
		}
	}
	return append(b, ']')
}

func appendJSONMap(b []byte, m encoding.Map) []byte {
	object := true
	for _, e := range m {
		switch e.Key.(type) {
		case string, encoding.Symbol:
		default:
			object = false
		}
	}
	if !object {
		b = append(b, '[')
		for i, e := range m {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = AppendJSON(b, e.Key)
			b = append(b, ',')
			b = AppendJSON(b, e.Value)
			b = append(b, ']')
		}
		return append(b, ']')
	}
	b = append(b, '{')
	for i, e := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSON(b, e.Key)
		b = append(b, ':')
		b = AppendJSON(b, e.Value)
	}
	return append(b, '}')
}

func appendJSONDescribed(b []byte, d, v any) []byte {
	b = append(b, `{"descriptor":`...)
	b = AppendJSON(b, d)
	b = append(b, `,"value":`...)
	b = AppendJSON(b, v)
	return append(b, '}')
}

func appendJSONFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendJSONString writes s as a JSON string (RFC 8259 §7): quote, backslash and control
// characters escaped; invalid UTF-8 (which decoded AMQP strings never hold) becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// appendTimestamp writes an AMQP timestamp as RFC 3339 UTC with milliseconds; false outside the
// years RFC 3339 can write (0000–9999).
func appendTimestamp(b []byte, ts encoding.Timestamp) ([]byte, bool) {
	t := time.UnixMilli(int64(ts)).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	return t.AppendFormat(b, "2006-01-02T15:04:05.000Z"), true
}

// Decimal formats of IEEE 754-2008 in the binary integer decimal (BID) encoding that AMQP uses
// (AMQP 1.0 Part 1 §1.6.13–§1.6.15).
type decimalFormat struct {
	bits      int // 32, 64, 128
	expBits   int // exponent width
	bias      int
	maxDigits int // coefficient digits: larger coefficients are non-canonical and read as 0
}

var (
	decimal32  = decimalFormat{bits: 32, expBits: 8, bias: 101, maxDigits: 7}
	decimal64  = decimalFormat{bits: 64, expBits: 10, bias: 398, maxDigits: 16}
	decimal128 = decimalFormat{bits: 128, expBits: 14, bias: 6176, maxDigits: 34}
)

func appendJSONDecimal(b []byte, raw []byte, f decimalFormat) []byte {
	s := appendDecimal(nil, raw, f)
	if s[len(s)-1] == 'N' || s[len(s)-1] == 'y' { // NaN, Infinity
		return appendJSONString(b, string(s))
	}
	return append(b, s...)
}

// appendDecimal writes a BID decimal in the to-scientific-string form of the General Decimal
// Arithmetic specification, which is also a JSON number: "123.45", "-0.001", "1.5E+10", "0.00000";
// and "NaN", "Infinity", "-Infinity".
func appendDecimal(b []byte, raw []byte, f decimalFormat) []byte {
	v := new(big.Int).SetBytes(raw) // big-endian, as on the wire
	n := f.bits
	bit := func(i int) uint { return v.Bit(n - 1 - i) } // i = 0 is the sign bit
	neg := bit(0) == 1
	if neg {
		b = append(b, '-')
	}
	// Combination field: 11110 is infinity, 11111 NaN (IEEE 754-2008 §3.5.2).
	if bit(1) == 1 && bit(2) == 1 && bit(3) == 1 && bit(4) == 1 {
		if bit(5) == 1 {
			if neg {
				b = b[:len(b)-1] // NaN has no sign worth showing
			}
			return append(b, "NaN"...)
		}
		return append(b, "Infinity"...)
	}
	field := func(from, width int) *big.Int { // bits from..from+width-1, counted from the sign
		x := new(big.Int).Rsh(v, uint(n-from-width))
		return x.And(x, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(width)), big.NewInt(1)))
	}
	var exp int
	var coef *big.Int
	if bit(1) == 1 && bit(2) == 1 {
		// 11 ee…e ccc…: the coefficient is 100 followed by the remaining bits.
		exp = int(field(3, f.expBits).Int64())
		rest := n - 3 - f.expBits
		coef = field(3+f.expBits, rest)
		coef.Or(coef, new(big.Int).Lsh(big.NewInt(4), uint(rest)))
	} else {
		exp = int(field(1, f.expBits).Int64())
		coef = field(1+f.expBits, n-1-f.expBits)
	}
	exp -= f.bias
	digits := coef.String()
	if len(digits) > f.maxDigits {
		digits = "0" // non-canonical: IEEE 754-2008 §3.5.2 reads it as zero
	}
	adjusted := exp + len(digits) - 1
	switch {
	case exp == 0:
		b = append(b, digits...)
	case exp < 0 && adjusted >= -6:
		point := len(digits) + exp
		if point > 0 {
			b = append(b, digits[:point]...)
			b = append(b, '.')
			b = append(b, digits[point:]...)
		} else {
			b = append(b, "0."...)
			for ; point < 0; point++ {
				b = append(b, '0')
			}
			b = append(b, digits...)
		}
	default:
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'E')
		if adjusted >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(adjusted), 10)
	}
	return b
}
