package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/config"
)

// Queues are AMQP nodes of the gateway's address space (SPEC §5.2): a message
// sent to a queue is held (in memory in this version) until exactly one of
// the queue's receivers accepts it. Receivers compete; a message released,
// modified, or unsettled when its link dies goes back to the front of the
// queue for the next receiver.

var (
	// errQueueFull refuses a message beyond max_messages/max_bytes with
	// overflow reject: rejected amqp:resource-limit-exceeded, MQTT 5 0x97
	// (SPEC §5.2, §5.4).
	errQueueFull = errors.New("queue full")
	// errQueueGone refuses a message for a temporary queue whose receiver
	// detached (a reply to a requester that left).
	errQueueGone = errors.New("queue deleted")
)

// enqueueOutcome is the disposition for a sender whose message enqueue
// refused with err (nil: accepted).
func enqueueOutcome(err error) frames.DeliveryState {
	switch {
	case err == nil:
		return &frames.Accepted{}
	case errors.Is(err, errQueueFull):
		return rejected(frames.CondResourceLimitExceeded, err.Error())
	case errors.Is(err, errQueueGone):
		return rejected(frames.CondNotFound, err.Error())
	default:
		return rejected(frames.CondInternalError, err.Error())
	}
}

// dynamicPrefix starts the generated address of a temporary queue; a filter
// starting with a wildcard never matches it [MQTT-4.7.2-1].
const dynamicPrefix = "$tmp/"

// queues is the set of queue nodes.
type queues struct {
	log      *slog.Logger
	patterns []config.Queue // the match: entries, in config order
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the sweeper

	mu    sync.Mutex
	nodes map[string]*queue

	held        atomic.Int64 // messages held across queues (isthmus_queue_messages)
	enqueued    *metrics.Counter
	delivered   *metrics.Counter
	redelivered *metrics.Counter
	rejectedBy  *metrics.Counter // consumers' rejected outcomes
	overflow    *metrics.Counter
	expired     *metrics.Counter
}

// newQueues builds the named queues of cfg; match: entries create theirs on
// first use.
func newQueues(cfg []config.Queue, set *metrics.Set, log *slog.Logger) *queues {
	ctx, cancel := context.WithCancel(context.Background())
	qs := &queues{
		log: log.With("component", "queues"), ctx: ctx, cancel: cancel,
		nodes:       make(map[string]*queue),
		enqueued:    set.GetOrCreateCounter(`isthmus_queue_enqueued_total`),
		delivered:   set.GetOrCreateCounter(`isthmus_queue_delivered_total`),
		redelivered: set.GetOrCreateCounter(`isthmus_queue_redelivered_total`),
		rejectedBy:  set.GetOrCreateCounter(`isthmus_queue_rejected_total`),
		overflow:    set.GetOrCreateCounter(`isthmus_messages_dropped_total{protocol="amqp",reason="queue_overflow"}`),
		expired:     set.GetOrCreateCounter(`isthmus_messages_dropped_total{protocol="amqp",reason="expired"}`),
	}
	// SPEC §8: no per-queue labels; /api/v1/queues has the detail.
	set.GetOrCreateGauge(`isthmus_queue_messages`, func() float64 { return float64(qs.held.Load()) })
	interval := time.Second
	for _, c := range cfg {
		if c.Name != "" {
			qs.nodes[c.Name] = qs.newQueue(c.Name, c)
		} else if c.Match != "" {
			qs.patterns = append(qs.patterns, c)
		}
		// Sweep often enough that expiry and auto-delete are not late by
		// much more than a quarter of their duration.
		for _, d := range []time.Duration{c.TTL, c.AutoDelete} {
			if d > 0 && d/4 < interval {
				interval = max(d/4, 10*time.Millisecond)
			}
		}
	}
	qs.wg.Add(1)
	go qs.sweeper(interval)
	return qs
}

func (qs *queues) newQueue(name string, c config.Queue) *queue {
	return &queue{qs: qs, name: name, cfg: c, signal: make(chan struct{}), idleSince: time.Now()}
}

