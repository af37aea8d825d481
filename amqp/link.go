package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

type linkState uint8

const (
	linkAttachSent linkState = iota // we sent attach and wait for the answer (ATTACH_SENT)
	linkAttachRcvd                  // the peer attached; the LinkHandler decides (ATTACH_RCVD)
	linkRefused                     // the answer to our attach had a null terminus: a detach follows
	linkAttached
	linkDetachSent // we sent detach and wait for the peer's (DETACH_SENT)
	linkDetached
)

// link is the state shared by Sender and Receiver. Fields marked "session" are owned by the
// session goroutine; the rest are set before the link is published and read-only afterwards, or
// synchronized as noted.
type link struct {
	s    *Session
	name string
	role frames.Role // this side's role

	// session
	state                linkState
	handle               uint32 // ours
	hasHandle            bool
	remoteHandle         uint32
	hasRemote            bool
	localAttach          *frames.Attach // what we sent (or will answer with)
	remoteAttach         *frames.Attach // what the peer sent
	sndMode              frames.SenderSettleMode
	rcvMode              frames.ReceiverSettleMode
	source               *frames.Source
	target               *frames.Target
	peerMaxMessageSize   uint64 // 0: unlimited
	initialDeliveryCount uint32
	deliveryCount        uint32
	attachWait           chan error     // NewSender / NewReceiver / Accept* wait here
	peerDetach           *frames.Detach // a detach that arrived while the handler decided
	detachWaiters        []chan struct{}
	closeSent            bool // the detach we sent had closed=true

	// sender (session)
	credit         uint32
	drain          bool // the receiver asked to drain and credit remains
	manualDrain    bool // the application answers drains (SenderOptions.ManualDrain)
	drainWhenEmpty bool // CompleteDrain was called while deliveries were queued
	queue          []*Receipt
	inSendable     bool
	snd            *Sender

	// receiver (session)
	limit          uint32 // delivery-count + credit as last advertised (serial)
	capacity       uint32
	overrun        uint64 // transfers the peer sent beyond our credit, tolerated (see handleTransfer)
	manualCredit   bool
	draining       bool
	drainWaiters   []chan struct{}
	available      uint32
	cur            *assembly
	maxMessageSize uint64 // ours; 0: unlimited
	deliveries     chan *Delivery
	rcv            *Receiver
	outstanding    atomic.Int64 // deliveries queued or held unsettled by the application

	finished bool          // session
	done     chan struct{} // closed by finish
	err      error         // set before done closes

	// recovery (resume.go; session)
	remoteClosed bool          // the peer's detach had closed=true
	dropped      chan struct{} // closed once both detaches were exchanged
	isDropped    bool
	resumeFrom   *Sender                         // our attach resumes this suspended sender
	resumeParked []*Receipt                      // its deliveries, reconciled with the peer's answer
	resumeStates map[string]frames.DeliveryState // receiver: our attach's unsettled map (§3.4.6)
}

func newLink(s *Session, name string, role frames.Role) *link {
	return &link{s: s, name: name, role: role, done: make(chan struct{}), dropped: make(chan struct{})}
}

func (l *link) key() linkKey { return linkKey{name: l.name, role: l.role} }

// receiverCredit is the credit the sender still has in our view. AMQP 1.0 §2.6.7.
func (l *link) receiverCredit() uint32 { return clampWindow(serialDiff(l.limit, l.deliveryCount)) }

// publishCredit exposes a sender's credit to the application (WaitCredit).
func (l *link) publishCredit() {
	if l.snd != nil {
		l.snd.setCredit(l.credit)
		l.snd.setDraining(l.drain)
	}
}

