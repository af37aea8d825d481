package encoding

import (
	"errors"
	"math"
	"math/rand/v2"
	"unicode/utf8"
)

// gen makes random generic values of every AMQP type, in the exact form ReadValue returns for
// their encoding (so decode(encode(v)) must be Equal to v), for the round-trip, prefix and Proton
// differential tests and for the fuzz seeds.
type gen struct {
	rng *rand.Rand
	// quietNaN makes every float NaN quiet: Proton passes floats through C float/double conversions,
	// which set the quiet bit of a signaling NaN.
	quietNaN bool
	// flatDescribed keeps described values from directly holding another described value: Proton
	// 0.37 miscounts a list holding one (see TestProtonKnownDifferences).
	flatDescribed bool
}

func newGen(seed uint64) *gen { return &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

const genMaxDepth = 4

// Kinds the generator picks from, named after the AMQP type of the value produced.
var genKinds = []string{
	"null", "boolean", "ubyte", "ushort", "uint", "ulong", "byte", "short", "int", "long", "float",
	"double", "decimal32", "decimal64", "decimal128", "char", "timestamp", "uuid", "binary", "string",
	"symbol", "list", "map", "array", "described",
}

func (g *gen) value(depth int) any {
	n := len(genKinds)
	if depth >= genMaxDepth {
		n -= 4 // no compounds below the depth limit
	}
	return g.kind(genKinds[g.rng.IntN(n)], depth)
}

func (g *gen) kind(k string, depth int) any {
	switch k {
	case "null":
		return nil
	case "boolean":
		return g.rng.IntN(2) == 1
	case "ubyte":
		return uint8(g.u64(8))
	case "ushort":
		return uint16(g.u64(16))
	case "uint":
		return uint32(g.u64(32))
	case "ulong":
		return g.u64(64)
	case "byte":
		return int8(g.i64(8))
	case "short":
		return int16(g.i64(16))
	case "int":
		return int32(g.i64(32))
	case "long":
		return g.i64(64)
	case "float":
		return g.float32()
	case "double":
		return g.float64()
	case "decimal32":
		var d Decimal32
		g.fill(d[:])
		return d
	case "decimal64":
		var d Decimal64
		g.fill(d[:])
		return d
	case "decimal128":
		var d Decimal128
		g.fill(d[:])
		return d
	case "char":
		return Char(g.rune())
	case "timestamp":
		return Timestamp(g.i64(64))
	case "uuid":
		var u UUID
		g.fill(u[:])
		return u
	case "binary":
		b := make([]byte, g.length())
		g.fill(b)
		return b
	case "string":
		return g.string(g.length())
	case "symbol":
		return g.symbol(g.length())
	case "list":
		return g.list(depth)
	case "map":
		n := g.rng.IntN(5)
		m := make(Map, n)
		for i := range m {
			m[i] = MapEntry{Key: g.value(depth + 1), Value: g.value(depth + 1)}
		}
		return m
	case "array":
		return g.array(depth)
	case "described":
		v := g.value(depth + 1)
		for _, nested := v.(Described); nested && g.flatDescribed; _, nested = v.(Described) {
			v = g.value(depth + 1)
		}
		return Described{Descriptor: g.descriptor(), Value: v}
	}
	panic("unknown kind " + k)
}

func (g *gen) list(depth int) List {
	n := g.rng.IntN(6)
	if g.rng.IntN(40) == 0 {
		n = 256 + g.rng.IntN(10) // count beyond list8
	}
	l := make(List, n)
	for i := range l {
		if n > 255 {
			l[i] = uint8(i)
		} else {
			l[i] = g.value(depth + 1)
		}
	}
	return l
}

func (g *gen) descriptor() any {
	switch g.rng.IntN(4) {
	case 0:
		return Symbol("com.example:" + string(g.symbol(1+g.rng.IntN(10))))
	case 1:
		return DomainCode(uint32(g.rng.Uint64()), uint32(g.rng.Uint64()))
	}
	return uint64(g.rng.IntN(0x80))
}

// u64 returns an unsigned value of the given width, biased to the boundaries where encodings change.
func (g *gen) u64(bits int) uint64 {
	max := uint64(math.MaxUint64) >> (64 - bits)
	switch g.rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return uint64(g.rng.IntN(256)) & max
	case 2:
		return max
	case 3:
		return (255 + uint64(g.rng.IntN(3))) & max
	}
	return g.rng.Uint64() & max
}

func (g *gen) i64(bits int) int64 {
	switch g.rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return int64(g.rng.IntN(256) - 128)
	case 2:
		return -1 << (bits - 1)
	case 3:
		return 1<<(bits-1) - 1
	case 4:
		return int64(g.rng.IntN(5)) + 126 // around the smallint/smalllong edge
	}
	return int64(g.rng.Uint64()) >> (64 - bits)
}

func (g *gen) float32() float32 {
	specials := []float32{0, float32(math.Copysign(0, -1)), 1.5, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	if g.rng.IntN(3) == 0 {
		return specials[g.rng.IntN(len(specials))]
	}
	bits := uint32(g.rng.Uint64())
	if g.quietNaN && bits&0x7f800000 == 0x7f800000 && bits&0x7fffff != 0 {
		bits |= 0x400000
	}
	return math.Float32frombits(bits)
}

func (g *gen) float64() float64 {
	specials := []float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64}
	if g.rng.IntN(3) == 0 {
		return specials[g.rng.IntN(len(specials))]
	}
	bits := g.rng.Uint64()
	if g.quietNaN && bits&0x7ff0000000000000 == 0x7ff0000000000000 && bits&0xfffffffffffff != 0 {
		bits |= 1 << 51
	}
	return math.Float64frombits(bits)
}

