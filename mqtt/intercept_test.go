package mqtt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// holder is an Interceptor that keeps every publish until the test decides.
type holder struct {
	mu   sync.Mutex
	seen []*Publish
	wait []func(Decision)
	got  chan struct{}
}

func newHolder() *holder { return &holder{got: make(chan struct{}, 100)} }

func (h *holder) Intercept(p *Publish, settle func(Decision)) {
	h.mu.Lock()
	h.seen = append(h.seen, p)
	h.wait = append(h.wait, settle)
	h.mu.Unlock()
	h.got <- struct{}{}
}

func (h *holder) Active() bool { return true }

func (h *holder) next(t *testing.T) int {
	t.Helper()
	select {
	case <-h.got:
	case <-time.After(5 * time.Second):
		t.Fatal("interceptor saw nothing in 5s")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen) - 1
}

func (h *holder) settle(i int, d Decision) {
	h.mu.Lock()
	f := h.wait[i]
	h.mu.Unlock()
	f(d)
}

func startIntercepted(t *testing.T, ic Interceptor) string {
	t.Helper()
	b, err := New(Options{ConnectTimeout: 5 * time.Second, Interceptor: ic})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln, TransportTCP)
	t.Cleanup(func() { b.Close() })
	return ln.Addr().String()
}

