package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/mapping"
	"github.com/isthmus-iot/isthmus/mqtt"
)

// The bridge carries messages between the MQTT broker and the AMQP node
// namespace (SPEC §5). In this version the namespace holds topic addresses
// only: an AMQP receiver's source address is an MQTT-style filter, and a
// message sent to topic address X reaches every receiver whose filter
// matches X. Routes (mapping.Router) carry messages across the boundary.
//
// Device → enterprise: the broker hands every PUBLISH to Intercept before it
// acts on it. The routes' AMQP destinations get the message (pre-settled for
// QoS 0, unsettled otherwise); once every destination settled, the device
// gets its PUBACK/PUBREC (or the refusal), and only then does the broker
// deliver to MQTT subscribers and retain.
//
// Enterprise → device: a delivery on a link the peer attached as sender goes
// to the topic address's AMQP receivers and through the routes to MQTT; its
// disposition is accepted once the broker holds the message for every
// subscription, released when require_subscriber finds nobody, rejected when
// the mapping refuses it.
type bridge struct {
	s         *Server
	log       *slog.Logger
	gatewayID string
	router    atomic.Pointer[mapping.Router]
	insp      inspector
	fromMQTT  atomic.Bool // some route of router takes MQTT messages
	topics    topicNodes
	queues    *queues
	seq       atomic.Uint64
	ctx       context.Context // canceled at shutdown
	cancel    context.CancelFunc
	mu        sync.Mutex // guards closed against wg.Add after close began
	closed    bool
	wg        sync.WaitGroup // every goroutine the bridge starts, through spawn

	routed      *metrics.Counter
	noRouteMQTT *metrics.Counter // SPEC §5.3: unroutable messages count as dropped, reason no_route
	noRouteAMQP *metrics.Counter
	renderError *metrics.Counter
	skipped     *metrics.Counter
	dropped     *metrics.Counter
}

// awaitTimeout bounds the wait for an AMQP destination's outcome before the
// device is asked to retry.
const awaitTimeout = 30 * time.Second

func newBridge(s *Server, r *mapping.Router, cfg *config.Config) *bridge {
	ctx, cancel := context.WithCancel(context.Background())
	log := s.log.With("component", "bridge")
	b := &bridge{
		s: s, log: log, gatewayID: cfg.Gateway.ID, ctx: ctx, cancel: cancel,
		queues:      newQueues(cfg.Queues, s.metrics, log),
		routed:      s.metrics.NewCounter(`isthmus_bridge_messages_total{result="routed"}`),
		noRouteMQTT: s.metrics.NewCounter(`isthmus_messages_dropped_total{protocol="mqtt",reason="no_route"}`),
		noRouteAMQP: s.metrics.NewCounter(`isthmus_messages_dropped_total{protocol="amqp",reason="no_route"}`),
		renderError: s.metrics.NewCounter(`isthmus_bridge_messages_total{result="mapping_error"}`),
		skipped:     s.metrics.NewCounter(`isthmus_bridge_properties_skipped_total`),
		dropped:     s.metrics.NewCounter(`isthmus_messages_dropped_total{protocol="amqp",reason="receiver_busy"}`),
	}
	b.setRouter(r)
	s.metrics.NewGauge(`isthmus_amqp_topic_receivers`, func() float64 { return float64(b.topics.count()) })
	return b
}

// spawn runs f on a tracked goroutine; after close began it runs nothing and
// reports false.
func (b *bridge) spawn(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

func (b *bridge) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.queues.close()
	b.wg.Wait()
}

// ---- Device → enterprise ----

// Active implements mqtt.Interceptor: publishes are held only while some
// route takes MQTT messages (it follows reloads).
func (b *bridge) Active() bool { return b.fromMQTT.Load() }

// setRouter swaps in a compiled router (start and reload).
func (b *bridge) setRouter(r *mapping.Router) {
	b.fromMQTT.Store(routesFrom(r, mapping.KindMQTT))
	b.router.Store(r)
}

