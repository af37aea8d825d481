package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// ServerOptions configures a Server. Zero values take the documented defaults.
type ServerOptions struct {
	// ContainerID is this container's id in open; default: random.
	ContainerID string
	// MaxFrameSize is the largest frame accepted (open.max-frame-size); default 65536, at least 512.
	MaxFrameSize uint32
	// MaxMessageSize is the default receive limit of every link (attach.max-message-size);
	// default 1 MiB.
	MaxMessageSize uint64
	// IdleTimeout drops a peer that sent nothing for this long; half of it is advertised in open
	// (AMQP 1.0 §2.4.5). Default 60s; negative: none.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the protocol header, TLS, SASL and open exchange; default 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the wait for the peer's close after ours; default 5s.
	CloseTimeout time.Duration
	// WriteTimeout bounds each write to the socket; default 30s.
	WriteTimeout time.Duration
	// ChannelMax is the highest channel number (sessions per connection − 1); default 255.
	ChannelMax uint16
	// HandleMax is the highest link handle per session; default 1023.
	HandleMax uint32
	// MaxConnections caps the connections served at once, those still in their handshake
	// included; a socket beyond it is closed at once. 0: no cap.
	MaxConnections int
	// SessionWindow is each session's incoming-window in transfer frames; default 5000.
	SessionWindow uint32
	// AllowAnonymous allows SASL ANONYMOUS and the plain "AMQP 0" header without SASL.
	AllowAnonymous bool
	// SASLMechanisms lists the mechanisms to offer, in order. Default: EXTERNAL when the TLS
	// client certificate is verified, PLAIN if an Authenticator is set, ANONYMOUS if
	// AllowAnonymous. Either way a mechanism is offered on a connection only when it can work
	// there: EXTERNAL with a verified client certificate, PLAIN with an Authenticator and TLS
	// (or PlainWithoutTLS), ANONYMOUS with AllowAnonymous.
	SASLMechanisms []string
	// PlainWithoutTLS offers PLAIN on connections without TLS, where the password crosses the
	// network in the clear.
	PlainWithoutTLS bool
	// Authenticator checks PLAIN credentials and EXTERNAL identities.
	Authenticator Authenticator
	// TLSConfig enables TLS: a TLS ClientHello on the listener (amqps) and the AMQP TLS header
	// (id 2, AMQP 1.0 §5.2). nil: TLS is refused.
	TLSConfig *tls.Config
	// AnonymousRelay offers the ANONYMOUS-RELAY capability (sender links with a null target).
	AnonymousRelay bool
	// Properties go into open.properties.
	Properties frames.Fields
	// LinkHandler decides every attach; nil refuses all links with amqp:not-found.
	LinkHandler LinkHandler
	// OnConnOpen runs after the peer's open; an error refuses the connection (open, then close with
	// the error: an *Error chooses the condition). It runs before any session is processed.
	OnConnOpen func(c *Conn) error
	// OnConnClose runs once the connection ended, with its *ConnError.
	OnConnClose func(c *Conn, err error)
	// Logger receives the engine's logs; a child logger per connection adds conn_id and
	// remote_addr. Default: discard.
	Logger *slog.Logger
	// TraceFrames logs every frame at debug level.
	TraceFrames bool
}

// ErrTooManyConnections is ServeConn's answer to a connection beyond ServerOptions.MaxConnections.
var ErrTooManyConnections = errors.New("amqp: too many connections")

// Server serves AMQP 1.0 connections. Its lifecycle follows net/http: Serve, ServeConn, Shutdown,
// Close.
type Server struct {
	opts ServerOptions
	cfg  connConfig
	log  *slog.Logger

	goroutines tracker

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]bool // true once the handshake is over
	idle      chan struct{}  // closed when conns becomes empty during shutdown
}

