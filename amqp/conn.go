package amqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// Defaults shared by both roles.
const (
	defaultMaxFrameSize     = 65536
	defaultChannelMax       = 255
	defaultHandleMax        = 1023
	defaultSessionWindow    = 5000
	defaultMaxMessageSize   = 1 << 20
	defaultIdleTimeout      = 60 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	defaultCloseTimeout     = 5 * time.Second
	defaultWriteTimeout     = 30 * time.Second

	// maxOutFrame caps the frames this side writes even when the peer accepts more (its
	// max-frame-size defaults to 4 GiB), so one transfer never pins a huge write buffer.
	maxOutFrame = 256 << 10
	// writeBatch is how many bytes the writer gathers from its queue before one Write.
	writeBatch = 256 << 10
	// writeQueue and sessionQueue bound the frames waiting for the writer and for a session.
	writeQueue   = 256
	sessionQueue = 64
	// maxPendingAttaches bounds the LinkHandler goroutines of one connection: attaches beyond it
	// are refused with amqp:resource-limit-exceeded rather than each costing a goroutine.
	maxPendingAttaches = 256
	// minHeartbeat bounds how often empty frames are sent, whatever idle-time-out the peer asks for.
	minHeartbeat = 50 * time.Millisecond
	// outgoingWindow is the outgoing-window this side advertises: large, since link credit and the
	// peer's incoming-window are what limit it (AMQP 1.0 §2.5.6). Not 0: PROTON-936.
	outgoingWindow = 0x7FFFFFFF
)

// AnonymousRelay is the connection capability that announces support for links with a null target
// whose messages are routed by their properties.to field.
const AnonymousRelay frames.Symbol = "ANONYMOUS-RELAY"

// connConfig is the normalized configuration of one connection, built from ConnOptions or
// ServerOptions.
type connConfig struct {
	containerID      string
	hostname         string
	maxFrameSize     uint32
	channelMax       uint16
	handleMax        uint32
	sessionWindow    uint32
	idleTimeout      time.Duration // ours: drop a peer silent this long; 0 = never
	maxMessageSize   uint64
	handshakeTimeout time.Duration
	closeTimeout     time.Duration
	writeTimeout     time.Duration
	properties       frames.Fields
	offered, desired []frames.Symbol
	linkHandler      LinkHandler
	logger           *slog.Logger
	trace            bool
	onOpen           func(*Conn) error
	onClose          func(*Conn, error)
	registry         *linkRegistry // Server only: links by container, for amqp:link:stolen
	// fixedWindow turns off the re-advertising of session windows, so that tests can reach the
	// window-violation path (with re-advertising a compliant-looking burst never exceeds it).
	fixedWindow bool
}

