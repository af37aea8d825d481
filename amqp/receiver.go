package amqp

import (
	"context"
	"sync"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// defaultCredit is a receiver's default capacity: deliveries queued or held unsettled.
const defaultCredit = 100

// ReceiverOptions configures a receiving link, attached by this side (Session.NewReceiver) or
// accepted from the peer (LinkRequest.AcceptReceiver).
type ReceiverOptions struct {
	// Name is the link name; default: generated. Ignored by AcceptReceiver.
	Name string
	// Credit is the receiver's capacity: the most deliveries queued for Receive or held unsettled
	// by the application. Credit is granted up to it automatically (once half is free) unless
	// ManualCredit. A slow application therefore withholds credit instead of buffering. Default 100.
	Credit uint32
	// ManualCredit turns the automatic refill off: the application calls IssueCredit.
	ManualCredit bool
	// SndSettleMode and RcvSettleMode are the settle modes to request or answer with.
	SndSettleMode *frames.SenderSettleMode
	RcvSettleMode *frames.ReceiverSettleMode
	// Source and Target replace the termini built from the address or echoed from the peer.
	Source *frames.Source
	Target *frames.Target
	// DynamicSource asks the peer to create the source node (a temporary reply queue); Address
	// then returns its address. AMQP 1.0 §3.5.3.
	DynamicSource bool
	// MaxMessageSize is the largest message accepted; a larger one detaches the link with
	// amqp:link:message-size-exceeded. Default: the connection's MaxMessageSize.
	MaxMessageSize uint64
	// Properties, OfferedCapabilities and DesiredCapabilities go into the attach.
	Properties          frames.Fields
	OfferedCapabilities []frames.Symbol
	DesiredCapabilities []frames.Symbol
	// Unsettled is the unsettled map (delivery-tag → state) sent on the attach to resume a
	// suspended link, and IncompleteUnsettled says it is partial (AMQP 1.0 §2.6.13). A resumed
	// transfer (resume=true) whose tag the map gives a terminal outcome is not delivered again:
	// it is settled with that outcome (AMQP 1.0 §3.4.6). Nil (the default) attaches afresh.
	Unsettled           frames.Unsettled
	IncompleteUnsettled bool
}

// receiverConfig is applied to the link on the session goroutine.
type receiverConfig struct {
	capacity       uint32
	manual         bool
	maxMessageSize uint64
	deliveries     chan *Delivery
	rcv            *Receiver
	resumeStates   map[string]frames.DeliveryState
}

func (cfg receiverConfig) apply(l *link) {
	l.rcv = cfg.rcv
	l.capacity = cfg.capacity
	l.manualCredit = cfg.manual
	l.maxMessageSize = cfg.maxMessageSize
	l.deliveries = cfg.deliveries
	l.resumeStates = cfg.resumeStates
}

// Receiver is the receiving end of a link.
type Receiver struct {
	linkCommon
	deliveries chan *Delivery
	manual     bool
}

func newReceiver(l *link, opts *ReceiverOptions) (*Receiver, receiverConfig) {
	cfg := receiverConfig{capacity: opts.Credit, manual: opts.ManualCredit, maxMessageSize: opts.MaxMessageSize, resumeStates: resumeStates(opts.Unsettled)}
	if cfg.capacity == 0 {
		cfg.capacity = defaultCredit
	}
	if cfg.maxMessageSize == 0 {
		cfg.maxMessageSize = l.s.conn.cfg.maxMessageSize
	}
	buffer := int64(cfg.capacity)
	if !cfg.manual {
		buffer = overrunLimit(cfg.capacity) // room for peers that overrun credit (see handleTransfer)
	}
	cfg.deliveries = make(chan *Delivery, buffer)
	cfg.rcv = &Receiver{linkCommon: linkCommon{l}, deliveries: cfg.deliveries, manual: cfg.manual}
	return cfg.rcv, cfg
}

// NewReceiver attaches a receiving link to the node at source and waits for the peer's answer.
func (s *Session) NewReceiver(ctx context.Context, source string, opts *ReceiverOptions) (*Receiver, error) {
	if opts == nil {
		opts = &ReceiverOptions{}
	}
	name := opts.Name
	if name == "" {
		name = newLinkName("receiver")
	}
	l := newLink(s, name, frames.RoleReceiver)
	rcv, cfg := newReceiver(l, opts)
	cfg.apply(l)
	a := &frames.Attach{
		Name:                name,
		Role:                frames.RoleReceiver,
		SndSettleMode:       frames.SenderSettleModeMixed,
		RcvSettleMode:       frames.ReceiverSettleModeFirst,
		Target:              &frames.Target{},
		Properties:          opts.Properties,
		OfferedCapabilities: opts.OfferedCapabilities,
		DesiredCapabilities: opts.DesiredCapabilities,
		Unsettled:           opts.Unsettled,
		IncompleteUnsettled: opts.IncompleteUnsettled,
	}
	if opts.Target != nil {
		a.Target = opts.Target
	}
	if opts.SndSettleMode != nil {
		a.SndSettleMode = *opts.SndSettleMode
	}
	if opts.RcvSettleMode != nil {
		a.RcvSettleMode = *opts.RcvSettleMode
	}
	switch {
	case opts.Source != nil:
		a.Source = opts.Source
	case opts.DynamicSource:
		a.Source = &frames.Source{Dynamic: true}
	default:
		a.Source = &frames.Source{Address: frames.Some(source)}
	}
	if cfg.maxMessageSize > 0 {
		a.MaxMessageSize = frames.Some(cfg.maxMessageSize)
	}
	wait := make(chan error, 1)
	l.attachWait = wait
	if err := s.call(ctx, func() error { return s.attachLocal(l, a) }); err != nil {
		return nil, err
	}
	if err := waitAttach(ctx, s, l, wait); err != nil {
		return nil, err
	}
	return rcv, nil
}

// Address returns the source address (for a dynamic source, the one the peer created).
func (r *Receiver) Address() string {
	if r.l.source == nil {
		return ""
	}
	return r.l.source.Address.Or("")
}

// Receive returns the next delivery, waiting for one, for the link's end or for ctx. Deliveries
// that arrived before the link ended are still returned.
func (r *Receiver) Receive(ctx context.Context) (*Delivery, error) {
	select {
	case d := <-r.deliveries:
		r.received(d)
		return d, nil
	default:
	}
	select {
	case d := <-r.deliveries:
		r.received(d)
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.l.done:
		select {
		case d := <-r.deliveries:
			r.received(d)
			return d, nil
		default:
			return nil, r.l.err
		}
	}
}

// received frees the capacity of a pre-settled delivery: there is nothing more to wait for.
func (r *Receiver) received(d *Delivery) {
	if d.senderSettled {
		r.l.outstanding.Add(-1)
		r.l.s.pokeRefill()
	}
}

// IssueCredit grants n more credit (ManualCredit only). Credit plus the deliveries queued or
// unsettled may not exceed the receiver's capacity (ErrCredit).
func (r *Receiver) IssueCredit(n uint32) error {
	if !r.manual {
		return ErrCredit
	}
	l := r.l
	return l.s.call(context.Background(), func() error {
		if l.state != linkAttached {
			return l.errOrClosed()
		}
		used := l.outstanding.Load()
		if l.cur != nil {
			used++
		}
		if int64(l.receiverCredit())+int64(n)+used > int64(l.capacity) {
			return ErrCredit
		}
		l.limit += n
		l.s.sendLinkFlow(l, false)
		return nil
	})
}

// Drain asks the sender to use or return all its credit (flow with drain=true, AMQP 1.0 §2.6.7)
// and waits until it did. Automatic refills pause meanwhile.
func (r *Receiver) Drain(ctx context.Context) error {
	l := r.l
	var w chan struct{}
	err := l.s.call(ctx, func() error {
		if l.state != linkAttached {
			return l.errOrClosed()
		}
		w = make(chan struct{})
		if l.receiverCredit() == 0 && !l.draining {
			close(w)
			return nil
		}
		l.drainWaiters = append(l.drainWaiters, w)
		l.draining = true
		l.s.sendLinkFlow(l, false)
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case <-w:
		select {
		case <-l.done:
			return l.err
		default:
			return nil
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *link) errOrClosed() error {
	if l.err != nil {
		return l.err
	}
	return &LinkError{Err: ErrLinkClosed}
}

// Delivery is one message received on a Receiver.
type Delivery struct {
	l             *link
	r             *Receiver
	id            uint32
	tag           []byte
	format        uint32
	payload       []byte
	senderSettled bool
	second        bool
	state         frames.DeliveryState
	resumed       bool

	decode sync.Once
	msg    *frames.Message
	msgErr error

	// session goroutine
	settled      bool // settled (by either side)
	localSettled bool // settled by this side
	outcomeSent  bool // mode second: our outcome went out unsettled
	wait         chan struct{}
	remoteState  frames.DeliveryState
}

// Message decodes the message on first call. Its binary fields alias Payload.
func (d *Delivery) Message() (*frames.Message, error) {
	d.decode.Do(func() {
		m := new(frames.Message)
		if err := m.Decode(d.payload); err != nil {
			d.msgErr = err
			return
		}
		d.msg = m
	})
	return d.msg, d.msgErr
}

// Payload returns the encoded message: the concatenated payloads of the delivery's transfers.
func (d *Delivery) Payload() []byte { return d.payload }

// Tag returns the delivery-tag.
func (d *Delivery) Tag() []byte { return d.tag }

// ID returns the delivery-id.
func (d *Delivery) ID() uint32 { return d.id }

// Format returns the message-format (0 for a standard AMQP message).
func (d *Delivery) Format() uint32 { return d.format }

// State returns the delivery state the sender put on the transfer, or nil: a
// *frames.TransactionalState for a transactional send (AMQP 1.0 §4.4.1), a *frames.Received when
// resuming.
func (d *Delivery) State() frames.DeliveryState { return d.state }

// SenderSettled reports whether the sender sent the delivery pre-settled: it expects no outcome.
func (d *Delivery) SenderSettled() bool { return d.senderSettled }

// Receiver returns the link the delivery came on.
func (d *Delivery) Receiver() *Receiver { return d.r }

// Accept settles the delivery as accepted. AMQP 1.0 §3.4.2.
func (d *Delivery) Accept(ctx context.Context) error { return d.Settle(ctx, &frames.Accepted{}) }

// Reject settles the delivery as rejected with e (may be nil). AMQP 1.0 §3.4.3.
func (d *Delivery) Reject(ctx context.Context, e *Error) error {
	return d.Settle(ctx, &frames.Rejected{Error: e.toFrame()})
}

// Release settles the delivery as released: not processed, may be redelivered. AMQP 1.0 §3.4.4.
func (d *Delivery) Release(ctx context.Context) error { return d.Settle(ctx, &frames.Released{}) }

// Modify settles the delivery as modified. AMQP 1.0 §3.4.5.
func (d *Delivery) Modify(ctx context.Context, deliveryFailed, undeliverableHere bool, annotations frames.Annotations) error {
	return d.Settle(ctx, &frames.Modified{
		DeliveryFailed:     frames.Some(deliveryFailed),
		UndeliverableHere:  frames.Some(undeliverableHere),
		MessageAnnotations: annotations,
	})
}

// Settle settles the delivery with state (nil: the source's default outcome). In receiver settle
// mode second the state goes out unsettled and Settle returns once the sender settled.
func (d *Delivery) Settle(ctx context.Context, state frames.DeliveryState) error {
	return d.Disposition(ctx, state, true)
}

// Disposition sends a disposition for the delivery: settled or not (an unsettled, non-terminal
// state such as *frames.Received reports progress). Dispositions of a pre-settled delivery, or of
// one the sender already settled, do nothing. AMQP 1.0 §2.7.6.
func (d *Delivery) Disposition(ctx context.Context, state frames.DeliveryState, settled bool) error {
	if d.senderSettled {
		return nil
	}
	l := d.l
	s := l.s
	var wait chan struct{}
	err := s.call(ctx, func() error {
		if d.settled {
			if d.localSettled || d.outcomeSent {
				return ErrSettled
			}
			return nil
		}
		if d.outcomeSent {
			return ErrSettled
		}
		if l.state != linkAttached {
			return l.errOrClosed()
		}
		if settled && d.second {
			// AMQP 1.0 §2.6.12 (rcv-settle-mode second): send the outcome unsettled, settle when
			// the sender has settled.
			s.queueDisposition(&frames.Disposition{Role: frames.RoleReceiver, First: d.id, State: state})
			d.outcomeSent = true
			d.wait = make(chan struct{})
			wait = d.wait
			return nil
		}
		s.queueDisposition(&frames.Disposition{Role: frames.RoleReceiver, First: d.id, Settled: settled, State: state})
		if settled {
			d.localSettled = true
			delete(s.inUnsettled, d.id)
			s.settleIncoming(d)
		}
		return nil
	})
	if err != nil || wait == nil {
		return err
	}
	select {
	case <-wait:
		return nil
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
