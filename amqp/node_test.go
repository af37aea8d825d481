package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/internal/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	peer.StopSharedRabbitMQ()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testNode is an in-memory broker for tests: every address is a FIFO queue. It implements
// LinkHandler. Special addresses:
//
//	refuse*   the attach is refused with amqp:not-found
//	reject*   messages sent there are rejected (amqp:precondition-failed)
//	release*  messages sent there are released
//	modify*   messages sent there are modified (delivery-failed, undeliverable-here)
//	sink*     messages are accepted and dropped
//	a dynamic terminus gets the address "dyn-N"; a null target routes by properties.to.
type testNode struct {
	mu      sync.Mutex
	queues  map[string]*testQueue
	dynamic int
	wg      sync.WaitGroup
	// receivers are the links the node accepted from peer senders, by target address.
	receivers map[string]*Receiver
	senders   map[string]*Sender
	credit    uint32 // capacity of accepted receivers (default 100)
	attaches  atomic.Int64
	txns      map[string]*txnWork
	txnSeq    int
}

type testQueue struct{ ch chan []byte }

// txnWork is what a transaction holds until discharged: messages to enqueue on commit. The
// coordinator and the consumers run on different goroutines, so a transactional message may be
// handled after its discharge: it then follows the recorded decision (done, committed).
type txnWork struct {
	addr, payload   []string
	done, committed bool
}

func newTestNode() *testNode {
	return &testNode{queues: make(map[string]*testQueue), receivers: make(map[string]*Receiver), senders: make(map[string]*Sender),
		txns: make(map[string]*txnWork)}
}

func (n *testNode) queue(addr string) *testQueue {
	n.mu.Lock()
	defer n.mu.Unlock()
	q := n.queues[addr]
	if q == nil {
		q = &testQueue{ch: make(chan []byte, 20000)}
		n.queues[addr] = q
	}
	return q
}

func (n *testNode) Attach(req *LinkRequest) error {
	n.attaches.Add(1)
	if req.Coordinator() != nil {
		rcv, err := req.AcceptReceiver(nil)
		if err != nil {
			return err
		}
		n.wg.Add(1)
		go n.coordinate(rcv)
		return nil
	}
	if req.PeerRole() == frames.RoleSender {
		addr := ""
		opts := &ReceiverOptions{Credit: n.credit}
		if t := req.Target(); t != nil {
			addr = t.Address.Or("")
			if t.Dynamic {
				addr = n.newDynamic()
				opts.Target = &frames.Target{Address: frames.Some(addr), Dynamic: true}
			}
		}
		if strings.HasPrefix(addr, "refuse") {
			return &Error{Condition: frames.CondNotFound, Description: "no node " + addr}
		}
		rcv, err := req.AcceptReceiver(opts)
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.receivers[addr] = rcv
		n.mu.Unlock()
		n.wg.Add(1)
		go n.consume(rcv, addr)
		return nil
	}
	addr := ""
	opts := &SenderOptions{}
	if s := req.Source(); s != nil {
		addr = s.Address.Or("")
		if s.Dynamic {
			addr = n.newDynamic()
			src := *s
			src.Address = frames.Some(addr)
			opts.Source = &src
		}
	}
	if strings.HasPrefix(addr, "refuse") {
		return &Error{Condition: frames.CondNotFound, Description: "no node " + addr}
	}
	opts.ManualDrain = true
	snd, err := req.AcceptSender(opts)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.senders[addr] = snd
	n.mu.Unlock()
	n.wg.Add(1)
	go n.feed(snd, addr)
	return nil
}

func (n *testNode) newDynamic() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dynamic++
	return fmt.Sprintf("dyn-%d", n.dynamic)
}

