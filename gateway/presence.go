package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/time/rate"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/mqtt"
)

// presenceEvent is the JSON published when a client connects or goes
// (SPEC §7; docs/security.md).
type presenceEvent struct {
	Event     string    `json:"event"` // connected | disconnected
	ID        string    `json:"id"`    // the device id; "" for an anonymous client
	ClientID  string    `json:"client_id"`
	Protocol  string    `json:"protocol"`  // mqtt | amqp
	Transport string    `json:"transport"` // tcp, tls, ws, wss
	Remote    string    `json:"remote"`
	Time      time.Time `json:"time"`
	Gateway   string    `json:"gateway"`
	Reason    string    `json:"reason,omitempty"`
}

// deviceStats are an identity's counters for /api/v1/devices.
type deviceStats struct {
	online      int
	connections uint64 // since start
	messagesIn  uint64 // of connections that ended; live ones are added on read
	lastSeen    time.Time
}

// presence publishes events from one goroutine, so that a slow AMQP
// subscriber never holds a connecting client. Events beyond the queue are
// dropped and counted.
type presence struct {
	s       *Server
	ch      chan presenceEvent
	dropped *metrics.Counter

	mu    sync.Mutex
	stats map[string]*deviceStats // by identity; "" for anonymous clients
}

func newPresence(s *Server) *presence {
	return &presence{s: s, ch: make(chan presenceEvent, 1024), stats: make(map[string]*deviceStats),
		dropped: s.metrics.NewCounter(`isthmus_presence_events_dropped_total`)}
}

func (p *presence) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-p.ch:
			p.publish(ev)
		}
	}
}

func (p *presence) note(ev presenceEvent, messagesIn uint64) {
	p.mu.Lock()
	st := p.stats[ev.ID]
	if st == nil {
		st = &deviceStats{}
		p.stats[ev.ID] = st
	}
	st.lastSeen = ev.Time
	if ev.Event == "connected" {
		st.online++
		st.connections++
	} else {
		st.online--
		st.messagesIn += messagesIn
	}
	p.mu.Unlock()
	select {
	case p.ch <- ev:
	default:
		p.dropped.Inc()
	}
}

func (p *presence) snapshot(id string) deviceStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.stats[id]; st != nil {
		return *st
	}
	return deviceStats{}
}

func (p *presence) publish(ev presenceEvent) {
	cfg := p.s.cfg.Load()
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if t := cfg.Auth.Presence.MQTTTopic; t != "" {
		who := ev.ID
		if who == "" {
			who = ev.ClientID
		}
		_ = p.s.broker.Publish(t+"/"+topicLevel(who), body, false, 0)
	}
	if a := cfg.Auth.Presence.AMQPAddress; a != "" && p.s.amqp != nil {
		msg := &frames.Message{
			Properties: &frames.MessageProperties{
				ContentType: frames.Some(frames.Symbol("application/json")),
				Subject:     frames.Some(ev.Event),
			},
			Data: [][]byte{body},
		}
		p.s.bridge.toTopic(a, msg, true, false)
	}
}

// topicLevel makes a client id safe as one topic level: '/', '+', '#' and
// NUL would split the level or make it a wildcard, so they are
// percent-encoded (and '%' itself, to keep the mapping reversible).
func topicLevel(s string) string {
	if s == "" {
		return "%00"
	}
	if !strings.ContainsAny(s, "/+#%\x00") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '/', '+', '#', '%', 0:
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *Server) mqttConnected(c mqtt.ClientInfo) {
	s.presence.note(presenceEvent{Event: "connected", ID: c.Identity, ClientID: c.ClientID, Protocol: "mqtt",
		Transport: c.Transport, Remote: c.RemoteAddr, Time: time.Now().UTC(), Gateway: s.cfg.Load().Gateway.ID}, 0)
}

func (s *Server) mqttDisconnected(c mqtt.ClientInfo, err error) {
	ev := presenceEvent{Event: "disconnected", ID: c.Identity, ClientID: c.ClientID, Protocol: "mqtt",
		Transport: c.Transport, Remote: c.RemoteAddr, Time: time.Now().UTC(), Gateway: s.cfg.Load().Gateway.ID}
	if err != nil {
		ev.Reason = err.Error()
	}
	s.presence.note(ev, c.MessagesIn)
}

// amqpConn is the gateway's bookkeeping of an open AMQP connection.
type amqpConn struct {
	conn      *amqp.Conn
	identity  string
	transport string
	since     time.Time
	in        atomic.Uint64
	limiter   *rate.Limiter // nil: unlimited
}

// received counts a message from the connection and waits as long as its
// publish rate asks (its credit waits with it).
func (ac *amqpConn) received(ctx context.Context) {
	ac.in.Add(1)
	if ac.limiter != nil {
		_ = ac.limiter.Wait(ctx)
	}
}

func (s *Server) amqpOpened(c *amqp.Conn) error {
	cfg := s.cfg.Load()
	ac := &amqpConn{conn: c, identity: amqpIdentity(c), transport: "tcp", since: time.Now()}
	if c.TLSState() != nil {
		ac.transport = "tls"
	}
	if r := cfg.Limits.PublishRate; r > 0 {
		ac.limiter = rate.NewLimiter(rate.Limit(r), max(cfg.Limits.PublishBurst, 1))
	}
	s.amqpConns.Store(c, ac)
	s.presence.note(presenceEvent{Event: "connected", ID: ac.identity, ClientID: c.RemoteContainerID(), Protocol: "amqp",
		Transport: ac.transport, Remote: c.RemoteAddr().String(), Time: time.Now().UTC(), Gateway: cfg.Gateway.ID}, 0)
	return nil
}

func (s *Server) amqpClosed(c *amqp.Conn, err error) {
	v, ok := s.amqpConns.LoadAndDelete(c)
	if !ok {
		return
	}
	ac := v.(*amqpConn)
	ev := presenceEvent{Event: "disconnected", ID: ac.identity, ClientID: c.RemoteContainerID(), Protocol: "amqp",
		Transport: ac.transport, Remote: c.RemoteAddr().String(), Time: time.Now().UTC(), Gateway: s.cfg.Load().Gateway.ID}
	if err != nil {
		ev.Reason = err.Error()
	}
	s.presence.note(ev, ac.in.Load())
}

// amqpState returns the bookkeeping of an open AMQP connection, or nil.
func (s *Server) amqpState(c *amqp.Conn) *amqpConn {
	if v, ok := s.amqpConns.Load(c); ok {
		return v.(*amqpConn)
	}
	return nil
}

// kickAMQPIdentity closes every AMQP connection of an identity with
// amqp:unauthorized-access.
func (s *Server) kickAMQPIdentity(id string) int {
	n := 0
	s.amqpConns.Range(func(_, v any) bool {
		ac := v.(*amqpConn)
		if ac.identity == id {
			n++
			go ac.conn.CloseWithError(context.Background(), &amqp.Error{Condition: frames.CondUnauthorizedAccess,
				Description: "the identity was removed from or disabled in the devices file"})
		}
		return true
	})
	return n
}

// kickAMQP closes the AMQP connection with this number with
// amqp:connection:forced.
func (s *Server) kickAMQP(id uint64) bool {
	found := false
	s.amqpConns.Range(func(_, v any) bool {
		ac := v.(*amqpConn)
		if ac.conn.ID() == id {
			found = true
			go ac.conn.CloseWithError(context.Background(), &amqp.Error{Condition: frames.CondConnectionForced,
				Description: "disconnected by the operator (admin API)"})
			return false
		}
		return true
	})
	return found
}
