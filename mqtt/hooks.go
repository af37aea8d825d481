package mqtt

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// hook is the broker's single mochi hook: authentication, limits mochi does not
// enforce itself, and metrics.
type hook struct {
	mochi.HookBase
	b *Broker
}

func (h *hook) ID() string { return "isthmus" }

// provided are the mochi events the hook handles. mochi asks Provides for
// every event of every packet, so it is a table lookup.
var provided = func() (t [256]bool) {
	for _, e := range []byte{
		mochi.OnConnectAuthenticate,
		mochi.OnACLCheck,
		mochi.OnConnect,
		mochi.OnPublish,
		mochi.OnPublishDropped,
		mochi.OnQosDropped,
		mochi.OnSessionEstablish,
		mochi.OnDisconnect,
		mochi.OnPacketRead,
		mochi.OnPacketProcessed,
		mochi.OnQosPublish,
	} {
		t[e] = true
	}
	return t
}()

func (h *hook) Provides(b byte) bool { return provided[b] }

// OnConnect authenticates the client (see admit), then lowers an MQTT 5
// client's keepalive to KeepaliveMax and tells the client through the Server
// Keep Alive property [MQTT-3.2.2-21]. 3.1.1 has no
// such property, so a 3.1.1 client keeps its own value.
func (h *hook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	// Authentication first (auth.go): mochi sends no CONNACK when OnConnect
	// fails, so refuse answers with its own, precise code.
	id, code, err := h.admit(cl, pk)
	if err != nil {
		return h.refuse(cl, pk, code, err)
	}
	cl.Properties.Username = []byte(id)
	max := h.b.opts.KeepaliveMax
	if max <= 0 || pk.ProtocolVersion < 5 {
		return nil
	}
	limit := uint16(min(max/time.Second, 65535))
	if cl.State.Keepalive == 0 || cl.State.Keepalive > limit {
		cl.State.Keepalive = limit
		cl.State.ServerKeepalive = true
	}
	return nil
}

// OnPublish enforces the retained-message cap: mochi has none. A retained
// publish to a new topic when the store is full is delivered but not retained,
// and counted as dropped (reason retained_limit), as EMQX does.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	x := h.b.intercept
	if x != nil && x.reinjected(cl, pk) {
		h.awaitRoom(cl, pk)
		return pk, nil
	}
	if !cl.Net.Inline {
		h.throttle(cl)
	}
	max := h.b.opts.RetainedMax
	if max > 0 && pk.FixedHeader.Retain && len(pk.Payload) > 0 {
		retained := h.b.srv.Topics.Retained
		if retained.Len() >= max {
			if _, exists := retained.Get(pk.TopicName); !exists {
				pk.FixedHeader.Retain = false
				h.b.m.dropped("retained_limit")
				h.b.log.Warn("retained message store full; message delivered but not retained",
					"client_id", cl.ID, "limit", max)
			}
		}
	}
	if x != nil && !cl.Net.Inline {
		return x.onPublish(cl, pk)
	}
	h.awaitRoom(cl, pk)
	return pk, nil
}

// awaitRoom applies back-pressure (flow.go) to a publish mochi is about to
// fan out.
func (h *hook) awaitRoom(cl *mochi.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos > 0 {
		h.b.flow.awaitRoom(cl, pk.TopicName)
	}
}

// OnQosPublish: mochi stored a QoS > 0 message for cl.
func (h *hook) OnQosPublish(cl *mochi.Client, pk packets.Packet, sent int64, resends int) {
	h.b.flow.stored(cl)
}

// OnDisconnect reports the client gone and forgets the unsettled publishes
// of a session that ended.
func (h *hook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.clientGone(cl, err)
	if x := h.b.intercept; x != nil && expire {
		x.forget(cl.ID)
	}
}