// finish ends the link for the application (once): queued sends fail, waiters wake. Its handles
// stay mapped until both detaches were exchanged (see Session.dropLink).
func (l *link) finish(err error) {
	if l.finished {
		return
	}
	l.finished = true
	if l.state != linkDetachSent {
		l.state = linkDetached
	}
	l.err = err
	if l.resumeFrom != nil && l.resumeParked != nil {
		// The resuming attach failed: the deliveries wait for another attempt.
		l.resumeFrom.repark(l.resumeParked)
		l.resumeParked = nil
	}
	if l.attachWait != nil {
		l.attachWait <- err
		l.attachWait = nil
	}
	for _, r := range l.queue {
		r.fail(err) // kept for resumption when the link is suspended (resume.go)
	}
	l.queue = nil
	for _, w := range l.drainWaiters {
		close(w)
	}
	l.drainWaiters = nil
	l.s.conn.releaseLinkName(l.key())
	l.s.conn.cfg.registry.release(l)
	close(l.done)
	if l.snd != nil {
		l.snd.setCredit(0)
	}
}

func (s *Session) dropLink(l *link) {
	if l.hasHandle && s.links[l.handle] == l {
		delete(s.links, l.handle)
	}
	if l.hasRemote && s.remote[l.remoteHandle] == l {
		delete(s.remote, l.remoteHandle)
	}
	l.state = linkDetached
	for _, w := range l.detachWaiters {
		close(w)
	}
	l.detachWaiters = nil
	for id, r := range s.outUnsettled {
		if r.l == l {
			delete(s.outUnsettled, id)
			r.fail(l.err)
		}
	}
	for id, d := range s.inUnsettled {
		if d.l == l {
			delete(s.inUnsettled, id)
		}
	}
	l.markDropped()
}

// allocHandle returns the lowest handle not in use, within the peer's handle-max. AMQP 1.0 §2.6.2.
func (s *Session) allocHandle() (uint32, bool) {
	for h := uint32(0); ; h++ {
		if s.links[h] == nil {
			return h, true
		}
		if h == s.peerHandleMax {
			return 0, false
		}
	}
}

// detachWithError detaches l with closed=true and e (AMQP 1.0 §2.6.5); the application sees the
// link end now, the handles are freed when the peer's detach arrives.
func (s *Session) detachWithError(l *link, e *Error) {
	s.conn.log.Debug("detaching link", "link", l.name, "condition", string(e.Condition), "description", e.Description)
	s.sendDetach(l, true, e)
	l.cur = nil
	l.finish(&LinkError{LocalErr: e})
}

func (s *Session) sendDetach(l *link, closed bool, e *Error) {
	if l.state == linkDetachSent || l.state == linkDetached || !l.hasHandle {
		return
	}
	l.state = linkDetachSent
	l.closeSent = closed
	s.write(&frames.Detach{Handle: l.handle, Closed: closed, Error: e.toFrame()}, nil)
}

// ---- attach from the peer -----------------------------------------------------------------------

func (s *Session) handleAttach(a *frames.Attach) {
	if a.Handle > s.handleMax {
		s.end(errorf(frames.CondNotAllowed, "handle %d exceeds handle-max %d", a.Handle, s.handleMax))
		return
	}
	if s.remote[a.Handle] != nil {
		s.end(errorf(frames.CondSessionHandleInUse, "handle %d is in use", a.Handle))
		return
	}
	if l := s.pending[a.Name]; l != nil && l.role != a.Role {
		s.attachAnswered(l, a)
		return
	}
	role := !a.Role // ours is the opposite of the peer's
	l := newLink(s, a.Name, role)
	l.remoteAttach = a
	l.remoteHandle, l.hasRemote = a.Handle, true
	l.state = linkAttachRcvd
	l.peerMaxMessageSize = a.MaxMessageSize.Or(0)
	if role == frames.RoleReceiver {
		// AMQP 1.0 §2.7.3: initial-delivery-count is mandatory when the attaching role is sender.
		l.deliveryCount = a.InitialDeliveryCount.Or(0)
		l.limit = l.deliveryCount
	}
	s.remote[a.Handle] = l
	if !s.conn.claimLinkName(l.key()) {
		l.finished = true // never published: nothing to release
		close(l.done)
		s.refuse(l, errorf(frames.CondNotAllowed, "a link named %q with this role is already attached", a.Name))
		return
	}
	h := s.conn.cfg.linkHandler
	if h == nil {
		s.refuse(l, errorf(frames.CondNotAllowed, "this container does not accept links"))
		l.finish(&LinkError{LocalErr: errorf(frames.CondNotAllowed, "refused")})
		return
	}
	if s.conn.pendingAttachN.Add(1) > maxPendingAttaches {
		s.conn.pendingAttachN.Add(-1)
		s.refuse(l, errorf(frames.CondResourceLimitExceeded, "too many attaches waiting for a decision"))
		l.finish(&LinkError{LocalErr: errorf(frames.CondResourceLimitExceeded, "refused")})
		return
	}
	req := &LinkRequest{s: s, l: l, attach: a}
	ok := s.conn.goroutines.Go(func() {
		defer s.conn.pendingAttachN.Add(-1)
		req.run(h)
	})
	if !ok {
		s.conn.pendingAttachN.Add(-1)
		s.refuse(l, errorf(frames.CondConnectionForced, "connection closing"))
	}
}

