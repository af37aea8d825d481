package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/isthmus-iot/isthmus/mqtt/wire"
)

// ErrBrokerClosed is returned by Serve and ServeConn after Shutdown or Close.
var ErrBrokerClosed = errors.New("mqtt: broker closed")

// Transports a connection can arrive on; they label metrics and logs.
const (
	TransportTCP = "tcp"
	TransportTLS = "tls"
	TransportWS  = "ws"
	TransportWSS = "wss"
)

var transports = []string{TransportTCP, TransportTLS, TransportWS, TransportWSS}

// preConnectSlack is how many sockets beyond MaxConnections may be open at once
// while they have not sent CONNECT yet: it lets a client over the limit get a
// polite CONNACK "server busy" instead of a reset, without letting a flood of
// idle sockets grow without bound.
const preConnectSlack = 64

// goodbyeTimeout bounds the write of the shutdown DISCONNECT to one client.
const goodbyeTimeout = time.Second

// maxInflight bounds the QoS > 0 messages stored for one client; beyond it new
// ones are dropped (isthmus_messages_dropped_total{reason="inflight_full"}).
const maxInflight = 1024

// Options configures a Broker. Zero values take the defaults noted.
type Options struct {
	MaxPacketSize    int           // bytes, fixed header included; default 1 MiB
	ConnectTimeout   time.Duration // a socket without a complete CONNECT by then is closed; default 5s
	MaxConnections   int           // connected clients; default 10000
	SessionExpiryMax time.Duration // upper bound on MQTT 5 session expiry; default 24h
	RetainedMax      int           // retained messages kept ($SYS included); 0 = unlimited
	WriteQueue       int           // packets queued to one client before new ones are dropped; default 128
	ReceiveMax       int           // MQTT 5 receive maximum granted to clients; default 1024
	KeepaliveMax     time.Duration // MQTT 5 only: larger client keepalives are lowered to this (server keep alive); 0 = off
	Logger           *slog.Logger  // default: discard
	Metrics          *metrics.Set  // where the isthmus_* MQTT metrics are registered; nil = a private set
	// SlowSubscriberTimeout is how long QoS > 0 publishers are held for a
	// subscriber without room before it is disconnected as a slow consumer;
	// default 10s.
	SlowSubscriberTimeout time.Duration
	// Interceptor, if set, sees every client PUBLISH first and decides when
	// QoS 1 and 2 messages are acknowledged (see Interceptor). Nil: a plain broker.
	Interceptor Interceptor
	// Auth authenticates clients and checks every publish, subscribe and
	// delivery; nil admits everyone to everything.
	Auth Auth
	// ConnectPacketSize caps the CONNECT, read before authentication; 0 or
	// more than MaxPacketSize: MaxPacketSize.
	ConnectPacketSize int
	// PublishRate limits the PUBLISH packets read from one client per second
	// (burst PublishBurst); a faster client is slowed down, not cut. 0: no limit.
	PublishRate  float64
	PublishBurst int
	// OnConnected runs for each client admitted, on its goroutine, before its
	// CONNACK; OnDisconnected once it is gone, with the reason.
	OnConnected    func(ClientInfo)
	OnDisconnected func(ClientInfo, error)
}

func (o *Options) setDefaults() {
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = 1 << 20
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 10000
	}
	if o.SessionExpiryMax <= 0 {
		o.SessionExpiryMax = 24 * time.Hour
	}
	if o.WriteQueue <= 0 {
		o.WriteQueue = 128
	}
	if o.ReceiveMax <= 0 || o.ReceiveMax > math.MaxUint16 {
		o.ReceiveMax = 1024
	}
	if o.SlowSubscriberTimeout <= 0 {
		o.SlowSubscriberTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
}

// Broker is the embedded MQTT broker. Create it with New, feed it listeners
// with Serve and single connections with ServeConn, stop it with Shutdown.
type Broker struct {
	opts      Options
	log       *slog.Logger
	srv       *mochi.Server
	m         *brokerMetrics
	intercept *interception // nil without Options.Interceptor
	stash     outboundStash // see collide.go
	flow      flowControl   // see flow.go
	gateway   *mochi.Client // the in-process client bridged messages are published as

	clients clients       // connected clients (auth.go)
	done    chan struct{} // closed by Shutdown

	closing atomic.Bool
	sockets atomic.Int64 // open sockets, before and after CONNECT
	active  [4]atomic.Int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{} // raw sockets, closed by force at the end of Shutdown
	wg        sync.WaitGroup        // one per connection goroutine
}

// New builds a broker; it accepts nothing until Serve or ServeConn.
func New(opts Options) (*Broker, error) {
	opts.setDefaults()
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(opts.MaxConnections)
	caps.MaximumPacketSize = uint32(opts.MaxPacketSize)
	caps.MaximumClientWritesPending = int32(opts.WriteQueue)
	caps.MaximumSessionExpiryInterval = uint32(min(opts.SessionExpiryMax/time.Second, math.MaxUint32))
	caps.ReceiveMaximum = uint16(opts.ReceiveMax)
	// Messages without an expiry never expire, as on Mosquitto; mochi's
	// default would stamp every MQTT 5 delivery with a 24h expiry.
	caps.MaximumMessageExpiryInterval = 0
	// QoS > 0 messages stored per client, offline sessions included (mochi's
	// default, 8192, is a lot of memory per client on a Pi; Mosquitto's
	// max_queued_messages is 1000).
	caps.MaximumInflight = maxInflight
	// mochi copies a PUBLISH's user properties onto its PUBACK; MQTT.js
	// rejects such acks ("Invalid puback reason code").
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	b.srv = mochi.New(&mochi.Options{
		Capabilities: caps,
		// mochi logs routine events at info; keep them at debug level here.
		Logger:                 slog.New(demote{opts.Logger.Handler()}),
		SysTopicResendInterval: 10, // seconds, as Mosquitto's sys_interval; a Pi need not wake every second
		InlineClient:           true,
		// Small per-client buffers: packets already arrive framed from wire.Conn.
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 2048,
	})
	b.gateway = newGatewayClient(b.srv)
	b.flow.b = b
	b.m = newBrokerMetrics(opts.Metrics, b)
	if opts.Interceptor != nil {
		b.intercept = newInterception(b, opts.Interceptor)
	}
	if err := b.srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add hook: %w", err)
	}
	// With no listeners registered, Serve only starts mochi's housekeeping loop
	// (expiry, delayed wills, $SYS); our accept loops feed it connections.
	if err := b.srv.Serve(); err != nil {
		return nil, fmt.Errorf("mqtt: start: %w", err)
	}
	return b, nil
}

// Serve accepts connections on ln until ln fails or the broker shuts down, and
// serves each as an MQTT client arriving on transport (TransportTCP, TransportTLS).
// It returns ErrBrokerClosed after Shutdown.
func (b *Broker) Serve(ln net.Listener, transport string) error {
	if !b.trackListener(ln, true) {
		return ErrBrokerClosed
	}
	defer b.trackListener(ln, false)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if b.closing.Load() {
				return ErrBrokerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// As net/http: back off on resource exhaustion instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				b.log.Warn("accept failed; retrying", "error", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !b.admit(c) {
			continue
		}
		go b.serve(c, transport)
	}
}

// ServeConn serves one already accepted connection (a WebSocket turned into a
// net.Conn by package ws) and returns when the client is gone.
func (b *Broker) ServeConn(c net.Conn, transport string) error {
	if !b.admit(c) {
		return ErrBrokerClosed
	}
	return b.serve(c, transport)
}

// admit counts and tracks a new socket, or closes it when the broker is
// closing or the socket cap is reached.
func (b *Broker) admit(c net.Conn) bool {
	if n := b.sockets.Add(1); b.closing.Load() || n > int64(b.opts.MaxConnections+preConnectSlack) {
		b.sockets.Add(-1)
		c.Close()
		if !b.closing.Load() {
			b.m.rejected("max_connections")
		}
		return false
	}
	b.mu.Lock()
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	return true
}

func (b *Broker) serve(c net.Conn, transport string) (err error) {
	idx := transportIndex(transport)
	connected := false
	defer func() {
		if p := recover(); p != nil {
			// A panic in mochi must cost one connection, never the process.
			b.log.Error("panic serving MQTT connection; connection closed", "panic", p, "remote", c.RemoteAddr().String())
			b.m.rejected("panic")
			err = fmt.Errorf("mqtt: panic: %v", p)
		}
		c.Close()
		if connected {
			b.active[idx].Add(-1)
		}
		b.sockets.Add(-1)
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		b.wg.Done()
	}()
	b.m.accepted.Inc()
	gc := wire.NewConn(c, wire.Config{
		MaxPacketSize:     b.opts.MaxPacketSize,
		ConnectPacketSize: b.opts.ConnectPacketSize,
		ConnectTimeout:    b.opts.ConnectTimeout,
		OnReject: func(e *wire.Error) {
			b.m.rejected(rejectReason(e))
			b.log.Debug("MQTT packet refused; connection closed", "remote", c.RemoteAddr().String(), "transport", transport, "reason_code", e.Reason, "error", e.Msg)
		},
	})
	// mochi sees the socket only once a valid CONNECT is in: until then a
	// connection costs a goroutine and a small buffer, no broker state.
	if err := gc.Handshake(); err != nil {
		if errors.Is(err, wire.ErrConnectTimeout) {
			b.m.rejected("connect_timeout")
		}
		b.log.Debug("MQTT connection closed before CONNECT", "remote", c.RemoteAddr().String(), "transport", transport, "error", err)
		return err
	}
	connected = true
	b.active[idx].Add(1)
	err = b.srv.EstablishConnection(transport, gc)
	b.connGone(gc, err) // normally done in OnDisconnect; mochi skips it on some early errors
	b.log.Debug("MQTT connection closed", "remote", c.RemoteAddr().String(), "transport", transport, "error", err)
	return err
}

// Publish injects a message as if a client had published it (retain and
// subscriptions apply). Used by the gateway for presence and bridged messages.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.srv.Publish(topic, payload, retain, qos)
}

// Stats returns the PUBLISH packets received from clients and sent to them
// since start.
func (b *Broker) Stats() (received, sent int64) {
	return atomic.LoadInt64(&b.srv.Info.MessagesReceived), atomic.LoadInt64(&b.srv.Info.MessagesSent)
}

// Connections returns the number of connected MQTT clients per transport.
func (b *Broker) Connections() map[string]int64 {
	out := make(map[string]int64, len(transports))
	for i, t := range transports {
		out[t] = b.active[i].Load()
	}
	return out
}

// Shutdown stops accepting, sends every client MQTT 5 DISCONNECT 0x8B (server
// shutting down; 3.1.1 clients are just closed), waits for connections to end
// until ctx is done, then closes what is left and stops mochi.
func (b *Broker) Shutdown(ctx context.Context) error {
	if !b.closing.CompareAndSwap(false, true) {
		return ErrBrokerClosed
	}
	close(b.done)
	b.mu.Lock()
	for ln := range b.listeners {
		ln.Close()
	}
	b.mu.Unlock()

	// Goodbyes run concurrently, each bounded by a write deadline, so one client
	// that stopped reading cannot hold the others (mochi issue 488).
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Net.Conn == nil || cl.Closed() {
			continue
		}
		go func(cl *mochi.Client) {
			if cl.Properties.ProtocolVersion < 5 {
				cl.Stop(packets.ErrServerShuttingDown)
				return
			}
			_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}(cl)
	}

	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		b.closeSockets()
		<-done
	}
	b.srv.Close()
	return err
}

// Close closes every listener and connection at once without goodbyes.
func (b *Broker) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (b *Broker) closeSockets() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *Broker) trackListener(ln net.Listener, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		if b.closing.Load() {
			return false
		}
		b.listeners[ln] = struct{}{}
	} else {
		delete(b.listeners, ln)
	}
	return true
}

func transportIndex(t string) int {
	for i, name := range transports {
		if name == t {
			return i
		}
	}
	return 0
}

func rejectReason(e *wire.Error) string {
	switch e.Reason {
	case 0x95:
		return "packet_too_large"
	case 0x84:
		return "unsupported_version"
	default:
		return "malformed"
	}
}

// demote lowers mochi's info records to debug: mochi announces routine events
// (start, stop) at info, which would double the gateway's own startup lines.
type demote struct{ slog.Handler }

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, l)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.Handler.WithAttrs(as)} }
func (d demote) WithGroup(g string) slog.Handler       { return demote{d.Handler.WithGroup(g)} }

// ClientConnected reports whether a client with this id is connected now.
func (b *Broker) ClientConnected(id string) bool {
	cl, ok := b.srv.Clients.Get(id)
	return ok && !cl.Closed()
}

// Sockets returns the number of open sockets, before and after CONNECT.
func (b *Broker) Sockets() int64 { return b.sockets.Load() }
