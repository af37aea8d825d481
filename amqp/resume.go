package amqp

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// ---- link stealing (AMQP 1.0 §2.6.1, §2.8.15 amqp:link:stolen) ---------------------------------

// linkRegistry maps the links peers attached to a Server, by (peer identity, peer container-id,
// link name, role), across all its connections. One per Server; nil on client connections.
type linkRegistry struct {
	mu sync.Mutex
	m  map[stealKey]*link
}

type stealKey struct {
	identity  string // the authenticated identity: one user cannot steal another's links
	container string
	name      string
	role      frames.Role // this side's role
}

func newLinkRegistry() *linkRegistry { return &linkRegistry{m: make(map[stealKey]*link)} }

func registryKey(l *link) stealKey {
	c := l.s.conn
	return stealKey{identity: c.identity.Name, container: c.RemoteContainerID(), name: l.name, role: l.role}
}

// claim registers l and returns the link it replaces, if any.
func (g *linkRegistry) claim(l *link) *link {
	k := registryKey(l)
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.m[k]
	g.m[k] = l
	return old
}

// release forgets l unless another link took its place already. Nil-safe.
func (g *linkRegistry) release(l *link) {
	if g == nil {
		return
	}
	k := registryKey(l)
	g.mu.Lock()
	if g.m[k] == l {
		delete(g.m, k)
	}
	g.mu.Unlock()
}

// stealOld detaches the link this attach replaces: a link with the same name and role attached
// by the same container (and identity) on another connection is detached with amqp:link:stolen
// before the LinkHandler sees the new attach. AMQP 1.0 §2.6.1: a link is identified by the
// container-ids of its ends, its name and the roles, so at most one can be attached. Runs on the
// LinkRequest goroutine.
func (r *LinkRequest) stealOld() {
	g := r.s.conn.cfg.registry
	if g == nil {
		return
	}
	old := g.claim(r.l)
	if old == nil || old == r.l {
		return
	}
	e := errorf(frames.CondLinkStolen, "link %q was attached again by its container on another connection", r.l.name)
	_ = old.s.call(context.Background(), func() error {
		switch {
		case old.finished:
		case old.state == linkAttached:
			old.s.detachWithError(old, e)
		case old.state == linkAttachRcvd:
			old.s.refuse(old, e)
			old.finish(&LinkError{LocalErr: e})
		}
		return nil
	})
}

// ---- resumption (AMQP 1.0 §2.6.13, §3.4.6) ----------------------------------------------------

// Unsettled returns the peer's unsettled map (delivery-tag → state), nil when the peer attached
// afresh rather than resuming. AMQP 1.0 §2.7.3, §2.6.13. The handler reconciles it with what it
// holds and answers with ReceiverOptions.Unsettled (or SenderOptions.Resume).
func (r *LinkRequest) Unsettled() frames.Unsettled { return r.attach.Unsettled }

// IncompleteUnsettled reports whether the peer's unsettled map is partial. AMQP 1.0 §2.7.3.
func (r *LinkRequest) IncompleteUnsettled() bool { return r.attach.IncompleteUnsettled }

// Resumed reports whether the delivery came in a transfer with resume=true: it was sent on an
// earlier attachment of the link and may have been seen before (AMQP 1.0 §3.4.6).
func (d *Delivery) Resumed() bool { return d.resumed }

// fail ends a receipt whose link ended. The unsettled (and not yet sent) deliveries of a Resumable
// sender whose link was suspended (detach closed=false, or the session or connection lost) are
// kept instead, for SenderOptions.Resume. Session goroutine.
func (r *Receipt) fail(err error) {
	l := r.l
	if l.snd == nil || !l.snd.resumable || r.settled || r.abort || r.completed || l.closeSent || l.remoteClosed {
		r.complete(nil, err)
		return
	}
	if r.parked {
		return
	}
	l.snd.parkMu.Lock()
	r.parked = true
	l.snd.parked = append(l.snd.parked, r)
	l.snd.parkMu.Unlock()
}

// cancelParked handles Receipt.Cancel for a parked receipt: before the resume it is marked to be
// aborted (or dropped, if never sent) on the resumed link; after, the receipt resending it is
// cancelled. It reports whether r was parked. Any goroutine.
func (r *Receipt) cancelParked() bool {
	mu := &r.l.snd.parkMu
	mu.Lock()
	if !r.parked {
		mu.Unlock()
		return false
	}
	child := r.child
	if child == nil {
		r.cancelReq = true
	}
	mu.Unlock()
	if child != nil {
		child.Cancel()
	}
	return true
}

// markDropped records that both detaches were exchanged: every receipt of the link was parked or
// completed.
func (l *link) markDropped() {
	if !l.isDropped {
		l.isDropped = true
		close(l.dropped)
	}
}

