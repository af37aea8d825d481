package mapping

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

func TestAppendJSON(t *testing.T) {
	uuid := encoding.UUID{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"null", nil, `null`},
		{"bool", true, `true`},
		{"ubyte", uint8(255), `255`},
		{"ushort", uint16(65535), `65535`},
		{"uint", uint32(1 << 31), `2147483648`},
		{"ulong", uint64(math.MaxUint64), `18446744073709551615`},
		{"byte", int8(-128), `-128`},
		{"short", int16(-1), `-1`},
		{"int", int32(-7), `-7`},
		{"long", int64(math.MinInt64), `-9223372036854775808`},
		{"float", float32(0.1), `0.1`},
		{"double", 1e21, `1e+21`},
		{"double small", 1.5, `1.5`},
		{"NaN", math.NaN(), `"NaN"`},
		{"+Inf", math.Inf(1), `"Infinity"`},
		{"-Inf", float32(math.Inf(-1)), `"-Infinity"`},
		{"decimal32", encoding.Decimal32{0x31, 0x80, 0x30, 0x39}, `123.45`},
		{"decimal64 NaN", encoding.Decimal64{0x7c}, `"NaN"`},
		{"decimal128 -Inf", encoding.Decimal128{0xf8}, `"-Infinity"`},
		{"char", encoding.Char('€'), `"€"`},
		{"timestamp", encoding.Timestamp(1700000000123), `"2023-11-14T22:13:20.123Z"`},
		{"timestamp before 1970", encoding.Timestamp(-1), `"1969-12-31T23:59:59.999Z"`},
		{"timestamp beyond year 9999", encoding.Timestamp(math.MaxInt64), `9223372036854775807`},
		{"uuid", uuid, `"12345678-9abc-def0-0102-030405060708"`},
		{"binary", []byte{0, 1, 2, 0xff}, `"AAEC/w=="`},
		{"empty binary", []byte{}, `""`},
		{"string escapes", "a\"b\\c\n\t\x01é", `"a\"b\\c\n\t\u0001é"`},
		{"invalid UTF-8", "a\xffb", `"a\ufffdb"`},
		{"symbol", encoding.Symbol("amqp:x"), `"amqp:x"`},
		{"list", encoding.List{int32(1), "a", nil, encoding.List{}}, `[1,"a",null,[]]`},
		{"array", encoding.Array{Code: encoding.CodeInt, Values: []any{int32(1), int32(2)}}, `[1,2]`},
		{"array of described", encoding.Array{Descriptor: uint64(7), Values: []any{"x"}}, `[{"descriptor":7,"value":"x"}]`},
		{"map with string keys", encoding.Map{{Key: "b", Value: int32(1)}, {Key: encoding.Symbol("a"), Value: true}}, `{"b":1,"a":true}`},
		{"map repeated key kept", encoding.Map{{Key: "a", Value: int32(1)}, {Key: "a", Value: int32(2)}}, `{"a":1,"a":2}`},
		{"map with other keys", encoding.Map{{Key: int32(1), Value: "x"}, {Key: "s", Value: nil}}, `[[1,"x"],["s",null]]`},
		{"empty map", encoding.Map{}, `{}`},
		{"described", encoding.Described{Descriptor: encoding.Symbol("com.example:pt"), Value: encoding.List{1.5}}, `{"descriptor":"com.example:pt","value":[1.5]}`},
		{"described pointer", &encoding.Described{Descriptor: uint64(0x77), Value: "v"}, `{"descriptor":119,"value":"v"}`},
		{"unknown Go type", struct{}{}, `null`},
	}
	for _, tt := range tests {
		got := string(AppendJSON(nil, tt.v))
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: %s is not valid JSON", tt.name, got)
		}
	}
}

