package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/internal/peer"
	"github.com/isthmus-iot/isthmus/ws"
)

// summary returns the final summary event of a peer run.
func summary(t *testing.T, events []map[string]any) map[string]any {
	t.Helper()
	if len(events) == 0 || events[len(events)-1]["event"] != "summary" {
		t.Fatalf("no summary in %v", events)
	}
	return events[len(events)-1]
}

// TestBridgeRheaOverWebSocket: rhea sends AMQP over WebSocket (ws://…/amqp,
// subprotocol amqp) and an MQTT subscriber gets every message; rhea receives
// over WebSocket what an MQTT client publishes.
func TestBridgeRheaOverWebSocket(t *testing.T) {
	peer.NodeModules(t, "rhea")
	g := startGateway(t, bridgeYAML)
	url := "ws://" + g.http + "/amqp"

	got := make(chan pahov3.Message, 10)
	sub := v3(t, g.mqtt, "mqtt-side", nil)
	wait(t, sub.Subscribe("rhea/in", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	events, err := peer.RunRheaClient(t, "send", "--url", url, "--address", "rhea/in", "--count", "5", "--binary", "--timeout", "15")
	if err != nil {
		t.Fatalf("rhea send over WebSocket: %v", err)
	}
	if s := summary(t, events); s["ok"] != true || fmt.Sprint(s["outcomes"]) != "map[accepted:5]" {
		t.Fatalf("rhea summary %v", s)
	}
	for i := 0; i < 5; i++ {
		if m := recv(t, got, "message from rhea"); string(m.Payload()) != fmt.Sprintf("message-%d", i) {
			t.Fatalf("message %d: %q", i, m.Payload())
		}
	}

	done := make(chan []map[string]any, 1)
	go func() {
		ev, err := peer.RunRheaClient(t, "receive", "--url", url, "--address", "rhea/out/#", "--count", "3", "--timeout", "15")
		if err != nil {
			t.Errorf("rhea receive over WebSocket: %v", err)
		}
		done <- ev
	}()
	eventually(t, "rhea receiver attached", func() bool { return g.bridge.topics.count() == 1 })
	pub := v3(t, g.mqtt, "publisher", nil)
	for i := 0; i < 3; i++ {
		wait(t, pub.Publish(fmt.Sprintf("rhea/out/%d", i), 1, false, fmt.Sprintf("to rhea %d", i)), "publish")
	}
	select {
	case ev := <-done:
		if s := summary(t, ev); s["received"] != float64(3) {
			t.Fatalf("rhea receive summary %v", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rhea receiver did not finish")
	}
}

// TestBridgeProtonPython: Qpid Proton's Python client receives from a topic
// filter what mosquitto-style MQTT publishes, and sends to MQTT.
func TestBridgeProtonPython(t *testing.T) {
	peer.ProtonPython(t)
	g := startGateway(t, bridgeYAML)
	url := "amqp://" + g.amqpAddr(t)

	done := make(chan []map[string]any, 1)
	go func() {
		ev, err := peer.RunProtonClient(t, "receive", "--url", url, "--address", "py/+", "--count", "4", "--timeout", "15")
		if err != nil {
			t.Errorf("proton receive: %v", err)
		}
		done <- ev
	}()
	eventually(t, "proton receiver attached", func() bool { return g.bridge.topics.count() == 1 })
	pub := v3(t, g.mqtt, "pub", nil)
	for i := 0; i < 4; i++ {
		wait(t, pub.Publish(fmt.Sprintf("py/%d", i), byte(i%3), false, fmt.Sprintf("m%d", i)), "publish")
	}
	select {
	case ev := <-done:
		if s := summary(t, ev); s["received"] != float64(4) {
			t.Fatalf("proton summary %v", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("proton receiver did not finish")
	}

	got := make(chan pahov3.Message, 10)
	sub := v3(t, g.mqtt, "sub", nil)
	wait(t, sub.Subscribe("from/py", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	events, err := peer.RunProtonClient(t, "send", "--url", url, "--address", "from/py", "--count", "3", "--timeout", "15")
	if err != nil {
		t.Fatalf("proton send: %v", err)
	}
	if s := summary(t, events); s["ok"] != true {
		t.Fatalf("proton send summary %v", s)
	}
	for i := 0; i < 3; i++ {
		recv(t, got, "message from proton")
	}
}

// TestBridgeGoAMQPOverWebSocket: go-amqp speaks AMQP over ws://…/amqp
// (subprotocol amqp, the project's ws.Dial as its net.Conn) and its receiver
// gets what mosquitto_pub publishes at QoS 1.
func TestBridgeGoAMQPOverWebSocket(t *testing.T) {
	pub := peer.Command(t, "mosquitto_pub", "the Debian package mosquitto-clients")
	g := startGateway(t, bridgeYAML)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := ws.Dial(ctx, "ws://"+g.http+"/amqp", []string{"amqp"}, nil)
	if err != nil {
		t.Fatalf("ws dial: %v", err)
	}
	c, err := goamqp.NewConn(ctx, nc, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()})
	if err != nil {
		t.Fatalf("go-amqp over WebSocket: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := receiver(t, s, "mosq/+")
	host, port, _ := strings.Cut(g.mqtt, ":")
	done := make(chan error, 1)
	go func() { // its PUBACK waits for the AMQP receiver's accept
		_, err := runPeer(t, 10*time.Second, pub, "-h", host, "-p", port, "-t", "mosq/ws", "-m", "via mosquitto", "-q", "1")
		done <- err
	}()
	m := receive(t, r)
	if string(m.GetData()) != "via mosquitto" || m.Annotations["x-opt-mqtt-topic"] != "mosq/ws" {
		t.Fatalf("got %q %v", m.GetData(), m.Annotations)
	}
	if err := r.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done, "mosquitto_pub exit"); err != nil {
		t.Fatalf("mosquitto_pub: %v", err)
	}
}