func (cfg *connConfig) normalize() {
	if cfg.containerID == "" {
		cfg.containerID = randomID()
	}
	if cfg.maxFrameSize == 0 {
		cfg.maxFrameSize = defaultMaxFrameSize
	}
	// AMQP 1.0 §2.7.1: max-frame-size is at least MIN-MAX-FRAME-SIZE.
	cfg.maxFrameSize = max(cfg.maxFrameSize, frames.MinMaxFrameSize)
	if cfg.channelMax == 0 {
		cfg.channelMax = defaultChannelMax
	}
	if cfg.handleMax == 0 {
		cfg.handleMax = defaultHandleMax
	}
	if cfg.sessionWindow == 0 {
		cfg.sessionWindow = defaultSessionWindow
	}
	switch {
	case cfg.idleTimeout == 0:
		cfg.idleTimeout = defaultIdleTimeout
	case cfg.idleTimeout < 0:
		cfg.idleTimeout = 0
	}
	if cfg.maxMessageSize == 0 {
		cfg.maxMessageSize = defaultMaxMessageSize
	}
	if cfg.handshakeTimeout <= 0 {
		cfg.handshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.closeTimeout <= 0 {
		cfg.closeTimeout = defaultCloseTimeout
	}
	if cfg.writeTimeout <= 0 {
		cfg.writeTimeout = defaultWriteTimeout
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Identity is who the peer authenticated as on a server connection.
type Identity struct {
	// Mechanism is the SASL mechanism ("ANONYMOUS", "PLAIN", "EXTERNAL"), or "" when the peer
	// skipped SASL with the plain AMQP header (allowed only with ServerOptions.AllowAnonymous).
	Mechanism string
	// Name is the identity the Authenticator returned, the certificate's common name for EXTERNAL
	// without an Authenticator, or "" for anonymous peers.
	Name string
	// Authzid is the authorization identity the peer asked for, if any.
	Authzid string
}

// Anonymous reports whether the peer did not authenticate.
func (id Identity) Anonymous() bool { return id.Mechanism == "" || id.Mechanism == mechAnonymous }

// outFrame is one AMQP frame waiting for the writer. body and payload must not change once queued.
type outFrame struct {
	ch      uint16
	body    frames.FrameBody
	payload []byte
}

// inFrame is one performative from the reader to a session. Everything in it is owned by the
// receiver (the reader copies what it decoded from its buffer).
type inFrame struct {
	perf    frames.Performative
	payload []byte
}

var connIDs atomic.Uint64

// Conn is an AMQP connection, client or server side. Its methods are safe for concurrent use.
//
// Goroutines: one reader (decodes frames, handles open/close/begin, routes the rest to sessions),
// one writer (drains its queue into one buffer, writes it, sends heartbeats), one per session
// (owns the session's and its links' state), and one per pending peer attach (the LinkHandler).
type Conn struct {
	cfg    connConfig
	nc     net.Conn
	server bool
	log    *slog.Logger

	// Set during the handshake, read-only afterwards.
	fr             *frames.Reader
	localOpen      *frames.Open
	remoteOpen     *frames.Open
	identity       Identity
	tlsState       *tls.ConnectionState
	id             uint64
	peerMaxFrame   uint32 // largest frame this side writes
	peerChannelMax uint16
	peerIdle       time.Duration // the peer's idle-time-out; heartbeats go at half of it

	writeq     chan outFrame
	closeq     chan *frames.Close // the close performative; sent once, before closing closes
	closing    chan struct{}      // closed when the connection starts to end: sessions stop
	readerDone chan struct{}
	writerDone chan struct{}
	done       chan struct{} // closed when everything stopped and the socket is closed

	goroutines     tracker
	pendingAttachN atomic.Int32 // LinkHandler calls in progress

	mu           sync.Mutex
	byLocal      map[uint16]*Session // sessions by our channel
	byRemote     map[uint16]*Session // sessions by the peer's channel
	linkNames    map[linkKey]bool
	closeStarted bool
	localErr     *Error
	remoteErr    *Error
	cause        error
	err          error // the final *ConnError, set before done closes
}

type linkKey struct {
	name string
	role frames.Role // this side's role
}

func newConn(nc net.Conn, cfg connConfig, server bool) *Conn {
	cfg.normalize()
	id := connIDs.Add(1)
	role := "client"
	if server {
		role = "server"
	}
	c := &Conn{
		id:         id,
		cfg:        cfg,
		nc:         nc,
		server:     server,
		log:        cfg.logger.With("conn_id", id, "role", role, "remote_addr", nc.RemoteAddr().String()),
		closeq:     make(chan *frames.Close, 1),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		byLocal:    make(map[uint16]*Session),
		byRemote:   make(map[uint16]*Session),
		linkNames:  make(map[linkKey]bool),
	}
	return c
}

// ID returns the connection's number in this process, the conn_id of its logs.
func (c *Conn) ID() uint64 { return c.id }

// ContainerID returns this side's container-id.
func (c *Conn) ContainerID() string { return c.cfg.containerID }

// RemoteContainerID returns the peer's container-id.
func (c *Conn) RemoteContainerID() string { return c.remoteOpen.ContainerID }

// RemoteOpen returns the peer's open performative (hostname, capabilities, properties). Read-only.
func (c *Conn) RemoteOpen() *frames.Open { return c.remoteOpen }

// Identity returns who the peer authenticated as (server connections).
func (c *Conn) Identity() Identity { return c.identity }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns this side's network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// TLSState returns the TLS connection state, or nil when the connection is not encrypted by this
// engine (a TLS-terminating WebSocket in front of it is invisible here).
func (c *Conn) TLSState() *tls.ConnectionState { return c.tlsState }

// Logger returns the connection's logger (with conn_id and remote_addr).
func (c *Conn) Logger() *slog.Logger { return c.log }

// OfferedCapability reports whether the peer offered capability sym in its open, such as
// AnonymousRelay.
func (c *Conn) OfferedCapability(sym frames.Symbol) bool {
	for _, s := range c.remoteOpen.OfferedCapabilities {
		if s == sym {
			return true
		}
	}
	return false
}

// Done is closed when the connection has ended and all its goroutines have exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the *ConnError that ended the connection, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection without an error and waits (at most the close timeout, 5s) for the
// peer's close. It returns nil for a clean close, else the *ConnError.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout+time.Second)
	defer cancel()
	return c.CloseWithError(ctx, nil)
}

// CloseWithError closes the connection sending e in close (nil for a clean close) and waits for
// the peer's close, the close timeout or ctx. It returns nil when the connection ended cleanly
// (neither side sent an error), else the *ConnError or ctx's error.
func (c *Conn) CloseWithError(ctx context.Context, e *Error) error {
	c.closeWith(e, nil)
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	var ce *ConnError
	if errors.As(c.err, &ce) && ce.RemoteErr == nil && (ce.LocalErr == nil || ce.LocalErr == e) {
		return nil
	}
	return c.err
}

// closeWith starts the connection's end: it queues close(e) for the writer, stops the sessions and
// bounds the wait for the peer's close. Later calls do nothing. AMQP 1.0 §2.4.3: after close,
// nothing else is written; the reader keeps reading (discarding) until the peer's close.
func (c *Conn) closeWith(e *Error, cause error) {
	c.mu.Lock()
	if c.closeStarted {
		c.mu.Unlock()
		return
	}
	c.closeStarted = true
	c.localErr = e
	if c.cause == nil {
		c.cause = cause
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.closeTimeout))
	c.mu.Unlock()
	if e != nil {
		c.log.Debug("closing connection", "condition", string(e.Condition), "description", e.Description)
	}
	c.closeq <- &frames.Close{Error: e.toFrame()} // capacity 1, sent once
	close(c.closing)
}

// abandon ends the connection without a close frame (the socket is gone).
func (c *Conn) abandon(cause error) {
	c.mu.Lock()
	if c.closeStarted {
		c.mu.Unlock()
		return
	}
	c.closeStarted = true
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	close(c.closing)
}

func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// connErr is the error sessions and links see when the connection ends under them.
func (c *Conn) connErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return &ConnError{RemoteErr: c.remoteErr, LocalErr: c.localErr, Err: c.cause}
}

