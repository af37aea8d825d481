package wire

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	// errorWriteTimeout bounds the write of a CONNACK or DISCONNECT that
	// answers a rejected packet: a peer that does not read is not waited for.
	errorWriteTimeout = time.Second
	// lingerTimeout and lingerMaxBytes bound the draining of the socket after
	// that answer. Closing a TCP socket with unread input sends a reset, which
	// can destroy the answer before the peer reads it (net/http does the same
	// for its error responses).
	lingerTimeout  = 250 * time.Millisecond
	lingerMaxBytes = 64 << 10
	// maxReasonString bounds the Reason String of a DISCONNECT.
	maxReasonString = 200
)

// Config configures a Conn.
type Config struct {
	// MaxPacketSize is the largest packet accepted, fixed header included;
	// 0 means the protocol maximum.
	MaxPacketSize int
	// ConnectPacketSize, if set and smaller, limits the CONNECT instead: it
	// is read before the client is authenticated, so an anonymous socket can
	// make the gateway buffer only this much.
	ConnectPacketSize int
	// ConnectTimeout bounds, from NewConn, the time a peer has to deliver a
	// complete valid CONNECT; 0 means no bound. The deadline is absolute: a
	// peer sending one byte at a time is cut all the same.
	ConnectTimeout time.Duration
	// OnReject, if set, is called with every packet refused, before the
	// connection is closed. It is called on the reading goroutine.
	OnReject func(err *Error)
}

// Conn wraps the net.Conn of one MQTT client so that Read returns only the
// bytes of packets the Reader validated, unchanged and in order. It is what
// mochi is handed instead of the socket. Write, Close, addresses and write
// deadlines go straight to the underlying connection; Writes are serialized
// with the error answer a rejection sends.
type Conn struct {
	nc  net.Conn
	cfg Config
	rd  *Reader

	rmu     sync.Mutex // held by Read: the Reader and pending are its state
	pending []byte     // validated bytes not yet returned by Read
	rerr    error      // terminal error, returned by every Read after it

	wmu sync.Mutex // serializes Write with the rejection answer

	dmu       sync.Mutex // guards connected and held
	connected bool       // a CONNECT passed: deadlines are no longer held back
	held      time.Time  // the consumer's last read deadline before that

	version atomic.Uint32
}

var _ net.Conn = (*Conn)(nil)

// NewConn wraps c. If cfg.ConnectTimeout is set, c's read deadline is set to
// now plus that timeout at once.
func NewConn(c net.Conn, cfg Config) *Conn {
	first := cfg.MaxPacketSize
	if n := cfg.ConnectPacketSize; n > 0 && (first <= 0 || n < first) {
		first = n
	}
	wc := &Conn{nc: c, cfg: cfg, rd: NewReader(c, first)}
	if cfg.ConnectTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(cfg.ConnectTimeout))
	} else {
		wc.connected = true // nothing to hold back
	}
	return wc
}

// Handshake reads and validates the client's first packet, its CONNECT,
// ahead of the consumer, which then reads it as usual. A caller that hands
// the connection to the broker only after Handshake returned nil makes a
// socket that never sends a valid CONNECT (silent, dripping, oversized,
// malformed) cost this Conn alone. A refusal or the connect timeout is
// answered and the connection closed, as Read would do.
func (c *Conn) Handshake() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return c.rerr
	}
	if len(c.pending) > 0 || c.Version() != 0 {
		return nil
	}
	pkt, err := c.rd.Next()
	if err != nil {
		return c.terminate(err)
	}
	c.accepted(pkt)
	c.pending = pkt
	return nil
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Version is the protocol level of the client's CONNECT once it passed (3, 4
// or 5), else 0. It is safe to call from any goroutine.
func (c *Conn) Version() byte { return byte(c.version.Load()) }

// Read returns bytes of validated packets only. When a packet is refused it
// answers the client as its protocol version allows (a CONNACK or DISCONNECT
// with the reason code in MQTT 5, a CONNACK 0x01 for an unsupported 3.x level,
// nothing otherwise), closes the connection and returns an error wrapping the
// *Error. Without a CONNECT before the connect timeout it closes the
// connection and returns an error matching ErrConnectTimeout.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		pkt, err := c.rd.Next()
		if err != nil {
			return 0, c.terminate(err)
		}
		c.accepted(pkt)
		c.pending = pkt
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	// Hand over more whole packets while they are already buffered, so the
	// consumer's buffered reader is not left with one packet per call. A
	// refusal found here is answered on the next Read, after the consumer has
	// dealt with the packets before it (a CONNACK is then out before any
	// DISCONNECT [MQTT-3.14.0-1]).
	for n < len(p) && len(c.pending) == 0 && c.rd.buffered() {
		pkt, err := c.rd.Next()
		if err != nil {
			break
		}
		c.accepted(pkt)
		m := copy(p[n:], pkt)
		n += m
		c.pending = pkt[m:]
	}
	return n, nil
}

