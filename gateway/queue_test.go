package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/VictoriaMetrics/metrics"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/config"
)

// queueNode is a minimal LinkHandler over queues: a peer's sender enqueues
// (accepted, or rejected as enqueue refuses), a peer's receiver consumes.
type queueNode struct {
	qs  *queues
	ctx context.Context
	wg  sync.WaitGroup
}

func (n *queueNode) Attach(req *amqp.LinkRequest) error {
	if req.PeerRole() == frames.RoleReceiver {
		src := req.Source()
		opts := &amqp.SenderOptions{ManualDrain: true}
		var q *queue
		switch {
		case src == nil:
			return &amqp.Error{Condition: frames.CondInvalidField, Description: "no source"}
		case src.Dynamic:
			q = n.qs.dynamic("")
			reply := *src
			reply.Address = frames.Some(q.name)
			opts.Source = &reply
		default:
			q = n.qs.lookup(src.Address.V, true)
		}
		if q == nil {
			return &amqp.Error{Condition: frames.CondNotFound, Description: "no such queue"}
		}
		snd, err := req.AcceptSender(opts)
		if err != nil {
			return err
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			q.consume(n.ctx, snd)
		}()
		return nil
	}
	tgt := req.Target()
	if tgt == nil {
		return &amqp.Error{Condition: frames.CondInvalidField, Description: "no target"}
	}
	q := n.qs.lookup(tgt.Address.V, true)
	if q == nil {
		return &amqp.Error{Condition: frames.CondNotFound, Description: "no such queue"}
	}
	rcv, err := req.AcceptReceiver(&amqp.ReceiverOptions{})
	if err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			d, err := rcv.Receive(n.ctx)
			if err != nil {
				return
			}
			state := enqueueOutcome(q.enqueue(bytes.Clone(d.Payload())))
			if !d.SenderSettled() {
				_ = d.Settle(n.ctx, state)
			}
		}
	}()
	return nil
}

// startQueueNode serves queues built from cfg on 127.0.0.1:0 and returns
// them with a go-amqp session to the server.
func startQueueNode(t *testing.T, cfg ...config.Queue) (*queues, *goamqp.Session) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	qs := newQueues(cfg, metrics.NewSet(), log)
	ctx, cancel := context.WithCancel(context.Background())
	node := &queueNode{qs: qs, ctx: ctx}
	srv := amqp.NewServer(amqp.ServerOptions{AllowAnonymous: true, LinkHandler: node, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, amqp.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		cancel()
		node.wg.Wait()
		qs.close()
	})
	return qs, amqpSession(t, ln.Addr().String())
}

func qSendAll(t *testing.T, snd *goamqp.Sender, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := send(snd, "", fmt.Sprintf("%s%d", prefix, i)); err != nil {
			t.Fatalf("send %s%d: %v", prefix, i, err)
		}
	}
}

func qAccept(t *testing.T, r *goamqp.Receiver, m *goamqp.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.AcceptMessage(ctx, m); err != nil {
		t.Fatalf("accept: %v", err)
	}
}

// qNothing checks that r gets nothing for a while.
func qNothing(t *testing.T, r *goamqp.Receiver, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if m, err := r.Receive(ctx, nil); err == nil {
		t.Fatalf("%s: got %q", what, m.GetData())
	}
}

func deliveryCount(m *goamqp.Message) uint32 {
	if m.Header == nil {
		return 0
	}
	return m.Header.DeliveryCount
}

// TestQueueFIFO: one consumer gets every message once, in order, and the
// queue is empty after the accepts.
func TestQueueFIFO(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "orders"})
	qSendAll(t, sender(t, s, "orders"), "m", 20)
	if got := qs.held.Load(); got != 20 {
		t.Fatalf("held %d after 20 accepted sends, want 20", got)
	}
	r := receiverCredit(t, s, "orders", 5)
	for i := range 20 {
		m := receive(t, r)
		if want := fmt.Sprintf("m%d", i); string(m.GetData()) != want {
			t.Fatalf("message %d: %q, want %q", i, m.GetData(), want)
		}
		qAccept(t, r, m)
	}
	qNothing(t, r, "after the last message")
	eventually(t, "queue empty", func() bool { return qs.held.Load() == 0 })
	if e, d := qs.enqueued.Get(), qs.delivered.Get(); e != 20 || d != 20 {
		t.Fatalf("enqueued %d delivered %d, want 20 and 20", e, d)
	}
}