// recoverPanic turns a panic on one of the connection's goroutines into close(amqp:internal-error):
// the state that goroutine owned cannot be trusted any more, but the process survives.
func (c *Conn) recoverPanic(where string) {
	if r := recover(); r != nil {
		c.log.Error("panic in AMQP connection", "where", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.closeWith(&Error{Condition: frames.CondInternalError, Description: "internal error"}, fmt.Errorf("panic in %s: %v", where, r))
	}
}

// start runs the reader and the writer after a successful handshake.
func (c *Conn) start() {
	// Made here, not in newConn: a socket still in its handshake (or one that never finishes
	// it) costs no write queue, about 12 KiB.
	c.writeq = make(chan outFrame, writeQueue)
	c.fr.SetMaxFrameSize(c.cfg.maxFrameSize)
	c.goroutines.Go(c.readLoop)
	c.goroutines.Go(c.writeLoop)
}

// wait blocks until the reader has stopped, gives the writer a bounded time to say goodbye, closes
// the socket, waits for every goroutine and then closes done.
func (c *Conn) wait() {
	<-c.readerDone
	c.abandon(nil)
	t := time.NewTimer(c.cfg.writeTimeout)
	select {
	case <-c.writerDone:
	case <-t.C:
	}
	t.Stop()
	_ = c.nc.Close()
	c.goroutines.Close()
	c.goroutines.Wait()
	c.mu.Lock()
	c.err = &ConnError{RemoteErr: c.remoteErr, LocalErr: c.localErr, Err: c.cause}
	c.mu.Unlock()
	c.log.Debug("connection ended", "err", c.err)
	close(c.done)
	if c.cfg.onClose != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					c.log.Error("panic in OnConnClose", "panic", fmt.Sprint(r))
				}
			}()
			c.cfg.onClose(c, c.err)
		}()
	}
}