// refuse answers a peer's attach the spec's way: an attach with a null terminus on our side, then
// detach(closed=true, error). AMQP 1.0 §2.6.3.
func (s *Session) refuse(l *link, e *Error) {
	a := l.remoteAttach
	h, ok := s.allocHandle()
	if !ok {
		s.end(errorf(frames.CondResourceLimitExceeded, "no free handle within handle-max %d", s.peerHandleMax))
		return
	}
	l.handle, l.hasHandle = h, true
	s.links[h] = l
	reply := &frames.Attach{Name: a.Name, Handle: h, Role: l.role, SndSettleMode: a.SndSettleMode, RcvSettleMode: a.RcvSettleMode}
	if l.role == frames.RoleSender {
		reply.Target = a.Target // null source: the node does not exist for us to send from
		reply.InitialDeliveryCount = frames.Some(uint32(0))
	} else {
		reply.Source = a.Source // null target
	}
	s.write(reply, nil)
	l.state = linkAttached
	if d := l.peerDetach; d != nil {
		s.write(&frames.Detach{Handle: h, Closed: true, Error: e.toFrame()}, nil)
		l.finish(&LinkError{LocalErr: e})
		s.dropLink(l)
		return
	}
	s.sendDetach(l, true, e)
}

// accept answers a peer's attach with our attach. Runs on the session goroutine for
// LinkRequest.AcceptSender/AcceptReceiver.
func (s *Session) accept(l *link, reply *frames.Attach, apply func()) error {
	if l.state != linkAttachRcvd || l.finished {
		if l.err != nil {
			return l.err
		}
		return &LinkError{Err: ErrLinkClosed}
	}
	h, ok := s.allocHandle()
	if !ok {
		e := errorf(frames.CondResourceLimitExceeded, "no free handle within handle-max %d", s.peerHandleMax)
		s.end(e)
		return &LinkError{LocalErr: e}
	}
	l.handle, l.hasHandle = h, true
	reply.Handle = h
	s.links[h] = l
	apply()
	l.localAttach = reply
	l.sndMode, l.rcvMode = reply.SndSettleMode, reply.RcvSettleMode
	l.source = reply.Source
	if t, ok := reply.Target.(*frames.Target); ok {
		l.target = t
	}
	s.write(reply, nil)
	l.state = linkAttached
	if d := l.peerDetach; d != nil {
		// The peer detached while the handler decided: answer and end. AMQP 1.0 §2.6.6.
		s.write(&frames.Detach{Handle: h, Closed: d.Closed}, nil)
		err := &LinkError{RemoteErr: fromFrame(d.Error)}
		l.finish(err)
		s.dropLink(l)
		return err
	}
	if l.role == frames.RoleReceiver {
		s.startCredit(l)
		return nil
	}
	// Credit may have come with a flow pipelined behind the peer's attach (Proton does this).
	l.publishCredit()
	if len(l.queue) > 0 {
		s.markSendable(l)
	} else if l.drain && (!l.manualDrain || l.credit == 0) {
		s.completeDrain(l)
	}
	return nil
}

// startCredit issues a receiver's first credit (auto mode).
func (s *Session) startCredit(l *link) {
	if l.manualCredit || l.capacity == 0 {
		return
	}
	l.limit = l.deliveryCount + l.capacity
	s.sendLinkFlow(l, false)
}

