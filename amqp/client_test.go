package amqp

// Our client against our server: the two roles of the same engine.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

func dialOwn(t testing.TB, url string, opts *ConnOptions) *Conn {
	t.Helper()
	if opts == nil {
		opts = &ConnOptions{}
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	c, err := Dial(ctxT(t, 10*time.Second), url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ownSession(t testing.TB, c *Conn) *Session {
	t.Helper()
	s, err := c.NewSession(ctxT(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	return s
}

func dataMsg(s string) *frames.Message { return &frames.Message{Data: [][]byte{[]byte(s)}} }

func body(t testing.TB, d *Delivery) string {
	t.Helper()
	m, err := d.Message()
	if err != nil {
		t.Fatalf("Message: %v", err)
	}
	if len(m.Data) != 1 {
		t.Fatalf("message has %d data sections", len(m.Data))
	}
	return string(m.Data[0])
}

func TestOwnSettleModes(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	for _, sm := range []frames.SenderSettleMode{frames.SenderSettleModeUnsettled, frames.SenderSettleModeSettled, frames.SenderSettleModeMixed} {
		for _, rm := range []frames.ReceiverSettleMode{frames.ReceiverSettleModeFirst, frames.ReceiverSettleModeSecond} {
			t.Run(fmt.Sprintf("snd=%d/rcv=%d", sm, rm), func(t *testing.T) {
				ctx := ctxT(t, 20*time.Second)
				addr := fmt.Sprintf("own-settle-%d-%d", sm, rm)
				snd, err := sess.NewSender(ctx, addr, &SenderOptions{SndSettleMode: &sm, RcvSettleMode: &rm})
				if err != nil {
					t.Fatal(err)
				}
				if gs, gr := snd.SettleModes(); gs != sm || gr != rm {
					t.Fatalf("negotiated %d/%d, want %d/%d", gs, gr, sm, rm)
				}
				const n = 30
				for i := range n {
					st, err := snd.Send(ctx, dataMsg(fmt.Sprint(i)), &SendOptions{Settled: i%2 == 0})
					if err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
					presettled := sm == frames.SenderSettleModeSettled || (sm == frames.SenderSettleModeMixed && i%2 == 0)
					if presettled && st != nil {
						t.Fatalf("pre-settled send %d returned state %T", i, st)
					}
					if _, ok := st.(*frames.Accepted); !presettled && !ok {
						t.Fatalf("send %d: outcome %T, want accepted", i, st)
					}
				}
				rcv, err := sess.NewReceiver(ctx, addr, &ReceiverOptions{Credit: 7, SndSettleMode: &sm, RcvSettleMode: &rm})
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					d, err := rcv.Receive(ctx)
					if err != nil {
						t.Fatalf("Receive %d: %v", i, err)
					}
					if got := body(t, d); got != fmt.Sprint(i) {
						t.Fatalf("message %d = %q", i, got)
					}
					if d.SenderSettled() != (sm == frames.SenderSettleModeSettled) {
						t.Fatalf("delivery %d SenderSettled=%v in mode %d", i, d.SenderSettled(), sm)
					}
					if err := d.Accept(ctx); err != nil {
						t.Fatalf("Accept %d: %v", i, err)
					}
					if !d.SenderSettled() {
						if err := d.Accept(ctx); !errors.Is(err, ErrSettled) {
							t.Fatalf("second Accept = %v, want ErrSettled", err)
						}
					}
				}
				if err := rcv.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if err := snd.Close(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestOwnOutcomesAndStates(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 20*time.Second)
	cases := map[string]func(frames.DeliveryState) bool{
		"sink": func(st frames.DeliveryState) bool { _, ok := st.(*frames.Accepted); return ok },
		"reject": func(st frames.DeliveryState) bool {
			r, ok := st.(*frames.Rejected)
			return ok && r.Error != nil && r.Error.Condition == frames.CondPreconditionFailed
		},
		"release": func(st frames.DeliveryState) bool { _, ok := st.(*frames.Released); return ok },
		"modify": func(st frames.DeliveryState) bool {
			m, ok := st.(*frames.Modified)
			return ok && m.DeliveryFailed.Or(false) && m.UndeliverableHere.Or(false)
		},
	}
	for addr, check := range cases {
		snd, err := sess.NewSender(ctx, addr+"-x", nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := snd.Send(ctx, dataMsg("m"), nil)
		if err != nil || !check(st) {
			t.Errorf("%s: outcome %#v, %v", addr, st, err)
		}
	}
	// received (non-terminal) then accepted: the sender sees the terminal outcome.
	rq, err := sess.NewReceiver(ctx, "q-received", &ReceiverOptions{ManualCredit: true, Credit: 1})
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, "q-received", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snd.Send(ctx, dataMsg("r"), nil); err != nil {
		t.Fatal(err)
	}
	if err := rq.IssueCredit(1); err != nil {
		t.Fatal(err)
	}
	if err := rq.IssueCredit(1); !errors.Is(err, ErrCredit) {
		t.Fatalf("IssueCredit beyond capacity = %v, want ErrCredit", err)
	}
	d, err := rq.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Disposition(ctx, &frames.Received{SectionNumber: 1, SectionOffset: 10}, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Accept(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOwnAsyncInFlight keeps many deliveries in flight with SendAsync and checks each outcome.
func TestOwnAsyncInFlight(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 30*time.Second)
	snd, err := sess.NewSender(ctx, "q-async", &SenderOptions{MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	receipts := make([]*Receipt, 0, n)
	for i := range n {
		r, err := snd.SendAsync(ctx, dataMsg(fmt.Sprint(i)), nil)
		if err != nil {
			t.Fatalf("SendAsync %d: %v", i, err)
		}
		receipts = append(receipts, r)
	}
	for i, r := range receipts {
		st, err := r.Wait(ctx)
		if _, ok := st.(*frames.Accepted); !ok || err != nil {
			t.Fatalf("receipt %d: %T %v", i, st, err)
		}
	}
	rcv, err := sess.NewReceiver(ctx, "q-async", &ReceiverOptions{Credit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d, err := rcv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, d); got != fmt.Sprint(i) {
			t.Fatalf("message %d = %q", i, got)
		}
		if err := d.Accept(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOwnLargeBothWays sends 5 MB each way with small frames on both sides.
func TestOwnLargeBothWays(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, MaxFrameSize: 4096, MaxMessageSize: 8 << 20})
	sess := ownSession(t, dialOwn(t, url, &ConnOptions{MaxFrameSize: 1024, MaxMessageSize: 8 << 20}))
	ctx := ctxT(t, 60*time.Second)
	big := bytes.Repeat([]byte("0123456789abcdef"), 5_000_000/16)
	snd, err := sess.NewSender(ctx, "q-big-own", nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, "q-big-own", &ReceiverOptions{Credit: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := snd.Send(ctx, &frames.Message{Data: [][]byte{big}}, nil); err != nil {
			t.Fatal(err)
		}
		d, err := rcv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := d.Message()
		if !bytes.Equal(m.Data[0], big) {
			t.Fatal("large message corrupted")
		}
		_ = d.Accept(ctx)
	}
}

// TestOwnMessageSizeLimits: a message beyond the server's max-message-size is refused before
// sending (ErrMessageTooLarge, from the attach), and the limit passes the other way too.
func TestOwnMessageSizeLimits(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true, MaxMessageSize: 1000})
	sess := ownSession(t, dialOwn(t, url, &ConnOptions{MaxMessageSize: 500}))
	ctx := ctxT(t, 10*time.Second)
	snd, err := sess.NewSender(ctx, "q-size", nil)
	if err != nil {
		t.Fatal(err)
	}
	if snd.MaxMessageSize() != 1000 {
		t.Fatalf("peer max-message-size = %d, want 1000", snd.MaxMessageSize())
	}
	if _, err := snd.Send(ctx, dataMsg(string(make([]byte, 2000))), nil); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize Send = %v, want ErrMessageTooLarge", err)
	}
	// Our receiver advertises 500: the server's sender must not send the 700-byte message to it
	// (our own enforcement against a peer that ignores the limit is in rawconn_test.go).
	if _, err := snd.Send(ctx, dataMsg(string(make([]byte, 700))), nil); err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, "q-size", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rcv.MaxMessageSize() != 0 {
		t.Fatalf("server sender advertised max-message-size %d", rcv.MaxMessageSize())
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if d, err := rcv.Receive(short); err == nil {
		t.Fatalf("received %d bytes beyond our max-message-size", len(d.Payload()))
	}
	_ = node
}

func TestOwnRefusedLink(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 10*time.Second)
	for _, role := range []string{"sender", "receiver"} {
		var err error
		if role == "sender" {
			_, err = sess.NewSender(ctx, "refuse-me", nil)
		} else {
			_, err = sess.NewReceiver(ctx, "refuse-me", nil)
		}
		var le *LinkError
		var ae *Error
		if !errors.As(err, &le) || !errors.As(err, &ae) || ae.Condition != frames.CondNotFound {
			t.Fatalf("%s: err = %v, want a LinkError with amqp:not-found", role, err)
		}
		if !errors.Is(err, ErrLinkClosed) {
			t.Fatalf("%s: errors.Is(ErrLinkClosed) false", role)
		}
	}
	// The session is still usable, and the name can be reused.
	if _, err := sess.NewSender(ctx, "sink-after-refusal", &SenderOptions{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
}

func TestOwnDynamicAndAnonymousRelay(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, AnonymousRelay: true})
	c := dialOwn(t, url, nil)
	if !c.OfferedCapability(AnonymousRelay) {
		t.Fatal("server did not offer ANONYMOUS-RELAY")
	}
	sess := ownSession(t, c)
	ctx := ctxT(t, 10*time.Second)
	rcv, err := sess.NewReceiver(ctx, "", &ReceiverOptions{DynamicSource: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := rcv.Address()
	if addr == "" {
		t.Fatal("dynamic receiver has no address")
	}
	relay, err := sess.NewSender(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if relay.Target() != nil {
		t.Fatalf("anonymous relay target = %+v", relay.Target())
	}
	msg := &frames.Message{Properties: &frames.MessageProperties{To: frames.Some(addr)}, Data: [][]byte{[]byte("to dynamic")}}
	if st, err := relay.Send(ctx, msg, nil); err != nil {
		t.Fatal(err)
	} else if _, ok := st.(*frames.Accepted); !ok {
		t.Fatalf("relay outcome %T", st)
	}
	d, err := rcv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, d) != "to dynamic" {
		t.Fatal("wrong message")
	}
	_ = d.Accept(ctx)
	dsnd, err := sess.NewSender(ctx, "", &SenderOptions{DynamicTarget: true})
	if err != nil {
		t.Fatal(err)
	}
	if dsnd.Address() == "" {
		t.Fatal("dynamic sender has no address")
	}
}

// TestOwnDrainAndManualCredit drains a sender with credit left and an empty queue.
func TestOwnDrainAndManualCredit(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 10*time.Second)
	rcv, err := sess.NewReceiver(ctx, "q-own-drain", &ReceiverOptions{ManualCredit: true, Credit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Drain(ctx); err != nil { // no credit: returns at once
		t.Fatal(err)
	}
	if err := rcv.IssueCredit(5); err != nil {
		t.Fatal(err)
	}
	node.queue("q-own-drain").ch <- []byte("\x00\x53\x75\xa0\x01a")
	d, err := rcv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Accept(ctx)
	if err := rcv.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// The server's sender has no credit left.
	node.mu.Lock()
	snd := node.senders["q-own-drain"]
	node.mu.Unlock()
	if c := snd.Credit(); c != 0 {
		t.Fatalf("server sender credit after drain = %d", c)
	}
}

// TestOwnAbort cancels a large send midway: the receiver discards the partial delivery (it never
// reaches the queue) and the next message passes.
func TestOwnAbort(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true, MaxMessageSize: 64 << 20, SessionWindow: 8})
	// A tiny session window on the server makes the big message wait for window refreshes, so the
	// cancel lands while it is partly sent.
	sess := ownSession(t, dialOwn(t, url, &ConnOptions{MaxFrameSize: 512}))
	ctx := ctxT(t, 20*time.Second)
	snd, err := sess.NewSender(ctx, "q-abort", nil)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 32<<20)
	r, err := snd.SendAsync(ctx, &frames.Message{Data: [][]byte{big}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Cancelled at once: the 65,536 frames of 512 bytes take far longer to hand to the writer
	// than this (a sleep here made the test depend on the machine's speed).
	r.Cancel()
	_, err = r.Wait(ctx)
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("cancelled receipt: %v, want ErrAborted", err)
	}
	if _, err := snd.Send(ctx, dataMsg("after"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-node.queue("q-abort").ch:
		var m frames.Message
		if err := m.Decode(p); err != nil || string(m.Data[0]) != "after" {
			t.Fatalf("queued %d bytes, want only the message after the abort", len(p))
		}
	case <-ctx.Done():
		t.Fatal("message after abort not delivered")
	}
}

// TestOwnCloseScopes checks session end, link detach by the server, connection close with error
// and server shutdown, each reaching the client with the right scope and condition.
func TestOwnCloseScopes(t *testing.T) {
	srv, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	c := dialOwn(t, url, nil)
	ctx := ctxT(t, 20*time.Second)
	s1 := ownSession(t, c)
	rcv, err := s1.NewReceiver(ctx, "q-scope", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The server detaches its sender with an error: the client's link ends with RemoteErr.
	node.mu.Lock()
	snd := node.senders["q-scope"]
	node.mu.Unlock()
	if err := snd.CloseWithError(ctx, &Error{Condition: frames.CondLinkDetachForced, Description: "bye"}); err != nil {
		t.Fatal(err)
	}
	_, err = rcv.Receive(ctx)
	var le *LinkError
	if !errors.As(err, &le) || le.RemoteErr == nil || le.RemoteErr.Condition != frames.CondLinkDetachForced {
		t.Fatalf("Receive after server detach = %v", err)
	}
	if err := s1.Close(ctx); err != nil {
		t.Fatalf("session Close: %v", err)
	}
	if !errors.Is(s1.Err(), ErrSessionClosed) {
		t.Fatalf("session Err = %v", s1.Err())
	}
	s2 := ownSession(t, c)
	if _, err := s2.NewSender(ctx, "sink-scope", nil); err != nil {
		t.Fatal(err)
	}
	// Shutdown closes the connection with amqp:connection:forced.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	var ce *ConnError
	if !errors.As(c.Err(), &ce) || ce.RemoteErr == nil || ce.RemoteErr.Condition != frames.CondConnectionForced {
		t.Fatalf("conn Err after Shutdown = %v", c.Err())
	}
	if _, err := s2.NewSender(ctx, "x", nil); !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrConnClosed) {
		t.Fatalf("NewSender on a closed conn = %v", err)
	}
}

// TestOwnConnRefusedByOnOpen: OnConnOpen refuses with an error: open then close(error).
func TestOwnConnRefusedByOnOpen(t *testing.T) {
	var closed sync.WaitGroup
	closed.Add(1)
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true,
		OnConnOpen: func(c *Conn) error {
			if c.RemoteContainerID() == "banned" {
				return &Error{Condition: frames.CondUnauthorizedAccess, Description: "banned"}
			}
			return nil
		},
		OnConnClose: func(c *Conn, err error) { closed.Done() },
	})
	ctx := ctxT(t, 10*time.Second)
	c, err := Dial(ctx, url, &ConnOptions{ContainerID: "banned"})
	if err != nil {
		t.Fatal(err) // the open succeeded; the close follows
	}
	<-c.Done()
	var ae *Error
	if !errors.As(c.Err(), &ae) || ae.Condition != frames.CondUnauthorizedAccess {
		t.Fatalf("Err = %v", c.Err())
	}
	c2 := dialOwn(t, url, &ConnOptions{ContainerID: "fine"})
	if err := c2.Close(); err != nil {
		t.Fatalf("clean Close = %v", err)
	}
	closed.Wait()
}

// TestOwnPeerInitiatedLinkOnClient: the server attaches a link to the client (both roles of the
// engine are symmetric after the handshake).
func TestOwnPeerInitiatedLinkOnClient(t *testing.T) {
	got := make(chan string, 1)
	clientHandler := LinkHandlerFunc(func(req *LinkRequest) error {
		rcv, err := req.AcceptReceiver(nil)
		if err != nil {
			return err
		}
		go func() {
			d, err := rcv.Receive(context.Background())
			if err != nil {
				got <- err.Error()
				return
			}
			_ = d.Accept(context.Background())
			m, _ := d.Message()
			got <- string(m.Data[0])
		}()
		return nil
	})
	serverSide := make(chan *Conn, 1)
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, OnConnOpen: func(c *Conn) error { serverSide <- c; return nil }})
	dialOwn(t, url, &ConnOptions{LinkHandler: clientHandler})
	sc := <-serverSide
	ctx := ctxT(t, 10*time.Second)
	s, err := sc.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := s.NewSender(ctx, "client-node", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := snd.Send(ctx, dataMsg("from server"), nil); err != nil {
		t.Fatal(err)
	} else if _, ok := st.(*frames.Accepted); !ok {
		t.Fatalf("outcome %T", st)
	}
	if g := <-got; g != "from server" {
		t.Fatalf("client got %q", g)
	}
}

// TestOwnSuspendAndReattach: Detach sends closed=false (suspend); the server's link ends with
// the peer's detach and the same link name can attach again.
func TestOwnSuspendAndReattach(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 10*time.Second)
	rcv, err := sess.NewReceiver(ctx, "q-suspend", &ReceiverOptions{Name: "durable-sub"})
	if err != nil {
		t.Fatal(err)
	}
	node.mu.Lock()
	snd := node.senders["q-suspend"]
	node.mu.Unlock()
	if err := rcv.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	<-snd.Done()
	var le *LinkError
	if !errors.As(snd.Err(), &le) || le.RemoteErr != nil {
		t.Fatalf("server link after suspend: %v", snd.Err())
	}
	if _, err := sess.NewReceiver(ctx, "q-suspend", &ReceiverOptions{Name: "durable-sub"}); err != nil {
		t.Fatalf("re-attach: %v", err)
	}
}

// TestOwnHandlerPanicAndErrors: a panicking LinkHandler refuses the link with
// amqp:internal-error and the connection survives; a plain error is internal-error too.
func TestOwnHandlerPanicAndErrors(t *testing.T) {
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		switch req.Target().Address.Or("") {
		case "panic":
			panic("boom")
		case "plain-error":
			return errors.New("plain")
		case "no-answer":
			return nil
		}
		_, err := req.AcceptReceiver(nil)
		return err
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h, Logger: slog.New(slog.DiscardHandler)})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 10*time.Second)
	for _, addr := range []string{"panic", "plain-error", "no-answer"} {
		_, err := sess.NewSender(ctx, addr, nil)
		var ae *Error
		if !errors.As(err, &ae) || ae.Condition != frames.CondInternalError {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	if _, err := sess.NewSender(ctx, "fine", nil); err != nil {
		t.Fatal(err)
	}
}

// TestOwnChannelMaxAndHeartbeats: sessions beyond the negotiated channel-max are refused locally;
// with short idle timeouts on both sides an idle connection stays up.
func TestOwnChannelMaxAndHeartbeats(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, ChannelMax: 1, IdleTimeout: 300 * time.Millisecond})
	c := dialOwn(t, url, &ConnOptions{IdleTimeout: 300 * time.Millisecond})
	ctx := ctxT(t, 10*time.Second)
	ownSession(t, c)
	s2 := ownSession(t, c)
	if _, err := c.NewSession(ctx, nil); err == nil {
		t.Fatal("third session beyond channel-max 1 accepted")
	}
	time.Sleep(time.Second)
	snd, err := s2.NewSender(ctx, "sink-idle", nil)
	if err != nil {
		t.Fatalf("after idling: %v", err)
	}
	if _, err := snd.Send(ctx, dataMsg("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestOwnServerClose: Close ends every connection at once with amqp:connection:forced.
func TestOwnServerClose(t *testing.T) {
	srv, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	c := dialOwn(t, url, nil)
	ownSession(t, c)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still open after Server.Close")
	}
	var ae *Error
	if !errors.As(c.Err(), &ae) || ae.Condition != frames.CondConnectionForced {
		t.Fatalf("Err = %v", c.Err())
	}
	if _, err := Dial(ctxT(t, 2*time.Second), url, nil); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

// TestOwnEncodeFailureAndHandshakePanic: an attach whose properties cannot be encoded ends the
// connection with amqp:internal-error (the writer cannot send what the session meant); a panic
// in OnConnOpen is recovered at the connection boundary.
func TestOwnEncodeFailureAndHandshakePanic(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, Logger: slog.New(slog.DiscardHandler),
		OnConnOpen: func(c *Conn) error {
			if c.RemoteContainerID() == "panic" {
				panic("boom")
			}
			return nil
		}})
	ctx := ctxT(t, 10*time.Second)
	c := dialOwn(t, url, &ConnOptions{Logger: slog.New(slog.DiscardHandler)})
	sess := ownSession(t, c)
	_, err := sess.NewSender(ctx, "x", &SenderOptions{Properties: frames.Fields{{Key: frames.Symbol("bad"), Value: make(chan int)}}})
	if err == nil {
		t.Fatal("unencodable attach succeeded")
	}
	<-c.Done()
	var ce *ConnError
	if !errors.As(c.Err(), &ce) || ce.LocalErr == nil || ce.LocalErr.Condition != frames.CondInternalError {
		t.Fatalf("Err = %v", c.Err())
	}
	if c, err := Dial(ctx, url, &ConnOptions{ContainerID: "panic"}); err == nil {
		<-c.Done() // the server dropped it
	}
	// The server still serves.
	dialOwn(t, url, nil)
}

// TestSmallWindowsNeverStall moves thousands of messages through sessions whose incoming windows
// are 8 frames on both sides, with our client and go-amqp: the windows must be re-advertised
// without link activity and never stall (checklist §5, pitfall 1).
func TestSmallWindowsNeverStall(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, SessionWindow: 8, MaxFrameSize: 512})
	ctx := ctxT(t, 60*time.Second)
	c := dialOwn(t, url, &ConnOptions{MaxFrameSize: 512})
	sess, err := c.NewSession(ctx, &SessionOptions{IncomingWindow: 8})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	snd, err := sess.NewSender(ctx, "q-window", &SenderOptions{MaxInFlight: 500})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, "q-window", &ReceiverOptions{Credit: 300})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		body := string(make([]byte, 1500)) // 3+ frames each at 512 bytes
		for i := range n {
			if _, err := snd.SendAsync(ctx, dataMsg(fmt.Sprint(i, body)), nil); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		d, err := rcv.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive %d: %v", i, err)
		}
		if !strings.HasPrefix(body(t, d), fmt.Sprint(i)) {
			t.Fatalf("message %d out of order", i)
		}
		_ = d.Accept(ctx)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	gs := goSession(t, dialGo(t, url, &goamqp.ConnOptions{MaxFrameSize: 512}))
	gsnd, err := gs.NewSender(ctx, "q-window-go", nil)
	if err != nil {
		t.Fatal(err)
	}
	grcv, err := gs.NewReceiver(ctx, "q-window-go", &goamqp.ReceiverOptions{Credit: 50})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range 1000 {
			if err := gsnd.Send(ctx, goamqp.NewMessage([]byte(fmt.Sprint(i, string(make([]byte, 1000))))), nil); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range 1000 {
		m, err := grcv.Receive(ctx, nil)
		if err != nil {
			t.Fatalf("go-amqp Receive %d: %v", i, err)
		}
		_ = grcv.AcceptMessage(ctx, m)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestOwnTransactions: our client as transaction controller against the test coordinator:
// declare, transactional sends, commit (messages appear) and rollback (they do not).
func TestOwnTransactions(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := ownSession(t, dialOwn(t, url, nil))
	ctx := ctxT(t, 10*time.Second)
	ctl, err := sess.NewSender(ctx, "", &SenderOptions{Coordinator: &frames.Coordinator{Capabilities: []frames.Symbol{frames.TxnCapabilityLocalTransactions}}})
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, "q-txn", nil)
	if err != nil {
		t.Fatal(err)
	}
	declare := func() []byte {
		st, err := ctl.Send(ctx, &frames.Message{Value: encoding.Described{Descriptor: frames.DescriptorDeclare, Value: encoding.List{}}}, nil)
		d, ok := st.(*frames.Declared)
		if err != nil || !ok {
			t.Fatalf("declare: %T %v", st, err)
		}
		return d.TxnID
	}
	discharge := func(id []byte, fail bool) {
		st, err := ctl.Send(ctx, &frames.Message{Value: encoding.Described{Descriptor: frames.DescriptorDischarge, Value: encoding.List{id, fail}}}, nil)
		if _, ok := st.(*frames.Accepted); err != nil || !ok {
			t.Fatalf("discharge: %T %v", st, err)
		}
	}
	for _, commit := range []bool{false, true} {
		id := declare()
		for i := range 3 {
			st, err := snd.Send(ctx, dataMsg(fmt.Sprint(commit, i)), &SendOptions{State: &frames.TransactionalState{TxnID: id}})
			ts, ok := st.(*frames.TransactionalState)
			if err != nil || !ok || string(ts.TxnID) != string(id) {
				t.Fatalf("transactional send: %T %v", st, err)
			}
			if _, ok := ts.Outcome.(*frames.Accepted); !ok {
				t.Fatalf("transactional outcome %T", ts.Outcome)
			}
		}
		if len(node.queue("q-txn").ch) != 0 {
			t.Fatal("messages visible before the discharge")
		}
		discharge(id, !commit)
	}
	if got := len(node.queue("q-txn").ch); got != 3 {
		t.Fatalf("%d messages after commit and rollback, want the 3 committed", got)
	}
	// Discharging an unknown transaction is rejected with amqp:transaction:unknown-id.
	st, err := ctl.Send(ctx, &frames.Message{Value: encoding.Described{Descriptor: frames.DescriptorDischarge, Value: encoding.List{[]byte("nope")}}}, nil)
	if r, ok := st.(*frames.Rejected); err != nil || !ok || r.Error == nil || r.Error.Condition != frames.CondTransactionUnknownID {
		t.Fatalf("unknown discharge: %#v %v", st, err)
	}
}

// TestOwnAttachGivenUp: NewSender's ctx ends before the peer answers; when the answer comes the
// client detaches, and the server's link ends.
func TestOwnAttachGivenUp(t *testing.T) {
	accepted := make(chan *Receiver, 1)
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		time.Sleep(300 * time.Millisecond)
		rcv, err := req.AcceptReceiver(nil)
		if err == nil {
			accepted <- rcv
		}
		return err
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h})
	sess := ownSession(t, dialOwn(t, url, nil))
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sess.NewSender(short, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	rcv := <-accepted
	select {
	case <-rcv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server link still attached after the client gave up")
	}
	ctx := ctxT(t, 5*time.Second)
	if _, err := sess.NewSender(ctx, "slow-2", nil); err != nil {
		t.Fatal(err)
	}
}