// Intercept implements mqtt.Interceptor.
func (b *bridge) Intercept(p *mqtt.Publish, settle func(mqtt.Decision)) {
	var tr *traceEvent // nil unless the inspector is being read
	if b.insp.on() {
		tr = b.insp.begin("mqtt "+quote(p.Topic), p.ClientID, p.Identity, "QoS "+strconv.Itoa(int(p.QoS)))
		settle = b.insp.settleMQTT(tr, settle)
	}
	msg := fromMQTT(p)
	env := mapping.Env{Sequence: b.seq.Add(1), Received: time.Now()}
	var (
		waits      []*amqp.Receipt
		took, busy bool
		refusal    *mqtt.Decision
	)
	for _, m := range b.router.Load().MatchMQTT(p.Topic) {
		out, err := m.FromMQTT(msg, env)
		if err != nil {
			b.renderError.Inc()
			b.log.Debug("route cannot map message", "route", m.Route.Name, "topic", p.Topic, "error", err)
			refusal = &mqtt.Decision{Reason: 0x80, ReasonString: "mapping: " + err.Error()}
			if tr != nil {
				tr.hop(m.Route.Name, "", "mapping error: "+err.Error())
			}
			continue
		}
		b.skipped.Add(len(out.Skipped))
		switch out.To {
		case mapping.KindAMQP:
			if q := b.queues.lookup(out.Address, true); q != nil {
				err := b.toQueue(q, out.AMQP)
				switch {
				case err == nil:
					took = true
				case p.QoS > 0:
					a := mapping.MQTTAck(enqueueOutcome(err), p.ProtocolVersion)
					refusal = &mqtt.Decision{Reason: max(a.Reason, 0x80), ReasonString: a.ReasonString}
				}
				if tr != nil {
					tr.hop(m.Route.Name, "queue "+quote(out.Address), queueResult(err))
				}
				continue
			}
			res := b.toTopic(out.Address, out.AMQP, out.Policy.Settled, p.QoS == 0)
			if tr != nil {
				tr.hop(m.Route.Name, "amqp "+quote(out.Address), describeTopic(res))
			}
			waits = append(waits, res.receipts...)
			took = took || res.took > 0
			busy = busy || res.busy > 0
		case mapping.KindMQTT:
			// MQTT → MQTT routes republish under another topic as the gateway.
			err := b.s.broker.PublishMessage(toMQTT(out.MQTT, out.Policy.QoS), mqtt.PublishOptions{RequireSubscriber: m.Route.RequireSubscriber})
			if err == nil {
				took = true
			}
			if tr != nil {
				tr.hop(m.Route.Name, "mqtt "+quote(out.MQTT.Topic), publishResult(err))
			}
		}
	}
	if took {
		b.routed.Inc()
	}
	if settle == nil { // QoS 0: at-most-once, nothing to answer
		b.insp.done(tr, "QoS 0: no answer")
		return
	}
	if refusal != nil {
		settle(*refusal)
		return
	}
	if busy {
		// A receiver could not take it in time: the device sends it again
		// (the receivers that took it may see it twice: at-least-once).
		settle(mqtt.Decision{Retry: true})
		return
	}
	if !took {
		b.noRouteMQTT.Inc()
		settle(b.unroutableDecision())
		return
	}
	if len(waits) == 0 {
		settle(mqtt.Decision{})
		return
	}
	if !b.spawn(func() { settle(b.await(waits, p.ProtocolVersion)) }) {
		settle(mqtt.Decision{Retry: true}) // shutting down: the device sends it again
	}
}

// await waits for every destination's outcome and turns the worst into the
// device's answer.
func (b *bridge) await(waits []*amqp.Receipt, version byte) mqtt.Decision {
	ctx, cancel := context.WithTimeout(b.ctx, awaitTimeout)
	defer cancel()
	var worst *mapping.Ack
	for _, r := range waits {
		state, err := r.Wait(ctx)
		if err != nil {
			state = nil // link or connection lost, or timed out: the device retries
		}
		a := mapping.MQTTAck(state, version)
		if worst == nil {
			worst = &a
		} else {
			w := mapping.WorseAck(*worst, a)
			worst = &w
		}
	}
	switch worst.Action {
	case mapping.AckSend:
		return mqtt.Decision{Reason: worst.Reason, ReasonString: worst.ReasonString}
	case mapping.AckClose:
		return mqtt.Decision{Reason: 0x80, ReasonString: worst.ReasonString}
	default: // AckRetry, or still waiting when the time ran out
		return mqtt.Decision{Retry: true}
	}
}

func (b *bridge) unroutableDecision() mqtt.Decision {
	switch b.router.Load().Unroutable() {
	case "reject":
		return mqtt.Decision{Reason: 0x90, ReasonString: "no route, queue or subscriber for this topic"}
	case "release":
		return mqtt.Decision{Retry: true}
	default:
		return mqtt.Decision{}
	}
}

// topicResult is what toTopic did with one message.
type topicResult struct {
	receipts []*amqp.Receipt // outcomes to wait for (none when settled)
	took     int             // receivers that took the message
	busy     int             // at-least-once: receivers that gave no credit in time
}

