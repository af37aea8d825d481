package gateway

import (
	"net"

	"golang.org/x/time/rate"

	"github.com/isthmus-iot/isthmus/config"
)

// limitAccept caps the rate at which ln hands out new connections
// (limits.connect_rate): a socket over the rate is closed at once, before any
// TLS or protocol work, and counted. A flood of connects then costs an accept
// and a close each, and clients already connected are not starved.
func (s *Server) limitAccept(name string, ln net.Listener, l config.Limits) net.Listener {
	if l.ConnectRate <= 0 {
		return ln
	}
	return &rateListener{
		Listener: ln,
		lim:      rate.NewLimiter(rate.Limit(l.ConnectRate), max(l.ConnectBurst, 1)),
		refused:  s.metrics.GetOrCreateCounter(`isthmus_connections_rejected_total{listener="` + name + `",reason="connect_rate"}`),
	}
}

type rateListener struct {
	net.Listener
	lim     *rate.Limiter
	refused interface{ Inc() }
}

func (l *rateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.lim.Allow() {
			return c, err
		}
		c.Close()
		l.refused.Inc()
	}
}