// TestDecimal checks the BID decoding against Python's decimal module (str(Decimal) is the
// to-scientific-string of the General Decimal Arithmetic specification). The vectors were made
// by encoding (sign, coefficient, exponent) in BID by hand and formatting the same triple with
// Python; they include the large-coefficient form (combination field 11).
func TestDecimal(t *testing.T) {
	vectors := []struct {
		bits int
		hex  string
		want string
	}{
		{32, "32800001", "1"},
		{32, "b2800001", "-1"},
		{32, "31803039", "123.45"},
		{32, "b1000001", "-0.001"},
		{32, "3700000f", "1.5E+10"},
		{32, "30000000", "0.00000"},
		{32, "34000000", "0E+3"},
		{32, "6cb8967f", "9999999"},
		{32, "ebd8967f", "-0.9999999"},
		{32, "2f000007", "7E-7"},
		{32, "2e00007b", "1.23E-7"},
		{32, "9352e6b4", "-5.433012E-57"},
		{32, "090c5c7f", "8.10111E-78"},
		{32, "4add9dc9", "6.135241E+54"},
		{32, "66c1e74e", "8.513358E-41"},
		{32, "b79600a3", "-1.441955E+16"},
		{32, "1e91e20b", "1.171979E-34"},
		{32, "78000000", "Infinity"},
		{32, "f8000000", "-Infinity"},
		{32, "7c000000", "NaN"},
		{32, "fe000000", "NaN"}, // signalling, negative: shown as NaN
		{32, "6cbfffff", "0"},   // coefficient 10485759 > 9999999: non-canonical, zero
		{64, "31c0000000000001", "1"},
		{64, "b1c0000000000001", "-1"},
		{64, "3180000000003039", "123.45"},
		{64, "b160000000000001", "-0.001"},
		{64, "32e000000000000f", "1.5E+10"},
		{64, "3120000000000000", "0.00000"},
		{64, "3220000000000000", "0E+3"},
		{64, "6c7386f26fc0ffff", "9999999999999999"},
		{64, "ebf386f26fc0ffff", "-0.9999999999999999"},
		{64, "30e0000000000007", "7E-7"},
		{64, "30a000000000007b", "1.23E-7"},
		{64, "079b2b528d116ece", "7.647457925230286E-323"},
		{64, "50ae498cf28c105d", "4.021519387463773E+262"},
		{64, "1c432c78658cda14", "8.93320541559316E-158"},
		{64, "35b288f52217bead", "5.217136001138349E+46"},
		{64, "c90789e88a6a63ec", "-2.121956684620780E+201"},
		{64, "0d2b9105ae97ba94", "3.255678333860500E-278"},
		{128, "30400000000000000000000000000001", "1"},
		{128, "b0400000000000000000000000000001", "-1"},
		{128, "303c0000000000000000000000003039", "123.45"},
		{128, "b03a0000000000000000000000000001", "-0.001"},
		{128, "3052000000000000000000000000000f", "1.5E+10"},
		{128, "30360000000000000000000000000000", "0.00000"},
		{128, "30460000000000000000000000000000", "0E+3"},
		{128, "3041ed09bead87c0378d8e63ffffffff", "9999999999999999999999999999999999"},
		{128, "affded09bead87c0378d8e63ffffffff", "-0.9999999999999999999999999999999999"},
		{128, "30320000000000000000000000000007", "7E-7"},
		{128, "302e000000000000000000000000007b", "1.23E-7"},
		{128, "04056c998c38fb2918f135d25f557203", "7.394962401381183465681673942036995E-5629"},
		{128, "a2075c5d7f15052434b9b5df9e7769b1", "-7.065686091192577128129518225549745E-1788"},
		{128, "9d012bce7731af10506bf2efc6f87718", "-6.080798361750036888884330454611736E-2431"},
		{128, "2cbc5c0acb5c74273f98e2774cbd87ad", "1.866836902387783977667294144595885E-417"},
		{128, "9faf0ce64cdd2055930d6eaf14f4733f", "-5.453932039342975325267939627922239E-2088"},
		{128, "04af37c949b64a0872e6cc3ababced20", "6.323777060180863734970885192084768E-5544"},
		{128, "6c000000000000000000000000000001", "0E-32"}, // large-coefficient form: always non-canonical in decimal128, so zero (exponent kept)
	}
	for _, v := range vectors {
		raw, err := hex.DecodeString(v.hex)
		if err != nil {
			t.Fatal(err)
		}
		var val any
		switch v.bits {
		case 32:
			val = encoding.Decimal32(raw)
		case 64:
			val = encoding.Decimal64(raw)
		case 128:
			val = encoding.Decimal128(raw)
		}
		got, ok := simpleText(val)
		if !ok || got != v.want {
			t.Errorf("decimal%d %s = %q, want %q", v.bits, v.hex, got, v.want)
		}
		j := AppendJSON(nil, val)
		if !json.Valid(j) {
			t.Errorf("decimal%d %s: %s is not valid JSON", v.bits, v.hex, j)
		}
	}
}

// TestJSONNesting: the deepest value the decoder allows is written without trouble.
func TestJSONNesting(t *testing.T) {
	var v any = "x"
	for range encoding.MaxDepth {
		v = encoding.List{v}
	}
	if b := AppendJSON(nil, v); !json.Valid(b) {
		t.Errorf("nested list: %s", b)
	}
}
