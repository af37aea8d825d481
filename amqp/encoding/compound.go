package encoding

import (
	"encoding/binary"
	"math"
)

// Compound is a list or map being appended to a buffer in one pass. BeginList/BeginMap reserve a
// 32-bit header; the caller appends each element with the ordinary Append functions and calls Elem
// after each; End patches the header and, when the body is small, slides it down to the 8-bit form
// (list8/map8) or writes list0 for an empty list. The header is fixed up in place: no element is
// encoded twice. A Compound is a small value; keep it on the stack.
//
//	b, l := encoding.BeginList(b)
//	b = encoding.AppendUint(b, handle)
//	l.Elem(b)
//	b = encoding.AppendNull(b) // a field left at its default
//	l.Elem(b)
//	b = l.EndTrimNulls(b) // omits the trailing null: AMQP 1.0 Part 1 §1.4
type Compound struct {
	start     int // offset of the constructor byte
	count     int // elements recorded so far
	last      int // len(b) at the previous Elem
	keepLen   int // len(b) after the last non-null element
	keepCount int
	isMap     bool
}

// compoundHeader is the reserved 32-bit header: code, size (4) and count (4).
const compoundHeader = 9

// BeginList starts a list at the end of b. AMQP 1.0 Part 1 §1.6.22.
func BeginList(b []byte) ([]byte, Compound) {
	c := Compound{start: len(b)}
	b = append(b, byte(CodeList32), 0, 0, 0, 0, 0, 0, 0, 0)
	c.last, c.keepLen = len(b), len(b)
	return b, c
}

// BeginMap starts a map at the end of b. Call Elem after each key and after each value, or Entry
// after each key/value pair. AMQP 1.0 Part 1 §1.6.23.
func BeginMap(b []byte) ([]byte, Compound) {
	b, c := BeginList(b)
	b[c.start] = byte(CodeMap32)
	c.isMap = true
	return b, c
}

// Elem records that exactly one more element (one complete encoded value) was appended to b.
func (c *Compound) Elem(b []byte) {
	c.count++
	if !(len(b)-c.last == 1 && b[len(b)-1] == byte(CodeNull)) {
		c.keepLen, c.keepCount = len(b), c.count
	}
	c.last = len(b)
}

// Entry records that one key and one value were appended to b (a map entry: two elements).
func (c *Compound) Entry(b []byte) {
	c.count += 2
	c.keepLen, c.keepCount, c.last = len(b), c.count, len(b)
}

// Len returns the number of elements recorded so far.
func (c *Compound) Len() int { return c.count }

// End closes the list or map, keeping every element, and returns the finished buffer.
func (c Compound) End(b []byte) []byte { return c.end(b, c.count) }

// EndTrimNulls closes a list, dropping the trailing elements that are a bare null: composite fields
// at their default may be omitted from the end of the list (AMQP 1.0 Part 1 §1.4). For a map it is End.
func (c Compound) EndTrimNulls(b []byte) []byte {
	if c.isMap {
		return c.End(b)
	}
	return c.end(b[:c.keepLen], c.keepCount)
}

func (c Compound) end(b []byte, count int) []byte {
	body := len(b) - c.start - compoundHeader
	if body < 0 {
		panic("amqp/encoding: Compound ended on a buffer that does not contain its header")
	}
	if count == 0 && !c.isMap {
		return append(b[:c.start], byte(CodeList0)) // AMQP 1.0 Part 1 §1.6.22 list0
	}
	if body+1 <= math.MaxUint8 && count <= math.MaxUint8 {
		code := CodeList8
		if c.isMap {
			code = CodeMap8
		}
		b[c.start], b[c.start+1], b[c.start+2] = byte(code), byte(body+1), byte(count)
		copy(b[c.start+3:], b[c.start+compoundHeader:])
		return b[:len(b)-(compoundHeader-3)]
	}
	if uint64(body)+4 > math.MaxUint32 {
		panic("amqp/encoding: compound value larger than 2^32-1 bytes")
	}
	binary.BigEndian.PutUint32(b[c.start+1:], uint32(body+4))
	binary.BigEndian.PutUint32(b[c.start+5:], uint32(count))
	return b
}
