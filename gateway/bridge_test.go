package gateway

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// bridgeYAML turns on the AMQP listener and local mode's transparent routes.
const bridgeYAML = `
amqp:
  listen: 127.0.0.1:0
routes:
  - name: default-mqtt-to-amqp
    from: {mqtt: "#"}
    to: {amqp: "{topic}"}
  - name: default-amqp-to-mqtt
    from: {amqp: "#", queues: false}
    to: {mqtt: "{address}"}
`

// TestBridgeMQTTToAMQP: an MQTT 5 QoS 1 publish reaches an AMQP receiver on
// a matching filter with its properties mapped (SPEC §5.5); the PUBACK waits
// for the AMQP accept, and MQTT subscribers get the message after it.
func TestBridgeMQTTToAMQP(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	s := amqpSession(t, g.amqpAddr(t))
	r := receiver(t, s, "plant/+/temp")

	got := make(chan pahov3.Message, 1)
	watcher := v3(t, g.mqtt, "watcher", nil)
	wait(t, watcher.Subscribe("plant/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")

	pub := v5(t, g.mqtt, "sensor-1", v5Opts{})
	expiry := uint32(60)
	done := make(chan *paho.PublishResponse, 1)
	go func() {
		resp, err := pub.Publish(context.Background(), &paho.Publish{Topic: "plant/a/temp", QoS: 1, Payload: []byte("21.5"),
			Properties: &paho.PublishProperties{ContentType: "text/plain", ResponseTopic: "plant/a/reply",
				CorrelationData: []byte("c-1"), MessageExpiry: &expiry, User: paho.UserProperties{{Key: "site", Value: "north"}}}})
		if err != nil {
			t.Errorf("publish: %v", err)
		}
		done <- resp
	}()
	m := receive(t, r)
	select {
	case <-done:
		t.Fatal("PUBACK before the AMQP receiver settled")
	case <-got:
		t.Fatal("MQTT subscriber got the message before the AMQP receiver settled")
	case <-time.After(200 * time.Millisecond):
	}
	if !bytes.Equal(m.GetData(), []byte("21.5")) {
		t.Errorf("body %q", m.GetData())
	}
	p := m.Properties
	if p == nil || p.ContentType == nil || *p.ContentType != "text/plain" || p.ReplyTo == nil || *p.ReplyTo != "plant/a/reply" ||
		fmt.Sprint(p.CorrelationID) != fmt.Sprint([]byte("c-1")) || p.MessageID == nil || p.CreationTime == nil {
		t.Errorf("properties %+v", p)
	}
	if m.Header == nil || !m.Header.Durable || m.Header.TTL != 60*time.Second {
		t.Errorf("header %+v", m.Header)
	}
	if m.ApplicationProperties["site"] != "north" {
		t.Errorf("application properties %v", m.ApplicationProperties)
	}
	if m.Annotations["x-opt-mqtt-topic"] != "plant/a/temp" {
		t.Errorf("annotations %v", m.Annotations)
	}
	if err := r.AcceptMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if resp := recv(t, done, "PUBACK"); resp == nil || resp.ReasonCode != 0 {
		t.Fatalf("PUBACK %+v", resp)
	}
	if w := recv(t, got, "MQTT subscriber"); string(w.Payload()) != "21.5" {
		t.Fatalf("MQTT subscriber got %q", w.Payload())
	}
}

// TestBridgeRejectReachesDevice: an AMQP rejection with
// amqp:resource-limit-exceeded comes back to an MQTT 5 publisher as PUBACK
// 0x97, and the message goes nowhere else.
func TestBridgeRejectReachesDevice(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	r := receiver(t, amqpSession(t, g.amqpAddr(t)), "full/#")
	got := make(chan pahov3.Message, 1)
	watcher := v3(t, g.mqtt, "watcher", nil)
	wait(t, watcher.Subscribe("full/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")

	pub := v5(t, g.mqtt, "dev", v5Opts{})
	done := make(chan *paho.PublishResponse, 1)
	go func() {
		resp, _ := pub.Publish(context.Background(), &paho.Publish{Topic: "full/q", QoS: 1, Payload: []byte("x")})
		done <- resp
	}()
	m := receive(t, r)
	if err := r.RejectMessage(context.Background(), m, &goamqp.Error{Condition: goamqp.ErrCondResourceLimitExceeded, Description: "queue full"}); err != nil {
		t.Fatal(err)
	}
	resp := recv(t, done, "PUBACK")
	if resp == nil || resp.ReasonCode != 0x97 {
		t.Fatalf("PUBACK %+v, want reason 0x97", resp)
	}
	select {
	case <-got:
		t.Fatal("a rejected message reached MQTT subscribers")
	case <-time.After(300 * time.Millisecond):
	}
}

// TestBridgeAMQPToMQTT: an unsettled AMQP transfer to x/y reaches an MQTT
// subscriber on x/# and is accepted; the AMQP message's properties become
// MQTT 5 properties.
func TestBridgeAMQPToMQTT(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	dev := v5(t, g.mqtt, "device", v5Opts{})
	dev.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "x/#", QoS: 1}}})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snd := sender(t, amqpSession(t, g.amqpAddr(t)), "x/y")
	ct, replyTo := "application/json", "ops/replies"
	msg := goamqp.NewMessage([]byte(`{"cmd":"open"}`))
	msg.Properties = &goamqp.MessageProperties{ContentType: &ct, CorrelationID: []byte("k-9"), ReplyTo: &replyTo}
	msg.ApplicationProperties = map[string]any{"who": "ops"}
	msg.Header = &goamqp.MessageHeader{TTL: 90 * time.Second}
	if err := snd.Send(ctx, msg, nil); err != nil {
		t.Fatalf("send: %v", err)
	}
	p := recv(t, dev.msgs, "MQTT delivery")
	pr := p.Properties
	if p.Topic != "x/y" || string(p.Payload) != `{"cmd":"open"}` || p.QoS != 1 || pr == nil ||
		pr.ContentType != "application/json" || string(pr.CorrelationData) != "k-9" || pr.User.Get("who") != "ops" ||
		pr.ResponseTopic != "ops/replies" || pr.MessageExpiry == nil || *pr.MessageExpiry < 89 || *pr.MessageExpiry > 90 {
		t.Fatalf("MQTT got %+v %+v", p, pr)
	}
}

