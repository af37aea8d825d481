package mqtt

import (
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Publish is a client's PUBLISH as the gateway sees it before the broker acts
// on it. Payload and the slices are the interceptor's to keep.
type Publish struct {
	ClientID        string
	Identity        string // the authenticated identity (device id); "" for anonymous clients
	ProtocolVersion byte
	Topic           string
	Payload         []byte
	QoS             byte
	Retain          bool
	PacketID        uint16
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	MessageExpiry   *uint32 // seconds; nil when the client set none
	PayloadFormat   *byte
	UserProperties  []UserProperty
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct{ Key, Value string }

// Decision settles an intercepted QoS 1 or 2 publish.
type Decision struct {
	// Reason 0 accepts: the broker hands the message to its MQTT subscribers,
	// retains it if asked, and acknowledges it (PUBACK, or PUBREC then PUBCOMP).
	// A reason >= 0x80 refuses it: MQTT 5 clients get PUBACK/PUBREC with that
	// reason code; MQTT 3.1.1 has no negative acknowledgement, so the
	// connection is closed without one and the client publishes again.
	Reason       byte
	ReasonString string
	// Retry leaves the message unacknowledged and closes the connection (MQTT 5:
	// DISCONNECT 0x89 server busy), so that the client publishes it again when
	// it reconnects: for destinations that released the message.
	Retry bool
}

// Interceptor sees every PUBLISH from a client before the broker does.
//
// For QoS 0 the broker goes on at once (at-most-once) and settle is nil. For
// QoS 1 and 2 the broker sends no acknowledgement until settle is called,
// exactly once, from any goroutine: acknowledgements are then released in the
// order the client sent its messages [MQTT-4.6.0-2], and the message reaches
// MQTT subscribers only if accepted. A retransmission (DUP) of a publish that
// is still pending is absorbed: the interceptor sees each message once.
// Intercept runs on the client's read goroutine and must not block.
type Interceptor interface {
	Intercept(p *Publish, settle func(Decision))
	// Active reports whether publishes go through Intercept at all: while
	// false (say, no route takes MQTT messages) the broker works as a plain
	// broker, with no copy and no held acknowledgement.
	Active() bool
}

// pendingKey names one unsettled publish: packet identifiers are per client.
type pendingKey struct {
	client string
	id     uint16
}

// pendingPublish is one intercepted QoS > 0 message waiting for its decision.
type pendingPublish struct {
	pk       packets.Packet
	decided  bool
	decision Decision
}

// interception holds the unsettled publishes of every client in arrival order.
type interception struct {
	b  *Broker
	ic Interceptor

	mu       sync.Mutex
	pending  map[pendingKey]*pendingPublish
	queues   map[string][]*pendingPublish // per client id, in arrival order
	injected map[pendingKey]bool          // being re-injected: OnPublish lets it through
	// releasing holds, per client, decided publishes for the client's
	// releaser goroutine; a client has a key here while its releaser runs.
	releasing map[string][]*pendingPublish
}

func newInterception(b *Broker, ic Interceptor) *interception {
	return &interception{
		b: b, ic: ic,
		pending:   make(map[pendingKey]*pendingPublish),
		queues:    make(map[string][]*pendingPublish),
		injected:  make(map[pendingKey]bool),
		releasing: make(map[string][]*pendingPublish),
	}
}

// reinjected reports whether pk is an accepted message being handed back to
// mochi by release, which OnPublish must let through untouched.
func (x *interception) reinjected(cl *mochi.Client, pk packets.Packet) bool {
	if pk.FixedHeader.Qos == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.injected[pendingKey{cl.ID, pk.PacketID}]
}

// onPublish is called from the hook. It returns the packet and nil to let
// mochi go on, or packets.ErrRejectPacket to hold the message.
func (x *interception) onPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !x.ic.Active() {
		return pk, nil
	}
	key := pendingKey{cl.ID, pk.PacketID}
	if pk.FixedHeader.Qos == 0 {
		x.ic.Intercept(toPublish(cl, pk), nil)
		return pk, nil
	}
	x.mu.Lock()
	if _, dup := x.pending[key]; dup {
		x.mu.Unlock()
		return pk, packets.ErrRejectPacket // a retransmission of a message still pending
	}
	p := &pendingPublish{pk: pk}
	x.pending[key] = p
	x.queues[cl.ID] = append(x.queues[cl.ID], p)
	x.mu.Unlock()
	// The message holds one slot of the client's receive quota until it is
	// settled: mochi disconnects a client that exceeds it (0x93).
	cl.State.Inflight.DecreaseReceiveQuota()
	x.ic.Intercept(toPublish(cl, pk), func(d Decision) { x.settle(cl.ID, key, d) })
	return pk, packets.ErrRejectPacket
}

// settle records a decision and releases every decided message at the head
// of the client's queue, in order.
func (x *interception) settle(clientID string, key pendingKey, d Decision) {
	x.mu.Lock()
	p, ok := x.pending[key]
	if !ok || p.decided {
		x.mu.Unlock()
		return
	}
	p.decided, p.decision = true, d
	var ready []*pendingPublish
	q := x.queues[clientID]
	for len(q) > 0 && q[0].decided {
		ready = append(ready, q[0])
		delete(x.pending, pendingKey{clientID, q[0].pk.PacketID})
		q = q[1:]
	}
	if len(q) == 0 {
		delete(x.queues, clientID)
	} else {
		x.queues[clientID] = q
	}
	for _, r := range ready {
		if r.decision.Reason == 0 && !r.decision.Retry {
			x.injected[pendingKey{clientID, r.pk.PacketID}] = true
		}
	}
	if len(ready) == 0 {
		x.mu.Unlock()
		return
	}
	batch, running := x.releasing[clientID]
	x.releasing[clientID] = append(batch, ready...)
	x.mu.Unlock()
	if !running {
		go x.releaser(clientID)
	}
}

// releaser hands a client's decided publishes to mochi, one goroutine per
// client while there is work: acknowledgements leave in arrival order
// [MQTT-4.6.0-2] even when two decisions come at once, and the deep mochi
// call chain of a release runs on a stack that has already grown, not on a
// fresh goroutine per message.
func (x *interception) releaser(clientID string) {
	for {
		x.mu.Lock()
		batch := x.releasing[clientID]
		if len(batch) == 0 {
			delete(x.releasing, clientID)
			x.mu.Unlock()
			return
		}
		x.releasing[clientID] = nil // still present: this releaser runs
		x.mu.Unlock()
		// The client may have reconnected since: acknowledge on its current
		// connection, which is the one that will otherwise retransmit.
		cl, ok := x.b.srv.Clients.Get(clientID)
		for _, r := range batch {
			x.release(clientID, cl, ok, r)
		}
	}
}

func (x *interception) release(clientID string, cl *mochi.Client, connected bool, r *pendingPublish) {
	key := pendingKey{clientID, r.pk.PacketID}
	defer func() {
		x.mu.Lock()
		delete(x.injected, key) // whether or not mochi got as far as OnPublish
		x.mu.Unlock()
	}()
	if !connected || cl.Closed() {
		// Nobody to acknowledge: the client retransmits after it reconnects,
		// and that copy is intercepted afresh.
		return
	}
	cl.State.Inflight.IncreaseReceiveQuota()
	if r.decision.Retry {
		if cl.Properties.ProtocolVersion < 5 {
			cl.Stop(packets.ErrServerBusy)
		} else {
			_ = x.b.srv.DisconnectClient(cl, packets.ErrServerBusy)
		}
		return
	}
	if r.decision.Reason == 0 {
		// mochi now does what it does for any publish: retain, PUBACK or
		// PUBREC (recorded in the client's inflight so PUBREL gets PUBCOMP),
		// and fan-out to MQTT subscribers.
		out, collides := takeOutbound(cl, r.pk)
		if err := x.b.srv.InjectPacket(cl, r.pk); err != nil {
			x.b.log.Debug("releasing an accepted publish failed", "client_id", clientID, "error", err)
		}
		if collides {
			x.b.restoreOutbound(cl, out)
		}
		return
	}
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(packets.Code{Code: r.decision.Reason, Reason: r.decision.ReasonString})
		return
	}
	typ := byte(packets.Puback)
	if r.pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ},
		PacketID:    r.pk.PacketID,
		ReasonCode:  r.decision.Reason,
		Properties:  packets.Properties{ReasonString: r.decision.ReasonString},
	}
	_ = cl.WritePacket(ack)
}