// ---- reader -------------------------------------------------------------------------------------

func (c *Conn) armReadDeadline() {
	if c.cfg.idleTimeout <= 0 {
		return
	}
	c.mu.Lock()
	if !c.closeStarted {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.idleTimeout))
	}
	c.mu.Unlock()
}

func (c *Conn) readLoop() {
	defer close(c.readerDone)
	defer c.recoverPanic("reader")
	for {
		c.armReadDeadline()
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if f.Empty() { // AMQP 1.0 §2.4.5: a heartbeat; the deadline above was the point
			continue
		}
		if f.Type != frames.FrameAMQP {
			c.closeWith(errorf(frames.CondConnectionFramingError, "SASL frame after open"), nil)
			continue
		}
		if c.dispatch(f) {
			return
		}
	}
}

// readFailed handles the end of the byte stream or a frame that cannot be read.
func (c *Conn) readFailed(err error) {
	c.mu.Lock()
	started := c.closeStarted
	c.mu.Unlock()
	if started { // we sent close and waited for the peer's: EOF or the close timeout ends it
		return
	}
	var ne net.Error
	var de *frames.DecodeError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		// AMQP 1.0 §2.4.5: the peer let our idle-time-out expire.
		c.closeWith(errorf(frames.CondResourceLimitExceeded, "idle timeout: nothing received for %v", c.cfg.idleTimeout), err)
	case errors.As(err, &de) && de.Err == nil:
		// A frame header we refuse (size beyond max-frame-size, doff, type): the stream cannot be
		// resynchronized, so close and stop reading. AMQP 1.0 §2.3.1.
		c.closeWith(fromFrame(de.AMQPError()), err)
	default:
		c.abandon(err)
	}
}

// dispatch handles one AMQP frame; it reports whether the reader is done (the peer's close).
func (c *Conn) dispatch(f frames.Frame) bool {
	perf, payload, err := decodeFrameBody(f.Body)
	if err != nil {
		c.closeWith(asError(err), err)
		return false
	}
	if c.cfg.trace {
		c.log.Debug("frame received", "channel", f.Channel, "performative", fmt.Sprintf("%T%+v", perf, perf), "payload_bytes", len(payload))
	}
	if cl, ok := perf.(*frames.Close); ok {
		c.mu.Lock()
		c.remoteErr = fromFrame(cl.Error)
		c.mu.Unlock()
		c.closeWith(nil, nil) // answer with our close unless already sent. AMQP 1.0 §2.7.9
		return true
	}
	if c.isClosing() { // DISCARDING / CLOSE_SENT: only the peer's close matters now
		return false
	}
	switch p := perf.(type) {
	case *frames.Open:
		c.closeWith(errorf(frames.CondIllegalState, "open received twice"), nil)
	case *frames.Begin:
		c.handleBegin(f.Channel, p)
	default:
		c.mu.Lock()
		s := c.byRemote[f.Channel]
		if _, isEnd := p.(*frames.End); isEnd && s != nil {
			delete(c.byRemote, f.Channel) // the peer's channel is free again once it ended. AMQP 1.0 §2.5.5
		}
		c.mu.Unlock()
		if s == nil {
			c.closeWith(errorf(frames.CondNotAllowed, "%T on unmapped channel %d", perf, f.Channel), nil)
			return false
		}
		select {
		case s.in <- inFrame{perf: perf, payload: payload}:
		case <-s.done: // the session ended (after an error); its frames are discarded
		case <-c.closing:
		}
	}
	return false
}