// ---- attach from this side ----------------------------------------------------------------------

// attachLocal sends our attach and registers l to wait for the answer. Session goroutine.
func (s *Session) attachLocal(l *link, a *frames.Attach) error {
	if s.endSent {
		return &LinkError{Err: s.errNow()}
	}
	if !s.conn.claimLinkName(l.key()) {
		return fmt.Errorf("amqp: a link named %q with this role is already attached", l.name)
	}
	h, ok := s.allocHandle()
	if !ok {
		s.conn.releaseLinkName(l.key())
		return errorf(frames.CondResourceLimitExceeded, "no free handle within the peer's handle-max %d", s.peerHandleMax)
	}
	l.handle, l.hasHandle = h, true
	a.Handle = h
	l.localAttach = a
	l.state = linkAttachSent
	s.links[h] = l
	s.pending[l.name] = l
	s.write(a, nil)
	return nil
}

func (s *Session) errNow() error {
	return &SessionError{RemoteErr: s.remoteErr, LocalErr: s.localErr}
}

// attachAnswered takes the peer's answer to our attach. AMQP 1.0 §2.6.3.
func (s *Session) attachAnswered(l *link, a *frames.Attach) {
	delete(s.pending, l.name)
	l.remoteAttach = a
	l.remoteHandle, l.hasRemote = a.Handle, true
	s.remote[a.Handle] = l
	if l.finished {
		// The application gave up waiting. If our detach went out already the peer's answer to it
		// follows; otherwise detach now.
		if l.state != linkDetachSent {
			l.state = linkAttached
			s.sendDetach(l, true, nil)
		}
		return
	}
	// A refusal carries a null terminus on the peer's side; a detach with the reason follows.
	if l.role == frames.RoleReceiver && a.Source == nil {
		l.state = linkRefused
		return
	}
	if l.role == frames.RoleSender && a.Target == nil && l.localAttach.Target != nil {
		l.state = linkRefused
		return
	}
	l.state = linkAttached
	l.sndMode, l.rcvMode = a.SndSettleMode, a.RcvSettleMode
	l.source = a.Source
	if t, ok := a.Target.(*frames.Target); ok {
		l.target = t
	}
	l.peerMaxMessageSize = a.MaxMessageSize.Or(0)
	if l.role == frames.RoleReceiver {
		l.deliveryCount = a.InitialDeliveryCount.Or(0)
		l.limit = l.deliveryCount
		s.startCredit(l)
	}
	if l.resumeFrom != nil {
		s.resumeDeliveries(l, l.resumeParked, a.Unsettled)
		l.resumeParked = nil
	}
	if l.attachWait != nil {
		l.attachWait <- nil
		l.attachWait = nil
	}
	if l.role == frames.RoleSender && len(l.queue) > 0 {
		s.markSendable(l)
	}
}

// ---- detach -------------------------------------------------------------------------------------

func (s *Session) handleDetach(d *frames.Detach) {
	l := s.remote[d.Handle]
	if l == nil {
		s.end(errorf(frames.CondSessionUnattachedHandle, "detach for unattached handle %d", d.Handle))
		return
	}
	remoteErr := fromFrame(d.Error)
	l.remoteClosed = d.Closed
	switch l.state {
	case linkAttachRcvd:
		l.peerDetach = d // answered once the handler decided
		delete(s.remote, d.Handle)
		l.hasRemote = false
		return
	case linkDetachSent:
		// Both detaches exchanged: the handles are free. AMQP 1.0 §2.6.5.
		if !l.finished {
			var err error = &LinkError{RemoteErr: remoteErr}
			if remoteErr == nil {
				err = &LinkError{Err: ErrLinkClosed}
			}
			l.finish(err)
		}
		s.dropLink(l)
		return
	}
	// The peer detaches first (or refused our attach): answer with the same closed flag.
	if l.hasHandle {
		s.write(&frames.Detach{Handle: l.handle, Closed: d.Closed}, nil)
	}
	delete(s.pending, l.name)
	l.finish(&LinkError{RemoteErr: remoteErr})
	s.dropLink(l)
}