// OnPublishDropped: the client's write queue was full, and mochi v2.7.9
// dropped the message, at any QoS, after it had already been acknowledged to
// its publisher (for a bridged message: accepted to an AMQP sender).
//
// QoS 0 is dropped and counted: at-most-once. A client without a persistent
// session (3.1.1 clean session, MQTT 5 session expiry 0) keeps mochi's drop,
// counted: disconnecting it would lose its whole session. For QoS 1 and 2 to
// a persistent session the message is put back into the session under a fresh
// packet identifier and the slow client is disconnected, the way NATS treats
// a slow consumer: it gets everything again on reconnect, in the original
// order (identifiers increase; see restoreResendOrder).
func (h *hook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	h.b.flow.mark(cl)
	qos := pk.FixedHeader.Qos
	if sub, ok := h.b.srv.Topics.Subscribers(pk.TopicName).Subscriptions[cl.ID]; ok {
		qos = min(qos, sub.Qos)
	}
	ephemeral := (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0) ||
		(cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean)
	if qos == 0 || ephemeral {
		h.b.m.dropped("write_queue_full")
		return
	}
	out := pk.Copy(false)
	out.FixedHeader.Qos = qos
	out.FixedHeader.Retain = false
	id, err := cl.NextPacketID()
	if err != nil {
		h.b.m.dropped("write_queue_full")
		return
	}
	out.PacketID = uint16(id)
	if cl.State.Inflight.Set(out) {
		atomic.AddInt64(&h.b.srv.Info.Inflight, 1)
	}
	if !cl.Closed() {
		h.b.m.rejected("slow_subscriber")
		h.b.log.Warn("MQTT client too slow for its QoS > 0 messages: disconnected; its session keeps them",
			"client_id", cl.ID, "write_queue", h.b.opts.WriteQueue)
		cl.Stop(packets.ErrQuotaExceeded)
	}
}

// OnQosDropped: an inflight QoS > 0 message expired or exceeded its resends.
func (h *hook) OnQosDropped(cl *mochi.Client, pk packets.Packet) {
	h.b.m.dropped("inflight_expired")
}

// brokerMetrics are the MQTT side's metrics. Names follow SPEC §8: isthmus_
// prefix, _total for counters, no client or topic labels.
type brokerMetrics struct {
	set      *metrics.Set
	accepted *metrics.Counter
}

func newBrokerMetrics(set *metrics.Set, b *Broker) *brokerMetrics {
	m := &brokerMetrics{set: set}
	m.accepted = set.NewCounter(`isthmus_connections_accepted_total{protocol="mqtt"}`)
	for i, t := range transports {
		a := &b.active[i]
		set.NewGauge(`isthmus_connections{protocol="mqtt",transport="`+t+`"}`, func() float64 { return float64(a.Load()) })
	}
	info := b.srv.Info
	gauge := func(name string, v *int64) {
		set.NewGauge(name, func() float64 { return float64(atomic.LoadInt64(v)) })
	}
	// mochi keeps these counters itself; export them instead of counting twice.
	gauge(`isthmus_messages_received_total{protocol="mqtt"}`, &info.MessagesReceived)
	gauge(`isthmus_messages_sent_total{protocol="mqtt"}`, &info.MessagesSent)
	gauge(`isthmus_received_bytes_total{protocol="mqtt"}`, &info.BytesReceived)
	gauge(`isthmus_sent_bytes_total{protocol="mqtt"}`, &info.BytesSent)
	gauge(`isthmus_messages_dropped_total{protocol="mqtt",reason="inflight_full"}`, &info.InflightDropped)
	gauge(`isthmus_mqtt_retained_messages`, &info.Retained)
	gauge(`isthmus_mqtt_inflight_messages`, &info.Inflight)
	gauge(`isthmus_mqtt_subscriptions`, &info.Subscriptions)
	// Register the fixed reasons up front so dashboards see zeros, not gaps.
	for _, r := range []string{"write_queue_full", "retained_limit", "inflight_expired", "packet_id_collision"} {
		m.dropped0(r)
	}
	for _, r := range []string{"max_connections", "connect_timeout", "malformed", "packet_too_large", "unsupported_version", "panic", "slow_subscriber", "not_authorized"} {
		m.rejected0(r)
	}
	for _, op := range []string{"publish", "subscribe"} {
		m.refused0(op)
	}
	return m
}

func (m *brokerMetrics) dropped0(reason string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`isthmus_messages_dropped_total{protocol="mqtt",reason="` + reason + `"}`)
}

func (m *brokerMetrics) dropped(reason string) { m.dropped0(reason).Inc() }

func (m *brokerMetrics) rejected0(reason string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`isthmus_connections_rejected_total{protocol="mqtt",reason="` + reason + `"}`)
}

func (m *brokerMetrics) rejected(reason string) { m.rejected0(reason).Inc() }

// refused counts operations an ACL refused.
func (m *brokerMetrics) refused0(op string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`isthmus_acl_refused_total{protocol="mqtt",operation="` + op + `"}`)
}

func (m *brokerMetrics) refused(op string) { m.refused0(op).Inc() }