func (g *gen) fill(b []byte) {
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
}

// length picks a variable-width length: mostly short, sometimes just past the 8-bit forms.
func (g *gen) length() int {
	switch g.rng.IntN(20) {
	case 0:
		return 256 + g.rng.IntN(50)
	case 1:
		return 255
	}
	return g.rng.IntN(20)
}

func (g *gen) rune() rune {
	for {
		var r rune
		switch g.rng.IntN(4) {
		case 0:
			r = rune(g.rng.IntN(0x80))
		case 1:
			r = rune(0x80 + g.rng.IntN(0x780))
		case 2:
			r = rune(0x800 + g.rng.IntN(0xf800))
		default:
			r = rune(0x10000 + g.rng.IntN(0x100000))
		}
		if utf8.ValidRune(r) {
			return r
		}
	}
}

// string returns valid UTF-8 of about n bytes (exactly n when n <= 255 is required by callers: use
// asciiString for that).
func (g *gen) string(n int) string {
	b := make([]byte, 0, n+4)
	for len(b) < n {
		b = utf8.AppendRune(b, g.rune())
	}
	if len(b) > 255 && n <= 255 {
		return string(g.symbol(n))
	}
	return string(b)
}

func (g *gen) symbol(n int) Symbol {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x20 + g.rng.IntN(0x5f))
	}
	return Symbol(b)
}

// arrayCodes are the element codes arrays are generated with: every type code.
var arrayCodes = []Code{
	CodeNull, CodeTrue, CodeFalse, CodeBool, CodeUbyte, CodeUshort, CodeUint0, CodeSmallUint, CodeUint,
	CodeUlong0, CodeSmallUlong, CodeUlong, CodeByte, CodeShort, CodeSmallInt, CodeInt, CodeSmallLong,
	CodeLong, CodeFloat, CodeDouble, CodeDecimal32, CodeDecimal64, CodeDecimal128, CodeChar,
	CodeTimestamp, CodeUUID, CodeVbin8, CodeVbin32, CodeStr8, CodeStr32, CodeSym8, CodeSym32, CodeList0,
	CodeList8, CodeList32, CodeMap8, CodeMap32, CodeArray8, CodeArray32,
}

func (g *gen) array(depth int) Array {
	code := arrayCodes[g.rng.IntN(len(arrayCodes))]
	if depth >= genMaxDepth && code >= CodeList8 {
		code = CodeSym8
	}
	n := g.rng.IntN(5)
	if g.rng.IntN(30) == 0 && fixedWidth(code) >= 0 && code != CodeList0 {
		n = 256 + g.rng.IntN(5) // count beyond array8
	}
	a := Array{Code: code, Values: make([]any, n)}
	if g.rng.IntN(4) == 0 {
		a.Descriptor = g.descriptor()
	}
	for i := range a.Values {
		a.Values[i] = g.element(code, depth)
	}
	// An 8-bit compound element may come out too big: use the 32-bit form of the same type then.
	if _, err := AppendArray(nil, a); err != nil {
		var ee *EncodeError
		if !errors.As(err, &ee) {
			panic(err)
		}
		switch code {
		case CodeList8:
			a.Code = CodeList32
		case CodeMap8:
			a.Code = CodeMap32
		case CodeArray8:
			a.Code = CodeArray32
		default:
			panic(err)
		}
	}
	return a
}

// element returns a value that fits the array element code.
func (g *gen) element(code Code, depth int) any {
	switch code {
	case CodeNull:
		return nil
	case CodeTrue:
		return true
	case CodeFalse:
		return false
	case CodeUint0:
		return uint32(0)
	case CodeSmallUint:
		return uint32(g.rng.IntN(256))
	case CodeUlong0:
		return uint64(0)
	case CodeSmallUlong:
		return uint64(g.rng.IntN(256))
	case CodeSmallInt:
		return int32(g.rng.IntN(256) - 128)
	case CodeSmallLong:
		return int64(g.rng.IntN(256) - 128)
	case CodeVbin8:
		b := make([]byte, g.rng.IntN(20))
		g.fill(b)
		return b
	case CodeStr8:
		return g.string(g.rng.IntN(20))
	case CodeSym8:
		return g.symbol(g.rng.IntN(20))
	case CodeList0:
		return List{}
	case CodeList8, CodeList32:
		return g.list(depth + 1)
	case CodeMap8, CodeMap32:
		return g.kind("map", depth+1)
	case CodeArray8, CodeArray32:
		return g.array(depth + 1)
	}
	return g.kind(codeKind(code), depth+1)
}

// codeKind is the generator kind (AMQP type name) of a code.
func codeKind(c Code) string {
	switch c {
	case CodeNull:
		return "null"
	case CodeTrue, CodeFalse, CodeBool:
		return "boolean"
	case CodeUint0, CodeSmallUint, CodeUint:
		return "uint"
	case CodeUlong0, CodeSmallUlong, CodeUlong:
		return "ulong"
	case CodeSmallInt, CodeInt:
		return "int"
	case CodeSmallLong, CodeLong:
		return "long"
	case CodeVbin8, CodeVbin32:
		return "binary"
	case CodeStr8, CodeStr32:
		return "string"
	case CodeSym8, CodeSym32:
		return "symbol"
	case CodeList0, CodeList8, CodeList32:
		return "list"
	case CodeMap8, CodeMap32:
		return "map"
	case CodeArray8, CodeArray32:
		return "array"
	case CodeDescribed:
		return "described"
	}
	return c.String() // the remaining types have one code named like the type
}