// TestQueueCompetingConsumers: two consumers share the messages: each gets
// some, none twice, all together.
func TestQueueCompetingConsumers(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "work"})
	a := receiverCredit(t, s, "work", 1)
	b := receiverCredit(t, s, "work", 1)
	qSendAll(t, sender(t, s, "work"), "w", 40)

	var mu sync.Mutex
	seen := map[string]string{}
	counts := map[string]int{}
	var wg sync.WaitGroup
	// Each takes its first message before anyone accepts: with credit 1
	// both get one, whoever is faster afterwards.
	firstA, firstB := receive(t, a), receive(t, b)
	for name, pair := range map[string]struct {
		r     *goamqp.Receiver
		first *goamqp.Message
	}{"a": {a, firstA}, "b": {b, firstB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := pair.first
			for {
				mu.Lock()
				if prev, dup := seen[string(m.GetData())]; dup {
					t.Errorf("%q to %s and %s", m.GetData(), prev, name)
				}
				seen[string(m.GetData())] = name
				counts[name]++
				done := len(seen) == 40
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := pair.r.AcceptMessage(ctx, m)
				cancel()
				if err != nil || done {
					return
				}
				ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
				m, err = pair.r.Receive(ctx, nil)
				cancel()
				if err != nil {
					return // the other one took the rest
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 || counts["a"] == 0 || counts["b"] == 0 {
		t.Fatalf("%d distinct messages (a %d, b %d), want 40 shared", len(seen), counts["a"], counts["b"])
	}
	eventually(t, "queue empty", func() bool { return qs.held.Load() == 0 })
}

// TestQueueReleaseRedelivered: a released message comes back first to the
// same consumer without counting an attempt; a modified one (delivery
// failed, undeliverable here) goes to the other consumer with
// header.delivery-count 1.
func TestQueueReleaseRedelivered(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "jobs"})
	a := receiverCredit(t, s, "jobs", 1)
	snd := sender(t, s, "jobs")
	qSendAll(t, snd, "j", 1)
	ctx := context.Background()

	m := receive(t, a)
	if err := a.ReleaseMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	m = receive(t, a)
	if string(m.GetData()) != "j0" || deliveryCount(m) != 0 {
		t.Fatalf("after release: %q delivery-count %d, want j0 and 0", m.GetData(), deliveryCount(m))
	}
	b := receiverCredit(t, s, "jobs", 1)
	if err := a.ModifyMessage(ctx, m, &goamqp.ModifyMessageOptions{DeliveryFailed: true, UndeliverableHere: true}); err != nil {
		t.Fatal(err)
	}
	m = receive(t, b)
	if string(m.GetData()) != "j0" || deliveryCount(m) != 1 {
		t.Fatalf("after modify: %q delivery-count %d, want j0 and 1", m.GetData(), deliveryCount(m))
	}
	qNothing(t, a, "the consumer that refused it")
	qAccept(t, b, m)
	eventually(t, "queue empty", func() bool { return qs.held.Load() == 0 })
	if got := qs.redelivered.Get(); got != 2 {
		t.Fatalf("redelivered %d, want 2", got)
	}
}

// TestQueueLinkLossRedelivers: the unsettled messages of a consumer whose
// link closes go, in order, to the next consumer with delivery-count 1.
func TestQueueLinkLossRedelivers(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "tasks"})
	a := receiverCredit(t, s, "tasks", 5)
	qSendAll(t, sender(t, s, "tasks"), "t", 3)
	for i := range 3 {
		if m := receive(t, a); string(m.GetData()) != fmt.Sprintf("t%d", i) {
			t.Fatalf("first consumer got %q", m.GetData())
		}
	}
	b := receiverCredit(t, s, "tasks", 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := receive(t, b)
		if want := fmt.Sprintf("t%d", i); string(m.GetData()) != want || deliveryCount(m) != 1 {
			t.Fatalf("redelivery %d: %q delivery-count %d, want %s and 1", i, m.GetData(), deliveryCount(m), want)
		}
		qAccept(t, b, m)
	}
	eventually(t, "queue empty", func() bool { return qs.held.Load() == 0 })
}

// TestQueueRejectWhenFull: overflow reject refuses the message beyond
// max_messages with amqp:resource-limit-exceeded (SPEC §5.2).
func TestQueueRejectWhenFull(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "small", MaxMessages: 2, Overflow: "reject"})
	snd := sender(t, s, "small")
	qSendAll(t, snd, "s", 2)
	err := send(snd, "", "s2")
	var e *goamqp.Error
	if !errors.As(err, &e) || e.Condition != goamqp.ErrCondResourceLimitExceeded {
		t.Fatalf("third send: %v, want rejected %s", err, goamqp.ErrCondResourceLimitExceeded)
	}
	if got := qs.held.Load(); got != 2 {
		t.Fatalf("held %d, want 2", got)
	}
	// max_bytes the same way.
	qs2, s2 := startQueueNode(t, config.Queue{Name: "tiny", MaxBytes: 40})
	snd2 := sender(t, s2, "tiny")
	if err := send(snd2, "", "x"); err != nil {
		t.Fatal(err)
	}
	err = send(snd2, "", strings.Repeat("y", 64))
	if !errors.As(err, &e) || e.Condition != goamqp.ErrCondResourceLimitExceeded {
		t.Fatalf("send beyond max_bytes: %v", err)
	}
	if got := qs2.held.Load(); got != 1 {
		t.Fatalf("held %d, want 1", got)
	}
}

