package frames

import (
	"encoding/binary"
	"io"
	"math"
	"strconv"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// HeaderSize is the size of the fixed frame header. AMQP 1.0 §2.3.1.
const HeaderSize = 8

// FrameType is byte 5 of the frame header. AMQP 1.0 §2.3.1.
type FrameType uint8

const (
	FrameAMQP FrameType = 0x00 // AMQP 1.0 §2.3.2
	FrameSASL FrameType = 0x01 // AMQP 1.0 §5.3.1
)

func (t FrameType) String() string {
	switch t {
	case FrameAMQP:
		return "amqp"
	case FrameSASL:
		return "sasl"
	}
	return "frame-type(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// Header is the fixed 8-byte frame header. AMQP 1.0 §2.3.1.
type Header struct {
	// Size is the total frame size in bytes: header, extended header and body.
	Size uint32
	// DataOffset (DOFF) is the position of the body in 4-byte words; at least 2.
	DataOffset uint8
	// Type is the frame type: AMQP or SASL.
	Type FrameType
	// Channel is bytes 6-7: the channel of an AMQP frame; ignored (and sent as 0) for SASL frames.
	Channel uint16
}

// BodySize is the number of body bytes (performative and payload) after the header and extended header.
func (h Header) BodySize() int { return int(h.Size) - 4*int(h.DataOffset) }

// ParseHeader decodes the 8-byte frame header at the start of b and checks it before any body is
// read: size ≥ 8, doff ≥ 2, doff not beyond size, size ≤ maxFrameSize, type AMQP or SASL. A violation
// is a *DecodeError with condition amqp:connection:framing-error; a b shorter than 8 bytes one
// wrapping io.ErrUnexpectedEOF. It does not allocate.
func ParseHeader(b []byte, maxFrameSize uint32) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, framingError("header", len(b), "need 8 bytes", io.ErrUnexpectedEOF)
	}
	h := Header{
		Size:       binary.BigEndian.Uint32(b[0:4]),
		DataOffset: b[4],
		Type:       FrameType(b[5]),
		Channel:    binary.BigEndian.Uint16(b[6:8]),
	}
	// AMQP 1.0 §2.3.1: "The frame is malformed if the size is less than the size of the frame header (8 bytes)."
	if h.Size < HeaderSize {
		return h, framingError("size", 0, "frame size "+strconv.FormatUint(uint64(h.Size), 10)+" is below 8", nil)
	}
	// AMQP 1.0 §2.3.1: "the frame is malformed if the value [of DOFF] is less than 2."
	if h.DataOffset < 2 {
		return h, framingError("doff", 4, "data offset "+strconv.Itoa(int(h.DataOffset))+" is below 2", nil)
	}
	if 4*uint32(h.DataOffset) > h.Size {
		return h, framingError("doff", 4, "data offset "+strconv.Itoa(int(h.DataOffset))+" points beyond the frame size "+
			strconv.FormatUint(uint64(h.Size), 10), nil)
	}
	// AMQP 1.0 §2.7.1 (open.max-frame-size) and §2.4.1 (MIN-MAX-FRAME-SIZE before open): checked here,
	// before the body is read, so an oversize claim costs nothing.
	if h.Size > maxFrameSize {
		return h, framingError("size", 0, "frame size "+strconv.FormatUint(uint64(h.Size), 10)+" exceeds max-frame-size "+
			strconv.FormatUint(uint64(maxFrameSize), 10), nil)
	}
	// AMQP 1.0 §2.3.1: type 0x00 is an AMQP frame, 0x01 a SASL frame (§5.3.1); others are not defined here.
	if h.Type != FrameAMQP && h.Type != FrameSASL {
		return h, framingError("type", 5, "unknown frame type 0x"+strconv.FormatUint(uint64(h.Type), 16), nil)
	}
	return h, nil
}

// AppendHeader appends h's 8 bytes to b.
func AppendHeader(b []byte, h Header) []byte {
	b = binary.BigEndian.AppendUint32(b, h.Size)
	b = append(b, h.DataOffset, byte(h.Type))
	return binary.BigEndian.AppendUint16(b, h.Channel)
}