// forget drops the pending publishes of a client whose session ended: they
// were never acknowledged, so nothing is lost that the client will not send
// again if its session survives.
func (x *interception) forget(clientID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range x.queues[clientID] {
		delete(x.pending, pendingKey{clientID, p.pk.PacketID})
	}
	delete(x.queues, clientID)
}

func toPublish(cl *mochi.Client, pk packets.Packet) *Publish {
	p := &Publish{
		ClientID:        cl.ID,
		Identity:        identity(cl),
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Topic:           pk.TopicName,
		Payload:         append([]byte(nil), pk.Payload...),
		QoS:             pk.FixedHeader.Qos,
		Retain:          pk.FixedHeader.Retain,
		PacketID:        pk.PacketID,
		ContentType:     pk.Properties.ContentType,
		ResponseTopic:   pk.Properties.ResponseTopic,
	}
	if len(pk.Properties.CorrelationData) > 0 {
		p.CorrelationData = append([]byte(nil), pk.Properties.CorrelationData...)
	}
	if pk.Properties.MessageExpiryInterval > 0 {
		v := pk.Properties.MessageExpiryInterval
		p.MessageExpiry = &v
	}
	if pk.Properties.PayloadFormatFlag {
		v := pk.Properties.PayloadFormat
		p.PayloadFormat = &v
	}
	for _, u := range pk.Properties.User {
		p.UserProperties = append(p.UserProperties, UserProperty{u.Key, u.Val})
	}
	return p
}