// lookup returns the queue called address: a named one, one created earlier,
// or, with create, a new one for the first match: pattern address matches.
// nil: address is not a queue (it is a topic address).
func (qs *queues) lookup(address string, create bool) *queue {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if q := qs.nodes[address]; q != nil && q.touch() {
		return q
	}
	if !create || qs.ctx.Err() != nil {
		return nil
	}
	for _, c := range qs.patterns {
		if matchFilter(c.Match, address) {
			q := qs.newQueue(address, c)
			q.auto = true
			qs.nodes[address] = q
			qs.log.Debug("queue created", "queue", address, "match", c.Match)
			return q
		}
	}
	return nil
}

// dynamic creates a temporary queue for a dynamic receiver (SPEC §5.2,
// AMQP 1.0 §3.5.3 dynamic): it is deleted when its last consumer detaches.
func (qs *queues) dynamic(owner string) *queue {
	var id [12]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand documents it)
	name := dynamicPrefix + hex.EncodeToString(id[:])
	q := qs.newQueue(name, config.Queue{Name: name})
	q.temporary = true
	q.owner = owner
	qs.mu.Lock()
	qs.nodes[name] = q
	qs.mu.Unlock()
	return q
}

// count returns how many queues exist.
func (qs *queues) count() int {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	return len(qs.nodes)
}

// close stops the sweeper and ends every consume loop (their caller's
// links stay attached). Messages held are lost: memory queues.
func (qs *queues) close() {
	qs.cancel()
	qs.wg.Wait()
}

func (qs *queues) remove(q *queue) {
	qs.mu.Lock()
	if qs.nodes[q.name] == q {
		delete(qs.nodes, q.name)
	}
	qs.mu.Unlock()
}

// sweeper drops expired messages and deletes idle auto-created queues.
func (qs *queues) sweeper(interval time.Duration) {
	defer qs.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-qs.ctx.Done():
			return
		case now := <-t.C:
			qs.mu.Lock()
			all := make([]*queue, 0, len(qs.nodes))
			for _, q := range qs.nodes {
				all = append(all, q)
			}
			qs.mu.Unlock()
			for _, q := range all {
				q.mu.Lock()
				q.dropExpired(now)
				idle := q.auto && q.cfg.AutoDelete > 0 && q.consumers == 0 && q.held == 0 &&
					now.Sub(q.idleSince) >= q.cfg.AutoDelete
				if idle {
					q.deleted = true
				}
				q.mu.Unlock()
				if idle {
					qs.remove(q)
					qs.log.Debug("idle queue deleted", "queue", q.name)
				}
			}
		}
	}
}

// qmsg is one message in a queue.
type qmsg struct {
	payload  []byte
	seq      uint64    // enqueue order, kept by redeliveries
	expires  time.Time // zero: never
	failures uint32    // unsuccessful delivery attempts so far (header.delivery-count to add)
	avoid    *consumer // modified undeliverable-here: not to this link again
}

// queue is one queue node.
type queue struct {
	qs        *queues
	name      string
	cfg       config.Queue
	auto      bool   // created for a match: pattern
	temporary bool   // dynamic: deleted with its last consumer
	owner     string // temporary: the identity that created it, the only one that may consume it

	mu         sync.Mutex
	redeliver  []*qmsg // back from a consumer, by seq: delivered first
	ready      []*qmsg // FIFO; ready[head:] are live
	head       int
	held       int   // ready + redeliver + in flight
	bytes      int64 // of the held messages
	seq        uint64
	consumers  int
	idleSince  time.Time
	deleted    bool
	signal     chan struct{} // closed when a message becomes available
	nConsumers uint64
}

// Name returns the queue's address.
func (q *queue) Name() string { return q.name }

// touch restarts the idle time; false if the queue was deleted.
func (q *queue) touch() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.idleSince = time.Now()
	return !q.deleted
}

// wake tells waiting consumers that a message is available. q.mu held.
func (q *queue) wake() {
	close(q.signal)
	q.signal = make(chan struct{})
}