// NewServer returns a server configured by opts.
func NewServer(opts ServerOptions) *Server {
	cfg := connConfig{
		containerID:      opts.ContainerID,
		maxFrameSize:     opts.MaxFrameSize,
		channelMax:       opts.ChannelMax,
		handleMax:        opts.HandleMax,
		sessionWindow:    opts.SessionWindow,
		idleTimeout:      opts.IdleTimeout,
		maxMessageSize:   opts.MaxMessageSize,
		handshakeTimeout: opts.HandshakeTimeout,
		closeTimeout:     opts.CloseTimeout,
		writeTimeout:     opts.WriteTimeout,
		properties:       opts.Properties,
		linkHandler:      opts.LinkHandler,
		logger:           opts.Logger,
		trace:            opts.TraceFrames,
		onOpen:           opts.OnConnOpen,
		onClose:          opts.OnConnClose,
	}
	cfg.registry = newLinkRegistry()
	if opts.AnonymousRelay {
		cfg.offered = []frames.Symbol{AnonymousRelay}
	}
	if cfg.linkHandler == nil {
		cfg.linkHandler = LinkHandlerFunc(func(*LinkRequest) error {
			return &Error{Condition: frames.CondNotFound, Description: "no such node"}
		})
	}
	cfg.normalize()
	return &Server{
		opts:      opts,
		cfg:       cfg,
		log:       cfg.logger,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*Conn]bool),
	}
}

// mechanismsFor returns the SASL mechanisms offered on a connection with TLS state ts: the
// configured (or default) list, less what cannot work on this connection.
func (srv *Server) mechanismsFor(ts *tls.ConnectionState) []string {
	list := srv.opts.SASLMechanisms
	if list == nil {
		list = []string{mechExternal, mechPlain, mechAnonymous}
	}
	m := make([]string, 0, len(list))
	for _, mech := range list {
		var ok bool
		switch mech {
		case mechExternal:
			ok = ts != nil && len(ts.VerifiedChains) > 0
		case mechPlain:
			ok = srv.opts.Authenticator != nil && (ts != nil || srv.opts.PlainWithoutTLS)
		case mechAnonymous:
			ok = srv.opts.AllowAnonymous
		}
		if ok {
			m = append(m, mech)
		}
	}
	return m
}

// transportTLS returns the TLS state of a connection whose TLS was terminated before the
// engine saw it (a TLS listener, a wss WebSocket), or nil.
func transportTLS(nc net.Conn) *tls.ConnectionState {
	switch t := nc.(type) {
	case *tls.Conn:
		st := t.ConnectionState()
		return &st
	case interface {
		TLSConnectionState() (tls.ConnectionState, bool)
	}:
		if st, ok := t.TLSConnectionState(); ok {
			return &st
		}
	}
	return nil
}

// Serve accepts connections on ln and serves each on its own goroutine. It returns
// ErrServerClosed after Shutdown or Close, or the listener's error.
func (srv *Server) Serve(ln net.Listener) error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return ErrServerClosed
	}
	srv.listeners[ln] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.listeners, ln)
		srv.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if srv.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Like net/http: back off on temporary accept errors (EMFILE and friends).
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Warn("accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !srv.goroutines.Go(func() { _ = srv.ServeConn(nc) }) {
			_ = nc.Close()
			return ErrServerClosed
		}
	}
}

func (srv *Server) isClosed() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closed
}

