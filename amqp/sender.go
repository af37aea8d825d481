package amqp

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// defaultMaxInFlight bounds a sender's queued plus unsettled deliveries.
const defaultMaxInFlight = 256

// SenderOptions configures a sending link, attached by this side (Session.NewSender) or accepted
// from the peer (LinkRequest.AcceptSender).
type SenderOptions struct {
	// Name is the link name; default: generated. Ignored by AcceptSender.
	Name string
	// SndSettleMode is the sender settle mode to request (NewSender) or answer with (AcceptSender).
	// Default: mixed, or what the peer asked for.
	SndSettleMode *frames.SenderSettleMode
	// RcvSettleMode is the receiver settle mode; default first, or what the peer asked for.
	RcvSettleMode *frames.ReceiverSettleMode
	// Source and Target replace the termini built from the address (NewSender) or echoed from the
	// peer's attach (AcceptSender: e.g. a dynamic node's generated address).
	Source *frames.Source
	Target *frames.Target
	// Coordinator makes the link a transaction controller: its target is this coordinator (AMQP
	// 1.0 §4.5.1) and the messages sent are declare and discharge bodies whose outcomes are
	// *frames.Declared, *frames.Accepted or *frames.Rejected. NewSender only.
	Coordinator *frames.Coordinator
	// DynamicTarget asks the peer to create the target node (NewSender); Address then returns the
	// address the peer chose. AMQP 1.0 §3.5.4.
	DynamicTarget bool
	// MaxInFlight bounds the deliveries queued or unsettled on the link: SendAsync blocks beyond it.
	// Default 256.
	MaxInFlight int
	// ManualDrain leaves drain requests (AMQP 1.0 §2.6.7) to the application: Draining reports one,
	// DrainRequested signals it, and CompleteDrain answers it once the application has sent what it
	// had. Without it the engine answers a drain as soon as nothing is queued on the link, which
	// suits senders that push; a node fed from a queue wants ManualDrain, so that a drain arriving
	// before it had a chance to send does not return credit it could have used.
	ManualDrain bool
	// MaxMessageSize is advertised on the attach (0: none). A sender does not need one.
	MaxMessageSize uint64
	// Properties, OfferedCapabilities and DesiredCapabilities go into the attach.
	Properties          frames.Fields
	OfferedCapabilities []frames.Symbol
	DesiredCapabilities []frames.Symbol
	// Resumable keeps the unsettled and queued deliveries when the link is suspended (detach with
	// closed=false, or its session or connection lost) instead of failing their receipts: they
	// wait for a sender attached with Resume. AMQP 1.0 §2.6.13. Pre-settled deliveries still fail.
	Resumable bool
	// Resume re-attaches the link of a suspended Resumable sender (its name unless Name is set),
	// on any session or connection, with the unsettled map of the deliveries the peer may have
	// seen, and reconciles them with the peer's map (AMQP 1.0 §3.4.6, see resume.go); their
	// receipts complete on the new link. Without Resume the attach's unsettled map is null.
	Resume *Sender
}

// SendOptions are per-delivery settings.
type SendOptions struct {
	// Settled sends the delivery pre-settled (at most once). It only counts when the link's sender
	// settle mode is mixed: mode settled always pre-settles, mode unsettled never does.
	Settled bool
	// Tag is the delivery-tag (at most 32 bytes, unique among the link's unsettled deliveries);
	// default: a counter.
	Tag []byte
	// Format is the message-format; 0 is the standard AMQP message. AMQP 1.0 §2.7.5.
	Format uint32
	// State goes into the first transfer's state field: a *frames.TransactionalState makes the
	// delivery part of a transaction declared on a coordinator link (AMQP 1.0 §4.4.1).
	State frames.DeliveryState
}

// Sender is the sending end of a link.
type Sender struct {
	linkCommon
	sem  chan struct{} // MaxInFlight slots
	mode frames.SenderSettleMode
	tags atomic.Uint64

	credit   atomic.Uint32
	creditMu sync.Mutex
	creditCh chan struct{} // closed (and replaced) when credit becomes positive

	draining atomic.Bool
	drainCh  chan struct{} // cap 1: a drain request arrived

	resumable   bool
	parkMu      sync.Mutex
	parked      []*Receipt // deliveries kept for resumption (resume.go)
	resumeTaken bool
}