// enqueue stores an encoded AMQP message (forwarded byte for byte). nil
// means the queue holds it; errQueueFull is the overflow reject.
func (q *queue) enqueue(payload []byte) error {
	now := time.Now()
	var expires time.Time
	if q.cfg.TTL > 0 {
		expires = now.Add(q.cfg.TTL)
	}
	// AMQP 1.0 §3.2.1: header.ttl is the message's own time to live.
	if h := decodeHeader(payload); h != nil {
		if ms, ok := h.TTL.Get(); ok {
			if e := now.Add(time.Duration(ms) * time.Millisecond); expires.IsZero() || e.Before(expires) {
				expires = e
			}
		}
	}
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		if q.auto {
			// Deleted idle after the caller looked it up: the address makes
			// a new one, as on first use.
			if n := q.qs.lookup(q.name, true); n != nil && n != q {
				return n.enqueue(payload)
			}
		}
		return errQueueGone
	}
	defer q.mu.Unlock()
	q.dropExpired(now)
	size := int64(len(payload))
	for q.over(1, size) {
		if q.cfg.Overflow != "drop-oldest" || !q.dropOldest() {
			return errQueueFull
		}
		q.qs.overflow.Inc()
	}
	q.seq++
	q.ready = append(q.ready, &qmsg{payload: payload, seq: q.seq, expires: expires})
	q.hold(1, size)
	q.idleSince = now
	q.qs.enqueued.Inc()
	q.wake()
	return nil
}

// over reports whether n more messages of size bytes break a limit. q.mu held.
func (q *queue) over(n int, size int64) bool {
	return (q.cfg.MaxMessages > 0 && q.held+n > q.cfg.MaxMessages) ||
		(q.cfg.MaxBytes > 0 && q.bytes+size > int64(q.cfg.MaxBytes))
}

func (q *queue) hold(n int, size int64) {
	q.held += n
	q.bytes += size
	q.qs.held.Add(int64(n))
}

// dropOldest drops the oldest waiting message (not one in flight). q.mu held.
func (q *queue) dropOldest() bool {
	if len(q.redeliver) > 0 {
		m := q.redeliver[0]
		q.redeliver = q.redeliver[1:]
		q.hold(-1, -int64(len(m.payload)))
		return true
	}
	if q.head < len(q.ready) {
		m := q.ready[q.head]
		q.ready[q.head] = nil
		q.head++
		q.compact()
		q.hold(-1, -int64(len(m.payload)))
		return true
	}
	return false
}

// compact lets the consumed front of ready go. q.mu held.
func (q *queue) compact() {
	switch {
	case q.head == len(q.ready):
		q.ready, q.head = q.ready[:0], 0
	case q.head > 1024 && q.head*2 > len(q.ready):
		q.ready = append(q.ready[:0], q.ready[q.head:]...)
		q.head = 0
	}
}

// dropExpired removes the waiting messages whose ttl passed. q.mu held.
func (q *queue) dropExpired(now time.Time) {
	keep := q.redeliver[:0]
	for _, m := range q.redeliver {
		if q.expiredAt(m, now) {
			continue
		}
		keep = append(keep, m)
	}
	clear(q.redeliver[len(keep):])
	q.redeliver = keep
	live := q.ready[q.head:]
	n := 0
	for _, m := range live {
		if !q.expiredAt(m, now) {
			live[n] = m
			n++
		}
	}
	clear(live[n:])
	q.ready = q.ready[:q.head+n]
	q.compact()
}

// expiredAt counts and releases m if it expired. q.mu held.
func (q *queue) expiredAt(m *qmsg, now time.Time) bool {
	if m.expires.IsZero() || now.Before(m.expires) {
		return false
	}
	q.hold(-1, -int64(len(m.payload)))
	q.qs.expired.Inc()
	return true
}