// Frame is one decoded frame. Ext and Body alias the buffer the frame was read from.
type Frame struct {
	Header
	// Ext is the extended header (doff > 2); the spec defines no use for it and it is skipped. AMQP 1.0 §2.3.1.
	Ext []byte
	// Body is the performative followed by the payload (transfer), or empty for an empty frame
	// (a heartbeat, AMQP 1.0 §2.4.5).
	Body []byte
}

// Empty reports whether f has no body: an empty frame, used as a heartbeat. AMQP 1.0 §2.3.2.
func (f *Frame) Empty() bool { return len(f.Body) == 0 }

// ParseFrame splits one complete frame at the start of b, which must hold at least the header.
// It returns the frame (aliasing b) and its total size. When b holds the header but not the whole
// frame it returns a *DecodeError wrapping io.ErrUnexpectedEOF.
func ParseFrame(b []byte, maxFrameSize uint32) (Frame, int, error) {
	h, err := ParseHeader(b, maxFrameSize)
	if err != nil {
		return Frame{}, 0, err
	}
	if uint64(len(b)) < uint64(h.Size) {
		return Frame{}, 0, framingError("body", len(b), "frame of "+strconv.FormatUint(uint64(h.Size), 10)+
			" bytes is truncated", io.ErrUnexpectedEOF)
	}
	doff := 4 * int(h.DataOffset)
	return Frame{Header: h, Ext: b[HeaderSize:doff:doff], Body: b[doff:h.Size:h.Size]}, int(h.Size), nil
}

// AppendEmptyFrame appends an empty AMQP frame (8 bytes, no body) on channel ch: the heartbeat of
// AMQP 1.0 §2.4.5, which the spec sends on channel 0.
func AppendEmptyFrame(b []byte, ch uint16) []byte {
	return AppendHeader(b, Header{Size: HeaderSize, DataOffset: 2, Type: FrameAMQP, Channel: ch})
}

// FrameBody is a performative or SASL frame body that appends its encoding.
type FrameBody interface {
	Encode(b []byte) ([]byte, error)
}