// ServeConn serves one connection (for example a WebSocket turned into a net.Conn by package ws)
// and returns when it has ended: nil after a clean close, else the *ConnError or handshake error.
// The connection is closed on return.
func (srv *Server) ServeConn(nc net.Conn) (err error) {
	c := newConn(nc, srv.cfg, true)
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		_ = nc.Close()
		return ErrServerClosed
	}
	if max := srv.opts.MaxConnections; max > 0 && len(srv.conns) >= max {
		srv.mu.Unlock()
		_ = nc.Close()
		srv.log.Debug("connection refused: MaxConnections reached", "max_connections", max, "remote_addr", nc.RemoteAddr().String())
		return ErrTooManyConnections
	}
	srv.conns[c] = false
	srv.mu.Unlock()
	defer srv.forget(c)
	defer func() {
		// The connection boundary: a panic in the handshake must not take the process down.
		if r := recover(); r != nil {
			c.log.Error("panic in AMQP handshake", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			_ = c.nc.Close()
			err = fmt.Errorf("amqp: panic in handshake: %v", r)
		}
	}()
	if err := srv.handshake(c); err != nil {
		c.log.Debug("handshake failed", "err", err)
		_ = c.nc.Close()
		return err
	}
	srv.mu.Lock()
	closed := srv.closed
	if !closed {
		srv.conns[c] = true
	}
	srv.mu.Unlock()
	c.log.Debug("connection open", "identity", c.identity.Name, "mechanism", c.identity.Mechanism)
	c.start()
	if closed {
		c.closeWith(errorf(frames.CondConnectionForced, "server shutting down"), nil)
	}
	c.wait()
	var ce *ConnError
	if errors.As(c.err, &ce) && ce.RemoteErr == nil && ce.LocalErr == nil && ce.Err == nil {
		return nil
	}
	return c.err
}

func (srv *Server) forget(c *Conn) {
	srv.mu.Lock()
	delete(srv.conns, c)
	if len(srv.conns) == 0 && srv.idle != nil {
		close(srv.idle)
		srv.idle = nil
	}
	srv.mu.Unlock()
}

// Shutdown stops the listeners, closes every connection with amqp:connection:forced (waiting for
// each peer's close up to the close timeout) and waits for them to end or for ctx.
func (srv *Server) Shutdown(ctx context.Context) error {
	idle := srv.stop(false)
	select {
	case <-idle:
	case <-ctx.Done():
		srv.stop(true)
		return ctx.Err()
	}
	srv.goroutines.Wait()
	return nil
}

// Close stops the listeners and closes every connection at once: close(amqp:connection:forced) is
// written but the peers' answers are not awaited. It waits for the connections' goroutines.
func (srv *Server) Close() error {
	<-srv.stop(true)
	srv.goroutines.Wait()
	return nil
}

func (srv *Server) stop(hard bool) <-chan struct{} {
	srv.mu.Lock()
	srv.closed = true
	srv.goroutines.Close()
	for ln := range srv.listeners {
		_ = ln.Close()
	}
	conns := make(map[*Conn]bool, len(srv.conns))
	for c, open := range srv.conns {
		conns[c] = open
	}
	idle := make(chan struct{})
	if len(srv.conns) == 0 {
		close(idle)
	} else if srv.idle == nil {
		srv.idle = idle
	} else {
		idle = srv.idle
	}
	srv.mu.Unlock()
	for c, open := range conns {
		if !open {
			_ = c.nc.Close() // still in the handshake
			continue
		}
		c.closeWith(errorf(frames.CondConnectionForced, "server shutting down"), nil)
		if hard {
			_ = c.nc.SetReadDeadline(time.Now())
		}
	}
	return idle
}

// ---- handshake ----------------------------------------------------------------------------------