// pop takes the next message for c: redeliveries first, then FIFO. nil: none
// now; wait on the returned channel.
func (q *queue) pop(c *consumer) (*qmsg, <-chan struct{}) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 0; i < len(q.redeliver); i++ {
		m := q.redeliver[i]
		if q.expiredAt(m, now) {
			q.redeliver = append(q.redeliver[:i], q.redeliver[i+1:]...)
			i--
			continue
		}
		if m.avoid == c {
			continue
		}
		q.redeliver = append(q.redeliver[:i], q.redeliver[i+1:]...)
		return m, nil
	}
	for q.head < len(q.ready) {
		m := q.ready[q.head]
		q.ready[q.head] = nil
		q.head++
		q.compact()
		if q.expiredAt(m, now) {
			continue
		}
		return m, nil
	}
	return nil, q.signal
}

// available reports whether c could take a message now.
func (q *queue) available(c *consumer) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.ready) {
		return true
	}
	for _, m := range q.redeliver {
		if m.avoid != c {
			return true
		}
	}
	return false
}

// putBack returns messages from a consumer to the front, by enqueue order.
func (q *queue) putBack(ms ...*qmsg) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range ms {
		i := len(q.redeliver)
		for i > 0 && q.redeliver[i-1].seq > m.seq {
			i--
		}
		q.redeliver = append(q.redeliver, nil)
		copy(q.redeliver[i+1:], q.redeliver[i:])
		q.redeliver[i] = m
		q.qs.redelivered.Inc()
	}
	q.wake()
}

// done forgets a message that left the queue (accepted, rejected, sent
// pre-settled).
func (q *queue) done(m *qmsg) {
	q.mu.Lock()
	q.hold(-1, -int64(len(m.payload)))
	q.idleSince = time.Now()
	q.mu.Unlock()
}

// consumer is one receiver link on a queue.
type consumer struct {
	id   uint64
	mu   sync.Mutex
	lost []*qmsg // unsettled when the link ended: put back when consume returns
}

// consume feeds snd from the queue until the link, ctx or the queue set
// ends. Consumers compete: each message goes to one of them. snd must be
// accepted with ManualDrain, so that a drain is answered only when the queue
// has nothing for the link (AMQP 1.0 §2.6.7).
func (q *queue) consume(ctx context.Context, snd *amqp.Sender) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.qs.ctx, cancel)
	defer stop()
	go func() { // ends ctx with the link so that WaitCredit and the outcome waits return
		select {
		case <-snd.Done():
			cancel()
		case <-ctx.Done():
		}
	}()

	c := q.attach()
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		// Back together, so that the next consumer gets them in order.
		q.putBack(c.lost...)
		q.detach()
	}()
	for {
		if snd.Draining() && !q.available(c) {
			if err := snd.CompleteDrain(); err != nil {
				return
			}
		}
		if err := snd.WaitCredit(ctx); err != nil {
			return
		}
		m, wait := q.pop(c)
		if m == nil {
			select {
			case <-wait:
			case <-snd.DrainRequested():
			case <-ctx.Done():
				return
			}
			continue
		}
		before := snd.Credit()
		rc, err := snd.SendRaw(ctx, deliveryPayload(m), nil)
		if err != nil {
			q.putBack(m) // never reached the link
			return
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			q.outcome(c, m, rc)
		}()
		waitStarted(ctx, snd, before, rc)
	}
}

// waitStarted waits (briefly) until the engine took the delivery's credit:
// Credit() only drops when the transfer is written, and a message must not
// sit on a link without credit while another consumer could take it.
func waitStarted(ctx context.Context, snd *amqp.Sender, before uint32, rc *amqp.Receipt) {
	for i := 0; i < 100 && snd.Credit() == before; i++ {
		select {
		case <-rc.Done():
			return
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Microsecond):
		}
	}
}