// detachLocal detaches l for the application (Close: closed=true, Detach: closed=false) and
// returns a channel closed when the peer answered.
func (s *Session) detachLocal(l *link, closed bool, e *Error) chan struct{} {
	w := make(chan struct{})
	switch l.state {
	case linkAttached, linkAttachSent, linkRefused:
		// An attach still unanswered stays in pending: its answer must map the peer's handle
		// before the peer's detach can arrive.
		s.sendDetach(l, closed, e)
		l.detachWaiters = append(l.detachWaiters, w)
		l.finish(&LinkError{LocalErr: e, Err: ErrLinkClosed})
	case linkDetachSent:
		l.detachWaiters = append(l.detachWaiters, w)
	default:
		close(w)
	}
	return w
}

// ---- the application's view of a link ----------------------------------------------------------

// linkCommon holds the methods Sender and Receiver share.
type linkCommon struct{ l *link }

// Name returns the link name.
func (c linkCommon) Name() string { return c.l.name }

// Session returns the link's session.
func (c linkCommon) Session() *Session { return c.l.s }

// Source returns the negotiated source terminus (the peer's answer on links this side attached,
// our answer on links the peer attached). Read-only; nil when null.
func (c linkCommon) Source() *frames.Source { return c.l.source }

// Target returns the negotiated target terminus, nil when null (anonymous relay) or a coordinator.
func (c linkCommon) Target() *frames.Target { return c.l.target }

// MaxMessageSize returns the peer's max-message-size (0: no limit).
func (c linkCommon) MaxMessageSize() uint64 { return c.l.peerMaxMessageSize }

// RemoteProperties returns the properties of the peer's attach.
func (c linkCommon) RemoteProperties() frames.Fields {
	if c.l.remoteAttach == nil {
		return nil
	}
	return c.l.remoteAttach.Properties
}

// SettleModes returns the negotiated sender and receiver settle modes.
func (c linkCommon) SettleModes() (frames.SenderSettleMode, frames.ReceiverSettleMode) {
	return c.l.sndMode, c.l.rcvMode
}

// Done is closed when the link has ended.
func (c linkCommon) Done() <-chan struct{} { return c.l.done }

// Err returns the *LinkError that ended the link, or nil while it is attached.
func (c linkCommon) Err() error {
	select {
	case <-c.l.done:
		return c.l.err
	default:
		return nil
	}
}

// Close detaches the link with closed=true (AMQP 1.0 §2.6.6) and waits for the peer's detach or
// ctx. Queued sends fail.
func (c linkCommon) Close(ctx context.Context) error { return c.detach(ctx, true, nil) }

// Detach detaches the link with closed=false: the link is suspended and its termini are kept by
// the peer according to their expiry policy. AMQP 1.0 §2.6.6.
func (c linkCommon) Detach(ctx context.Context) error { return c.detach(ctx, false, nil) }

// CloseWithError detaches the link with closed=true and the error e.
func (c linkCommon) CloseWithError(ctx context.Context, e *Error) error {
	return c.detach(ctx, true, e)
}

func (c linkCommon) detach(ctx context.Context, closed bool, e *Error) error {
	var w chan struct{}
	err := c.l.s.call(ctx, func() error {
		w = c.l.s.detachLocal(c.l, closed, e)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrSessionClosed) {
			return nil // the link ended with its session
		}
		return err
	}
	select {
	case <-w:
		return nil
	case <-c.l.s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- links the peer attaches --------------------------------------------------------------------

// LinkHandler decides every attach a peer sends. Attach runs on its own goroutine (never on the
// engine's), so it may block briefly; it must call exactly one of req.AcceptSender or
// req.AcceptReceiver, or return an error to refuse the link (an *Error chooses the condition;
// other errors become amqp:internal-error). Returning nil without accepting refuses with
// amqp:internal-error.
type LinkHandler interface {
	Attach(req *LinkRequest) error
}

// LinkHandlerFunc adapts a function to LinkHandler.
type LinkHandlerFunc func(req *LinkRequest) error

// Attach calls f(req).
func (f LinkHandlerFunc) Attach(req *LinkRequest) error { return f(req) }

// LinkRequest is a peer's attach waiting for a LinkHandler's answer.
type LinkRequest struct {
	s        *Session
	l        *link
	attach   *frames.Attach
	answered atomic.Bool
}

func (r *LinkRequest) run(h LinkHandler) {
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				r.s.conn.log.Error("panic in LinkHandler", "link", r.attach.Name, "panic", fmt.Sprint(p))
				err = errorf(frames.CondInternalError, "internal error")
			}
		}()
		r.stealOld()
		return h.Attach(r)
	}()
	if r.answered.Swap(true) {
		return
	}
	e := errorf(frames.CondInternalError, "the link was neither accepted nor refused")
	if err != nil {
		e = asError(err)
	}
	r.s.call(context.Background(), func() error {
		if r.l.state == linkAttachRcvd {
			r.s.refuse(r.l, e)
			r.l.finish(&LinkError{LocalErr: e})
		}
		return nil
	})
}

