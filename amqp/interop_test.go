package amqp

// Interop with real peers launched by internal/peer: Qpid Proton (Python client and broker, C
// examples), rhea (client and server) and RabbitMQ. Missing peers skip (fail under CI=true).

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/internal/peer"
)

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// runPeer runs a JSON-event client and returns its summary, failing on an error exit.
func runPeer(t *testing.T, run func(testing.TB, ...string) ([]map[string]any, error), args ...string) map[string]any {
	t.Helper()
	events, err := run(t, args...)
	sum := peer.Summary(events)
	if err != nil || sum == nil || sum["ok"] != true {
		t.Fatalf("peer %v: %v\nsummary: %v\nevents: %v", args, err, sum, events)
	}
	return sum
}

func wantBodies(t *testing.T, sum map[string]any, prefix string, n int) {
	t.Helper()
	bodies, _ := sum["bodies"].([]any)
	if len(bodies) != n {
		t.Fatalf("received %d bodies, want %d: %v", len(bodies), n, bodies)
	}
	for i, b := range bodies {
		if want := fmt.Sprintf("%s%d", prefix, i); b != want {
			t.Fatalf("body %d = %v, want %q", i, b, want)
		}
	}
}

func outcomes(sum map[string]any) map[string]int {
	out := map[string]int{}
	m, _ := sum["outcomes"].(map[string]any)
	for k, v := range m {
		out[k] = num(v)
	}
	return out
}

// checkSend checks a send summary: n sent, the pre-settled ones without outcome, the others
// accepted.
func checkSend(t *testing.T, sum map[string]any, n int, mode string) {
	t.Helper()
	if num(sum["sent"]) != n {
		t.Fatalf("sent %v, want %d", sum["sent"], n)
	}
	presettled := map[string]int{"settled": n, "unsettled": 0, "mixed": n / 2}[mode]
	if got := num(sum["settled_sent"]); got != presettled {
		t.Fatalf("settled_sent %d, want %d", got, presettled)
	}
	if got := outcomes(sum)["accepted"]; got != n-presettled {
		t.Fatalf("accepted %d, want %d (outcomes %v)", got, n-presettled, sum["outcomes"])
	}
}

var sndModes = []string{"settled", "unsettled", "mixed"}
var rcvModes = []string{"first", "second"}

func peerServer(t *testing.T) (string, string) {
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) {
		if r.Username == "user" && r.Password == "pass" {
			return "user", nil
		}
		return "", errors.New("bad credentials")
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, AnonymousRelay: true, Authenticator: auth, PlainWithoutTLS: true, MaxMessageSize: 8 << 20})
	return url, strings.TrimPrefix(url, "amqp://")
}