func (n *testNode) consume(rcv *Receiver, addr string) {
	defer n.wg.Done()
	ctx := context.Background()
	for {
		d, err := rcv.Receive(ctx)
		if err != nil {
			return
		}
		to := addr
		if to == "" { // anonymous relay: route by properties.to
			m, err := d.Message()
			if err != nil || m.Properties == nil || !m.Properties.To.Valid {
				_ = d.Reject(ctx, &Error{Condition: frames.CondNotFound, Description: "no to"})
				continue
			}
			to = m.Properties.To.V
		}
		if ts, ok := d.State().(*frames.TransactionalState); ok {
			// A transactional send (AMQP 1.0 §4.4.1): held until the discharge.
			n.mu.Lock()
			w := n.txns[string(ts.TxnID)]
			switch {
			case w == nil:
			case !w.done:
				w.addr = append(w.addr, to)
				w.payload = append(w.payload, string(d.Payload()))
			case w.committed:
				q := n.queues[to]
				if q == nil {
					q = &testQueue{ch: make(chan []byte, 20000)}
					n.queues[to] = q
				}
				q.ch <- d.Payload()
			}
			n.mu.Unlock()
			if w == nil {
				err = d.Reject(ctx, &Error{Condition: frames.CondTransactionUnknownID})
			} else {
				err = d.Settle(ctx, &frames.TransactionalState{TxnID: ts.TxnID, Outcome: &frames.Accepted{}})
			}
			if err != nil && !errors.Is(err, ErrLinkClosed) && !errors.Is(err, ErrSessionClosed) {
				return
			}
			continue
		}
		switch {
		case strings.HasPrefix(to, "reject"):
			err = d.Reject(ctx, &Error{Condition: frames.CondPreconditionFailed, Description: "rejected by test node"})
		case strings.HasPrefix(to, "release"):
			err = d.Release(ctx)
		case strings.HasPrefix(to, "modify"):
			err = d.Modify(ctx, true, true, nil)
		case strings.HasPrefix(to, "sink"):
			err = d.Accept(ctx)
		default:
			q := n.queue(to)
			select {
			case q.ch <- d.Payload():
			default:
				select {
				case q.ch <- d.Payload():
				case <-rcv.Done():
					return
				}
			}
			err = d.Accept(ctx)
		}
		if err != nil && !errors.Is(err, ErrLinkClosed) && !errors.Is(err, ErrSessionClosed) {
			return
		}
	}
}

func (n *testNode) feed(snd *Sender, addr string) {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-snd.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	q := n.queue(addr)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		if snd.Draining() && len(q.ch) == 0 {
			if err := snd.CompleteDrain(); err != nil {
				return
			}
		}
		if err := snd.WaitCredit(ctx); err != nil {
			return
		}
		var p []byte
		select {
		case p = <-q.ch:
		case <-snd.DrainRequested():
			continue
		case <-ctx.Done():
			return
		}
		r, err := snd.SendRaw(ctx, p, nil)
		if err != nil {
			q.ch <- p
			return
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			st, err := r.Wait(context.Background())
			switch st.(type) {
			case *frames.Released, *frames.Modified:
				q.ch <- p
				return
			}
			if err != nil && !errors.Is(err, ErrAborted) {
				q.ch <- p // the link ended before an outcome: keep the message
			}
		}()
	}
}

// testLogger returns a logger for the engine: discarded unless AMQP_TEST_LOG is set (t.Log
// after a test ended panics, and engine goroutines may log late).
func testLogger() *slog.Logger {
	if os.Getenv("AMQP_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a Server on 127.0.0.1:0 with the test node (unless opts has a handler) and
// returns its "amqp://host:port" URL. Cleanup shuts it down and waits for the node.
func startServer(t testing.TB, opts ServerOptions, tweak ...func(*Server)) (*Server, string, *testNode) {
	t.Helper()
	node := newTestNode()
	if opts.LinkHandler == nil {
		opts.LinkHandler = node
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
		opts.TraceFrames = os.Getenv("AMQP_TEST_LOG") == "trace"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(opts)
	for _, f := range tweak {
		f(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		node.wg.Wait()
	})
	return srv, "amqp://" + ln.Addr().String(), node
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// coordinate is a transaction coordinator (AMQP 1.0 §4.5): declare gives a txn-id, discharge
// commits (enqueues what the transaction sent) or rolls back.
func (n *testNode) coordinate(rcv *Receiver) {
	defer n.wg.Done()
	ctx := context.Background()
	for {
		d, err := rcv.Receive(ctx)
		if err != nil {
			return
		}
		m, err := d.Message()
		var c frames.Composite
		if err == nil {
			c, err = frames.DecodeComposite(m.Value)
		}
		if err != nil {
			_ = d.Reject(ctx, &Error{Condition: frames.CondDecodeError, Description: err.Error()})
			continue
		}
		switch x := c.(type) {
		case *frames.Declare:
			n.mu.Lock()
			n.txnSeq++
			id := fmt.Sprintf("txn-%d", n.txnSeq)
			n.txns[id] = &txnWork{}
			n.mu.Unlock()
			_ = d.Settle(ctx, &frames.Declared{TxnID: []byte(id)})
		case *frames.Discharge:
			n.mu.Lock()
			w := n.txns[string(x.TxnID)]
			if w != nil && w.done {
				w = nil
			}
			if w != nil {
				w.done, w.committed = true, !x.Fail.Or(false)
			}
			n.mu.Unlock()
			if w == nil {
				_ = d.Reject(ctx, &Error{Condition: frames.CondTransactionUnknownID})
				continue
			}
			if !x.Fail.Or(false) {
				for i, a := range w.addr {
					n.queue(a).ch <- []byte(w.payload[i])
				}
			}
			_ = d.Accept(ctx)
		default:
			_ = d.Reject(ctx, &Error{Condition: frames.CondNotImplemented})
		}
	}
}