func newSender(l *link, opts *SenderOptions, mode frames.SenderSettleMode) *Sender {
	n := opts.MaxInFlight
	if n <= 0 {
		n = defaultMaxInFlight
	}
	return &Sender{linkCommon: linkCommon{l}, sem: make(chan struct{}, n), mode: mode, creditCh: make(chan struct{}), drainCh: make(chan struct{}, 1), resumable: opts.Resumable}
}

// NewSender attaches a sending link to the node at target and waits for the peer's answer.
// An empty target without opts.Target and DynamicTarget attaches to the anonymous relay (a null
// target: every message is routed by its properties.to). AMQP 1.0 §2.6.3.
func (s *Session) NewSender(ctx context.Context, target string, opts *SenderOptions) (*Sender, error) {
	if opts == nil {
		opts = &SenderOptions{}
	}
	var parked []*Receipt
	if opts.Resume != nil {
		var err error
		if parked, err = takeParked(ctx, opts.Resume); err != nil {
			return nil, err
		}
	}
	name := opts.Name
	if name == "" && opts.Resume != nil {
		name = opts.Resume.Name()
	}
	if name == "" {
		name = newLinkName("sender")
	}
	l := newLink(s, name, frames.RoleSender)
	a := &frames.Attach{
		Name:                 name,
		Role:                 frames.RoleSender,
		SndSettleMode:        frames.SenderSettleModeMixed,
		RcvSettleMode:        frames.ReceiverSettleModeFirst,
		Source:               opts.Source,
		InitialDeliveryCount: frames.Some(uint32(0)),
		Properties:           opts.Properties,
		OfferedCapabilities:  opts.OfferedCapabilities,
		DesiredCapabilities:  opts.DesiredCapabilities,
	}
	if opts.SndSettleMode != nil {
		a.SndSettleMode = *opts.SndSettleMode
	}
	if opts.RcvSettleMode != nil {
		a.RcvSettleMode = *opts.RcvSettleMode
	}
	if a.Source == nil {
		a.Source = &frames.Source{}
	}
	switch {
	case opts.Coordinator != nil:
		a.Target = opts.Coordinator
	case opts.Target != nil:
		a.Target = opts.Target
	case opts.DynamicTarget:
		a.Target = &frames.Target{Dynamic: true}
	case target != "":
		a.Target = &frames.Target{Address: frames.Some(target)}
	}
	if opts.MaxMessageSize > 0 {
		a.MaxMessageSize = frames.Some(opts.MaxMessageSize)
	}
	if opts.Resume != nil {
		a.Unsettled = unsettledMap(parked) // AMQP 1.0 §2.6.13: null unless resuming
		l.resumeParked, l.resumeFrom = parked, opts.Resume
	}
	snd := newSender(l, opts, a.SndSettleMode)
	l.snd = snd
	l.manualDrain = opts.ManualDrain
	wait := make(chan error, 1)
	l.attachWait = wait
	if err := s.call(ctx, func() error { return s.attachLocal(l, a) }); err != nil {
		if opts.Resume != nil {
			opts.Resume.repark(parked) // the attach did not go out: l is nobody's
		}
		return nil, err
	}
	if err := waitAttach(ctx, s, l, wait); err != nil {
		return nil, err
	}
	snd.mode = l.sndMode
	return snd, nil
}

// waitAttach waits for the answer to our attach; on ctx's end the link is given up (and detached
// when the answer comes).
func waitAttach(ctx context.Context, s *Session, l *link, wait chan error) error {
	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		_ = s.call(context.Background(), func() error {
			if l.state == linkAttachSent {
				l.finish(&LinkError{Err: ctx.Err()})
			} else if !l.finished {
				s.detachLocal(l, true, nil)
			}
			return nil
		})
		return ctx.Err()
	}
}