// takeParked waits until the suspended sender old has parked all its deliveries and takes them:
// those sent (and maybe seen by the peer) first, by delivery-id, then those never sent.
func takeParked(ctx context.Context, old *Sender) ([]*Receipt, error) {
	if !old.resumable {
		return nil, errors.New("amqp: SenderOptions.Resume needs a sender attached with Resumable")
	}
	select {
	case <-old.l.done:
	default:
		return nil, errors.New("amqp: the sender to resume is still attached: Detach it first")
	}
	select {
	case <-old.l.dropped:
	case <-old.l.s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	old.parkMu.Lock()
	ps := old.parked
	old.parked = nil
	taken := old.resumeTaken
	old.resumeTaken = true
	old.parkMu.Unlock()
	if taken {
		return nil, errors.New("amqp: this sender was resumed already")
	}
	// A delivery parked while partly sent may have been settled by a disposition that arrived
	// before the peer's detach.
	ps = slices.DeleteFunc(ps, func(p *Receipt) bool { return p.completed })
	slices.SortStableFunc(ps, func(a, b *Receipt) int {
		switch {
		case a.started && !b.started:
			return -1
		case !a.started && b.started:
			return 1
		case a.started && serialLess(a.id, b.id):
			return -1
		case a.started && serialLess(b.id, a.id):
			return 1
		}
		return 0
	})
	return ps, nil
}

// repark gives the deliveries taken by a resuming attach that failed back to the suspended
// sender, for another attempt.
func (snd *Sender) repark(ps []*Receipt) {
	snd.parkMu.Lock()
	snd.parked = append(ps, snd.parked...)
	snd.resumeTaken = false
	snd.parkMu.Unlock()
}

// unsettledMap is what a resuming sender puts in its attach: the deliveries the peer may have
// seen, with their last known state. Never nil: an empty map still says "resuming".
func unsettledMap(ps []*Receipt) frames.Unsettled {
	m := frames.Unsettled{}
	for _, p := range ps {
		if p.started {
			m = append(m, frames.UnsettledDelivery{Tag: p.tag, State: p.lastState})
		}
	}
	return m
}

// resumeDeliveries reconciles the parked deliveries of the suspended sender with the peer's
// unsettled map and queues what must go out on the new link l. AMQP 1.0 §3.4.6:
//   - the peer holds a terminal outcome: the delivery's receipt completes with it, and a transfer
//     with resume=true, settled=true, that state and no payload settles it at the peer;
//   - otherwise (the peer holds it without an outcome, or does not know it): the whole payload is
//     sent again with resume=true, so that a receiver that has it can tell;
//   - the application cancelled it (Receipt.Cancel) while partly sent: a transfer with resume=true
//     and aborted=true, no payload; the receipt fails with ErrAborted;
//   - deliveries never sent before the suspend are sent as new ones (dropped if cancelled).
//
// Session goroutine of l, before anything else is queued on l.
func (s *Session) resumeDeliveries(l *link, ps []*Receipt, peer frames.Unsettled) {
	states := make(map[string]frames.DeliveryState, len(peer))
	for _, u := range peer {
		states[string(u.Tag)] = u.State
	}
	var q []*Receipt
	for _, p := range ps {
		n := &Receipt{l: l, snd: l.snd, done: make(chan struct{}), tag: p.tag, format: p.format, sendState: p.sendState, parent: p, noSlot: true}
		mu := &p.l.snd.parkMu
		mu.Lock()
		cancelled := p.cancelReq
		p.child = n
		mu.Unlock()
		if !p.started && cancelled {
			p.complete(nil, ErrAborted) // never sent: dropped, as Cancel does
			continue
		}
		if !p.started {
			n.payload = p.payload
			q = append(q, n)
			continue
		}
		n.resume = true
		if st, ok := states[string(p.tag)]; ok && isTerminal(st) {
			p.complete(st, nil)
			n.parent = nil
			n.settled = true
			n.sendState = st
			q = append(q, n)
			continue
		}
		if p.abort || cancelled {
			// The application cancelled it mid-transfer before the suspend: the payload is not
			// resent; the peer learns the delivery is aborted. AMQP 1.0 §3.4.6, §2.6.14.
			p.complete(nil, ErrAborted)
			n.parent = nil
			n.settled = true
			n.resumeAbort = true
			q = append(q, n)
			continue
		}
		n.payload = p.payload
		q = append(q, n)
	}
	for _, n := range q {
		n.rcvSecond = l.rcvMode == frames.ReceiverSettleModeSecond
	}
	l.queue = append(q, l.queue...)
}

// resumeStates indexes the unsettled map a receiver sent on its attach, for the resumed
// transfers that follow.
func resumeStates(u frames.Unsettled) map[string]frames.DeliveryState {
	if u == nil {
		return nil
	}
	m := make(map[string]frames.DeliveryState, len(u))
	for _, e := range u {
		m[string(e.Tag)] = e.State
	}
	return m
}

// resumedAbort counts a resumed delivery that arrives aborted in its first transfer (the sender
// could not resend its payload): it used a delivery-id and credit on the sender's side, so it
// uses credit here too, and is discarded. AMQP 1.0 §3.4.6, §2.6.14.
func (s *Session) resumedAbort(l *link, t *frames.Transfer) {
	if !t.Resume || !t.DeliveryID.Valid || l.receiverCredit() == 0 {
		return
	}
	l.deliveryCount++
	if l.resumeStates != nil {
		delete(l.resumeStates, string(t.DeliveryTag))
	}
	s.checkDrained(l)
	s.refill(l)
}

// resumedKnown handles a complete resumed delivery the receiver's unsettled map gave a terminal
// outcome: it is not handed to the application again (no duplicate); unless the sender settled
// it, it is settled with that outcome. AMQP 1.0 §3.4.6. It reports whether it did so.
func (s *Session) resumedKnown(l *link, a *assembly) bool {
	if !a.resume || l.resumeStates == nil {
		return false
	}
	st, ok := l.resumeStates[string(a.tag)]
	if !ok || !isTerminal(st) {
		return false
	}
	delete(l.resumeStates, string(a.tag))
	if !a.settled {
		s.queueDisposition(&frames.Disposition{Role: frames.RoleReceiver, First: a.id, Settled: true, State: st})
	}
	return true
}
