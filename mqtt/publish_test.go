package mqtt

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestPublishMessage: what the gateway publishes reaches an MQTT 5
// subscriber with its properties, is retained when asked, and is refused
// when a subscriber is required and none exists.
func TestPublishMessage(t *testing.T) {
	b, err := New(Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.Serve(ln, TransportTCP)

	if err := b.PublishMessage(&Publish{Topic: "cmd/none", QoS: 1}, PublishOptions{RequireSubscriber: true}); err != ErrNoSubscriber {
		t.Fatalf("no subscriber: %v, want ErrNoSubscriber", err)
	}
	got := make(chan *paho.Publish, 2)
	conn, _ := net.Dial("tcp", ln.Addr().String())
	c := paho.NewClient(paho.ClientConfig{ClientID: "s", Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) { got <- p.Packet; return true, nil }}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "s", KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "cmd/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if !b.HasSubscribers("cmd/x") || b.HasSubscribers("other") {
		t.Fatal("HasSubscribers is wrong")
	}
	exp, pf := uint32(30), byte(1)
	err = b.PublishMessage(&Publish{Topic: "cmd/x", QoS: 1, Retain: true, Payload: []byte("go"), ContentType: "text/plain",
		ResponseTopic: "r/1", CorrelationData: []byte{9}, MessageExpiry: &exp, PayloadFormat: &pf,
		UserProperties: []UserProperty{{"k", "v"}}}, PublishOptions{RequireSubscriber: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		pr := p.Properties
		if p.Topic != "cmd/x" || string(p.Payload) != "go" || p.QoS != 1 || pr.ContentType != "text/plain" || pr.ResponseTopic != "r/1" ||
			len(pr.CorrelationData) != 1 || pr.User.Get("k") != "v" || pr.MessageExpiry == nil || pr.PayloadFormat == nil || *pr.PayloadFormat != 1 {
			t.Fatalf("got %+v %+v", p, pr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
	r := b.Retained("cmd/+")
	if len(r) != 1 || r[0].Topic != "cmd/x" || string(r[0].Payload) != "go" || !r[0].Retain || r[0].ContentType != "text/plain" {
		t.Fatalf("retained: %+v", r)
	}
}