// Conn returns the connection (identity, container-id, addresses, TLS state).
func (r *LinkRequest) Conn() *Conn { return r.s.conn }

// Session returns the session the link is attached on.
func (r *LinkRequest) Session() *Session { return r.s }

// Name returns the link name.
func (r *LinkRequest) Name() string { return r.attach.Name }

// PeerRole returns the peer's role: frames.RoleSender (accept with AcceptReceiver) or
// frames.RoleReceiver (accept with AcceptSender).
func (r *LinkRequest) PeerRole() frames.Role { return r.attach.Role }

// Source returns the source the peer asked for, nil when null.
func (r *LinkRequest) Source() *frames.Source { return r.attach.Source }

// Target returns the target the peer asked for; nil when null (an anonymous-relay sender) or when
// the target is a transaction coordinator.
func (r *LinkRequest) Target() *frames.Target {
	t, _ := r.attach.Target.(*frames.Target)
	return t
}

// Coordinator returns the target when it is a transaction coordinator (AMQP 1.0 §4.5.1).
func (r *LinkRequest) Coordinator() *frames.Coordinator {
	c, _ := r.attach.Target.(*frames.Coordinator)
	return c
}

// SndSettleMode returns the sender settle mode the peer asked for.
func (r *LinkRequest) SndSettleMode() frames.SenderSettleMode { return r.attach.SndSettleMode }

// RcvSettleMode returns the receiver settle mode the peer asked for.
func (r *LinkRequest) RcvSettleMode() frames.ReceiverSettleMode { return r.attach.RcvSettleMode }

// MaxMessageSize returns the peer's max-message-size (0: unlimited).
func (r *LinkRequest) MaxMessageSize() uint64 { return r.attach.MaxMessageSize.Or(0) }

// Properties returns the attach's properties.
func (r *LinkRequest) Properties() frames.Fields { return r.attach.Properties }

// DesiredCapabilities returns the capabilities the peer desires.
func (r *LinkRequest) DesiredCapabilities() []frames.Symbol { return r.attach.DesiredCapabilities }

// Attach returns the peer's whole attach performative. Read-only.
func (r *LinkRequest) Attach() *frames.Attach { return r.attach }

var errAnswered = errors.New("amqp: link request already answered")

// AcceptSender accepts a link on which the peer receives: this side sends on the returned Sender.
func (r *LinkRequest) AcceptSender(opts *SenderOptions) (*Sender, error) {
	if r.attach.Role != frames.RoleReceiver {
		return nil, errors.New("amqp: the peer is a sender: use AcceptReceiver")
	}
	if r.answered.Swap(true) {
		return nil, errAnswered
	}
	if opts == nil {
		opts = &SenderOptions{}
	}
	snd := newSender(r.l, opts, r.attach.SndSettleMode)
	reply := r.replyAttach(opts.SndSettleMode, opts.RcvSettleMode, opts.Source, opts.Target, opts.Properties, opts.OfferedCapabilities, opts.DesiredCapabilities)
	reply.InitialDeliveryCount = frames.Some(uint32(0))
	if opts.MaxMessageSize > 0 {
		reply.MaxMessageSize = frames.Some(opts.MaxMessageSize)
	}
	if opts.SndSettleMode != nil {
		snd.mode = *opts.SndSettleMode
	}
	if err := r.s.call(context.Background(), func() error {
		return r.s.accept(r.l, reply, func() { r.l.snd, r.l.manualDrain = snd, opts.ManualDrain })
	}); err != nil {
		return nil, err
	}
	return snd, nil
}