// sendTimeout bounds how long an at-least-once message waits for a receiver's
// credit before the sender is asked to retry: one stuck receiver must not hold
// every publisher of its topic.
const sendTimeout = 5 * time.Second

// toTopic sends msg to every AMQP receiver whose filter matches address. A
// QoS 0 message never waits for a busy receiver: it is dropped for that
// receiver and counted.
func (b *bridge) toTopic(address string, msg *frames.Message, settled, atMostOnce bool) topicResult {
	var res topicResult
	subs := b.topics.match(address)
	if len(subs) == 0 {
		return res
	}
	payload, err := msg.Encode(nil)
	if err != nil {
		b.log.Error("encoding a bridged message failed", "address", address, "error", err)
		return res
	}
	for _, sub := range subs {
		snd := sub.senderOrHold(payload, settled)
		if snd == nil {
			res.took++ // held until the link is ready; its outcome is not awaited
			continue
		}
		timeout := sendTimeout
		if atMostOnce {
			// Never hold a device's read loop for an at-most-once message.
			timeout = 10 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(b.ctx, timeout)
		rc, err := snd.SendRaw(ctx, payload, &amqp.SendOptions{Settled: settled})
		cancel()
		switch {
		case err != nil && atMostOnce:
			b.dropped.Inc()
		case err != nil:
			res.busy++
		default:
			res.took++
			if !settled && !sub.presettled {
				res.receipts = append(res.receipts, rc)
			}
		}
	}
	return res
}

// toQueue puts a message in a queue: accepted means the queue holds it.
func (b *bridge) toQueue(q *queue, msg *frames.Message) error {
	payload, err := msg.Encode(nil)
	if err != nil {
		return err
	}
	return q.enqueue(payload)
}

// fromMQTT is the mapping's view of a publish; Identity is the device the
// client authenticated as (devices file), "" for anonymous clients.
func fromMQTT(p *mqtt.Publish) *mapping.MQTTMessage {
	m := &mapping.MQTTMessage{
		Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain,
		ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
		MessageExpiry: p.MessageExpiry, PayloadFormat: p.PayloadFormat,
		ClientID: p.ClientID, Identity: p.Identity, ProtocolVersion: p.ProtocolVersion,
	}
	for _, u := range p.UserProperties {
		m.UserProperties = append(m.UserProperties, mapping.UserProperty{Key: u.Key, Value: u.Value})
	}
	return m
}

func toMQTT(m *mapping.MQTTMessage, qos byte) *mqtt.Publish {
	p := &mqtt.Publish{
		Topic: m.Topic, Payload: m.Payload, QoS: qos, Retain: m.Retain,
		ContentType: m.ContentType, ResponseTopic: m.ResponseTopic, CorrelationData: m.CorrelationData,
		MessageExpiry: m.MessageExpiry, PayloadFormat: m.PayloadFormat,
	}
	for _, u := range m.UserProperties {
		p.UserProperties = append(p.UserProperties, mqtt.UserProperty{Key: u.Key, Value: u.Value})
	}
	return p
}

// ---- AMQP links ----

// Attach implements amqp.LinkHandler.
func (b *bridge) Attach(req *amqp.LinkRequest) error {
	if req.Coordinator() != nil {
		return &amqp.Error{Condition: frames.CondNotImplemented, Description: "transactions are not supported yet"}
	}
	if req.PeerRole() == frames.RoleReceiver {
		return b.attachReceiver(req)
	}
	return b.attachSender(req)
}

// attachReceiver serves a peer that receives from a topic address: its source
// address is an MQTT filter.
func (b *bridge) attachReceiver(req *amqp.LinkRequest) error {
	src := req.Source()
	if src == nil {
		return &amqp.Error{Condition: frames.CondInvalidField, Description: "a receiver needs a source: a queue, a topic address filter, or dynamic"}
	}
	identity := amqpIdentity(req.Conn())
	var q *queue
	switch {
	case src.Dynamic:
		// A temporary queue for request/reply (SPEC §5.2), deleted with its
		// last consumer; any identity may have one.
		q = b.queues.dynamic(identity)
		reply := *src
		reply.Address = frames.Some(q.Name())
		src = &reply
	default:
		q = b.queues.lookup(src.Address.V, true)
		switch {
		case q != nil && q.temporary:
			// Only its creator's identity may consume a temporary queue; the
			// name is random, so others may send to it (replies).
			if q.owner != identity {
				return unauthorized("receiving from temporary queue " + quote(q.Name()))
			}
		case !b.s.auth.Allow(identity, src.Address.V, false):
			return unauthorized("receiving from " + quote(src.Address.V))
		}
	}
	if q != nil {
		snd, err := req.AcceptSender(&amqp.SenderOptions{Source: src, ManualDrain: true})
		if err != nil {
			return err
		}
		b.spawn(func() {
			q.consume(b.ctx, snd)
		})
		return nil
	}
	filter := src.Address.V
	if err := validFilter(filter); err != "" {
		return &amqp.Error{Condition: frames.CondInvalidField, Description: "source address " + quote(filter) + ": " + err}
	}
	// Registered before the attach is answered, so that no message published
	// after the peer sees its attach succeed is missed: until the link is
	// ready, matching messages wait in the subscription (bounded).
	sub := &topicSub{filter: filter, presettled: req.SndSettleMode() == frames.SenderSettleModeSettled}
	b.topics.add(sub)
	snd, err := req.AcceptSender(&amqp.SenderOptions{})
	if err != nil {
		b.topics.remove(sub)
		return err
	}
	// Retained MQTT messages first, marked x-opt-retain (SPEC §5.1).
	var retained [][]byte
	for _, p := range b.s.broker.Retained(filter) {
		m := fromMQTT(p)
		m.Retain = true
		out, _ := mapping.MQTTToAMQP(m, b.gatewayID, mapping.Env{Sequence: b.seq.Add(1), Received: time.Now()})
		if out == nil {
			continue
		}
		if raw, err := out.Encode(nil); err == nil {
			retained = append(retained, raw)
		}
	}
	sub.activate(b.ctx, snd, retained)
	if !b.spawn(func() {
		select {
		case <-snd.Done():
		case <-b.ctx.Done():
		}
		b.topics.remove(sub)
	}) {
		b.topics.remove(sub)
	}
	return nil
}

// attachSender serves a peer that sends: to a topic address, or with a null
// target (anonymous relay) to each message's properties.to.
func (b *bridge) attachSender(req *amqp.LinkRequest) error {
	address := ""
	// A null target, or one without an address (what go-amqp sends), is the
	// anonymous relay: each message names its address in properties.to.
	if t := req.Target(); t != nil && (t.Dynamic || t.Address.V != "") {
		if t.Dynamic {
			return &amqp.Error{Condition: frames.CondNotImplemented, Description: "dynamic nodes are not supported yet"}
		}
		address = t.Address.V
		q := b.queues.lookup(address, true)
		if (q == nil || !q.temporary) && !b.s.auth.Allow(amqpIdentity(req.Conn()), address, true) {
			return unauthorized("sending to " + quote(address))
		}
		if q != nil {
			return b.attachQueueSender(req, q)
		}
		if err := validTopic(address); err != "" {
			return &amqp.Error{Condition: frames.CondInvalidField, Description: "target address " + quote(address) + ": " + err}
		}
	}
	rcv, err := req.AcceptReceiver(&amqp.ReceiverOptions{})
	if err != nil {
		return err
	}
	conn := req.Conn()
	ac := b.s.amqpState(conn)
	b.spawn(func() {
		for {
			d, err := rcv.Receive(b.ctx)
			if err != nil {
				return
			}
			if ac != nil {
				ac.received(b.ctx)
			}
			b.deliver(conn, address, d, req.RcvSettleMode() == frames.ReceiverSettleModeSecond)
		}
	})
	return nil
}

// attachQueueSender serves a peer that sends to a queue: each message is
// accepted once the queue holds it, or rejected (amqp:resource-limit-exceeded
// when full). Queue addresses are not routed further.
func (b *bridge) attachQueueSender(req *amqp.LinkRequest, q *queue) error {
	rcv, err := req.AcceptReceiver(&amqp.ReceiverOptions{})
	if err != nil {
		return err
	}
	ac := b.s.amqpState(req.Conn())
	b.spawn(func() {
		for {
			d, err := rcv.Receive(b.ctx)
			if err != nil {
				return
			}
			if ac != nil {
				ac.received(b.ctx)
			}
			err = q.enqueue(bytes.Clone(d.Payload()))
			b.settle(d, enqueueOutcome(err))
		}
	})
	return nil
}

// deliver routes one delivery from an AMQP sender and settles it.
func (b *bridge) deliver(conn *amqp.Conn, address string, d *amqp.Delivery, second bool) {
	msg, err := d.Message()
	if err != nil {
		b.settle(d, rejected(frames.CondDecodeError, err.Error()))
		return
	}
	if address == "" { // anonymous relay
		if msg.Properties != nil {
			address = msg.Properties.To.V
		}
		q := b.queues.lookup(address, true)
		if (q == nil || !q.temporary) && !b.s.auth.Allow(amqpIdentity(conn), address, true) {
			b.settle(d, rejected(frames.CondUnauthorizedAccess, "sending to properties.to "+quote(address)+" is not allowed for this identity (devices file ACL)"))
			return
		}
		if q != nil {
			b.settle(d, enqueueOutcome(q.enqueue(bytes.Clone(d.Payload()))))
			return
		}
		if e := validTopic(address); e != "" {
			b.settle(d, rejected(frames.CondInvalidField, "properties.to "+quote(address)+": "+e))
			return
		}
	}
	in := &mapping.AMQPMessage{Message: msg, Settled: d.SenderSettled(), SettleSecond: second,
		ContainerID: conn.RemoteContainerID(), Identity: amqpIdentity(conn)}
	var tr *traceEvent // nil unless the inspector is being read
	if b.insp.on() {
		delivery := "unsettled"
		if d.SenderSettled() {
			delivery = "pre-settled"
		}
		tr = b.insp.begin("amqp "+quote(address), in.ContainerID, in.Identity, delivery)
	}

	// The topic address's own receivers: AMQP to AMQP, the bare message untouched.
	res := b.toTopic(address, mapping.ForwardAMQP(msg), d.SenderSettled(), d.SenderSettled())
	if tr != nil && res.took+res.busy > 0 {
		tr.hop("(topic address)", "amqp "+quote(address), describeTopic(res))
	}
	waits, took := res.receipts, res.took > 0
	var worst frames.DeliveryState
	if res.busy > 0 {
		worst = &frames.Released{}
	}
	for _, m := range b.router.Load().MatchAMQP(address) {
		out, err := m.FromAMQP(in)
		if err != nil {
			b.renderError.Inc()
			worst = rejected(frames.CondInvalidField, err.Error())
			if tr != nil {
				tr.hop(m.Route.Name, "", "mapping error: "+err.Error())
			}
			continue
		}
		b.skipped.Add(len(out.Skipped))
		switch out.To {
		case mapping.KindMQTT:
			err := b.s.broker.PublishMessage(toMQTT(out.MQTT, out.Policy.QoS), mqtt.PublishOptions{RequireSubscriber: m.Route.RequireSubscriber})
			if tr != nil {
				tr.hop(m.Route.Name, "mqtt "+quote(out.MQTT.Topic), publishResult(err))
			}
			switch {
			case errors.Is(err, mqtt.ErrNoSubscriber):
				if worst == nil {
					worst = &frames.Released{}
				}
			case err != nil:
				worst = rejected(frames.CondInternalError, err.Error())
			default:
				took = true
			}
		case mapping.KindAMQP:
			if q := b.queues.lookup(out.Address, true); q != nil {
				err := b.toQueue(q, out.AMQP)
				if err != nil {
					worst = enqueueOutcome(err)
				} else {
					took = true
				}
				if tr != nil {
					tr.hop(m.Route.Name, "queue "+quote(out.Address), queueResult(err))
				}
				continue
			}
			r := b.toTopic(out.Address, out.AMQP, out.Policy.Settled, d.SenderSettled())
			if tr != nil {
				tr.hop(m.Route.Name, "amqp "+quote(out.Address), describeTopic(r))
			}
			waits = append(waits, r.receipts...)
			took = took || r.took > 0
			if r.busy > 0 && worst == nil {
				worst = &frames.Released{}
			}
		}
	}
	if took {
		b.routed.Inc()
	}
	if d.SenderSettled() {
		b.insp.done(tr, "pre-settled: no outcome")
		return
	}
	if worst == nil && !took {
		b.noRouteAMQP.Inc()
		switch b.router.Load().Unroutable() {
		case "reject":
			worst = rejected(frames.CondNotFound, "no route, queue or subscriber for "+quote(address))
		case "release":
			worst = &frames.Released{}
		}
	}
	if worst == nil && len(waits) > 0 {
		ctx, cancel := context.WithTimeout(b.ctx, awaitTimeout)
		for _, r := range waits {
			state, err := r.Wait(ctx)
			if err != nil {
				state = &frames.Released{}
			}
			if _, ok := state.(*frames.Accepted); !ok && worst == nil {
				worst = state
			}
		}
		cancel()
	}
	if worst == nil {
		worst = &frames.Accepted{}
	}
	if tr != nil {
		b.insp.done(tr, describeState(worst))
	}
	b.settle(d, worst)
}

func queueResult(err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return "queued"
}

func publishResult(err error) string {
	switch {
	case errors.Is(err, mqtt.ErrNoSubscriber):
		return "no subscriber (require_subscriber)"
	case err != nil:
		return "failed: " + err.Error()
	}
	return "published"
}

func (b *bridge) settle(d *amqp.Delivery, state frames.DeliveryState) {
	if d.SenderSettled() {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := d.Settle(ctx, state); err != nil {
		b.log.Debug("settling a delivery failed", "error", err)
	}
}

// ---- Topic addresses ----

// topicSub is one AMQP receiver on a topic address filter.
type topicSub struct {
	filter     string
	presettled bool // the link's sender settle mode is settled: nothing to wait for
	snd        atomic.Pointer[amqp.Sender]

	mu    sync.Mutex
	early []heldMessage // matched before the link was ready
}

type heldMessage struct {
	payload []byte
	settled bool
}

// maxHeld bounds what a subscription holds while its attach is answered.
const maxHeld = 256

// senderOrHold returns the link to send on, or keeps the message for the
// link and returns nil while the attach is still being answered.
func (s *topicSub) senderOrHold(payload []byte, settled bool) *amqp.Sender {
	if snd := s.snd.Load(); snd != nil {
		return snd
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if snd := s.snd.Load(); snd != nil {
		return snd
	}
	if len(s.early) < maxHeld {
		s.early = append(s.early, heldMessage{payload, settled})
	}
	return nil
}

// activate sends first what must come first (retained messages, pre-settled),
// then what was held, and makes the link ready for everything after.
func (s *topicSub) activate(ctx context.Context, snd *amqp.Sender, first [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	send := func(raw []byte, settled bool) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, _ = snd.SendRaw(c, raw, &amqp.SendOptions{Settled: settled})
	}
	for _, raw := range first {
		send(raw, true)
	}
	for _, h := range s.early {
		send(h.payload, h.settled)
	}
	s.early = nil
	s.snd.Store(snd)
}

// topicNodes are the AMQP receivers of topic addresses. The set is
// copy-on-write: matching, on every message, takes no lock.
type topicNodes struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*topicSub]
}

func (t *topicNodes) add(s *topicSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next []*topicSub
	if cur := t.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	t.subs.Store(&next)
}

func (t *topicNodes) remove(s *topicSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.subs.Load()
	if cur == nil {
		return
	}
	next := make([]*topicSub, 0, len(*cur))
	for _, x := range *cur {
		if x != s {
			next = append(next, x)
		}
	}
	t.subs.Store(&next)
}

func (t *topicNodes) count() int {
	if cur := t.subs.Load(); cur != nil {
		return len(*cur)
	}
	return 0
}

func (t *topicNodes) match(address string) []*topicSub {
	cur := t.subs.Load()
	if cur == nil {
		return nil
	}
	var out []*topicSub
	for _, s := range *cur {
		if matchFilter(s.filter, address) {
			out = append(out, s)
		}
	}
	return out
}

// matchFilter reports whether an MQTT topic filter matches a topic name
// ([MQTT-4.7]); a filter starting with a wildcard does not match names
// starting with $ [MQTT-4.7.2-1].
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" [MQTT-4.7.1-2].
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// validFilter checks an MQTT topic filter; it returns what is wrong, or "".
func validFilter(f string) string {
	if f == "" {
		return "empty: a topic address filter such as sensors/# is required"
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return "'#' must be the last level"
		case l != "#" && l != "+" && strings.ContainsAny(l, "#+"):
			return "wildcards must fill a whole level"
		}
	}
	if strings.ContainsRune(f, 0) {
		return "contains NUL"
	}
	return ""
}

// validTopic checks a topic address a message is sent to: no wildcards.
func validTopic(a string) string {
	switch {
	case a == "":
		return "empty: send to a topic address such as sensors/kitchen, or set properties.to"
	case strings.ContainsAny(a, "#+"):
		return "wildcards are for receivers; a message goes to one topic address"
	case strings.ContainsRune(a, 0):
		return "contains NUL"
	}
	return ""
}

func quote(s string) string { return "\"" + s + "\"" }

func rejected(cond frames.Symbol, description string) *frames.Rejected {
	return &frames.Rejected{Error: &frames.Error{Condition: cond, Description: frames.Some(description)}}
}