// prefixConn replays bytes already read before the rest of the stream (the first byte of a TLS
// ClientHello that told us it was TLS).
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// handshake runs the server's steps under the handshake deadline: TLS detection, protocol
// headers (AMQP 1.0 §2.2), TLS (§5.2), SASL (§5.3), open (§2.4.1).
func (srv *Server) handshake(c *Conn) error {
	deadline := time.Now().Add(c.cfg.handshakeTimeout)
	_ = c.nc.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var hdr [frames.ProtocolHeaderSize]byte
	if _, err := io.ReadFull(c.nc, hdr[:1]); err != nil {
		return err
	}
	// A TLS listener has finished its handshake by the first read.
	c.tlsState = transportTLS(c.nc)
	tlsDone := c.tlsState != nil
	if frames.LooksLikeTLS(hdr[0]) && !tlsDone {
		// amqps: a ClientHello without an AMQP TLS header (Proton autodetects this the same way).
		if srv.opts.TLSConfig == nil {
			return errors.New("amqp: TLS ClientHello but no TLS configured")
		}
		if err := srv.startTLS(ctx, c, &prefixConn{Conn: c.nc, prefix: []byte{hdr[0]}}); err != nil {
			return err
		}
		tlsDone = true
		if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
			return err
		}
	} else if _, err := io.ReadFull(c.nc, hdr[1:]); err != nil {
		return err
	}
	preferred := frames.ProtocolAMQP
	if len(srv.mechanismsFor(c.tlsState)) > 0 || srv.opts.TLSConfig != nil {
		preferred = frames.ProtocolSASL
	}
	for {
		h, err := frames.ParseProtocolHeader(hdr[:])
		if err != nil {
			// AMQP 1.0 §2.2: answer an unsupported header with one we support, then close.
			_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, preferred))
			return fmt.Errorf("amqp: protocol header %q: %w", hdr[:], err)
		}
		switch h.ID {
		case frames.ProtocolTLS:
			if tlsDone || srv.opts.TLSConfig == nil {
				_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, preferred))
				return errors.New("amqp: TLS header refused")
			}
			if _, err := c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolTLS)); err != nil {
				return err
			}
			if err := srv.startTLS(ctx, c, c.nc); err != nil {
				return err
			}
			tlsDone = true
			if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
				return err
			}
			continue
		case frames.ProtocolSASL:
			if len(srv.mechanismsFor(c.tlsState)) == 0 {
				// sasl-mechanisms may not be empty (AMQP 1.0 §5.3.3.1). When TLS would make a
				// mechanism possible (PLAIN, EXTERNAL), say so with the TLS header (§2.2: answer a
				// header with one that is supported, then close).
				answer := frames.ProtocolSASL
				if srv.opts.TLSConfig != nil && !tlsDone {
					answer = frames.ProtocolTLS
				}
				_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, answer))
				return errors.New("amqp: no SASL mechanism can be offered on this connection: PLAIN needs TLS (or PlainWithoutTLS), EXTERNAL a verified client certificate, ANONYMOUS AllowAnonymous")
			}
			if _, err := c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL)); err != nil {
				return err
			}
			c.fr = frames.NewReader(c.nc, maxSASLFrame)
			id, err := c.serverSASL(ctx, srv)
			if err != nil {
				return err
			}
			c.identity = id
			// After the outcome the client sends its AMQP header; ours goes only after it arrived
			// (rhea stalls when outcome, header and open arrive together; checklist §1.3).
			h2, err := c.fr.ReadProtocolHeader()
			if err != nil {
				if errors.Is(err, frames.ErrUnsupportedProtocol) {
					_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
				}
				return err
			}
			if h2.ID != frames.ProtocolAMQP {
				_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
				return fmt.Errorf("amqp: expected the AMQP header after SASL, got %v", h2)
			}
		case frames.ProtocolAMQP:
			if !srv.opts.AllowAnonymous {
				// SASL is required: answer with the header we want and close. Checklist §1.3.
				_, _ = c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL))
				return errors.New("amqp: plain AMQP header refused: SASL required")
			}
			c.fr = frames.NewReader(c.nc, frames.MinMaxFrameSize)
		}
		break
	}
	c.fr.SetMaxFrameSize(frames.MinMaxFrameSize) // AMQP 1.0 §2.4.1: 512 until both opens were seen
	c.localOpen = c.buildOpen()
	if err := c.writeFrameSync(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP), frames.FrameAMQP, c.localOpen); err != nil {
		return err
	}
	if err := c.readOpen(); err != nil {
		c.failOpen(asError(err))
		return err
	}
	if c.cfg.onOpen != nil {
		if err := c.cfg.onOpen(c); err != nil {
			c.failOpen(asError(err))
			return err
		}
	}
	_ = c.nc.SetDeadline(time.Time{})
	return nil
}

func (srv *Server) startTLS(ctx context.Context, c *Conn, under net.Conn) error {
	tc := tls.Server(under, srv.opts.TLSConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("amqp: TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.nc = tc
	return nil
}