// TestInteropProtonPythonClient: Proton's Python client against our server, every settle mode
// pair both ways, SASL PLAIN, no SASL, request-reply (dynamic source + anonymous relay), drain,
// heartbeats, a large message.
func TestInteropProtonPythonClient(t *testing.T) {
	peer.ProtonPython(t)
	url, _ := peerServer(t)
	for _, sm := range sndModes {
		for _, rm := range rcvModes {
			t.Run(sm+"/"+rm, func(t *testing.T) {
				addr := "py-" + sm + "-" + rm
				sum := runPeer(t, peer.RunProtonClient, "send", "--url", url, "--address", addr, "--count", "10",
					"--snd-settle-mode", sm, "--rcv-settle-mode", rm)
				checkSend(t, sum, 10, sm)
				sum = runPeer(t, peer.RunProtonClient, "receive", "--url", url, "--address", addr, "--count", "10",
					"--snd-settle-mode", sm, "--rcv-settle-mode", rm)
				wantBodies(t, sum, "message-", 10)
			})
		}
	}
	t.Run("sasl-plain", func(t *testing.T) {
		sum := runPeer(t, peer.RunProtonClient, "send", "--url", "amqp://user:pass@"+strings.TrimPrefix(url, "amqp://"), "--address", "sink-py", "--count", "3", "--mechs", "PLAIN")
		checkSend(t, sum, 3, "unsettled")
		events, err := peer.RunProtonClient(t, "send", "--url", "amqp://user:wrong@"+strings.TrimPrefix(url, "amqp://"), "--address", "sink-py", "--count", "1", "--mechs", "PLAIN", "--timeout", "5")
		if err == nil {
			t.Fatalf("bad password accepted: %v", events)
		}
	})
	t.Run("no-sasl", func(t *testing.T) {
		sum := runPeer(t, peer.RunProtonClient, "send", "--url", url, "--address", "sink-py", "--count", "3", "--no-sasl")
		checkSend(t, sum, 3, "unsettled")
	})
	t.Run("request-reply", func(t *testing.T) {
		srv := peer.StartProtonClient(t, "serve", "--url", url, "--address", "svc-py", "--count", "3")
		waitEvent(t, srv, "attached")
		sum := runPeer(t, peer.RunProtonClient, "request", "--url", url, "--address", "svc-py", "--count", "3")
		if num(sum["received"]) != 3 {
			t.Fatalf("replies %v", sum)
		}
	})
	t.Run("drain", func(t *testing.T) {
		runPeer(t, peer.RunProtonClient, "send", "--url", url, "--address", "py-drain", "--count", "3")
		events, err := peer.RunProtonClient(t, "receive", "--url", url, "--address", "py-drain", "--count", "0", "--drain", "--credit", "20")
		if err != nil || len(peer.Filter(events, "drained")) != 1 {
			t.Fatalf("drain: %v %v", err, events)
		}
		wantBodies(t, peer.Summary(events), "message-", 3)
	})
	t.Run("heartbeats", func(t *testing.T) {
		// Both directions: the client asks for heartbeats every 0.5 s idle-time-out, and our server
		// drops a peer silent for 1 s; the connection idles 2.5 s and must end cleanly.
		_, hb, _ := startServer(t, ServerOptions{AllowAnonymous: true, IdleTimeout: time.Second})
		sum := runPeer(t, peer.RunProtonClient, "receive", "--url", hb, "--address", "py-idle", "--count", "0", "--idle-exit", "2.5", "--idle-timeout", "0.5")
		if num(sum["received"]) != 0 {
			t.Fatalf("summary %v", sum)
		}
	})
	t.Run("large", func(t *testing.T) {
		runPeer(t, peer.RunProtonClient, "send", "--url", url, "--address", "py-large", "--count", "2", "--size", "3000000", "--max-frame-size", "16384")
		sum := runPeer(t, peer.RunProtonClient, "receive", "--url", url, "--address", "py-large", "--count", "2")
		bodies, _ := sum["bodies"].([]any)
		if len(bodies) != 2 || len(bodies[0].(string)) != 3000000 {
			t.Fatalf("large bodies: %d", len(bodies))
		}
	})
}

