package gateway

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// TestMQTT311QoS: paho 3.1.1 publishes at QoS 0, 1 and 2; a QoS 2 subscriber
// gets each once, with the publish QoS, in order.
func TestMQTT311QoS(t *testing.T) {
	g := startGateway(t, "")
	got := make(chan pahov3.Message, 10)
	sub := v3(t, g.mqtt, "sub", nil)
	wait(t, sub.Subscribe("qos/#", 2, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	pub := v3(t, g.mqtt, "pub", nil)
	for q := byte(0); q <= 2; q++ {
		wait(t, pub.Publish(fmt.Sprintf("qos/%d", q), q, false, fmt.Sprintf("payload %d", q)), "publish")
	}
	for q := byte(0); q <= 2; q++ {
		m := recv(t, got, "message")
		if m.Topic() != fmt.Sprintf("qos/%d", q) || string(m.Payload()) != fmt.Sprintf("payload %d", q) || m.Qos() != q || m.Duplicate() {
			t.Fatalf("message %d: topic %q payload %q qos %d dup %v", q, m.Topic(), m.Payload(), m.Qos(), m.Duplicate())
		}
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected extra message %q", m.Topic())
	case <-time.After(200 * time.Millisecond):
	}
	if v := g.metric(t, `isthmus_messages_received_total{protocol="mqtt"}`); v < 3 {
		t.Errorf("messages received metric = %v, want >= 3", v)
	}
	if v := g.metric(t, `isthmus_connections{protocol="mqtt",transport="tcp"}`); v != 2 {
		t.Errorf("tcp connections gauge = %v, want 2", v)
	}
}

// TestRetained: a retained message reaches a later subscriber with the retain
// flag; an empty retained publish clears it [MQTT-3.3.1-10].
func TestRetained(t *testing.T) {
	g := startGateway(t, "")
	pub := v3(t, g.mqtt, "pub", nil)
	wait(t, pub.Publish("status/door", 1, true, "open"), "publish retained")

	got := make(chan pahov3.Message, 4)
	sub := v3(t, g.mqtt, "sub1", nil)
	wait(t, sub.Subscribe("status/+", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	m := recv(t, got, "retained message")
	if !m.Retained() || string(m.Payload()) != "open" {
		t.Fatalf("got retained=%v payload=%q, want retained open", m.Retained(), m.Payload())
	}

	wait(t, pub.Publish("status/door", 1, true, ""), "clear retained")
	recv(t, got, "live empty message") // live delivery of the clearing publish
	late := make(chan pahov3.Message, 4)
	sub2 := v3(t, g.mqtt, "sub2", nil)
	wait(t, sub2.Subscribe("status/+", 1, func(_ pahov3.Client, m pahov3.Message) { late <- m }), "subscribe")
	select {
	case m := <-late:
		t.Fatalf("retained message survived clearing: %q", m.Payload())
	case <-time.After(300 * time.Millisecond):
	}
}

// TestRetainedLimit: mqtt.retained.max caps the store; a retained publish to a
// new topic beyond it is delivered but not kept, and counted.
func TestRetainedLimit(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  retained: {max: 25}\n")
	pub := v3(t, g.mqtt, "pub", nil)
	// mochi keeps its $SYS topics retained too; fill up to the limit.
	for i := 0; i < 30; i++ {
		wait(t, pub.Publish(fmt.Sprintf("keep/%d", i), 1, true, "x"), "publish")
	}
	if v := g.metric(t, `isthmus_mqtt_retained_messages`); v > 25 {
		t.Fatalf("retained store holds %v messages, limit 25", v)
	}
	if v := g.metric(t, `isthmus_messages_dropped_total{protocol="mqtt",reason="retained_limit"}`); v < 5 {
		t.Fatalf("retained_limit drops = %v, want >= 5", v)
	}
}

// TestWill: a client that vanishes without DISCONNECT has its will published.
func TestWill(t *testing.T) {
	g := startGateway(t, "")
	got := make(chan pahov3.Message, 2)
	sub := v3(t, g.mqtt, "watcher", nil)
	wait(t, sub.Subscribe("wills/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")

	c := dial(t, g.mqtt)
	connectOK(t, c, mqttConnect{version: 4, clientID: "dying", keepAlive: 30, will: &will{topic: "wills/dying", payload: "gone", qos: 1}})
	c.Close() // no DISCONNECT: the will must fire [MQTT-3.1.2-8]
	m := recv(t, got, "will")
	if m.Topic() != "wills/dying" || string(m.Payload()) != "gone" {
		t.Fatalf("will: topic %q payload %q", m.Topic(), m.Payload())
	}
}

// TestPersistentSession: a clean-session=false client gets the QoS 1 messages
// published while it was away, marked DUP-free first deliveries in their
// original order [MQTT-4.6.0-1], with session present in the CONNACK. The
// returning client reads raw packets so the broker's order is what is checked.
func TestPersistentSession(t *testing.T) {
	g := startGateway(t, "")
	first := v3(t, g.mqtt, "durable", func(o *pahov3.ClientOptions) { o.SetCleanSession(false) })
	wait(t, first.Subscribe("jobs/#", 1, nil), "subscribe")
	first.Disconnect(100)
	eventually(t, "first session offline", func() bool { return !g.broker.ClientConnected("durable") })

	pub := v3(t, g.mqtt, "pub", nil)
	const n = 20 // stored in the same second: mochi alone resends them in random order
	for i := 0; i < n; i++ {
		wait(t, pub.Publish(fmt.Sprintf("jobs/%d", i), 1, false, "job"), "publish")
	}
	// mochi writes a PUBACK before it hands the message to subscribers, and
	// handles one client's packets in order: once this ack is back, the 20
	// messages above are stored for the offline session.
	wait(t, pub.Publish("sentinel", 1, false, "x"), "sentinel publish")
	c, code, present := dialConnect(t, g.mqtt, mqttConnect{version: 4, clientID: "durable", keepAlive: 30, keep: true})
	if code != 0 || !present {
		t.Fatalf("CONNACK code %#02x session present %v, want session present", code, present)
	}
	for i := 0; i < n; i++ {
		typ, body, err := readPacket(c, 5*time.Second)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		tl := int(body[0])<<8 | int(body[1])
		if typ>>4 != 3 || string(body[2:2+tl]) != fmt.Sprintf("jobs/%d", i) {
			t.Fatalf("delivery %d: packet %x topic %q", i, typ, body[2:2+tl])
		}
		c.Write([]byte{0x40, 2, body[2+tl], body[3+tl]}) // PUBACK
	}
}

// TestMQTT5Properties: paho.golang (MQTT 5) properties survive the broker, and
// shutdown sends DISCONNECT 0x8B (server shutting down).
func TestMQTT5Properties(t *testing.T) {
	g := startGateway(t, "")
	sub := v5(t, g.mqtt, "sub5", v5Opts{})
	if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "v5/#", QoS: 1}}}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pub := v5(t, g.mqtt, "pub5", v5Opts{})
	expiry := uint32(60)
	_, err := pub.Publish(context.Background(), &paho.Publish{
		Topic: "v5/x", QoS: 1, Payload: []byte(`{"t":21.5}`),
		Properties: &paho.PublishProperties{
			ContentType: "application/json", ResponseTopic: "v5/reply", CorrelationData: []byte{1, 2, 3},
			MessageExpiry: &expiry, User: paho.UserProperties{{Key: "site", Value: "plant-1"}},
		},
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	p := recv(t, sub.msgs, "v5 message")
	pr := p.Properties
	if p.Topic != "v5/x" || string(p.Payload) != `{"t":21.5}` || pr == nil || pr.ContentType != "application/json" ||
		pr.ResponseTopic != "v5/reply" || !bytes.Equal(pr.CorrelationData, []byte{1, 2, 3}) ||
		pr.User.Get("site") != "plant-1" || pr.MessageExpiry == nil || *pr.MessageExpiry == 0 || *pr.MessageExpiry > 60 {
		t.Fatalf("properties lost: %+v payload %q", pr, p.Payload)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	d := recv(t, sub.disc, "server DISCONNECT")
	if d.ReasonCode != 0x8B {
		t.Fatalf("DISCONNECT reason 0x%02x, want 0x8B", d.ReasonCode)
	}
}