// TestQueueDropOldest: overflow drop-oldest keeps the newest messages and
// counts the dropped ones.
func TestQueueDropOldest(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "latest", MaxMessages: 2, Overflow: "drop-oldest"})
	qSendAll(t, sender(t, s, "latest"), "d", 5)
	if got := qs.overflow.Get(); got != 3 {
		t.Fatalf("dropped %d, want 3", got)
	}
	r := receiverCredit(t, s, "latest", 10)
	for _, want := range []string{"d3", "d4"} {
		m := receive(t, r)
		if string(m.GetData()) != want {
			t.Fatalf("got %q, want %q", m.GetData(), want)
		}
		qAccept(t, r, m)
	}
	qNothing(t, r, "after the newest two")
}

// TestQueueTTL: expired messages are never delivered, by the queue's ttl or
// the message's header.ttl, and are counted.
func TestQueueTTL(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Name: "fresh", TTL: 100 * time.Millisecond}, config.Queue{Name: "plain"})
	qSendAll(t, sender(t, s, "fresh"), "old", 2)
	eventually(t, "expired by the queue ttl", func() bool { return qs.expired.Get() == 2 && qs.held.Load() == 0 })

	plain := sender(t, s, "plain")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	short := goamqp.NewMessage([]byte("short"))
	short.Header = &goamqp.MessageHeader{TTL: 50 * time.Millisecond}
	if err := plain.Send(ctx, short, nil); err != nil {
		t.Fatal(err)
	}
	qSendAll(t, plain, "keep", 1)
	eventually(t, "expired by header.ttl", func() bool { return qs.expired.Get() == 3 })

	r := receiverCredit(t, s, "plain", 5)
	if m := receive(t, r); string(m.GetData()) != "keep0" {
		t.Fatalf("got %q, want keep0", m.GetData())
	}
	rf := receiverCredit(t, s, "fresh", 5)
	qNothing(t, rf, "expired queue")
}

// TestQueueDynamic: a dynamic receiver gets a temporary queue's generated
// address; messages sent there reach it, and the queue goes with it.
func TestQueueDynamic(t *testing.T) {
	qs, s := startQueueNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := s.NewReceiver(ctx, "", &goamqp.ReceiverOptions{DynamicAddress: true, Credit: 5})
	if err != nil {
		t.Fatal(err)
	}
	addr := r.Address()
	if !strings.HasPrefix(addr, dynamicPrefix) || qs.lookup(addr, false) == nil {
		t.Fatalf("dynamic address %q is not a temporary queue", addr)
	}
	qSendAll(t, sender(t, s, addr), "reply", 1)
	m := receive(t, r)
	if string(m.GetData()) != "reply0" {
		t.Fatalf("got %q", m.GetData())
	}
	qAccept(t, r, m)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "temporary queue deleted", func() bool { return qs.lookup(addr, false) == nil })
}

// TestQueueMatchAutoDelete: an address matching a match: pattern becomes a
// queue on first use and is deleted once idle and empty for auto_delete.
func TestQueueMatchAutoDelete(t *testing.T) {
	qs, s := startQueueNode(t, config.Queue{Match: "jobs/#", AutoDelete: 150 * time.Millisecond})
	if qs.lookup("jobs/a", false) != nil || qs.count() != 0 {
		t.Fatal("queue exists before first use")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.NewSender(ctx, "other/x", nil); err == nil {
		t.Fatal("an address matching no pattern became a queue")
	}
	qSendAll(t, sender(t, s, "jobs/a"), "job", 2)
	if qs.lookup("jobs/a", false) == nil {
		t.Fatal("jobs/a not created on first use")
	}
	time.Sleep(300 * time.Millisecond) // not idle: it holds messages
	if qs.lookup("jobs/a", false) == nil {
		t.Fatal("a queue holding messages was deleted")
	}
	r := receiverCredit(t, s, "jobs/a", 5)
	for range 2 {
		qAccept(t, r, receive(t, r))
	}
	time.Sleep(300 * time.Millisecond) // not idle: it has a consumer
	if qs.count() != 1 {
		t.Fatal("a queue with a consumer was deleted")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "idle queue deleted", func() bool { return qs.count() == 0 })
}