// decodeFrameBody decodes a performative. The reader's buffer is reused for the next frame, so
// what is kept is copied: a transfer's delivery-tag and payload, or the whole body of the other
// performatives (small, and their binary fields alias it).
func decodeFrameBody(body []byte) (frames.Performative, []byte, error) {
	code, _, err := frames.PeekDescriptor(body)
	if err != nil {
		return nil, nil, err
	}
	if code == frames.DescriptorTransfer {
		t := new(frames.Transfer)
		n, err := t.Decode(body)
		if err != nil {
			return nil, nil, err
		}
		if t.State != nil { // rare (resume, transactions): decode again from a private copy
			body = bytes.Clone(body)
			if _, err := t.Decode(body); err != nil {
				return nil, nil, err
			}
			return t, body[n:], nil
		}
		t.DeliveryTag = bytes.Clone(t.DeliveryTag)
		var payload []byte
		if len(body) > n {
			payload = bytes.Clone(body[n:])
		}
		return t, payload, nil
	}
	p, payload, err := frames.DecodePerformative(bytes.Clone(body))
	return p, payload, err
}

// handleBegin maps a session: an answer to our begin, or a new session started by the peer.
// AMQP 1.0 §2.5.2, §2.7.2.
func (c *Conn) handleBegin(ch uint16, b *frames.Begin) {
	if ch > c.cfg.channelMax {
		c.closeWith(errorf(frames.CondConnectionFramingError, "channel %d exceeds channel-max %d", ch, c.cfg.channelMax), nil)
		return
	}
	c.mu.Lock()
	if c.byRemote[ch] != nil {
		c.mu.Unlock()
		c.closeWith(errorf(frames.CondNotAllowed, "begin on channel %d, which is in use", ch), nil)
		return
	}
	if b.RemoteChannel.Valid {
		s := c.byLocal[b.RemoteChannel.V]
		if s == nil || !s.awaitingBegin.Load() {
			c.mu.Unlock()
			c.closeWith(errorf(frames.CondNotAllowed, "begin answers channel %d, which has no begin pending", b.RemoteChannel.V), nil)
			return
		}
		s.awaitingBegin.Store(false)
		s.remoteCh = ch
		c.byRemote[ch] = s
		c.mu.Unlock()
		select {
		case s.in <- inFrame{perf: b}:
		case <-s.done:
		case <-c.closing:
		}
		return
	}
	local, ok := c.allocChannelLocked()
	if !ok {
		c.mu.Unlock()
		c.closeWith(errorf(frames.CondResourceLimitExceeded, "no free channel for a new session"), nil)
		return
	}
	s := newSession(c, local, nil)
	s.remoteCh = ch
	c.byLocal[local] = s
	c.byRemote[ch] = s
	c.mu.Unlock()
	s.beginFromPeer(b)
	if !c.goroutines.Go(s.run) {
		c.mu.Lock()
		delete(c.byLocal, local)
		delete(c.byRemote, ch)
		c.mu.Unlock()
	}
}