// Address returns the target address (for a dynamic target, the one the peer created), or "" for
// the anonymous relay.
func (snd *Sender) Address() string {
	if snd.l.target == nil {
		return ""
	}
	return snd.l.target.Address.Or("")
}

// Credit returns the link credit the receiver granted and this side has not used yet.
func (snd *Sender) Credit() uint32 { return snd.credit.Load() }

func (snd *Sender) setCredit(v uint32) {
	if old := snd.credit.Swap(v); old == 0 && v > 0 {
		snd.creditMu.Lock()
		close(snd.creditCh)
		snd.creditCh = make(chan struct{})
		snd.creditMu.Unlock()
	}
}

func (snd *Sender) setDraining(v bool) {
	if old := snd.draining.Swap(v); v && !old {
		select {
		case snd.drainCh <- struct{}{}:
		default:
		}
	}
}

// Draining reports whether the receiver asked to drain and the drain is not answered yet
// (ManualDrain).
func (snd *Sender) Draining() bool { return snd.draining.Load() }

// DrainRequested receives a value when a drain request arrives (ManualDrain).
func (snd *Sender) DrainRequested() <-chan struct{} { return snd.drainCh }

// CompleteDrain answers a pending drain request (ManualDrain): once the deliveries queued on the
// link are sent, the remaining credit is used up and the receiver told so. AMQP 1.0 §2.6.7.
func (snd *Sender) CompleteDrain() error {
	l := snd.l
	return l.s.call(context.Background(), func() error {
		if l.state != linkAttached {
			return l.errOrClosed()
		}
		if !l.drain {
			return nil
		}
		if len(l.queue) > 0 {
			l.drainWhenEmpty = true
			return nil
		}
		l.s.completeDrain(l)
		return nil
	})
}

