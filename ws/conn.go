package ws

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Errors returned by Conn.Read. Both end the connection: Read has already
// sent the matching Close frame.
var (
	// ErrTextMessage reports a text message; only binary messages carry
	// protocol data ([MQTT-6.0.0-1]). The peer got 1003.
	ErrTextMessage = errors.New("ws: text message received: only binary messages carry protocol data")
	// ErrMessageTooBig reports a message larger than Options.ReadLimit
	// (RFC 6455 §10.4). The peer got 1009.
	ErrMessageTooBig = errors.New("ws: message larger than the read limit")
)

// CloseError reports a Close frame from the peer whose status code is not a
// normal end (1000 normal closure, 1001 going away, 1005 no status), which
// Read reports as io.EOF instead.
type CloseError struct {
	Code   int    // RFC 6455 §7.4
	Reason string // UTF-8, at most 123 bytes (RFC 6455 §5.5.1)
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("ws: peer closed the connection with code %d %q", e.Code, e.Reason)
}

// Conn is a WebSocket connection seen as a byte stream: the net.Conn a
// Handler passes to serve. Read and Write may be called from different
// goroutines; concurrent Writes are serialized, each one message.
type Conn struct {
	ws  *websocket.Conn
	raw net.Conn // the hijacked TCP (or TLS) connection under ws

	readMu  sync.Mutex // gorilla allows one reader; net.Conn allows many callers
	msg     io.Reader  // guarded by readMu; the message being read, nil between messages
	readErr error      // guarded by readMu; sticky, gorilla's read errors are permanent

	writeMu sync.Mutex // gorilla allows one concurrent writer (Close and pongs excepted)
	// writeDeadline is the Write deadline in Unix nanoseconds, 0 for none.
	// Atomic rather than under writeMu so that SetWriteDeadline does not
	// wait behind a blocked Write it is meant to cut short.
	writeDeadline atomic.Int64

	closed    atomic.Bool // set first thing by closeWith
	closeOnce sync.Once
	closeErr  error // written once inside closeOnce
}

var _ net.Conn = (*Conn)(nil)

func newConn(wsc *websocket.Conn) *Conn {
	return &Conn{ws: wsc, raw: wsc.NetConn()}
}

// TLSConnectionState returns the state of the TLS connection under the
// WebSocket (wss), and false for plain ws. Servers use it for client
// certificates and to know whether passwords travel encrypted.
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	if t, ok := c.raw.(*tls.Conn); ok {
		return t.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// Subprotocol returns the negotiated WebSocket subprotocol, e.g. "mqtt".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Read reads the payload of binary messages as one byte stream, across
// message boundaries ([MQTT-6.0.0-2]). A text message or a message over the
// read limit closes the connection (see ErrTextMessage, ErrMessageTooBig); a
// normal Close from the peer or the TCP connection ending reads as io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readErr != nil {
		// Never call gorilla again after an error: it panics after 1000
		// reads on a failed connection.
		return 0, c.readErr
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.msg == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.readErr = c.readError(err)
				return 0, c.readErr
			}
			if typ != websocket.BinaryMessage {
				c.readErr = c.rejectText()
				return 0, c.readErr
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		switch {
		case err == io.EOF:
			c.msg = nil // end of this message; an empty one yields nothing
		case err != nil:
			c.msg = nil
			c.readErr = c.readError(err)
			if n > 0 {
				return n, nil // the error comes with the next call
			}
			return 0, c.readErr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// rejectText ends the connection after a text message: [MQTT-6.0.0-1]
// requires closing, RFC 6455 §7.4.1 names 1003 for data that cannot be
// accepted.
func (c *Conn) rejectText() error {
	deadline := time.Now().Add(closeTimeout)
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary messages only"), deadline)
	// RFC 6455 §7.1.1: wait (briefly) for the peer's Close before the TCP
	// connection goes, so unread data does not turn our close into a reset
	// that can destroy the Close frame at the peer. gorilla's reader is
	// intact here and returns an error at the peer's Close frame.
	_ = c.ws.SetReadDeadline(deadline)
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			break
		}
	}
	return ErrTextMessage
}

// readError turns gorilla's read errors into the errors a net.Conn user
// expects.
func (c *Conn) readError(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		deadline := time.Now().Add(closeTimeout)
		// RFC 6455 §7.4.1: 1009. gorilla has usually sent it already
		// (then this returns ErrCloseSent), but not for a 64-bit length
		// with the top bit set.
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""), deadline)
		// The rest of the oversized message is unread and gorilla's reader
		// is dead: discard raw bytes until the peer closes or the deadline,
		// so our close is not a reset (RFC 6455 §7.1.1, see rejectText).
		_ = c.raw.SetReadDeadline(deadline)
		_, _ = io.Copy(io.Discard, c.raw)
		return ErrMessageTooBig
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived,
			// gorilla's code for the TCP stream ending without a Close
			// frame: on a plain TCP stream that is io.EOF too.
			websocket.CloseAbnormalClosure:
			return io.EOF
		}
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	}
	return c.opError("read", err)
}

// Write sends p as one binary message (RFC 6455 §5.6). It is safe to call
// from several goroutines; messages are not interleaved.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // an empty message carries nothing for a stream
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed.Load() {
		// Checked here because gorilla reports a failed Close frame
		// write, not the close, to later writers.
		return 0, c.opError("write", net.ErrClosed)
	}
	var deadline time.Time
	if ns := c.writeDeadline.Load(); ns != 0 {
		deadline = time.Unix(0, ns)
	}
	// Under writeMu: gorilla's write deadline is a plain field its writer
	// reads.
	_ = c.ws.SetWriteDeadline(deadline)
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		if errors.Is(err, websocket.ErrCloseSent) {
			err = net.ErrClosed
		}
		return 0, c.opError("write", err)
	}
	return len(p), nil
}

// opError gives timeouts the shape net.Conn users test for (net.Error with
// Timeout, errors.Is os.ErrDeadlineExceeded); gorilla hides the original.
func (c *Conn) opError(op string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = os.ErrDeadlineExceeded
	} else if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: "ws", Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: err}
}

// Close sends a Close frame with 1000 (normal closure, RFC 6455 §7.4.1)
// under a short deadline and closes the TCP connection. Calls after the
// first return an error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	return c.closeWith(websocket.CloseNormalClosure, "", time.Now().Add(closeTimeout))
}

func (c *Conn) closeWith(code int, reason string, deadline time.Time) error {
	first := false
	c.closed.Store(true)
	c.closeOnce.Do(func() {
		first = true
		// RFC 6455 §5.5.1. ErrCloseSent when Read already sent one.
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
		// RFC 6455 §7.1.1: the server closes the TCP connection first.
		c.closeErr = c.raw.Close()
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return c.closeErr
}

// LocalAddr returns the local TCP address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the TCP peer's address (not X-Forwarded-For).
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// SetDeadline sets both deadlines. See SetReadDeadline and SetWriteDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of the underlying connection. Unlike
// TCP, a Read that times out ends the connection: later Reads return the
// same error.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Writes, including one in progress.
// A Write that times out ends the connection for writing.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.writeDeadline.Store(ns)
	// Reach a Write blocked in the kernel now; the next Write hands the
	// same deadline to gorilla, which sets it on every frame it writes.
	// A Write that loaded the old value but has not reached the kernel yet
	// still uses the old one: the window is one frame header long.
	return c.raw.SetWriteDeadline(t)
}