// AppendFrame appends a whole frame to b: the header (doff 2), the encoded body and the payload
// (transfer frames only; nil otherwise). For SASL frames ch must be 0 (AMQP 1.0 §5.3.1: the
// channel bytes are ignored). The caller keeps the result within the peer's max-frame-size; on an
// encoding error b is returned unchanged.
func AppendFrame(b []byte, typ FrameType, ch uint16, body FrameBody, payload []byte) ([]byte, error) {
	start := len(b)
	b = AppendHeader(b, Header{DataOffset: 2, Type: typ, Channel: ch})
	b, err := body.Encode(b)
	if err != nil {
		return b[:start], err
	}
	b = append(b, payload...)
	if uint64(len(b)-start) > math.MaxUint32 {
		return b[:start], &encoding.EncodeError{Msg: "frame larger than 2^32-1 bytes"}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// ReadFrame reads one frame from r. It reads the header first and rejects it per ParseHeader
// before any body byte is read, then reads the body into a buffer that grows only as bytes
// arrive, so a peer that claims a large frame and stalls costs at most what it sent (plus 4 KiB).
// The returned frame owns its memory. io.EOF is returned only when r ends before the first byte.
func ReadFrame(r io.Reader, maxFrameSize uint32) (Frame, error) {
	var hb [HeaderSize]byte
	if n, err := io.ReadFull(r, hb[:]); err != nil {
		if err == io.EOF && n == 0 {
			return Frame{}, io.EOF
		}
		return Frame{}, framingError("header", n, "reading frame header", err)
	}
	h, err := ParseHeader(hb[:], maxFrameSize)
	if err != nil {
		return Frame{}, err
	}
	rest, err := readGrowing(r, int(h.Size)-HeaderSize)
	if err != nil {
		return Frame{}, framingError("body", HeaderSize+len(rest), "reading frame body", err)
	}
	ext := 4*int(h.DataOffset) - HeaderSize
	return Frame{Header: h, Ext: rest[:ext:ext], Body: rest[ext:]}, nil
}

// readChunk is the first allocation of readGrowing; later ones double what already arrived.
const readChunk = 4096

// readGrowing reads exactly n bytes, growing its buffer geometrically as data arrives instead
// of trusting n up front.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// Reader reads frames from a stream through its own buffer, so that one Read from the network
// can yield several frames. Frames returned by ReadFrame alias the buffer and are valid until the
// next call. The buffer starts at 512 bytes and doubles only when it is full of unread data, so
// memory follows what the peer actually sent, never what a header claims. A Reader is not safe for
// concurrent use (one reader goroutine per connection).
type Reader struct {
	src  io.Reader
	max  uint32
	buf  []byte
	r, w int // unread data is buf[r:w]
}

// NewReader returns a Reader on src that accepts frames up to maxFrameSize bytes. Before both open
// frames are exchanged that is MinMaxFrameSize (512), AMQP 1.0 §2.4.1; see SetMaxFrameSize.
func NewReader(src io.Reader, maxFrameSize uint32) *Reader {
	return &Reader{src: src, max: maxFrameSize}
}

// SetMaxFrameSize changes the limit for the following frames (after open negotiation).
func (r *Reader) SetMaxFrameSize(n uint32) { r.max = n }

// Buffered returns the bytes read from the source but not yet returned as frames (for example the
// start of a protocol header that follows SASL, or a TLS handshake). They alias the buffer.
func (r *Reader) Buffered() []byte { return r.buf[r.r:r.w] }

// Discard drops n buffered bytes (after the caller consumed them from Buffered).
func (r *Reader) Discard(n int) { r.r += min(n, r.w-r.r) }

// ReadFrame returns the next frame. See ReadFrame (the function) for the checks and errors.
func (r *Reader) ReadFrame() (Frame, error) {
	if err := r.fill(HeaderSize); err != nil {
		if err == io.EOF && r.w == r.r {
			return Frame{}, io.EOF
		}
		return Frame{}, framingError("header", r.w-r.r, "reading frame header", err)
	}
	h, err := ParseHeader(r.buf[r.r:r.w], r.max)
	if err != nil {
		return Frame{}, err
	}
	if err := r.fill(int(h.Size)); err != nil {
		return Frame{}, framingError("body", r.w-r.r, "reading frame body", err)
	}
	f, n, err := ParseFrame(r.buf[r.r:r.w], r.max)
	if err != nil {
		return Frame{}, err
	}
	r.r += n
	return f, nil
}

// ReadProtocolHeader reads the 8-byte protocol header that starts a stream (and follows a
// successful SASL exchange or a TLS handshake). AMQP 1.0 §2.2.
func (r *Reader) ReadProtocolHeader() (ProtocolHeader, error) {
	if err := r.fill(ProtocolHeaderSize); err != nil {
		return ProtocolHeader{}, err
	}
	h, err := ParseProtocolHeader(r.buf[r.r:r.w])
	r.r += ProtocolHeaderSize
	return h, err
}

const (
	minReaderBuf = 512     // AMQP 1.0 §2.4.1: MIN-MAX-FRAME-SIZE, the largest frame before open
	keepReadBuf  = 1 << 20 // a larger buffer is released once drained
)

// fill makes at least n unread bytes available, reading as few times as possible.
func (r *Reader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.r == r.w && cap(r.buf) > keepReadBuf {
		r.buf = nil // one huge frame must not pin its buffer for the connection's life
	}
	if r.buf == nil {
		r.buf = make([]byte, minReaderBuf)
		r.r, r.w = 0, 0
	}
	for r.w-r.r < n {
		if r.r > 0 && len(r.buf)-r.r < n {
			// Not enough room after r: slide the unread bytes down.
			r.w = copy(r.buf, r.buf[r.r:r.w])
			r.r = 0
		}
		if r.w == len(r.buf) {
			// Full of unread data: double (never beyond what this frame needs).
			nb := make([]byte, max(min(2*len(r.buf), n), minReaderBuf))
			r.w = copy(nb, r.buf[r.r:r.w])
			r.r = 0
			r.buf = nb
		}
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			if r.w-r.r >= n {
				return nil
			}
			if err == io.EOF && r.w > r.r {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