// outcome settles m in the queue by the consumer's disposition. The engine
// completes every receipt when its link ends, so this returns with the link
// at the latest (or when the queue set closes).
func (q *queue) outcome(c *consumer, m *qmsg, rc *amqp.Receipt) {
	var (
		state frames.DeliveryState
		err   error
	)
	select {
	case <-rc.Done():
		state, err = rc.State()
	case <-q.qs.ctx.Done():
		rc.Cancel()
		err = q.qs.ctx.Err()
	}
	if err != nil {
		// Unsettled when the link ended: the peer may have seen it, so it
		// counts as a delivery attempt (AMQP 1.0 §3.2.1 delivery-count).
		m.failures++
		c.mu.Lock()
		c.lost = append(c.lost, m)
		c.mu.Unlock()
		return
	}
	switch s := state.(type) {
	case *frames.Accepted, nil: // nil: sent pre-settled, gone once sent (at-most-once)
		q.qs.delivered.Inc()
		q.done(m)
	case *frames.Rejected:
		// AMQP 1.0 §3.4.2: the message is invalid for the consumer; not redelivered.
		q.qs.rejectedBy.Inc()
		q.done(m)
	case *frames.Modified:
		// AMQP 1.0 §3.4.5: delivery-failed counts an attempt; undeliverable-here
		// keeps it from this link.
		if s.DeliveryFailed.Or(false) {
			m.failures++
		}
		if s.UndeliverableHere.Or(false) {
			m.avoid = c
		}
		q.putBack(m)
	default:
		// Released (AMQP 1.0 §3.4.4: not a delivery attempt) or another outcome.
		q.putBack(m)
	}
}

func (q *queue) attach() *consumer {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.consumers++
	q.nConsumers++
	return &consumer{id: q.nConsumers}
}

func (q *queue) detach() {
	q.mu.Lock()
	q.consumers--
	q.idleSince = time.Now()
	gone := q.temporary && q.consumers == 0 && !q.deleted
	if gone {
		q.deleted = true
		q.hold(-q.held, -q.bytes)
		q.redeliver, q.ready, q.head = nil, nil, 0
	}
	q.mu.Unlock()
	if gone {
		q.qs.remove(q)
	}
}

// deliveryPayload is m as it goes out: header.delivery-count raised by the
// failed attempts (AMQP 1.0 §3.2.1), the rest byte for byte.
func deliveryPayload(m *qmsg) []byte {
	if m.failures == 0 {
		return m.payload
	}
	var msg frames.Message
	if err := msg.Decode(m.payload); err != nil {
		return m.payload // stored undecodable: forwarded as it came
	}
	if msg.Header == nil {
		msg.Header = &frames.MessageHeader{}
	}
	msg.Header.DeliveryCount = frames.Some(msg.Header.DeliveryCount.Or(0) + m.failures)
	out, err := msg.Encode(nil)
	if err != nil {
		return m.payload
	}
	return out
}

// decodeHeader returns the message's header section, or nil.
func decodeHeader(payload []byte) *frames.MessageHeader {
	// Only a message that starts with a header section is decoded: the
	// descriptor 0x70 as smallulong (00 53 70) or ulong (00 80 ...).
	if len(payload) < 3 || payload[0] != 0 || (payload[1] != 0x53 || payload[2] != 0x70) && payload[1] != 0x80 {
		return nil
	}
	var msg frames.Message
	if msg.Decode(payload) != nil {
		return nil
	}
	return msg.Header
}

// queueInfo is one entry of /api/v1/queues.
type queueInfo struct {
	Name      string `json:"name"`
	Messages  int    `json:"messages"` // held: ready, being redelivered and in flight
	Bytes     int64  `json:"bytes"`
	Consumers int    `json:"consumers"`
	Temporary bool   `json:"temporary"`         // dynamic reply queue
	Pattern   string `json:"pattern,omitempty"` // the match: it was created for
}

// snapshot lists the queues, sorted by name.
func (qs *queues) snapshot() []queueInfo {
	qs.mu.Lock()
	nodes := make([]*queue, 0, len(qs.nodes))
	for _, q := range qs.nodes {
		nodes = append(nodes, q)
	}
	qs.mu.Unlock()
	out := make([]queueInfo, 0, len(nodes))
	for _, q := range nodes {
		q.mu.Lock()
		qi := queueInfo{Name: q.name, Messages: q.held, Bytes: q.bytes, Consumers: q.consumers, Temporary: q.temporary}
		q.mu.Unlock()
		if q.auto {
			qi.Pattern = q.cfg.Match
		}
		out = append(out, qi)
	}
	slices.SortFunc(out, func(a, b queueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
