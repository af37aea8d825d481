package wire

import (
	"errors"
	"io"
)

const (
	// initialBufSize is the buffer a Reader starts with and what it keeps
	// between packets: a few small packets per read call.
	initialBufSize = 2048
	// connectBufSize is the buffer a Reader starts with before CONNECT.
	connectBufSize = 256
	// keepBufSize bounds the buffer kept after a large packet; a larger one is
	// dropped as soon as its packet has been consumed.
	keepBufSize = 32 << 10
	// maxEmptyReads mirrors bufio: a source returning (0, nil) this many times
	// in a row is broken.
	maxEmptyReads = 100
)

// Reader frames and validates the MQTT packets a client sends. It tracks the
// protocol version from the CONNECT it accepted, so each packet is checked
// against the version the connection speaks. A Reader is not safe for
// concurrent use.
//
// Memory follows the bytes received, not the lengths declared: the buffer
// starts at 2 KiB and only doubles when it is full of one packet's bytes, so a
// peer that declares 256 MiB and sends 5 bytes costs 2 KiB. The packet size
// limit is checked from the fixed header before any of the body is read.
type Reader struct {
	src        io.Reader
	max        int
	version    byte
	authMethod bool   // the CONNECT carried an Authentication Method
	clientMax  uint32 // the client's Maximum Packet Size (MQTT 5), 0 when absent

	buf  []byte // buf[r:w] is received, unconsumed data
	r, w int
	rerr error       // a read error that came with data, returned once that data is used
	err  error       // sticky: the *Error that ended the stream
	bad  connectInfo // what a refused CONNECT revealed about its version
}

// NewReader returns a Reader of r refusing packets larger than maxPacketSize
// bytes (fixed header included, as MQTT 5's Maximum Packet Size counts them).
// A maxPacketSize of 0 or less means the protocol maximum, 268,435,460 bytes.
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	return &Reader{src: r, max: maxPacketSize}
}

// SetMaxPacketSize changes the size limit for the packets that follow, e.g.
// from a small pre-authentication cap to the configured one.
func (r *Reader) SetMaxPacketSize(n int) { r.max = n }

// Version is the protocol level of the accepted CONNECT (3, 4 or 5), or 0
// before one was accepted.
func (r *Reader) Version() byte { return r.version }

// Next returns the next whole, validated packet, fixed header included. The
// slice is valid until the next call. A rejected packet yields an *Error, and
// every later call returns it again. At a clean end of stream Next returns
// io.EOF, in the middle of a packet io.ErrUnexpectedEOF; other read errors
// (a deadline, say) are returned as they are and Next may be called again.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.compactIdle()
	if err := r.fill(1); err != nil {
		return nil, err
	}
	first := r.buf[r.r]
	if e := checkFirstByte(r.version, first); e != nil {
		return nil, r.fail(e)
	}
	name := typeNames[first>>4]
	var rem uint32
	var n int
	for {
		var st int
		rem, n, st = decodeVBI(r.buf[r.r+1 : r.w])
		if st == vbiOK {
			break
		}
		if st == vbiTooLong {
			return nil, r.fail(malformed("%s remaining length longer than 4 bytes", name)) // MQTT 5.0 §1.5.5
		}
		if err := r.fill(r.w - r.r + 1); err != nil {
			return nil, unexpected(err)
		}
	}
	total := 1 + n + int(rem)
	if r.max > 0 && total > r.max {
		// Refused from the header alone: nothing of the body is read or allocated,
		// except the few bytes that say whether an oversized CONNECT is MQTT 5,
		// which is owed a CONNACK 0x95 [MQTT-3.2.2-7].
		if first>>4 == typeConnect && r.version == 0 {
			r.peekConnectLevel(n)
		}
		return nil, r.fail(reasonErr(ReasonPacketTooLarge, "%s of %d bytes exceeds the maximum packet size of %d bytes [MQTT-3.2.2-15]", name, total, r.max))
	}
	if err := r.fill(total); err != nil {
		return nil, unexpected(err)
	}
	pkt := r.buf[r.r : r.r+total : r.r+total]
	r.r += total
	var ci connectInfo
	if e := validateBody(r.version, first, pkt[1+n:], &ci); e != nil {
		r.bad = ci
		return nil, r.fail(e)
	}
	switch first >> 4 {
	case typeConnect:
		r.version = ci.version
		r.clientMax = ci.maxPacket
		r.authMethod = ci.authMethod
	case typeAuth:
		if !r.authMethod {
			return nil, r.fail(protocolErr("AUTH after a CONNECT without Authentication Method [MQTT-4.12.0-7]"))
		}
	}
	return pkt, nil
}

// peekConnectLevel looks for a CONNECT's protocol name and level in the bytes
// already read (a client writes its CONNECT at once, so they are nearly
// always there; waiting for more would let a peer hold the refusal until the
// connect timeout) and stores the level in r.bad.version.
func (r *Reader) peekConnectLevel(n int) {
	body := r.buf[r.r+1+n : r.w]
	if len(body) < 2 {
		return
	}
	if l := int(body[0])<<8 | int(body[1]); len(body) > 2+l && string(body[2:2+l]) == "MQTT" {
		r.bad.version = body[2+l]
	}
}

func (r *Reader) fail(e *Error) error {
	r.err = e
	return e
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// compactIdle resets the buffer between packets and drops a large one, so a
// single big packet does not pin its memory for the life of the connection.
func (r *Reader) compactIdle() {
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	if len(r.buf) > keepBufSize && r.w-r.r <= initialBufSize {
		nb := make([]byte, initialBufSize)
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r = 0
		r.buf = nb
	}
}

// fill reads until at least k unconsumed bytes are buffered.
func (r *Reader) fill(k int) error {
	empty := 0
	for r.w-r.r < k {
		if r.rerr != nil {
			err := r.rerr
			r.rerr = nil
			return err
		}
		if r.buf == nil {
			size := initialBufSize
			if r.version == 0 {
				// Before CONNECT: most CONNECTs fit, and a socket that never
				// sends one should cost little; larger ones grow the buffer.
				size = connectBufSize
			}
			r.buf = make([]byte, max(size, min(k, initialBufSize)))
		}
		if r.r > 0 && len(r.buf)-r.r < k {
			// The packet does not fit where it starts: move it to the front.
			r.w = copy(r.buf, r.buf[r.r:r.w])
			r.r = 0
		}
		if r.w == len(r.buf) {
			// Full of this packet's bytes (r is 0 here). Double, but never past
			// what the packet needs: memory tracks bytes actually received.
			size := 2 * len(r.buf)
			if size > k {
				size = k
			}
			nb := make([]byte, size)
			r.w = copy(nb, r.buf[r.r:r.w])
			r.r = 0
			r.buf = nb
		}
		n, err := r.src.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errors.New("mqtt/wire: source returned an invalid read count")
		}
		r.w += n
		if err != nil {
			r.rerr = err
		}
		if n == 0 && err == nil {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return nil
}

// buffered reports whether the next call to Next can complete without reading
// from the source: a whole packet, or a sure error, is already buffered.
func (r *Reader) buffered() bool {
	if r.err != nil {
		return true
	}
	avail := r.buf[r.r:r.w]
	if len(avail) == 0 {
		return false
	}
	if checkFirstByte(r.version, avail[0]) != nil {
		return true
	}
	rem, n, st := decodeVBI(avail[1:])
	switch st {
	case vbiShort:
		return false
	case vbiTooLong:
		return true
	}
	total := 1 + n + int(rem)
	return len(avail) >= total || (r.max > 0 && total > r.max)
}