// TestBridgeRequireSubscriber: with require_subscriber and no MQTT client
// subscribed, the AMQP sender's message is released, not accepted.
func TestBridgeRequireSubscriber(t *testing.T) {
	g := startGateway(t, `
amqp:
  listen: 127.0.0.1:0
routes:
  - name: commands
    from: {amqp: "commands/{device}"}
    to: {mqtt: "devices/{device}/commands", qos: 1}
    require_subscriber: true
`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snd := sender(t, amqpSession(t, g.amqpAddr(t)), "commands/d1")
	rc, err := snd.SendWithReceipt(ctx, goamqp.NewMessage([]byte("reboot")), nil)
	if err != nil {
		t.Fatal(err)
	}
	state, err := rc.Wait(ctx)
	if _, ok := state.(*goamqp.StateReleased); !ok || err != nil {
		t.Fatalf("outcome %T %v, want released", state, err)
	}

	got := make(chan pahov3.Message, 1)
	dev := v3(t, g.mqtt, "d1", nil)
	wait(t, dev.Subscribe("devices/d1/commands", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	rc, _ = snd.SendWithReceipt(ctx, goamqp.NewMessage([]byte("reboot")), nil)
	if state, err := rc.Wait(ctx); err != nil {
		t.Fatal(err)
	} else if _, ok := state.(*goamqp.StateAccepted); !ok {
		t.Fatalf("outcome %T with a subscriber, want accepted", state)
	}
	if m := recv(t, got, "command"); string(m.Payload()) != "reboot" {
		t.Fatalf("got %q", m.Payload())
	}
}

// TestBridgeRetainedFirst: a new AMQP receiver gets the retained MQTT
// messages matching its filter first, annotated x-opt-retain.
func TestBridgeRetainedFirst(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	pub := v3(t, g.mqtt, "pub", nil)
	wait(t, pub.Publish("state/door", 1, true, "open"), "retained publish")
	r := receiver(t, amqpSession(t, g.amqpAddr(t)), "state/#")
	m := receive(t, r)
	if string(m.GetData()) != "open" || m.Annotations["x-opt-retain"] != true {
		t.Fatalf("retained: %q annotations %v", m.GetData(), m.Annotations)
	}
}

// TestBridgeAMQPTopicFanout: a message sent to a topic address reaches every
// AMQP receiver whose filter matches, and not the others.
func TestBridgeAMQPTopicFanout(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	s := amqpSession(t, g.amqpAddr(t))
	a, b, other := receiver(t, s, "t/#"), receiver(t, s, "t/+"), receiver(t, s, "u/#")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snd := sender(t, s, "t/1")
	done := make(chan error, 1)
	go func() { done <- snd.Send(ctx, goamqp.NewMessage([]byte("fan")), nil) }()
	for _, r := range []*goamqp.Receiver{a, b} {
		m := receive(t, r)
		if string(m.GetData()) != "fan" {
			t.Fatalf("got %q", m.GetData())
		}
		r.AcceptMessage(ctx, m)
	}
	if err := <-done; err != nil {
		t.Fatalf("send: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if m, err := other.Receive(short, nil); err == nil {
		t.Fatalf("u/# got %q", m.GetData())
	}
}

// TestBridgeUnroutableAccepted: with nobody on the AMQP side, an MQTT QoS 1
// publish is acknowledged at once (unroutable: accept).
func TestBridgeUnroutableAccepted(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	pub := v3(t, g.mqtt, "lonely", nil)
	wait(t, pub.Publish("nobody/listens", 1, false, "x"), "publish")
	if v := g.metric(t, `isthmus_messages_dropped_total{protocol="mqtt",reason="no_route"}`); v < 1 {
		t.Fatalf("unroutable = %v", v)
	}
}

// TestBridgeRefusesWildcardTarget: a sender may not target a filter.
func TestBridgeRefusesWildcardTarget(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	_, err := newSender(amqpSession(t, g.amqpAddr(t)), "a/#")
	if err == nil || !strings.Contains(err.Error(), "invalid-field") {
		t.Fatalf("attach to a/# as sender: %v, want amqp:invalid-field", err)
	}
}

// TestBridgeQueues: a route into a queue holds device messages for an AMQP
// consumer (accepted means held); a full queue refuses with 0x97 to an MQTT 5
// device; a dynamic receiver gets a temporary queue for request/reply.
func TestBridgeQueues(t *testing.T) {
	g := startGateway(t, `
amqp:
  listen: 127.0.0.1:0
queues:
  - name: telemetry
    max_messages: 2
    overflow: reject
routes:
  - name: telemetry
    from: {mqtt: "devices/+/telemetry"}
    to: {amqp: telemetry}
`)
	pub := v5(t, g.mqtt, "sensor", v5Opts{})
	publish := func(payload string) *paho.PublishResponse {
		resp, err := pub.Publish(context.Background(), &paho.Publish{Topic: "devices/s1/telemetry", QoS: 1, Payload: []byte(payload)})
		if err != nil && resp == nil {
			t.Fatalf("publish: %v", err)
		}
		return resp
	}
	for _, p := range []string{"one", "two"} {
		if r := publish(p); r.ReasonCode != 0 {
			t.Fatalf("publish %s: reason 0x%02x", p, r.ReasonCode)
		}
	}
	if r := publish("three"); r.ReasonCode != 0x97 {
		t.Fatalf("publish to a full queue: reason 0x%02x, want 0x97", r.ReasonCode)
	}
	s := amqpSession(t, g.amqpAddr(t))
	r := receiver(t, s, "telemetry")
	for _, want := range []string{"one", "two"} {
		m := receive(t, r)
		if string(m.GetData()) != want {
			t.Fatalf("queue gave %q, want %q", m.GetData(), want)
		}
		r.AcceptMessage(context.Background(), m)
	}

	// Request/reply: a dynamic receiver gets a temporary address; a sender
	// to it reaches the requester.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, addr := dynamicReceiver(t, s)
	snd := sender(t, s, addr)
	if err := snd.Send(ctx, goamqp.NewMessage([]byte("pong")), nil); err != nil {
		t.Fatalf("send reply: %v", err)
	}
	if m := receive(t, reply); string(m.GetData()) != "pong" {
		t.Fatalf("reply %q", m.GetData())
	}
}

// TestBridgeRoutesReload: a reload swaps the compiled routes at once: a route
// added by the new config carries the next message.
func TestBridgeRoutesReload(t *testing.T) {
	g := startGateway(t, "amqp:\n  listen: 127.0.0.1:0\n")
	r := receiver(t, amqpSession(t, g.amqpAddr(t)), "out/#")
	pub := v3(t, g.mqtt, "pub", nil)
	wait(t, pub.Publish("in/1", 1, false, "before"), "publish without routes")
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := r.Receive(short, nil); err == nil {
		t.Fatalf("bridged without a route: %q", m.GetData())
	}
	next := parseConfig(t, mergeYAML(baseYAML, "amqp:\n  listen: 127.0.0.1:0\nroutes:\n  - from: {mqtt: \"in/{n}\"}\n    to: {amqp: \"out/{n}\"}\n"))
	if _, err := g.Reload(next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(t, pub.Publish("in/2", 1, false, "after"), "publish with the new route")
	}()
	m := receive(t, r)
	if string(m.GetData()) != "after" {
		t.Fatalf("got %q", m.GetData())
	}
	r.AcceptMessage(context.Background(), m)
	<-done
}
