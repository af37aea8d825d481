package gateway

import (
	"errors"
	"net"
	"slices"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/mapping"
	"github.com/isthmus-iot/isthmus/ws"
)

// amqpEnabled reports whether an AMQP listener is configured; AMQP over
// WebSocket (http.amqp_path) is served only then.
func amqpEnabled(cfg *config.Config) bool {
	return cfg.AMQP.Listen != "" || (cfg.AMQP.TLS != nil && cfg.AMQP.TLS.Listen != "")
}

// newAMQPServer builds the AMQP 1.0 server role of the engine (SPEC §4) with
// the bridge deciding every link.
func (s *Server) newAMQPServer(cfg *config.Config) *amqp.Server {
	a := cfg.AMQP
	opts := amqp.ServerOptions{
		ContainerID:      a.ContainerID,
		MaxFrameSize:     uint32(a.MaxFrameSize),
		MaxConnections:   a.MaxConnections,
		MaxMessageSize:   uint64(a.MaxMessageSize),
		IdleTimeout:      a.IdleTimeout,
		HandshakeTimeout: cfg.MQTT.ConnectTimeout,
		// ANONYMOUS is decided at start (SASL mechanisms are offered per
		// connection from these options); credentials against the devices
		// file, which reloads.
		AllowAnonymous:  cfg.Auth.Anonymous,
		SASLMechanisms:  a.SASL,
		PlainWithoutTLS: a.PlainWithoutTLS,
		AnonymousRelay:  true,
		LinkHandler:     s.bridge,
		OnConnOpen:      s.amqpOpened,
		OnConnClose:     s.amqpClosed,
		Logger:          s.log.With("component", "amqp"),
	}
	if opts.ContainerID == "" {
		opts.ContainerID = cfg.Gateway.ID
	}
	if a.TLS != nil {
		opts.TLSConfig = s.certs.config("amqp")
	}
	if cfg.Auth.DevicesFile != "" {
		opts.Authenticator = s.auth.amqpAuthenticator()
	}
	return amqp.NewServer(opts)
}

// newAMQPWS serves the AMQP WebSocket binding at http.amqp_path
// (subprotocols amqp and AMQPWSB10).
func (s *Server) newAMQPWS(cfg *config.Config) *ws.Handler {
	h := ws.NewHandler(ws.Options{
		Subprotocols:     []string{"amqp", "AMQPWSB10"},
		AllowedOrigins:   cfg.HTTP.AllowedOrigins,
		ReadLimit:        int64(max(cfg.AMQP.MaxFrameSize, 512)),
		HandshakeTimeout: cfg.MQTT.ConnectTimeout,
		Logger:           s.log.With("component", "ws"),
	}, func(c net.Conn) {
		_ = s.amqp.ServeConn(c)
	})
	s.mu.Lock()
	s.wsHandles = append(s.wsHandles, h)
	s.mu.Unlock()
	return h
}

func (s *Server) serveAMQP(ln net.Listener) {
	if err := s.amqp.Serve(ln); err != nil && !errors.Is(err, amqp.ErrServerClosed) {
		s.log.Error("AMQP listener stopped", "address", ln.Addr().String(), "error", err)
		s.ready.Store(false)
	}
}

// routesFrom reports whether any route takes messages from the given space.
func routesFrom(r *mapping.Router, k mapping.Kind) bool {
	for _, rt := range r.Routes() {
		if rt.From.Kind == k {
			return true
		}
	}
	return false
}

func sameAMQPExceptTLSFiles(a, b config.AMQP) bool {
	la, lb := "", ""
	if a.TLS != nil {
		la = a.TLS.Listen
	}
	if b.TLS != nil {
		lb = b.TLS.Listen
	}
	if la != lb || !slices.Equal(a.SASL, b.SASL) {
		return false
	}
	a.TLS, b.TLS, a.SASL, b.SASL = nil, nil, nil, nil
	return a.Listen == b.Listen && a.PlainWithoutTLS == b.PlainWithoutTLS && a.MaxFrameSize == b.MaxFrameSize &&
		a.MaxMessageSize == b.MaxMessageSize && a.MaxConnections == b.MaxConnections && a.IdleTimeout == b.IdleTimeout && a.ContainerID == b.ContainerID
}
