package amqp

import (
	"context"
	"sync/atomic"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// SessionOptions configures a session this side begins.
type SessionOptions struct {
	// IncomingWindow is the number of transfer frames the peer may send before this side
	// re-advertises its window (AMQP 1.0 §2.5.6). Default: the connection's (5000).
	IncomingWindow uint32
	// HandleMax is the highest link handle the peer may use (AMQP 1.0 §2.7.2). Default 1023.
	HandleMax uint32
}

// pumpBudget is how many transfer frames a session writes before it looks at its input again, so
// one large message does not delay flows and dispositions.
const pumpBudget = 32

// Session is an AMQP session (AMQP 1.0 §2.5). One goroutine owns its state: the windows, the
// links, the unsettled deliveries. Applications talk to it through closures run on that goroutine
// (ops), the connection's reader through in.
type Session struct {
	conn          *Conn
	localCh       uint16
	remoteCh      uint16 // set by the reader before the peer's begin is delivered
	awaitingBegin atomic.Bool

	in    chan inFrame  // from the reader
	ops   chan func()   // from the application, run on the session goroutine
	poke  chan struct{} // a receiver's application side released capacity (cap 1)
	done  chan struct{} // closed when the session ended
	err   error         // the *SessionError, set before done closes
	begun chan error    // NewSession's answer (sessions this side begins)

	// Everything below is owned by run.
	window               uint32 // our configured incoming-window
	handleMax            uint32 // ours: the peer's handles stay at or below it
	peerHandleMax        uint32 // the peer's: our handles stay at or below it
	replyBegin           bool   // the peer began: answer with our begin first
	nextIncomingID       uint32
	incomingWindow       uint32 // what is left of the window we last advertised
	nextOutgoingID       uint32
	initialOutgoingID    uint32
	remoteIncomingWindow uint32
	remoteOutgoingWindow uint32
	nextDeliveryID       uint32
	links                map[uint32]*link // by our handle
	remote               map[uint32]*link // by the peer's handle
	pending              map[string]*link // our attaches waiting for the answer, by name
	outUnsettled         map[uint32]*Receipt
	inUnsettled          map[uint32]*Delivery
	sendable             []*link // senders with queued deliveries, served round robin
	endSent              bool
	ended                bool
	localErr, remoteErr  *Error
	closeWaiters         []chan struct{}
	// disp is a disposition still being extended by settlements of consecutive deliveries with
	// the same outcome; it is written once no application call is queued.
	disp    *frames.Disposition
	dispAge int
}

// maxDispositionRange bounds the ranges this side sends: a peer walks them (RabbitMQ #17407).
const maxDispositionRange = 4096

func newSession(c *Conn, local uint16, opts *SessionOptions) *Session {
	s := &Session{
		conn:         c,
		localCh:      local,
		in:           make(chan inFrame, sessionQueue),
		ops:          make(chan func(), sessionQueue),
		poke:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		window:       c.cfg.sessionWindow,
		handleMax:    c.cfg.handleMax,
		links:        make(map[uint32]*link),
		remote:       make(map[uint32]*link),
		pending:      make(map[string]*link),
		outUnsettled: make(map[uint32]*Receipt),
		inUnsettled:  make(map[uint32]*Delivery),
	}
	if opts != nil {
		if opts.IncomingWindow > 0 {
			s.window = opts.IncomingWindow
		}
		if opts.HandleMax > 0 {
			s.handleMax = opts.HandleMax
		}
	}
	s.incomingWindow = s.window
	return s
}

// NewSession begins a session and waits for the peer's begin. AMQP 1.0 §2.5.2.
func (c *Conn) NewSession(ctx context.Context, opts *SessionOptions) (*Session, error) {
	c.mu.Lock()
	if c.closeStarted {
		c.mu.Unlock()
		return nil, c.connErr()
	}
	ch, ok := c.allocChannelLocked()
	if !ok {
		c.mu.Unlock()
		return nil, errorf(frames.CondResourceLimitExceeded, "no free channel (channel-max %d)", min(c.cfg.channelMax, c.peerChannelMax))
	}
	s := newSession(c, ch, opts)
	s.begun = make(chan error, 1)
	s.awaitingBegin.Store(true)
	c.byLocal[ch] = s
	c.mu.Unlock()
	if !c.goroutines.Go(s.run) {
		c.releaseSession(s)
		return nil, c.connErr()
	}
	select {
	case err := <-s.begun:
		if err != nil {
			return nil, err
		}
		return s, nil
	case <-s.done:
		return nil, s.err
	case <-ctx.Done():
		s.closeAsync()
		return nil, ctx.Err()
	}
}

// Conn returns the session's connection.
func (s *Session) Conn() *Conn { return s.conn }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns the *SessionError that ended the session, or nil while it is mapped.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the session (AMQP 1.0 §2.7.8) and waits for the peer's end or ctx. Links on it end
// with it. It returns nil for a clean end.
func (s *Session) Close(ctx context.Context) error {
	var wait chan struct{}
	err := s.call(ctx, func() error {
		wait = make(chan struct{})
		s.closeWaiters = append(s.closeWaiters, wait)
		s.end(nil)
		return nil
	})
	if err != nil {
		if s.cleanlyEnded() {
			return nil
		}
		return err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.cleanlyEnded() {
		return nil
	}
	return s.err
}

func (s *Session) cleanlyEnded() bool {
	select {
	case <-s.done:
	default:
		return false
	}
	se, ok := s.err.(*SessionError)
	return ok && se.RemoteErr == nil && se.LocalErr == nil && se.Err == nil
}

func (s *Session) closeAsync() {
	select {
	case s.ops <- func() { s.end(nil) }:
	case <-s.done:
	case <-s.conn.closing:
	}
}

// call runs fn on the session goroutine and returns its result. ctx bounds only the wait for a
// place in the queue: once queued, fn runs promptly (the session goroutine never blocks on the
// application).
func (s *Session) call(ctx context.Context, fn func() error) error {
	res := make(chan error, 1)
	select {
	case s.ops <- func() { res <- fn() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return s.err
	}
	select {
	case err := <-res:
		return err
	case <-s.done:
		select {
		case err := <-res:
			return err
		default:
		}
		return s.err
	}
}

// pokeRefill tells the session that a receiver's application side freed capacity.
func (s *Session) pokeRefill() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// ---- the session goroutine ----------------------------------------------------------------------

func (s *Session) run() {
	defer s.finish()
	defer s.conn.recoverPanic("session")
	if s.begun != nil {
		s.nextOutgoingID = s.initialOutgoingID
		s.write(&frames.Begin{
			NextOutgoingID: s.nextOutgoingID,
			IncomingWindow: s.window,
			OutgoingWindow: outgoingWindow,
			HandleMax:      s.handleMax,
		}, nil)
	} else if s.replyBegin {
		s.write(&frames.Begin{
			RemoteChannel:  frames.Some(s.remoteCh),
			NextOutgoingID: s.nextOutgoingID,
			IncomingWindow: s.window,
			OutgoingWindow: outgoingWindow,
			HandleMax:      s.handleMax,
		}, nil)
	}
	for !s.ended {
		if s.disp != nil {
			// Write the merged disposition once nothing is waiting that could extend it, or
			// after a bounded number of events, so a busy session does not hold it back.
			s.dispAge++
			if (len(s.ops) == 0 && len(s.in) == 0) || s.dispAge > 64 {
				s.flushDisposition()
			}
		}
		if len(s.sendable) > 0 && s.remoteIncomingWindow > 0 && !s.endSent {
			select {
			case f := <-s.in:
				s.handle(f)
			case fn := <-s.ops:
				fn()
			case <-s.poke:
				s.refillAll()
			case <-s.conn.closing:
				s.drainInput()
				return
			default:
				s.pump(pumpBudget)
			}
			continue
		}
		select {
		case f := <-s.in:
			s.handle(f)
		case fn := <-s.ops:
			fn()
		case <-s.poke:
			s.refillAll()
		case <-s.conn.closing:
			s.drainInput()
			return
		}
	}
}

// drainInput handles the frames the reader queued before the connection ended: a peer that
// sends pre-settled transfers and then close expects them to count.
func (s *Session) drainInput() {
	for {
		select {
		case f := <-s.in:
			s.handle(f)
		default:
			return
		}
	}
}

// finish ends every link, publishes the session's error and frees its channel.
func (s *Session) finish() {
	var err *SessionError
	if s.ended {
		err = &SessionError{RemoteErr: s.remoteErr, LocalErr: s.localErr}
	} else {
		err = &SessionError{RemoteErr: s.remoteErr, LocalErr: s.localErr, Err: s.conn.connErr()}
	}
	s.err = err
	if s.begun != nil {
		select {
		case s.begun <- err:
		default:
		}
	}
	for _, l := range s.links {
		l.finish(&LinkError{Err: err})
	}
	for _, l := range s.remote {
		l.finish(&LinkError{Err: err})
	}
	for _, r := range s.outUnsettled {
		r.fail(&LinkError{Err: err})
	}
	s.conn.releaseSession(s)
	close(s.done)
	for _, w := range s.closeWaiters {
		close(w)
	}
}

func (s *Session) write(body frames.FrameBody, payload []byte) bool {
	if s.disp != nil {
		switch body.(type) {
		case *frames.Detach, *frames.End:
			// A merged disposition goes out before the link or session it belongs to ends.
			d := s.disp
			s.disp = nil
			s.conn.send(outFrame{ch: s.localCh, body: d})
		}
	}
	return s.conn.send(outFrame{ch: s.localCh, body: body, payload: payload})
}

// beginFromPeer takes the peer's begin before the session goroutine starts. AMQP 1.0 §2.5.2.
func (s *Session) beginFromPeer(b *frames.Begin) {
	s.replyBegin = true
	s.applyBegin(b)
}

func (s *Session) applyBegin(b *frames.Begin) {
	s.nextIncomingID = b.NextOutgoingID
	s.remoteIncomingWindow = b.IncomingWindow
	s.remoteOutgoingWindow = b.OutgoingWindow
	s.peerHandleMax = b.HandleMax
}

func (s *Session) handle(f inFrame) {
	if s.endSent {
		// END_SENT / DISCARDING (AMQP 1.0 §2.5.5): only the peer's end matters now; the links are
		// already gone.
		if e, ok := f.perf.(*frames.End); ok {
			s.remoteErr = fromFrame(e.Error)
			s.ended = true
		}
		return
	}
	switch p := f.perf.(type) {
	case *frames.Begin:
		s.applyBegin(p)
		if s.begun != nil {
			s.begun <- nil
		}
	case *frames.Attach:
		s.handleAttach(p)
	case *frames.Flow:
		s.handleFlow(p)
	case *frames.Transfer:
		s.handleTransfer(p, f.payload)
	case *frames.Disposition:
		s.handleDisposition(p)
	case *frames.Detach:
		s.handleDetach(p)
	case *frames.End:
		s.remoteErr = fromFrame(p.Error)
		s.end(nil) // answer the peer's end. AMQP 1.0 §2.7.8
		s.ended = true
	}
}

// end sends end (once) and detaches every link locally. With an error the session discards input
// until the peer's end (DISCARDING, AMQP 1.0 §2.5.5).
func (s *Session) end(e *Error) {
	if s.endSent {
		return
	}
	s.flushDisposition()
	s.endSent = true
	s.localErr = e
	if e != nil {
		s.conn.log.Debug("ending session", "channel", s.localCh, "condition", string(e.Condition), "description", e.Description)
	}
	s.write(&frames.End{Error: e.toFrame()}, nil)
	err := &SessionError{RemoteErr: s.remoteErr, LocalErr: e}
	for _, l := range s.links {
		l.finish(&LinkError{Err: err})
	}
	for _, l := range s.remote {
		l.finish(&LinkError{Err: err})
	}
	for id, r := range s.outUnsettled {
		r.fail(&LinkError{Err: err})
		delete(s.outUnsettled, id)
	}
	s.sendable = nil
}

// ---- flow control (AMQP 1.0 §2.5.6, §2.6.7) ----------------------------------------------------

// sessionFlow fills in the session part of a flow. Every flow re-advertises the full incoming
// window, which is how the window is refreshed without link activity (checklist §1.9).
func (s *Session) sessionFlow() *frames.Flow {
	if !s.conn.cfg.fixedWindow {
		s.incomingWindow = s.window
	}
	return &frames.Flow{
		NextIncomingID: frames.Some(s.nextIncomingID),
		IncomingWindow: s.incomingWindow,
		NextOutgoingID: s.nextOutgoingID,
		OutgoingWindow: outgoingWindow,
	}
}

func (s *Session) sendLinkFlow(l *link, echo bool) {
	f := s.sessionFlow()
	f.Handle = frames.Some(l.handle)
	f.DeliveryCount = frames.Some(l.deliveryCount)
	f.Echo = echo
	if l.role == frames.RoleReceiver {
		f.LinkCredit = frames.Some(l.receiverCredit())
		f.Drain = l.draining
	} else {
		f.LinkCredit = frames.Some(l.credit)
		f.Available = frames.Some(uint32(len(l.queue)))
		f.Drain = l.drain
	}
	s.write(f, nil)
}

func (s *Session) handleFlow(f *frames.Flow) {
	// AMQP 1.0 §2.5.6: remote-incoming-window = next-incoming-id(flow) + incoming-window(flow)
	// − next-outgoing-id(endpoint); a flow sent before the peer saw our begin has no
	// next-incoming-id and counts from our initial-outgoing-id. Clamped, never wrapped.
	next := f.NextIncomingID.Or(s.initialOutgoingID)
	s.remoteIncomingWindow = clampWindow(serialDiff(next, s.nextOutgoingID) + int64(f.IncomingWindow))
	s.remoteOutgoingWindow = f.OutgoingWindow
	h, ok := f.Handle.Get()
	if !ok {
		if f.Echo {
			s.write(s.sessionFlow(), nil)
		}
		return
	}
	l := s.remote[h]
	if l == nil {
		s.end(errorf(frames.CondSessionUnattachedHandle, "flow for unattached handle %d", h))
		return
	}
	if l.state == linkDetachSent || l.state == linkDetached {
		return
	}
	if l.role == frames.RoleSender {
		// AMQP 1.0 §2.6.7: link-credit(snd) = delivery-count(rcv) + link-credit(rcv) −
		// delivery-count(snd); a flow sent before the receiver saw our attach has no delivery-count
		// and counts from our initial-delivery-count.
		dc := f.DeliveryCount.Or(l.initialDeliveryCount)
		l.credit = clampWindow(serialDiff(dc, l.deliveryCount) + int64(f.LinkCredit.Or(0)))
		l.drain = f.Drain
		l.publishCredit()
		if l.state != linkAttached {
			return // pipelined before our attach: accept takes it from here
		}
		if len(l.queue) > 0 {
			s.markSendable(l)
		} else if l.drain && (!l.manualDrain || l.credit == 0) {
			s.completeDrain(l)
			return // completeDrain answered with a flow
		}
		if f.Echo {
			s.sendLinkFlow(l, false)
		}
		return
	}
	// We receive on l: the sender tells us its delivery-count (after a drain it advanced it by the
	// unused credit) and how much it has available.
	if dc, ok := f.DeliveryCount.Get(); ok {
		l.deliveryCount = dc
	}
	l.available = f.Available.Or(0)
	if l.state != linkAttached {
		return
	}
	s.checkDrained(l)
	s.refill(l)
	if f.Echo {
		s.sendLinkFlow(l, false)
	}
}

// completeDrain uses up the remaining credit of a sending link whose receiver asked to drain and
// for which nothing is queued. AMQP 1.0 §2.6.7: "advance the delivery-count as much as possible,
// consuming all link-credit, and send the flow state to the receiver".
func (s *Session) completeDrain(l *link) {
	l.deliveryCount += l.credit
	l.credit = 0
	s.sendLinkFlow(l, false) // with drain=true: go-amqp's DrainCredit waits for exactly that
	l.drain = false
	l.drainWhenEmpty = false
	l.publishCredit()
}

func (s *Session) markSendable(l *link) {
	if l.inSendable || l.state != linkAttached {
		return
	}
	l.inSendable = true
	s.sendable = append(s.sendable, l)
}

// pump writes up to budget transfer frames, one frame per sending link in turn, within the peer's
// incoming window and each link's credit.
func (s *Session) pump(budget int) {
	for budget > 0 && s.remoteIncomingWindow > 0 && len(s.sendable) > 0 && !s.endSent {
		l := s.sendable[0]
		s.sendable = s.sendable[1:]
		if !s.sendFrame(l) || len(l.queue) == 0 || l.state != linkAttached {
			l.inSendable = false
			continue
		}
		s.sendable = append(s.sendable, l)
		budget--
	}
	if len(s.sendable) == 0 {
		s.sendable = nil // let the backing array go
	}
}

// sendFrame writes the next transfer frame of l's head delivery; false when l cannot send now.
func (s *Session) sendFrame(l *link) bool {
	if len(l.queue) == 0 {
		return false
	}
	r := l.queue[0]
	if r.abort {
		l.queue = l.queue[1:]
		if r.started {
			// AMQP 1.0 §2.6.14: an aborted delivery ends with a transfer that has aborted=true.
			s.write(&frames.Transfer{Handle: l.handle, DeliveryID: frames.Some(r.id), DeliveryTag: r.tag, Aborted: true, Settled: frames.Some(true)}, nil)
			s.nextOutgoingID++
			s.remoteIncomingWindow--
			delete(s.outUnsettled, r.id)
		}
		r.complete(nil, ErrAborted)
		s.afterDelivery(l)
		return true
	}
	if !r.started {
		if l.credit == 0 {
			return false
		}
		r.started = true
		r.id = s.nextDeliveryID
		s.nextDeliveryID++
		l.credit--
		l.deliveryCount++
		l.publishCredit()
		if !r.settled {
			s.outUnsettled[r.id] = r
		}
		r.overhead = transferOverhead(l, r)
	}
	t := &frames.Transfer{Handle: l.handle, DeliveryID: frames.Some(r.id), DeliveryTag: r.tag}
	if r.off == 0 {
		t.MessageFormat = frames.Some(r.format)
		t.Settled = frames.Some(r.settled)
		t.State = r.sendState
		t.Resume = r.resume
		t.Aborted = r.resumeAbort
	}
	// AMQP 1.0 §2.7.5, §2.6.13: split by the peer's max-frame-size minus the encoded frame header
	// and transfer (computed from the real encoding, checklist §1.11).
	room := int(s.conn.peerMaxFrame) - r.overhead
	chunk := r.payload[r.off:]
	if len(chunk) > room {
		chunk = chunk[:room]
		t.More = true
	}
	s.write(t, chunk)
	s.nextOutgoingID++
	s.remoteIncomingWindow--
	r.off += len(chunk)
	if !t.More {
		l.queue = l.queue[1:]
		r.sent = true
		if r.settled {
			r.complete(nil, nil)
		}
		s.afterDelivery(l)
	}
	return true
}

func (s *Session) afterDelivery(l *link) {
	if len(l.queue) == 0 {
		l.queue = nil
		if l.drain && (!l.manualDrain || l.drainWhenEmpty) {
			s.completeDrain(l)
		}
	}
}

// transferOverhead is the encoded size of the frame header and the first transfer of r with
// more=true: an upper bound for every frame of the delivery.
func transferOverhead(l *link, r *Receipt) int {
	t := frames.Transfer{Handle: l.handle, DeliveryID: frames.Some(r.id), DeliveryTag: r.tag,
		MessageFormat: frames.Some(r.format), Settled: frames.Some(r.settled), More: true, State: r.sendState, Resume: r.resume}
	var scratch [128]byte
	b, err := t.Encode(scratch[:0])
	if err != nil {
		return 512 // too small a frame then, but the writer reports the encoding error
	}
	return len(b) + frames.HeaderSize
}

// ---- incoming transfers -------------------------------------------------------------------------

func (s *Session) handleTransfer(t *frames.Transfer, payload []byte) {
	// AMQP 1.0 §2.5.6: every transfer frame uses one unit of the incoming window; one beyond it
	// is a session error.
	if s.incomingWindow == 0 {
		s.end(errorf(frames.CondSessionWindowViolation, "transfer beyond the incoming-window of %d", s.window))
		return
	}
	s.incomingWindow--
	s.nextIncomingID++
	defer s.readvertise()
	l := s.remote[t.Handle]
	if l == nil {
		s.end(errorf(frames.CondSessionUnattachedHandle, "transfer for unattached handle %d", t.Handle))
		return
	}
	if l.state == linkDetachSent || l.state == linkDetached {
		return // detached by us: discard until the peer's detach
	}
	if l.role != frames.RoleReceiver {
		s.detachWithError(l, errorf(frames.CondNotAllowed, "transfer on a link where the peer is the receiver"))
		return
	}
	a := l.cur
	if a == nil {
		if t.Aborted { // an abort of a delivery we never saw start: nothing to discard
			s.resumedAbort(l, t)
			return
		}
		id, ok := t.DeliveryID.Get()
		if !ok {
			s.detachWithError(l, errorf(frames.CondInvalidField, "first transfer of a delivery has no delivery-id"))
			return
		}
		// AMQP 1.0 §2.6.7: a transfer without credit is a link error. But
		// RabbitMQ before 4.0 sends more transfers than granted (its issue
		// 2597) and strict receivers break against it, so an automatic-credit
		// receiver tolerates an overrun while what it holds stays under
		// overrunLimit; memory stays bounded.
		if l.receiverCredit() == 0 {
			if l.manualCredit || l.outstanding.Load() >= overrunLimit(l.capacity) {
				s.detachWithError(l, errorf(frames.CondLinkTransferLimitExceeded, "transfer without link credit"))
				return
			}
			l.overrun++
		}
		l.deliveryCount++
		a = &assembly{id: id, tag: t.DeliveryTag, format: t.MessageFormat.Or(0), resume: t.Resume}
		a.second = l.rcvMode == frames.ReceiverSettleModeSecond
		if m, ok := t.RcvSettleMode.Get(); ok && l.rcvMode == frames.ReceiverSettleModeSecond {
			a.second = m == frames.ReceiverSettleModeSecond
		}
		l.cur = a
	}
	if t.Settled.Or(false) {
		a.settled = true
	}
	if t.State != nil {
		a.state = t.State
	}
	if t.Aborted {
		// AMQP 1.0 §2.6.14: discard what arrived; the delivery is settled and its credit used.
		l.cur = nil
		s.checkDrained(l)
		s.refill(l)
		return
	}
	if l.maxMessageSize > 0 && uint64(a.size)+uint64(len(payload)) > l.maxMessageSize {
		l.cur = nil
		s.detachWithError(l, errorf(frames.CondLinkMessageSizeExceeded, "message exceeds max-message-size %d", l.maxMessageSize))
		return
	}
	a.add(payload)
	if t.More {
		return
	}
	l.cur = nil
	if s.resumedKnown(l, a) { // the receiver has its outcome already: no duplicate
		s.checkDrained(l)
		s.refill(l)
		return
	}
	d := &Delivery{
		l:             l,
		r:             l.rcv,
		id:            a.id,
		tag:           a.tag,
		format:        a.format,
		payload:       a.join(),
		senderSettled: a.settled,
		second:        a.second,
		state:         a.state,
		resumed:       a.resume,
	}
	if !a.settled {
		s.inUnsettled[a.id] = d
	}
	l.outstanding.Add(1)
	select {
	case l.deliveries <- d:
	default:
		// Cannot happen while credit + outstanding ≤ capacity holds, with the
		// tolerated overrun (overrunLimit) on top; refuse rather than block.
		s.detachWithError(l, errorf(frames.CondInternalError, "receiver buffer overflow"))
		return
	}
	s.checkDrained(l)
	s.refill(l)
}

// readvertise refreshes the incoming window once half of it is used, with a session-only flow
// (checklist §1.9: never wait for link activity to do it, never flood).
func (s *Session) readvertise() {
	if !s.endSent && s.incomingWindow <= s.window/2 && !s.conn.cfg.fixedWindow {
		s.write(s.sessionFlow(), nil)
	}
}

// refill grants credit to an auto-credit receiver once half of its capacity is free, keeping
// credit + in-progress + outstanding ≤ capacity, which bounds its memory.
func (s *Session) refill(l *link) {
	if l.state != linkAttached || l.role != frames.RoleReceiver || l.manualCredit || l.draining || s.endSent {
		return
	}
	used := l.outstanding.Load()
	if l.cur != nil {
		used++
	}
	credit := int64(l.receiverCredit())
	target := int64(l.capacity) - used
	if target <= credit || (credit+used)*2 > int64(l.capacity) {
		return
	}
	l.limit = l.deliveryCount + uint32(target)
	s.sendLinkFlow(l, false)
}

func (s *Session) refillAll() {
	for _, l := range s.links {
		if l.role == frames.RoleReceiver {
			s.refill(l)
		}
	}
}

// checkDrained completes Drain calls once the receiver's credit is used up or returned.
func (s *Session) checkDrained(l *link) {
	if !l.draining || l.receiverCredit() > 0 {
		return
	}
	l.draining = false
	for _, w := range l.drainWaiters {
		close(w)
	}
	l.drainWaiters = nil
}

// ---- dispositions (AMQP 1.0 §2.7.6) ------------------------------------------------------------

func isTerminal(st frames.DeliveryState) bool {
	switch st.(type) {
	case *frames.Accepted, *frames.Rejected, *frames.Released, *frames.Modified, *frames.Declared, *frames.Extension:
		return true
	}
	return false
}

// forRange visits the entries of m whose delivery-id is in first..last, walking
// whichever is smaller, the range (span ids) or the map: a peer may settle a
// huge range (RabbitMQ #17407).
func forRange[T any](m map[uint32]*T, first, last uint32, span uint64, visit func(uint32, *T)) {
	if span <= uint64(len(m)) {
		for i := uint64(0); i < span; i++ {
			id := first + uint32(i)
			if v := m[id]; v != nil {
				visit(id, v)
			}
		}
		return
	}
	for id, v := range m {
		if serialInRange(id, first, last) {
			visit(id, v)
		}
	}
}

func (s *Session) handleDisposition(d *frames.Disposition) {
	first := d.First
	last := d.Last.Or(first)
	if serialLess(last, first) {
		s.end(errorf(frames.CondInvalidField, "disposition range %d..%d is reversed", first, last))
		return
	}
	// The range may be huge (RabbitMQ #17407): walk whichever is smaller, the range or the map.
	span := uint64(serialDiff(last, first)) + 1
	if d.Role == frames.RoleReceiver {
		// The peer received these deliveries from us.
		reply := false
		visit := func(id uint32, r *Receipt) {
			switch {
			case d.Settled:
				delete(s.outUnsettled, id)
				r.complete(d.State, nil)
			case isTerminal(d.State):
				// AMQP 1.0 §2.6.12 (receiver settles second): the receiver sent its outcome
				// unsettled; the sender settles and the receiver then settles too. A receiver in
				// mode first that leaves an outcome unsettled gets the same answer: the outcome is
				// known, and the sender may settle at any time.
				delete(s.outUnsettled, id)
				r.complete(d.State, nil)
				reply = true
			default:
				r.lastState = d.State // e.g. received: progress, not an outcome
			}
		}
		forRange(s.outUnsettled, first, last, span, visit)
		if reply {
			s.write(&frames.Disposition{Role: frames.RoleSender, First: first, Last: frames.Some(last), Settled: true, State: d.State}, nil)
		}
		return
	}
	// The peer sent these deliveries to us and now settles or updates them.
	visit := func(id uint32, dl *Delivery) {
		dl.remoteState = d.State
		if !d.Settled {
			return
		}
		delete(s.inUnsettled, id)
		s.settleIncoming(dl)
	}
	forRange(s.inUnsettled, first, last, span, visit)
}

// settleIncoming marks an incoming delivery settled (once), returns its capacity and wakes a
// settlement waiting for the sender (receiver settle mode second).
func (s *Session) settleIncoming(d *Delivery) {
	if d.settled {
		return
	}
	d.settled = true
	d.l.outstanding.Add(-1)
	if d.wait != nil {
		close(d.wait)
		d.wait = nil
	}
	s.refill(d.l)
}

// queueDisposition sends a disposition for our incoming deliveries, merging settlements of
// consecutive delivery-ids with the same simple outcome into one range (AMQP 1.0 §2.7.6).
func (s *Session) queueDisposition(d *frames.Disposition) {
	if p := s.disp; p != nil {
		last := p.Last.Or(p.First)
		if p.Settled == d.Settled && sameSimpleState(p.State, d.State) && last+1 == d.First &&
			serialDiff(d.First, p.First) < maxDispositionRange {
			p.Last = frames.Some(d.First)
			return
		}
		s.flushDisposition()
	}
	switch d.State.(type) {
	case *frames.Accepted, *frames.Released, nil:
		s.disp = d
		s.dispAge = 0
	default:
		s.write(d, nil)
	}
}

func (s *Session) flushDisposition() {
	if s.disp != nil {
		s.write(s.disp, nil)
		s.disp = nil
	}
}

// sameSimpleState reports whether two states are both accepted, both released or both absent:
// the outcomes without fields, which a range can share.
func sameSimpleState(a, b frames.DeliveryState) bool {
	switch a.(type) {
	case *frames.Accepted:
		_, ok := b.(*frames.Accepted)
		return ok
	case *frames.Released:
		_, ok := b.(*frames.Released)
		return ok
	case nil:
		return b == nil
	}
	return false
}

// overrunLimit bounds what an automatic-credit receiver holds when the peer
// sends beyond its credit (see handleTransfer).
func overrunLimit(capacity uint32) int64 { return 4*int64(capacity) + 256 }
