package amqp

// Interop with github.com/Azure/go-amqp as the client of our server: a real, independent AMQP 1.0
// implementation.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

func dialGo(t testing.TB, url string, opts *goamqp.ConnOptions) *goamqp.Conn {
	t.Helper()
	c, err := goamqp.Dial(ctxT(t, 10*time.Second), url, opts)
	if err != nil {
		t.Fatalf("go-amqp Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func goSession(t testing.TB, c *goamqp.Conn) *goamqp.Session {
	t.Helper()
	s, err := c.NewSession(ctxT(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("go-amqp NewSession: %v", err)
	}
	return s
}

// TestGoAMQPSettleModes sends through the test node and receives back with every combination of
// sender settle mode (settled, unsettled, mixed) and receiver settle mode (first, second), on both
// hops: go-amqp → server (server receives) and server → go-amqp (server sends).
func TestGoAMQPSettleModes(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	conn := dialGo(t, url, nil)
	sess := goSession(t, conn)
	snds := []goamqp.SenderSettleMode{goamqp.SenderSettleModeSettled, goamqp.SenderSettleModeUnsettled, goamqp.SenderSettleModeMixed}
	rcvs := []goamqp.ReceiverSettleMode{goamqp.ReceiverSettleModeFirst, goamqp.ReceiverSettleModeSecond}
	for _, sm := range snds {
		for _, rm := range rcvs {
			t.Run(fmt.Sprintf("snd=%d/rcv=%d", sm, rm), func(t *testing.T) {
				ctx := ctxT(t, 20*time.Second)
				addr := fmt.Sprintf("q-settle-%d-%d", sm, rm)
				snd, err := sess.NewSender(ctx, addr, &goamqp.SenderOptions{SettlementMode: sm.Ptr(), RequestedReceiverSettleMode: rm.Ptr()})
				if err != nil {
					t.Fatalf("NewSender: %v", err)
				}
				const n = 20
				for i := range n {
					msg := goamqp.NewMessage([]byte(fmt.Sprintf("%s-%d", addr, i)))
					if err := snd.Send(ctx, msg, nil); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
				}
				rcv, err := sess.NewReceiver(ctx, addr, &goamqp.ReceiverOptions{Credit: 5, RequestedSenderSettleMode: sm.Ptr(), SettlementMode: rm.Ptr()})
				if err != nil {
					t.Fatalf("NewReceiver: %v", err)
				}
				for i := range n {
					m, err := rcv.Receive(ctx, nil)
					if err != nil {
						t.Fatalf("Receive %d: %v", i, err)
					}
					if want := fmt.Sprintf("%s-%d", addr, i); string(m.GetData()) != want {
						t.Fatalf("message %d = %q, want %q", i, m.GetData(), want)
					}
					if err := rcv.AcceptMessage(ctx, m); err != nil {
						t.Fatalf("AcceptMessage %d: %v", i, err)
					}
				}
				if err := snd.Close(ctx); err != nil {
					t.Errorf("sender Close: %v", err)
				}
				if err := rcv.Close(ctx); err != nil {
					t.Errorf("receiver Close: %v", err)
				}
			})
		}
	}
}

// TestGoAMQPOutcomes checks that every terminal outcome the server chooses reaches the go-amqp
// sender: accepted, rejected (with the condition), released, modified.
func TestGoAMQPOutcomes(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := goSession(t, dialGo(t, url, nil))
	ctx := ctxT(t, 20*time.Second)
	for _, tc := range []struct {
		addr  string
		check func(st goamqp.DeliveryState) bool
	}{
		{"sink-1", func(st goamqp.DeliveryState) bool { _, ok := st.(*goamqp.StateAccepted); return ok }},
		{"reject-1", func(st goamqp.DeliveryState) bool {
			r, ok := st.(*goamqp.StateRejected)
			return ok && r.Error != nil && r.Error.Condition == goamqp.ErrCond(frames.CondPreconditionFailed)
		}},
		{"release-1", func(st goamqp.DeliveryState) bool { _, ok := st.(*goamqp.StateReleased); return ok }},
		{"modify-1", func(st goamqp.DeliveryState) bool {
			m, ok := st.(*goamqp.StateModified)
			return ok && m.DeliveryFailed && m.UndeliverableHere
		}},
	} {
		snd, err := sess.NewSender(ctx, tc.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := snd.SendWithReceipt(ctx, goamqp.NewMessage([]byte("x")), nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := rc.Wait(ctx)
		if err != nil {
			t.Fatalf("%s: Wait: %v", tc.addr, err)
		}
		if !tc.check(st) {
			t.Errorf("%s: outcome %#v", tc.addr, st)
		}
	}
}

// TestGoAMQPLargeMessage sends a 5 MB message through the server both ways: multi-frame in both
// directions, split by each side's max-frame-size, reassembled.
func TestGoAMQPLargeMessage(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, MaxMessageSize: 8 << 20})
	sess := goSession(t, dialGo(t, url, &goamqp.ConnOptions{MaxFrameSize: 16384}))
	ctx := ctxT(t, 60*time.Second)
	big := make([]byte, 5_000_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	snd, err := sess.NewSender(ctx, "q-big", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, goamqp.NewMessage(big), nil); err != nil {
		t.Fatalf("Send: %v", err)
	}
	rcv, err := sess.NewReceiver(ctx, "q-big", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if !bytes.Equal(m.GetData(), big) {
		t.Fatalf("received %d bytes, not the %d sent", len(m.GetData()), len(big))
	}
	if err := rcv.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// TestGoAMQPManySessionsAndLinks opens 10 sessions with 10 sender and 10 receiver links each
// (200 links, 100 per role) and moves one message over each pair concurrently.
func TestGoAMQPManySessionsAndLinks(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	conn := dialGo(t, url, nil)
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for s := range 10 {
		sess := goSession(t, conn)
		for l := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				addr := fmt.Sprintf("q-many-%d-%d", s, l)
				snd, err := sess.NewSender(ctx, addr, nil)
				if err != nil {
					errs <- err
					return
				}
				rcv, err := sess.NewReceiver(ctx, addr, nil)
				if err != nil {
					errs <- err
					return
				}
				if err := snd.Send(ctx, goamqp.NewMessage([]byte(addr)), nil); err != nil {
					errs <- err
					return
				}
				m, err := rcv.Receive(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				if string(m.GetData()) != addr {
					errs <- fmt.Errorf("got %q on %s", m.GetData(), addr)
				}
				if err := rcv.AcceptMessage(ctx, m); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := node.attaches.Load(); got != 200 {
		t.Errorf("node saw %d attaches, want 200", got)
	}
}

// TestGoAMQPDrain: go-amqp receiver with manual credit drains a sender of ours with an empty
// queue; the server must answer the drain by using up the credit (go-amqp's DrainCredit waits for
// that flow).
func TestGoAMQPDrain(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	sess := goSession(t, dialGo(t, url, nil))
	ctx := ctxT(t, 20*time.Second)
	q := node.queue("q-drain")
	q.ch <- []byte("\x00\x53\x75\xa0\x03one")
	q.ch <- []byte("\x00\x53\x75\xa0\x03two")
	rcv, err := sess.NewReceiver(ctx, "q-drain", &goamqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.IssueCredit(10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		m, err := rcv.Receive(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.GetData()) != want {
			t.Fatalf("got %q, want %q", m.GetData(), want)
		}
		_ = rcv.AcceptMessage(ctx, m)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rcv.DrainCredit(dctx, nil); err != nil {
		t.Fatalf("DrainCredit: %v", err)
	}
	// After the drain the sender has no credit: a new message stays queued.
	q.ch <- []byte("\x00\x53\x75\xa0\x05three")
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if m, err := rcv.Receive(sctx, nil); err == nil {
		t.Fatalf("received %q without credit after drain", m.GetData())
	}
	if err := rcv.IssueCredit(1); err != nil {
		t.Fatal(err)
	}
	m, err := rcv.Receive(ctx, nil)
	if err != nil || string(m.GetData()) != "three" {
		t.Fatalf("after new credit: %v %q", err, m.GetData())
	}
}

// TestGoAMQPHeartbeats: with short idle timeouts on both sides the connection stays up while idle
// (both sides send empty frames), and a message still passes afterwards.
func TestGoAMQPHeartbeats(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, IdleTimeout: 400 * time.Millisecond})
	conn := dialGo(t, url, &goamqp.ConnOptions{IdleTimeout: 400 * time.Millisecond})
	sess := goSession(t, conn)
	time.Sleep(1500 * time.Millisecond)
	ctx := ctxT(t, 10*time.Second)
	snd, err := sess.NewSender(ctx, "sink-hb", nil)
	if err != nil {
		t.Fatalf("after idling: NewSender: %v", err)
	}
	if err := snd.Send(ctx, goamqp.NewMessage([]byte("still here")), nil); err != nil {
		t.Fatalf("after idling: Send: %v", err)
	}
}

// TestGoAMQPSASL: PLAIN with good and bad passwords, and the plain AMQP header refused when
// anonymous access is not allowed.
func TestGoAMQPSASL(t *testing.T) {
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) {
		if r.Username == "dev" && r.Password == "secret" {
			return "device-1", nil
		}
		return "", errors.New("bad credentials")
	})
	var mu sync.Mutex
	var identities []Identity
	_, url, _ := startServer(t, ServerOptions{Authenticator: auth, PlainWithoutTLS: true, OnConnOpen: func(c *Conn) error {
		mu.Lock()
		identities = append(identities, c.Identity())
		mu.Unlock()
		return nil
	}})
	ctx := ctxT(t, 10*time.Second)

	c, err := goamqp.Dial(ctx, url, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("dev", "secret")})
	if err != nil {
		t.Fatalf("good password: %v", err)
	}
	sess, err := c.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, "sink-sasl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, goamqp.NewMessage([]byte("hi")), nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	mu.Lock()
	if len(identities) != 1 || identities[0].Name != "device-1" || identities[0].Mechanism != "PLAIN" {
		t.Errorf("identities = %+v", identities)
	}
	mu.Unlock()

	if c, err := goamqp.Dial(ctx, url, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("dev", "wrong")}); err == nil {
		_ = c.Close()
		t.Fatal("bad password accepted")
	} else if !strings.Contains(err.Error(), "code 1") && !strings.Contains(strings.ToLower(err.Error()), "auth") {
		t.Logf("bad password error: %v", err)
	}
	if c, err := goamqp.Dial(ctx, url, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()}); err == nil {
		_ = c.Close()
		t.Fatal("SASL ANONYMOUS accepted without AllowAnonymous")
	}
	if c, err := goamqp.Dial(ctx, url, nil); err == nil {
		_ = c.Close()
		t.Fatal("plain AMQP header accepted without AllowAnonymous")
	}
}