// accepted runs for every packet that passed: after the CONNECT the held
// read deadline replaces the connect deadline.
func (c *Conn) accepted(pkt []byte) {
	if pkt[0]>>4 != typeConnect {
		return
	}
	c.version.Store(uint32(c.rd.Version()))
	c.rd.SetMaxPacketSize(c.cfg.MaxPacketSize)
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.connected {
		return
	}
	c.connected = true
	_ = c.nc.SetReadDeadline(c.held) // the zero time when none was asked for
}

// terminate turns a Reader error into the error every later Read returns,
// answering and closing for refusals and the connect timeout.
func (c *Conn) terminate(err error) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		if c.cfg.OnReject != nil {
			c.cfg.OnReject(e)
		}
		answered := c.answer(e)
		c.shut(answered)
		c.rerr = fmt.Errorf("mqtt/wire: packet refused: %w", e)
	case isTimeout(err) && !c.isConnected():
		c.shut(false)
		c.rerr = errors.Join(ErrConnectTimeout, err)
	default:
		// End of stream or a socket error: the consumer sees it as is. Read
		// deadlines the consumer set after CONNECT are its own business.
		return err
	}
	return c.rerr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func (c *Conn) isConnected() bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.connected
}

// answer writes the packet that tells the client why it is being dropped, if
// its protocol version has one. It reports whether something was written.
func (c *Conn) answer(e *Error) bool {
	var buf [16 + maxReasonString]byte
	var pkt []byte
	switch v := c.rd.Version(); {
	case v == 5:
		pkt = disconnectPacket(buf[:0], e, c.rd.clientMax)
	case v != 0:
		return false // 3.1 and 3.1.1 have no way to say it: just close
	case c.rd.bad.version == 5:
		// A refused v5 CONNECT: CONNACK with the reason code [MQTT-3.2.2-7].
		pkt = append(buf[:0], typeConnack<<4, 3, 0, e.Reason, 0)
	case c.rd.bad.badLevel:
		// 3.1.1 requires CONNACK 0x01 for an unsupported level [MQTT-3.1.2-2];
		// it is also what an MQTT 5 client expects from a 3.1.1 server.
		pkt = append(buf[:0], typeConnack<<4, 2, 0, 0x01)
	default:
		return false
	}
	// The deadline goes first: it also unblocks a consumer Write stuck on a
	// peer that does not read, which would otherwise hold the lock.
	_ = c.nc.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(pkt)
	return err == nil
}

// disconnectPacket appends an MQTT 5 DISCONNECT with e's reason code and, if
// the client's Maximum Packet Size allows it [MQTT-3.14.2-3], e.Msg as Reason
// String.
func disconnectPacket(dst []byte, e *Error, clientMax uint32) []byte {
	msg := e.Msg
	if len(msg) > maxReasonString {
		msg = msg[:maxReasonString]
		for len(msg) > 0 && !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	// Reason code, property length, then 0x1F and the string.
	plen := 1 + 2 + len(msg)
	rem := 1 + vbiLen(plen) + plen
	if clientMax != 0 && uint32(1+vbiLen(rem)+rem) > clientMax {
		return append(dst, typeDisconnect<<4, 2, e.Reason, 0)
	}
	dst = appendVBI(append(dst, typeDisconnect<<4), rem)
	dst = appendVBI(append(dst, e.Reason), plen)
	dst = append(dst, propReasonString, byte(len(msg)>>8), byte(len(msg)))
	return append(dst, msg...)
}

func vbiLen(n int) int {
	l := 1
	for n >= 128 {
		n >>= 7
		l++
	}
	return l
}

func appendVBI(dst []byte, n int) []byte {
	for n >= 128 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// shut closes the connection; after an answer it first half-closes and drains
// what the peer still sends, briefly, so the answer is not lost to a reset.
func (c *Conn) shut(answered bool) {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); answered && ok {
		if cw.CloseWrite() == nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			var sink [512]byte
			for drained := 0; drained < lingerMaxBytes; {
				n, err := c.nc.Read(sink[:])
				drained += n
				if err != nil {
					break
				}
			}
		}
	}
	_ = c.nc.Close()
}

// Write writes to the underlying connection, serialized with the answer to a
// refused packet so that the two never interleave.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.nc.Write(p)
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline sets both deadlines. Until a CONNECT has passed, the read part
// is held back (the connect deadline stays) and applied once it has.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.connected {
		c.held = t
		return c.nc.SetWriteDeadline(t)
	}
	return c.nc.SetDeadline(t)
}

// SetReadDeadline sets the read deadline, held back until a CONNECT has
// passed as with SetDeadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.connected {
		c.held = t
		return nil
	}
	return c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the underlying write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }
