// Package gateway is the bridge: it owns the listeners, goroutines and
// lifecycle, and wires the protocol engines to each other, to the devices
// file and to the admin endpoint. It serves MQTT (TCP, TLS, WebSocket) through
// package mqtt and AMQP 1.0 (TCP, TLS, WebSocket) through package amqp, carries
// messages between them by the routes of package mapping, holds the queues,
// authenticates and authorizes both protocols against package devices, and
// publishes presence events.
//
// Lifecycle follows net/http: New builds everything and checks the config,
// Start binds every listener (so "address in use" is reported before anything
// serves), Shutdown(ctx) stops accepting, says goodbye in protocol and waits.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/devices"
	"github.com/isthmus-iot/isthmus/mqtt"
	"github.com/isthmus-iot/isthmus/ws"
)

// ErrServerClosed is returned by Start after Shutdown.
var ErrServerClosed = errors.New("gateway: server closed")

// BuildInfo identifies the binary in logs, metrics and the status API.
type BuildInfo struct {
	Version string
	Commit  string
}

// Listener describes one bound listener, for startup lines and tests.
type Listener struct {
	Name string // config key: mqtt.listen, mqtt.tls.listen, http.listen, admin.listen
	Addr net.Addr
	URL  string // what a client connects to, e.g. mqtt://127.0.0.1:1883 or ws://127.0.0.1:8080/mqtt
}

// Server is the running gateway.
type Server struct {
	log     *slog.Logger
	build   BuildInfo
	metrics *metrics.Set
	broker  *mqtt.Broker
	amqp    *amqp.Server // nil when no AMQP listener is configured
	bridge  *bridge

	cfg    atomic.Pointer[config.Config]
	mqttWS atomic.Pointer[ws.Handler] // swapped on reload (allowed origins)
	amqpWS atomic.Pointer[ws.Handler]
	certs  certStore

	auth      authority
	devMu     sync.Mutex // serializes devices file reloads
	presence  *presence
	amqpConns sync.Map // *amqp.Conn → *amqpConn
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup // the devices watcher and the presence publisher

	reloadOK, reloadFailed *metrics.Counter

	mu        sync.Mutex
	started   bool
	startedAt time.Time
	closing   bool
	ready     atomic.Bool
	bound     []Listener
	netLns    []net.Listener
	https     []*http.Server
	wsHandles []*ws.Handler // every handler ever served, closed at shutdown
	serving   sync.WaitGroup
}

// New builds a gateway for cfg. It binds nothing: call Start.
func New(cfg *config.Config, log *slog.Logger, build BuildInfo) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, build: build, metrics: metrics.NewSet()}
	s.cfg.Store(cfg)
	if err := s.certs.load(cfg); err != nil {
		return nil, err
	}
	router, err := CompileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	reg, sum, err := loadDevices(cfg)
	if err != nil {
		return nil, err
	}
	s.auth.log = log.With("component", "auth")
	s.auth.reg.Store(reg)
	s.auth.sum = sum
	s.auth.anonymous.Store(cfg.Auth.Anonymous)
	s.presence = newPresence(s)
	s.bridge = newBridge(s, router, cfg)
	b, err := mqtt.New(mqtt.Options{
		MaxPacketSize:     int(cfg.MQTT.MaxPacketSize),
		ConnectTimeout:    cfg.MQTT.ConnectTimeout,
		MaxConnections:    cfg.MQTT.MaxConnections,
		SessionExpiryMax:  cfg.MQTT.SessionExpiryMax,
		RetainedMax:       cfg.MQTT.Retained.Max,
		WriteQueue:        cfg.MQTT.WriteQueue,
		ReceiveMax:        cfg.MQTT.ReceiveMax,
		KeepaliveMax:      cfg.MQTT.KeepaliveMax,
		Logger:            log.With("component", "mqtt"),
		Metrics:           s.metrics,
		Interceptor:       s.bridge,
		Auth:              &s.auth,
		ConnectPacketSize: int(cfg.Limits.ConnectPacketSize),
		PublishRate:       float64(cfg.Limits.PublishRate),
		PublishBurst:      cfg.Limits.PublishBurst,
		OnConnected:       s.mqttConnected,
		OnDisconnected:    s.mqttDisconnected,
	})
	if err != nil {
		return nil, err
	}
	s.broker = b
	s.mqttWS.Store(s.newMQTTWS(cfg))
	if amqpEnabled(cfg) {
		s.amqp = s.newAMQPServer(cfg)
		s.amqpWS.Store(s.newAMQPWS(cfg))
	}
	s.registerMetrics()
	return s, nil
}

// Broker gives in-process access to the embedded MQTT broker.
func (s *Server) Broker() *mqtt.Broker { return s.broker }

// Config returns the config in force.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// Listeners returns what Start bound.
func (s *Server) Listeners() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Listener(nil), s.bound...)
}

// Start binds every configured listener and starts serving. On any bind
// error it closes what it bound and returns an error naming the config key.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	if s.started {
		return errors.New("gateway: already started")
	}
	s.started = true
	s.startedAt = time.Now()
	cfg := s.cfg.Load()

	type pending struct {
		name, scheme, path string
		ln                 net.Listener
		serve              func(net.Listener)
	}
	var ps []pending
	bind := func(name, addr, scheme, path string, tlsConf *tls.Config, serve func(net.Listener)) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w (change %s in %s, or stop the process using the port)", name, err, name, cfg.Source)
		}
		ln = s.limitAccept(name, ln, cfg.Limits)
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		ps = append(ps, pending{name, scheme, path, ln, serve})
		return nil
	}
	err := func() error {
		if cfg.MQTT.Listen != "" {
			if err := bind("mqtt.listen", cfg.MQTT.Listen, "mqtt", "", nil, s.serveMQTT(mqtt.TransportTCP)); err != nil {
				return err
			}
		}
		if t := cfg.MQTT.TLS; t != nil && t.Listen != "" {
			if err := bind("mqtt.tls.listen", t.Listen, "mqtts", "", s.certs.config("mqtt"), s.serveMQTT(mqtt.TransportTLS)); err != nil {
				return err
			}
		}
		if s.amqp != nil && cfg.AMQP.Listen != "" {
			if err := bind("amqp.listen", cfg.AMQP.Listen, "amqp", "", nil, s.serveAMQP); err != nil {
				return err
			}
		}
		if t := cfg.AMQP.TLS; s.amqp != nil && t != nil && t.Listen != "" {
			if err := bind("amqp.tls.listen", t.Listen, "amqps", "", s.certs.config("amqp"), s.serveAMQP); err != nil {
				return err
			}
		}
		if cfg.HTTP.Listen != "" {
			scheme, tc := "ws", (*tls.Config)(nil)
			if cfg.HTTP.TLS != nil {
				scheme, tc = "wss", s.certs.config("http")
			}
			if err := bind("http.listen", cfg.HTTP.Listen, scheme, cfg.HTTP.MQTTPath, tc, s.serveHTTP(s.deviceMux(cfg))); err != nil {
				return err
			}
		}
		if cfg.Admin.Listen != "" {
			if err := bind("admin.listen", cfg.Admin.Listen, "http", "/", nil, s.serveHTTP(s.adminMux())); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		for _, p := range ps {
			p.ln.Close()
		}
		return err
	}
	for _, p := range ps {
		l := Listener{Name: p.name, Addr: p.ln.Addr(), URL: p.scheme + "://" + p.ln.Addr().String() + p.path}
		s.bound = append(s.bound, l)
		s.netLns = append(s.netLns, p.ln)
		s.log.Info("listening", "listener", p.name, "url", l.URL)
		if p.name == "http.listen" && s.amqp != nil && cfg.HTTP.AMQPPath != "" {
			s.log.Info("listening", "listener", "http.amqp_path", "url", p.scheme+"://"+p.ln.Addr().String()+cfg.HTTP.AMQPPath)
		}
		s.serving.Add(1)
		go func(p pending) {
			defer s.serving.Done()
			p.serve(p.ln)
		}(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bg.Add(2)
	go func() { defer s.bg.Done(); s.presence.run(ctx) }()
	go func() { defer s.bg.Done(); s.watchDevices(ctx, devicesPoll) }()
	s.ready.Store(true)
	return nil
}

// devicesPoll is how often the devices file is checked for changes.
const devicesPoll = time.Second

func (s *Server) serveMQTT(transport string) func(net.Listener) {
	return func(ln net.Listener) {
		if err := s.broker.Serve(ln, transport); err != nil && !errors.Is(err, mqtt.ErrBrokerClosed) {
			s.log.Error("MQTT listener stopped", "transport", transport, "address", ln.Addr().String(), "error", err)
			s.ready.Store(false)
		}
	}
}

func (s *Server) serveHTTP(h http.Handler) func(net.Listener) {
	cfg := s.cfg.Load()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.MQTT.ConnectTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.https = append(s.https, hs)
	return func(ln net.Listener) {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP listener stopped", "address", ln.Addr().String(), "error", err)
			s.ready.Store(false)
		}
	}
}

// deviceMux routes the device-facing HTTP endpoint: MQTT over WebSocket at
// http.mqtt_path. The handler is looked up per request so a reload can swap it.
func (s *Server) deviceMux(cfg *config.Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.HTTP.MQTTPath, func(w http.ResponseWriter, r *http.Request) {
		s.mqttWS.Load().ServeHTTP(w, r)
	})
	where := "MQTT over WebSocket is served at " + cfg.HTTP.MQTTPath
	if s.amqp != nil && cfg.HTTP.AMQPPath != "" {
		mux.HandleFunc(cfg.HTTP.AMQPPath, func(w http.ResponseWriter, r *http.Request) {
			s.amqpWS.Load().ServeHTTP(w, r)
		})
		where += ", AMQP 1.0 over WebSocket at " + cfg.HTTP.AMQPPath
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: "+where, http.StatusNotFound)
	})
	return mux
}

func (s *Server) newMQTTWS(cfg *config.Config) *ws.Handler {
	transport := mqtt.TransportWS
	if cfg.HTTP.TLS != nil {
		transport = mqtt.TransportWSS
	}
	h := ws.NewHandler(ws.Options{
		Subprotocols:     []string{"mqtt", "mqttv3.1"},
		AllowedOrigins:   cfg.HTTP.AllowedOrigins,
		ReadLimit:        int64(cfg.MQTT.MaxPacketSize),
		HandshakeTimeout: cfg.MQTT.ConnectTimeout,
		Logger:           s.log.With("component", "ws"),
	}, func(c net.Conn) {
		_ = s.broker.ServeConn(c, transport)
	})
	s.mu.Lock()
	s.wsHandles = append(s.wsHandles, h)
	s.mu.Unlock()
	return h
}

// Reload applies a new, already validated config. Settings that need new
// sockets (listen addresses, TLS on/off, limits baked into the broker) keep
// their old values until restart; Reload says which in the log. It returns the
// keys that were not applied.
func (s *Server) Reload(next *config.Config) ([]string, error) {
	prev := s.cfg.Load()
	// Everything that can fail is read and checked before anything changes,
	// so a failed reload leaves the running state exactly as it was.
	router, err := CompileRoutes(next)
	if err != nil {
		s.reloadFailed.Inc()
		return nil, err
	}
	var restart []string
	reloadDevices := (prev.Auth.DevicesFile == "") == (next.Auth.DevicesFile == "")
	if !reloadDevices {
		// AMQP offers PLAIN only with a devices file, decided at start.
		restart = append(restart, "auth.devices_file")
	}
	var reg *devices.Registry
	var sum [sha256.Size]byte
	if reloadDevices && next.Auth.DevicesFile != "" {
		if reg, sum, err = loadDevices(next); err != nil {
			s.reloadFailed.Inc()
			s.log.Error("devices file not reloaded; the previous one stays in force", "file", next.Auth.DevicesFile, "error", err)
			return nil, err
		}
	}
	if err := s.certs.load(next); err != nil {
		s.reloadFailed.Inc()
		return nil, err
	}
	if prev.MQTT != next.MQTT && !sameMQTTExceptTLSFiles(prev.MQTT, next.MQTT) {
		restart = append(restart, "mqtt")
	}
	if prev.HTTP.Listen != next.HTTP.Listen || prev.HTTP.MQTTPath != next.HTTP.MQTTPath || (prev.HTTP.TLS == nil) != (next.HTTP.TLS == nil) {
		restart = append(restart, "http")
	}
	if prev.Admin != next.Admin {
		restart = append(restart, "admin")
	}
	if !sameAMQPExceptTLSFiles(prev.AMQP, next.AMQP) {
		restart = append(restart, "amqp")
	}
	if prev.Limits != next.Limits {
		restart = append(restart, "limits")
	}
	if prev.Auth.Anonymous != next.Auth.Anonymous && s.amqp != nil {
		restart = append(restart, "auth.anonymous (AMQP; MQTT applies it now)")
	}
	if reloadDevices && next.Auth.DevicesFile != "" {
		s.applyDevices(next, reg, sum)
	}
	s.auth.anonymous.Store(next.Auth.Anonymous)
	s.cfg.Store(next)
	s.bridge.setRouter(router)
	s.mqttWS.Store(s.newMQTTWS(next))
	if s.amqp != nil {
		s.amqpWS.Store(s.newAMQPWS(next))
	}
	s.reloadOK.Inc()
	return restart, nil
}

func sameMQTTExceptTLSFiles(a, b config.MQTT) bool {
	// TLS certificate and key files are re-read on reload; only the TLS
	// listen address and on/off need a restart.
	la, lb := "", ""
	if a.TLS != nil {
		la = a.TLS.Listen
	}
	if b.TLS != nil {
		lb = b.TLS.Listen
	}
	a.TLS, b.TLS = nil, nil
	return a == b && la == lb
}

// Ready reports whether every listener is up and the gateway is not stopping.
func (s *Server) Ready() bool { return s.ready.Load() }

// Shutdown stops accepting on every listener, disconnects clients in protocol
// (MQTT 5 DISCONNECT 0x8B), and waits until they are gone or ctx is done, then
// closes what is left. It returns ctx.Err() when it had to force.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	s.ready.Store(false)
	https, handles := s.https, s.wsHandles
	s.mu.Unlock()

	var errs []error
	// Device-facing HTTP first: stop upgrades; hijacked WebSockets are ours to
	// close, which the broker does with its goodbye below.
	for _, hs := range https {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.amqp != nil {
		if err := s.amqp.Shutdown(ctx); err != nil && !errors.Is(err, amqp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.bridge.close()
	if err := s.broker.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.bgCancel != nil {
		s.bgCancel()
		s.bg.Wait()
	}
	for _, h := range handles {
		h.Close()
	}
	s.serving.Wait()
	return errors.Join(errs...)
}