func waitEvent(t *testing.T, p *peer.Proc, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(peer.Filter(p.Events(), name)) > 0 {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("%s exited before %q: %s", p.Name, name, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no %q event: %s", p.Name, name, p.Output())
}

// TestInteropRheaClient: rhea's client against our server.
func TestInteropRheaClient(t *testing.T) {
	peer.NodeModules(t, "rhea")
	url, _ := peerServer(t)
	for _, sm := range sndModes {
		for _, rm := range rcvModes {
			t.Run(sm+"/"+rm, func(t *testing.T) {
				addr := "rhea-" + sm + "-" + rm
				sum := runPeer(t, peer.RunRheaClient, "send", "--url", url, "--address", addr, "--count", "10",
					"--snd-settle-mode", sm, "--rcv-settle-mode", rm)
				checkSend(t, sum, 10, sm)
				sum = runPeer(t, peer.RunRheaClient, "receive", "--url", url, "--address", addr, "--count", "10",
					"--snd-settle-mode", sm, "--rcv-settle-mode", rm)
				wantBodies(t, sum, "message-", 10)
			})
		}
	}
	t.Run("sasl-plain", func(t *testing.T) {
		sum := runPeer(t, peer.RunRheaClient, "send", "--url", url, "--address", "sink-rhea", "--count", "3", "--user", "user", "--password", "pass")
		checkSend(t, sum, 3, "unsettled")
		if _, err := peer.RunRheaClient(t, "send", "--url", url, "--address", "sink-rhea", "--count", "1", "--user", "user", "--password", "bad", "--timeout", "5"); err == nil {
			t.Fatal("bad password accepted")
		}
	})
	t.Run("no-sasl", func(t *testing.T) {
		sum := runPeer(t, peer.RunRheaClient, "send", "--url", url, "--address", "sink-rhea", "--count", "3", "--no-sasl")
		checkSend(t, sum, 3, "unsettled")
	})
	t.Run("heartbeats", func(t *testing.T) {
		_, hb, _ := startServer(t, ServerOptions{AllowAnonymous: true, IdleTimeout: time.Second})
		sum := runPeer(t, peer.RunRheaClient, "receive", "--url", hb, "--address", "rhea-idle", "--count", "0", "--idle-exit", "2.5", "--idle-timeout", "0.5")
		if num(sum["received"]) != 0 {
			t.Fatalf("summary %v", sum)
		}
	})
	t.Run("drain", func(t *testing.T) {
		runPeer(t, peer.RunRheaClient, "send", "--url", url, "--address", "rhea-drain", "--count", "2")
		events, err := peer.RunRheaClient(t, "receive", "--url", url, "--address", "rhea-drain", "--count", "0", "--drain", "--credit", "10")
		if err != nil || len(peer.Filter(events, "drained")) != 1 {
			t.Fatalf("drain: %v %v", err, events)
		}
		wantBodies(t, peer.Summary(events), "message-", 2)
	})
	t.Run("large", func(t *testing.T) {
		// Node's process.exit truncates stdout beyond a pipe's buffer, so the body stays small
		// enough to be printed; a 1 KiB max-frame-size still splits it into 30 transfers.
		runPeer(t, peer.RunRheaClient, "send", "--url", url, "--address", "rhea-large", "--count", "1", "--size", "30000")
		sum := runPeer(t, peer.RunRheaClient, "receive", "--url", url, "--address", "rhea-large", "--count", "1", "--max-frame-size", "1024")
		bodies, _ := sum["bodies"].([]any)
		if len(bodies) != 1 || len(bodies[0].(string)) != 30000 {
			t.Fatalf("summary %v", sum)
		}
	})
}

// TestInteropProtonC: the Proton C examples (no SASL, pipelined frames) against our server,
// including send-abort (aborted multi-frame deliveries must never reach the node).
func TestInteropProtonC(t *testing.T) {
	url, hostport := peerServer(t)
	_ = url
	host, port, _ := strings.Cut(hostport, ":")
	out, err := peer.RunProtonC(t, "send", host, port, "c-q", "20")
	if err != nil || !strings.Contains(out, "20 messages sent and acknowledged") {
		t.Fatalf("send: %v\n%s", err, out)
	}
	out, err = peer.RunProtonC(t, "receive", host, port, "c-q", "20")
	if err != nil || !strings.Contains(out, "20 messages received") || !strings.Contains(out, `{"sequence"=20}`) {
		t.Fatalf("receive: %v\n%s", err, out)
	}
	out, err = peer.RunProtonC(t, "send-abort", host, port, "c-abort", "5")
	if err != nil || !strings.Contains(out, "5 messages started and aborted") {
		t.Fatalf("send-abort: %v\n%s", err, out)
	}
	// Nothing of the aborted deliveries is queued: a receive of one message finds only this one.
	if out, err := peer.RunProtonC(t, "send", host, port, "c-abort", "1"); err != nil {
		t.Fatalf("send after abort: %v\n%s", err, out)
	}
	out, err = peer.RunProtonC(t, "receive", host, port, "c-abort", "1")
	if err != nil || !strings.Contains(out, `{"sequence"=1}`) {
		t.Fatalf("receive after abort: %v\n%s", err, out)
	}
}

// clientRoundTrip runs our client against a broker at url: settle-mode pairs through the queue
// named addr(suffix) — unsettled/first, then with modes ≥ 1 settled/first and mixed/first, with
// modes ≥ 2 unsettled/second — then a dynamic receiver with an anonymous-relay sender when relay.
func clientRoundTrip(t *testing.T, url string, opts *ConnOptions, addr func(string) string, modes int, relay bool) {
	c := dialOwn(t, url, opts)
	sess := ownSession(t, c)
	ctx := ctxT(t, 60*time.Second)
	type pair struct {
		s frames.SenderSettleMode
		r frames.ReceiverSettleMode
	}
	pairs := []pair{{frames.SenderSettleModeUnsettled, frames.ReceiverSettleModeFirst}}
	if modes >= 1 {
		pairs = append(pairs, pair{frames.SenderSettleModeSettled, frames.ReceiverSettleModeFirst}, pair{frames.SenderSettleModeMixed, frames.ReceiverSettleModeFirst})
	}
	if modes >= 2 {
		pairs = append(pairs, pair{frames.SenderSettleModeUnsettled, frames.ReceiverSettleModeSecond})
	}
	for _, p := range pairs {
		name := addr(fmt.Sprintf("own-%d-%d", p.s, p.r))
		snd, err := sess.NewSender(ctx, name, &SenderOptions{SndSettleMode: &p.s, RcvSettleMode: &p.r})
		if err != nil {
			t.Fatalf("%s: NewSender: %v", name, err)
		}
		rcv, err := sess.NewReceiver(ctx, name, &ReceiverOptions{Credit: 10, SndSettleMode: &p.s, RcvSettleMode: &p.r})
		if err != nil {
			t.Fatalf("%s: NewReceiver: %v", name, err)
		}
		for i := range 10 {
			st, err := snd.Send(ctx, dataMsg(fmt.Sprint(i)), &SendOptions{Settled: i%2 == 1})
			if err != nil {
				t.Fatalf("%s: Send %d: %v", name, i, err)
			}
			if st != nil {
				if _, ok := st.(*frames.Accepted); !ok {
					t.Fatalf("%s: Send %d: outcome %T", name, i, st)
				}
			}
		}
		for i := range 10 {
			d, err := rcv.Receive(ctx)
			if err != nil {
				t.Fatalf("%s: Receive %d: %v", name, i, err)
			}
			if got := body(t, d); got != fmt.Sprint(i) {
				t.Fatalf("%s: message %d = %q", name, i, got)
			}
			if err := d.Accept(ctx); err != nil {
				t.Fatalf("%s: Accept %d: %v", name, i, err)
			}
		}
		_ = snd.Close(ctx)
		_ = rcv.Close(ctx)
	}
	if relay {
		rcv, err := sess.NewReceiver(ctx, "", &ReceiverOptions{DynamicSource: true})
		if err != nil {
			t.Fatalf("dynamic receiver: %v", err)
		}
		if rcv.Address() == "" {
			t.Fatal("no dynamic address")
		}
		snd, err := sess.NewSender(ctx, "", nil)
		if err != nil {
			t.Fatalf("anonymous relay sender: %v", err)
		}
		if _, err := snd.Send(ctx, &frames.Message{Properties: &frames.MessageProperties{To: frames.Some(rcv.Address())}, Data: [][]byte{[]byte("relayed")}}, nil); err != nil {
			t.Fatalf("relay send: %v", err)
		}
		d, err := rcv.Receive(ctx)
		if err != nil || body(t, d) != "relayed" {
			t.Fatalf("relay receive: %v", err)
		}
		_ = d.Accept(ctx)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestInteropClientToProtonPythonBroker(t *testing.T) {
	b := peer.StartProtonBroker(t)
	clientRoundTrip(t, "amqp://"+b.Addr, &ConnOptions{SASL: SASLAnonymous()}, func(s string) string { return s }, 2, true)
}

// The Proton C example broker has no dynamic nodes and no anonymous relay.
func TestInteropClientToProtonCBroker(t *testing.T) {
	b := peer.StartProtonCBroker(t)
	clientRoundTrip(t, "amqp://"+b.Addr, nil, func(s string) string { return s }, 2, false)
}

// The rhea test server drops the connection on a sender link with a null target (no anonymous
// relay), so only the settle modes run here.
func TestInteropClientToRheaServer(t *testing.T) {
	b := peer.StartRheaServer(t)
	clientRoundTrip(t, "amqp://"+b.Addr, &ConnOptions{SASL: SASLAnonymous()}, func(s string) string { return s }, 2, false)
}

// RabbitMQ 3.10's AMQP 1.0 plugin: /queue/NAME addresses; it ends the session with
// amqp:not-implemented for rcv-settle-mode second, and has no dynamic nodes.
func TestInteropClientToRabbitMQ(t *testing.T) {
	b := peer.SharedRabbitMQ(t)
	q := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	clientRoundTrip(t, "amqp://guest:guest@"+b.Addr, nil, func(s string) string { return "/queue/" + q + "-" + s }, 1, false)
}

// TestInteropRabbitMQRefusesSecond: RabbitMQ 3.10 ends the session when asked for
// rcv-settle-mode second; the error must reach the caller with the peer's condition, scoped.
func TestInteropRabbitMQRefusesSecond(t *testing.T) {
	b := peer.SharedRabbitMQ(t)
	c := dialOwn(t, "amqp://guest:guest@"+b.Addr, nil)
	sess := ownSession(t, c)
	ctx := ctxT(t, 20*time.Second)
	second := frames.ReceiverSettleModeSecond
	_, err := sess.NewSender(ctx, "/queue/"+strings.ToLower(t.Name()), &SenderOptions{RcvSettleMode: &second})
	var se *SessionError
	var ae *Error
	if !errors.As(err, &se) || !errors.As(err, &ae) || ae.Condition != frames.CondNotImplemented {
		t.Fatalf("err = %v, want a session ended with amqp:not-implemented", err)
	}
	// The connection survives: a new session works.
	s2 := ownSession(t, c)
	snd, err := s2.NewSender(ctx, "/queue/"+strings.ToLower(t.Name()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snd.Send(ctx, dataMsg("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestInteropProtonTxSend: Proton's tx_send.py example declares transactions on a coordinator
// link, sends in batches with transactional-state and commits; the test node's coordinator
// enqueues the committed messages.
func TestInteropProtonTxSend(t *testing.T) {
	py := peer.ProtonPython(t)
	_, hostport := peerServer(t)
	script := "/usr/share/proton/examples/python/tx_send.py"
	p := peer.Start(t, "proton tx_send.py", exec.Command(py, script, "-a", hostport+"/tx-q", "-m", "20", "-b", "5"))
	if err := p.Wait(30 * time.Second); err != nil || !strings.Contains(p.Stdout(), "all messages committed") {
		t.Fatalf("tx_send: %v\n%s", err, p.Output())
	}
	sum := runPeer(t, peer.RunProtonClient, "receive", "--url", "amqp://"+hostport, "--address", "tx-q", "--count", "20")
	bodies, _ := sum["bodies"].([]any)
	if len(bodies) != 20 {
		t.Fatalf("received %d committed messages, want 20", len(bodies))
	}
}
