package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// ConnOptions configures a client connection (Dial, NewConn). Zero values take the defaults.
type ConnOptions struct {
	// ContainerID is this container's id; default: random.
	ContainerID string
	// Hostname goes into open.hostname and sasl-init.hostname and is the TLS server name;
	// default: the URL's host.
	Hostname string
	// SASL selects the SASL mechanism; zero: none, or PLAIN when the URL has user info.
	SASL SASLConfig
	// TLSConfig is used for amqps:// (a copy, with ServerName set to the host if empty).
	TLSConfig *tls.Config
	// MaxFrameSize is the largest frame accepted; default 65536, at least 512.
	MaxFrameSize uint32
	// ChannelMax is the highest channel number; default 255.
	ChannelMax uint16
	// IdleTimeout drops a server silent this long; half is advertised. Default 60s; negative: none.
	IdleTimeout time.Duration
	// MaxMessageSize is the default receive limit of links; default 1 MiB.
	MaxMessageSize uint64
	// HandshakeTimeout bounds the header, SASL and open exchange; default 10s (ctx may end it sooner).
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the wait for the peer's close; default 5s.
	CloseTimeout time.Duration
	// WriteTimeout bounds each write; default 30s.
	WriteTimeout time.Duration
	// SessionWindow is the default incoming-window of sessions; default 5000.
	SessionWindow uint32
	// HandleMax is the default handle-max of sessions; default 1023.
	HandleMax uint32
	// Properties, OfferedCapabilities, DesiredCapabilities go into open.
	Properties          frames.Fields
	OfferedCapabilities []frames.Symbol
	DesiredCapabilities []frames.Symbol
	// LinkHandler decides links the server attaches to us; nil refuses them.
	LinkHandler LinkHandler
	// Logger receives the engine's logs; default: discard.
	Logger *slog.Logger
	// TraceFrames logs every frame at debug level.
	TraceFrames bool
}

func (o *ConnOptions) config() connConfig {
	return connConfig{
		containerID:      o.ContainerID,
		hostname:         o.Hostname,
		maxFrameSize:     o.MaxFrameSize,
		channelMax:       o.ChannelMax,
		handleMax:        o.HandleMax,
		sessionWindow:    o.SessionWindow,
		idleTimeout:      o.IdleTimeout,
		maxMessageSize:   o.MaxMessageSize,
		handshakeTimeout: o.HandshakeTimeout,
		closeTimeout:     o.CloseTimeout,
		writeTimeout:     o.WriteTimeout,
		properties:       o.Properties,
		offered:          o.OfferedCapabilities,
		desired:          o.DesiredCapabilities,
		linkHandler:      o.LinkHandler,
		logger:           o.Logger,
		trace:            o.TraceFrames,
	}
}

// Dial connects to an AMQP 1.0 server at addr, "amqp://[user:pass@]host[:port][/vhost]" or
// "amqps://…" (TLS), and runs the handshake under ctx and the handshake timeout.
func Dial(ctx context.Context, addr string, opts *ConnOptions) (*Conn, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("amqp: bad URL: %w", err)
	}
	var o ConnOptions
	if opts != nil {
		o = *opts
	}
	port := u.Port()
	switch u.Scheme {
	case "amqp":
		if port == "" {
			port = strconv.Itoa(frames.Port)
		}
	case "amqps":
		if port == "" {
			port = strconv.Itoa(frames.SecurePort)
		}
	default:
		return nil, fmt.Errorf("amqp: unsupported URL scheme %q (amqp or amqps; WebSocket through NewConn)", u.Scheme)
	}
	host := u.Hostname()
	if o.Hostname == "" {
		o.Hostname = host
	}
	if o.SASL.Mechanism == "" && u.User != nil {
		pass, _ := u.User.Password()
		o.SASL = SASLPlain(u.User.Username(), pass)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	if u.Scheme == "amqps" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = o.Hostname
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("amqp: TLS handshake: %w", err)
		}
		nc = tc
	}
	return NewConn(ctx, nc, &o)
}

// NewConn runs the client handshake on an established connection (TCP, TLS, a WebSocket from
// package ws) and returns the open connection. On failure nc is closed.
func NewConn(ctx context.Context, nc net.Conn, opts *ConnOptions) (*Conn, error) {
	if opts == nil {
		opts = &ConnOptions{}
	}
	c := newConn(nc, opts.config(), false)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	if err := c.clientHandshake(ctx, opts.SASL); err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.start()
	go c.wait() // the connection's owner; ends with the connection
	return c, nil
}

func (c *Conn) clientHandshake(ctx context.Context, sasl SASLConfig) error {
	deadline := time.Now().Add(c.cfg.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Now()) })
	defer stop()
	c.fr = frames.NewReader(c.nc, maxSASLFrame)
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if sasl.Mechanism != "" {
		if _, err := c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL)); err != nil {
			return wrap(err)
		}
		if err := c.expectHeader(frames.ProtocolSASL); err != nil {
			return wrap(err)
		}
		if err := c.clientSASL(sasl); err != nil {
			return wrap(err)
		}
		c.identity = Identity{Mechanism: sasl.Mechanism, Name: sasl.Username, Authzid: sasl.Authzid}
	}
	if _, err := c.nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP)); err != nil {
		return wrap(err)
	}
	if err := c.expectHeader(frames.ProtocolAMQP); err != nil {
		return wrap(err)
	}
	c.fr.SetMaxFrameSize(frames.MinMaxFrameSize)
	c.localOpen = c.buildOpen()
	if err := c.writeFrameSync(nil, frames.FrameAMQP, c.localOpen); err != nil {
		return wrap(err)
	}
	if err := c.readOpen(); err != nil {
		return wrap(err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return nil
}

// expectHeader reads the server's protocol header and checks it is id.
func (c *Conn) expectHeader(id frames.ProtocolID) error {
	h, err := c.fr.ReadProtocolHeader()
	if err != nil && !errors.Is(err, frames.ErrUnsupportedProtocol) {
		return err
	}
	if h.ID != id || err != nil {
		if h.ID == frames.ProtocolSASL && id == frames.ProtocolAMQP {
			return fmt.Errorf("amqp: the server requires SASL (answered %v)", h)
		}
		return fmt.Errorf("amqp: expected protocol header %v, server sent %v", frames.ProtocolHeader{ID: id, Major: 1}, h)
	}
	return nil
}