// allocChannelLocked returns the lowest free local channel within both channel-max values.
func (c *Conn) allocChannelLocked() (uint16, bool) {
	limit := min(c.cfg.channelMax, c.peerChannelMax)
	for ch := uint32(0); ch <= uint32(limit); ch++ {
		if c.byLocal[uint16(ch)] == nil {
			return uint16(ch), true
		}
	}
	return 0, false
}

func (c *Conn) releaseSession(s *Session) {
	c.mu.Lock()
	if c.byLocal[s.localCh] == s {
		delete(c.byLocal, s.localCh)
	}
	if c.byRemote[s.remoteCh] == s {
		delete(c.byRemote, s.remoteCh)
	}
	c.mu.Unlock()
}

// claimLinkName reserves a link name for a role on this connection. AMQP 1.0 §2.6.1: a link is
// identified by its name and the roles of its endpoints.
func (c *Conn) claimLinkName(k linkKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.linkNames[k] {
		return false
	}
	c.linkNames[k] = true
	return true
}

func (c *Conn) releaseLinkName(k linkKey) {
	c.mu.Lock()
	delete(c.linkNames, k)
	c.mu.Unlock()
}

// ---- writer -------------------------------------------------------------------------------------

// send queues a frame for the writer; it returns false when the connection is closing.
func (c *Conn) send(f outFrame) bool {
	select {
	case c.writeq <- f:
		return true
	case <-c.closing:
		return false
	}
}

func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	defer c.recoverPanic("writer")
	var tick <-chan time.Time
	if c.peerIdle > 0 {
		// AMQP 1.0 §2.4.5: send something within the peer's idle-time-out; half of it leaves room
		// for delays (the convention of Proton and go-amqp).
		t := time.NewTicker(max(c.peerIdle/2, minHeartbeat))
		defer t.Stop()
		tick = t.C
	}
	var buf []byte
	wrote := false
	for {
		select {
		case f := <-c.writeq:
			// A frame that fails to encode is dropped by appendFrame, which also starts the close;
			// the loop then writes what is left and the close.
			buf = c.appendFrame(buf[:0], f)
			for len(buf) < writeBatch {
				var more bool
				select {
				case f = <-c.writeq:
					more = true
				default:
				}
				if !more {
					break
				}
				buf = c.appendFrame(buf, f)
			}
			if len(buf) == 0 {
				continue
			}
			if !c.write(buf) {
				return
			}
			if cap(buf) > 4*writeBatch {
				buf = nil // a burst of large frames must not pin its buffer
			}
			wrote = true
		case <-tick:
			if !wrote {
				if !c.write(frames.AppendEmptyFrame(buf[:0], 0)) {
					return
				}
			}
			wrote = false
		case cl := <-c.closeq:
			c.writeClose(buf[:0], cl)
			return
		case <-c.closing:
			select {
			case cl := <-c.closeq:
				c.writeClose(buf[:0], cl)
			default: // abandoned: the socket is gone
			}
			return
		}
	}
}

// writeClose writes what is still queued, then close; nothing follows it. AMQP 1.0 §2.4.3.
func (c *Conn) writeClose(buf []byte, cl *frames.Close) {
	for drained := false; !drained; {
		select {
		case f := <-c.writeq:
			buf = c.appendFrame(buf, f)
		default:
			drained = true
		}
	}
	buf, err := frames.AppendFrame(buf, frames.FrameAMQP, 0, cl, nil)
	if err != nil {
		return
	}
	if c.cfg.trace {
		c.log.Debug("frame sent", "channel", 0, "performative", fmt.Sprintf("%T%+v", cl, cl))
	}
	c.write(buf)
}