// AcceptReceiver accepts a link on which the peer sends: this side receives on the returned
// Receiver, which grants credit at once (unless ManualCredit).
func (r *LinkRequest) AcceptReceiver(opts *ReceiverOptions) (*Receiver, error) {
	if r.attach.Role != frames.RoleSender {
		return nil, errors.New("amqp: the peer is a receiver: use AcceptSender")
	}
	if r.answered.Swap(true) {
		return nil, errAnswered
	}
	if opts == nil {
		opts = &ReceiverOptions{}
	}
	rcv, cfg := newReceiver(r.l, opts)
	reply := r.replyAttach(opts.SndSettleMode, opts.RcvSettleMode, opts.Source, opts.Target, opts.Properties, opts.OfferedCapabilities, opts.DesiredCapabilities)
	reply.Unsettled, reply.IncompleteUnsettled = opts.Unsettled, opts.IncompleteUnsettled
	if cfg.maxMessageSize > 0 {
		reply.MaxMessageSize = frames.Some(cfg.maxMessageSize)
	}
	if err := r.s.call(context.Background(), func() error { return r.s.accept(r.l, reply, func() { cfg.apply(r.l) }) }); err != nil {
		return nil, err
	}
	return rcv, nil
}

// replyAttach builds our answer: the peer's termini echoed (AMQP 1.0 §2.6.3; uamqp treats an
// answer without both as a refusal) unless replaced, and the settle modes it asked for unless
// overridden (go-amqp fails an attach whose answer differs from an explicit request).
func (r *LinkRequest) replyAttach(snd *frames.SenderSettleMode, rcv *frames.ReceiverSettleMode, src *frames.Source, tgt *frames.Target,
	props frames.Fields, offered, desired []frames.Symbol) *frames.Attach {
	a := r.attach
	reply := &frames.Attach{
		Name:                a.Name,
		Role:                !a.Role,
		SndSettleMode:       a.SndSettleMode,
		RcvSettleMode:       a.RcvSettleMode,
		Source:              a.Source,
		Target:              a.Target,
		Properties:          props,
		OfferedCapabilities: offered,
		DesiredCapabilities: desired,
	}
	if snd != nil {
		reply.SndSettleMode = *snd
	}
	if rcv != nil {
		reply.RcvSettleMode = *rcv
	}
	if src != nil {
		reply.Source = src
	}
	if tgt != nil {
		reply.Target = tgt
	}
	return reply
}

// ---- names --------------------------------------------------------------------------------------

var linkSeq atomic.Uint64

func newLinkName(prefix string) string {
	return prefix + "-" + randomID()[:8] + "-" + strconv.FormatUint(linkSeq.Add(1), 10)
}

// assembly collects the frames of one incoming delivery. Chunks are kept as they arrived and
// joined once at the end: each byte is copied once (rhea#381 was quadratic).
type assembly struct {
	id       uint32
	tag      []byte
	format   uint32
	state    frames.DeliveryState // transfer.state, e.g. transactional-state (AMQP 1.0 §4.4.2)
	settled  bool
	second   bool
	resume   bool // the first transfer had resume=true (AMQP 1.0 §3.4.6)
	size     int
	chunks   [][]byte
	chunkBuf [1][]byte
}

func (a *assembly) add(p []byte) {
	if len(p) == 0 {
		return
	}
	if a.chunks == nil {
		a.chunks = a.chunkBuf[:0]
	}
	a.chunks = append(a.chunks, p)
	a.size += len(p)
}

func (a *assembly) join() []byte {
	switch len(a.chunks) {
	case 0:
		return nil
	case 1:
		return a.chunks[0]
	}
	b := make([]byte, 0, a.size)
	for _, c := range a.chunks {
		b = append(b, c...)
	}
	return b
}