func pahoClient(t *testing.T, addr, id string) pahov3.Client {
	t.Helper()
	c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// TestInterceptedAckOrder: QoS 1 and 2 publishes are acknowledged only once
// settled, in the order sent even when settled out of order, and reach MQTT
// subscribers only then.
func TestInterceptedAckOrder(t *testing.T) {
	h := newHolder()
	addr := startIntercepted(t, h)
	got := make(chan pahov3.Message, 10)
	sub := pahoClient(t, addr, "sub")
	if tok := sub.Subscribe("t/#", 2, func(_ pahov3.Client, m pahov3.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := pahoClient(t, addr, "pub")
	first := pub.Publish("t/1", 1, false, "one")
	i1 := h.next(t)
	second := pub.Publish("t/2", 2, false, "two")
	i2 := h.next(t)
	if p := h.seen[i1]; p.Topic != "t/1" || string(p.Payload) != "one" || p.QoS != 1 || p.ClientID != "pub" {
		t.Fatalf("intercepted %+v", p)
	}
	if first.WaitTimeout(200 * time.Millisecond) {
		t.Fatal("PUBACK sent before the publish was settled")
	}
	h.settle(i2, Decision{})
	if first.WaitTimeout(200*time.Millisecond) || second.WaitTimeout(10*time.Millisecond) {
		t.Fatal("the second message was acknowledged before the first [MQTT-4.6.0-2]")
	}
	select {
	case m := <-got:
		t.Fatalf("subscriber got %q before its publish was accepted", m.Topic())
	default:
	}
	h.settle(i1, Decision{})
	if !first.WaitTimeout(5*time.Second) || !second.WaitTimeout(5*time.Second) || first.Error() != nil || second.Error() != nil {
		t.Fatalf("acks after settling: %v %v", first.Error(), second.Error())
	}
	for _, want := range []string{"t/1", "t/2"} {
		select {
		case m := <-got:
			if m.Topic() != want {
				t.Fatalf("got %q, want %q", m.Topic(), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not delivered after acceptance", want)
		}
	}
}

// TestInterceptedReject: a refusal reaches an MQTT 5 client as a PUBACK
// reason code and the message goes nowhere; an MQTT 3.1.1 client is
// disconnected without an acknowledgement.
func TestInterceptedReject(t *testing.T) {
	h := newHolder()
	addr := startIntercepted(t, h)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: "v5", Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "v5", KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	done := make(chan *paho.PublishResponse, 1)
	go func() {
		r, _ := c.Publish(ctx, &paho.Publish{Topic: "full/queue", QoS: 1, Payload: []byte("x")})
		done <- r
	}()
	h.settle(h.next(t), Decision{Reason: 0x97, ReasonString: "queue full"})
	r := <-done
	if r == nil || r.ReasonCode != 0x97 {
		t.Fatalf("PUBACK %+v, want reason 0x97", r)
	}

	v3 := pahoClient(t, addr, "v3")
	tok := v3.Publish("full/queue", 1, false, "x")
	h.settle(h.next(t), Decision{Reason: 0x80})
	deadline := time.Now().Add(5 * time.Second)
	for v3.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v3.IsConnectionOpen() || (tok.WaitTimeout(100*time.Millisecond) && tok.Error() == nil) {
		t.Fatal("a refused 3.1.1 publish was acknowledged or the connection stayed open")
	}
}

// TestInterceptedDupAbsorbed: a retransmission (DUP) of a pending publish is
// not shown to the interceptor again, and the message is delivered once.
func TestInterceptedDupAbsorbed(t *testing.T) {
	h := newHolder()
	addr := startIntercepted(t, h)
	got := make(chan pahov3.Message, 4)
	sub := pahoClient(t, addr, "sub")
	sub.Subscribe("d/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }).WaitTimeout(5 * time.Second)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := "raw"
	c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, byte(len(id))}, id...))
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(r, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	publish := func(flags byte) { c.Write([]byte{0x30 | flags, 8, 0, 3, 'd', '/', 'x', 0, 7, 'p'}) }
	publish(0x02)
	i := h.next(t)
	publish(0x0A) // DUP, same packet id
	select {
	case <-h.got:
		t.Fatal("the DUP retransmission was intercepted again")
	case <-time.After(300 * time.Millisecond):
	}
	h.settle(i, Decision{})
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil || ack[0] != 0x40 || ack[3] != 7 {
		t.Fatalf("PUBACK %x %v", ack, err)
	}
	<-got
	select {
	case m := <-got:
		t.Fatalf("delivered twice: %q", m.Topic())
	case <-time.After(300 * time.Millisecond):
	}
}

// TestInterceptedQoS0: QoS 0 is shown to the interceptor and delivered at once.
func TestInterceptedQoS0(t *testing.T) {
	h := newHolder()
	addr := startIntercepted(t, h)
	got := make(chan pahov3.Message, 1)
	sub := pahoClient(t, addr, "sub")
	sub.Subscribe("z", 0, func(_ pahov3.Client, m pahov3.Message) { got <- m }).WaitTimeout(5 * time.Second)
	pub := pahoClient(t, addr, "pub")
	pub.Publish("z", 0, false, "now")
	if p := h.seen[h.next(t)]; p.QoS != 0 || string(p.Payload) != "now" {
		t.Fatalf("intercepted %+v", p)
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "now" {
			t.Fatal(fmt.Sprint(m.Payload()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("QoS 0 not delivered")
	}
}

// TestInterceptedAckOrderConcurrent: decisions that arrive at once, from many
// goroutines and in any order, still release the PUBACKs in the order the
// publishes came [MQTT-4.6.0-2].
func TestInterceptedAckOrderConcurrent(t *testing.T) {
	h := &holder{got: make(chan struct{}, 1000)}
	addr := startIntercepted(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	id := "order"
	c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, byte(len(id))}, id...))
	r := bufio.NewReader(c)
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x %v", ack, err)
	}
	const n = 200
	for i := 1; i <= n; i++ {
		topic := fmt.Sprintf("o/%d", i)
		// PUBLISH QoS 1: topic, packet id, payload "x".
		c.Write(append(append([]byte{0x32, byte(2 + len(topic) + 2 + 1), 0, byte(len(topic))}, topic...), byte(i>>8), byte(i), 'x'))
	}
	for range n {
		h.next(t)
	}
	// Settle from n goroutines released together, so decisions race.
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h.settle(n-1-i, Decision{})
		}()
	}
	close(start)
	wg.Wait()
	for want := 1; want <= n; want++ {
		if _, err := io.ReadFull(r, ack); err != nil {
			t.Fatalf("PUBACK %d: %v", want, err)
		}
		if got := int(ack[2])<<8 | int(ack[3]); ack[0] != 0x40 || got != want {
			t.Fatalf("PUBACK %d of %d: % x (packet id %d), want packet id %d", want, n, ack, got, want)
		}
	}
}