func (c *Conn) appendFrame(buf []byte, f outFrame) []byte {
	if c.cfg.trace {
		c.log.Debug("frame sent", "channel", f.ch, "performative", fmt.Sprintf("%T%+v", f.body, f.body), "payload_bytes", len(f.payload))
	}
	out, err := frames.AppendFrame(buf, frames.FrameAMQP, f.ch, f.body, f.payload)
	if err != nil {
		// Only values supplied by the application (properties, filters) can fail to encode;
		// the state the frame was meant to carry is lost, so the connection ends.
		c.log.Error("cannot encode frame", "err", err)
		c.closeWith(errorf(frames.CondInternalError, "cannot encode a frame"), err) // never blocks: closeq has room for the one close
	}
	return out
}

func (c *Conn) write(b []byte) bool {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.mu.Lock()
		if c.cause == nil && !c.closeStarted {
			c.cause = err
		}
		c.mu.Unlock()
		c.abandon(err)
		_ = c.nc.Close() // unblocks the reader
		return false
	}
	return true
}

// ---- open exchange (both roles) -----------------------------------------------------------------

func (c *Conn) buildOpen() *frames.Open {
	o := &frames.Open{
		ContainerID:         c.cfg.containerID,
		MaxFrameSize:        c.cfg.maxFrameSize,
		ChannelMax:          c.cfg.channelMax,
		OfferedCapabilities: c.cfg.offered,
		DesiredCapabilities: c.cfg.desired,
		Properties:          c.cfg.properties,
	}
	if c.cfg.hostname != "" {
		o.Hostname = frames.Some(c.cfg.hostname)
	}
	if c.cfg.idleTimeout > 0 {
		// Advertise half of the real timeout, so that a peer heartbeating at (half of) the advertised
		// value is never dropped by scheduling delays. Checklist §1.8; go-amqp#16, rhea#434.
		o.IdleTimeOut = frames.Some(uint32(c.cfg.idleTimeout / 2 / time.Millisecond))
	}
	return o
}

// writeFrameSync writes one frame during the handshake, before the writer runs.
func (c *Conn) writeFrameSync(prefix []byte, typ frames.FrameType, body frames.FrameBody) error {
	b, err := frames.AppendFrame(prefix, typ, 0, body, nil)
	if err != nil {
		return err
	}
	if c.cfg.trace {
		c.log.Debug("frame sent", "channel", 0, "performative", fmt.Sprintf("%T%+v", body, body))
	}
	_, err = c.nc.Write(b)
	return err
}

// readOpen reads the peer's open (AMQP 1.0 §2.4.1: the first frame, at most 512 bytes) and takes
// the negotiated limits from it.
func (c *Conn) readOpen() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		if f.Empty() {
			continue
		}
		if f.Type != frames.FrameAMQP {
			return errorf(frames.CondConnectionFramingError, "expected open, got a SASL frame")
		}
		perf, _, err := frames.DecodePerformative(bytes.Clone(f.Body))
		if err != nil {
			return err
		}
		if c.cfg.trace {
			c.log.Debug("frame received", "channel", f.Channel, "performative", fmt.Sprintf("%T%+v", perf, perf))
		}
		o, ok := perf.(*frames.Open)
		if !ok {
			return errorf(frames.CondIllegalState, "expected open, got %T", perf)
		}
		if o.MaxFrameSize < frames.MinMaxFrameSize {
			return errorf(frames.CondInvalidField, "max-frame-size %d is below 512", o.MaxFrameSize)
		}
		c.remoteOpen = o
		c.peerMaxFrame = min(o.MaxFrameSize, maxOutFrame)
		c.peerChannelMax = o.ChannelMax
		if v, ok := o.IdleTimeOut.Get(); ok && v > 0 {
			c.peerIdle = time.Duration(v) * time.Millisecond
		}
		c.log = c.log.With("container_id", o.ContainerID)
		return nil
	}
}

// failOpen refuses the connection the spec's way after our open went out: close with the error.
// AMQP 1.0 §2.4.2. It writes synchronously and closes the socket.
func (c *Conn) failOpen(e *Error) {
	_ = c.writeFrameSync(nil, frames.FrameAMQP, &frames.Close{Error: e.toFrame()})
	_ = c.nc.Close()
}