// WaitCredit blocks until the receiver has granted credit, the link ends or ctx ends. A node that
// feeds the link from a queue calls it before taking the next message, so messages stay in the
// queue (not in the link) while the consumer is slow.
func (snd *Sender) WaitCredit(ctx context.Context) error {
	for {
		if snd.credit.Load() > 0 {
			return nil
		}
		snd.creditMu.Lock()
		ch := snd.creditCh
		snd.creditMu.Unlock()
		if snd.credit.Load() > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-snd.l.done:
			return snd.l.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Send sends msg and waits for its outcome: the terminal delivery state the receiver settled with
// (*frames.Accepted, *frames.Rejected, *frames.Released, *frames.Modified). A pre-settled delivery
// returns (nil, nil) as soon as it was handed to the connection's writer. If ctx ends first, a
// delivery not yet sent is dropped and one partly sent is aborted (AMQP 1.0 §2.6.14).
func (snd *Sender) Send(ctx context.Context, msg *frames.Message, opts *SendOptions) (frames.DeliveryState, error) {
	r, err := snd.SendAsync(ctx, msg, opts)
	if err != nil {
		return nil, err
	}
	st, err := r.Wait(ctx)
	if err != nil && ctx.Err() != nil {
		r.Cancel()
	}
	return st, err
}

// SendAsync queues msg on the link and returns a Receipt for its outcome. It blocks only while
// MaxInFlight deliveries are queued or unsettled.
func (snd *Sender) SendAsync(ctx context.Context, msg *frames.Message, opts *SendOptions) (*Receipt, error) {
	payload, err := msg.Encode(nil)
	if err != nil {
		return nil, err
	}
	return snd.SendRaw(ctx, payload, opts)
}

// SendRaw is SendAsync for an already encoded message (the payload of a received Delivery, for
// example). The payload must not change until the receipt is done.
func (snd *Sender) SendRaw(ctx context.Context, payload []byte, opts *SendOptions) (*Receipt, error) {
	l := snd.l
	if m := l.peerMaxMessageSize; m > 0 && uint64(len(payload)) > m {
		return nil, ErrMessageTooLarge
	}
	r := &Receipt{l: l, snd: snd, done: make(chan struct{}), payload: payload}
	switch snd.mode {
	case frames.SenderSettleModeSettled:
		r.settled = true
	case frames.SenderSettleModeMixed:
		r.settled = opts != nil && opts.Settled
	}
	if opts != nil {
		r.format = opts.Format
		r.tag = opts.Tag
		r.sendState = opts.State
	}
	if len(r.tag) > frames.MaxDeliveryTagSize {
		return nil, errors.New("amqp: delivery-tag longer than 32 bytes")
	}
	if r.tag == nil {
		r.tag = binary.BigEndian.AppendUint64(make([]byte, 0, 8), snd.tags.Add(1))
	}
	select {
	case snd.sem <- struct{}{}:
	case <-l.done:
		return nil, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := l.s
	err := s.call(ctx, func() error {
		if l.finished {
			return l.err
		}
		r.rcvSecond = l.rcvMode == frames.ReceiverSettleModeSecond
		l.queue = append(l.queue, r)
		s.markSendable(l)
		return nil
	})
	if err != nil {
		<-snd.sem
		return nil, err
	}
	return r, nil
}

// Receipt is the handle of one sent delivery. Its fields are owned by the session goroutine until
// done is closed.
type Receipt struct {
	l         *link
	snd       *Sender
	done      chan struct{}
	payload   []byte
	tag       []byte
	format    uint32
	settled   bool // pre-settled
	sendState frames.DeliveryState

	// session goroutine
	rcvSecond bool
	started   bool
	sent      bool
	abort     bool
	id        uint32
	off       int
	overhead  int
	lastState frames.DeliveryState
	completed bool

	// recovery (resume.go; session goroutine)
	parked      bool     // kept for resumption
	resume      bool     // sent with resume=true (AMQP 1.0 §3.4.6)
	resumeAbort bool     // sent as resume=true, aborted=true: the payload is not resent
	parent      *Receipt // the receipt of the suspended link this one resends
	noSlot      bool     // holds no MaxInFlight slot (resent deliveries)
	// under snd.parkMu once parked
	cancelReq bool     // Cancel was called while parked
	child     *Receipt // the receipt that resends it on the resumed link

	state frames.DeliveryState // published by done
	err   error
}

func (r *Receipt) complete(st frames.DeliveryState, err error) {
	if r.completed {
		return
	}
	r.completed = true
	r.state, r.err = st, err
	r.payload = nil
	close(r.done)
	if !r.noSlot {
		select {
		case <-r.snd.sem:
		default:
		}
	}
	if r.parent != nil {
		r.parent.complete(st, err)
	}
}

// Done is closed when the delivery's outcome is known (or it failed).
func (r *Receipt) Done() <-chan struct{} { return r.done }

// State returns the outcome after Done: the receiver's terminal state (nil for a pre-settled
// delivery) or the error that ended the delivery (a *LinkError, ErrAborted).
func (r *Receipt) State() (frames.DeliveryState, error) {
	select {
	case <-r.done:
		return r.state, r.err
	default:
		return nil, errors.New("amqp: delivery outcome not known yet")
	}
}

// Wait waits for the outcome (see State) or ctx.
func (r *Receipt) Wait(ctx context.Context) (frames.DeliveryState, error) {
	select {
	case <-r.done:
		return r.state, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Tag returns the delivery-tag.
func (r *Receipt) Tag() []byte { return r.tag }

// Cancel gives up the delivery: dropped if no frame of it was sent yet, aborted (AMQP 1.0
// §2.6.14) if it is partly sent; a delivery sent whole is left to its outcome.
func (r *Receipt) Cancel() {
	if r.cancelParked() {
		return
	}
	s := r.l.s
	_ = s.call(context.Background(), func() error {
		if r.cancelParked() {
			return nil
		}
		if r.completed || r.sent {
			return nil
		}
		if !r.started {
			for i, q := range r.l.queue {
				if q == r {
					r.l.queue = append(r.l.queue[:i:i], r.l.queue[i+1:]...)
					break
				}
			}
			r.complete(nil, ErrAborted)
			return nil
		}
		r.abort = true
		s.markSendable(r.l)
		return nil
	})
}
