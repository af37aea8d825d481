package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/internal/peer"
)

// runPeer runs an external client with a deadline and returns its stdout.
func runPeer(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		t.Logf("%s %v: %v\nstderr: %s", filepath.Base(name), args, err, errb.String())
	}
	return out.String(), err
}

// TestMosquittoClients: mosquitto_sub receives what mosquitto_pub sends, at
// each QoS, with MQTT 3.1.1 and 5 (-V), retained included.
func TestMosquittoClients(t *testing.T) {
	sub := peer.Command(t, "mosquitto_sub", "the Debian package mosquitto-clients")
	pub := peer.Command(t, "mosquitto_pub", "the Debian package mosquitto-clients")
	g := startGateway(t, "")
	host, port, _ := strings.Cut(g.mqtt, ":")
	for _, v := range []string{"mqttv311", "mqttv5"} {
		for _, q := range []string{"0", "1", "2"} {
			t.Run(v+"/qos"+q, func(t *testing.T) {
				topic := "mosq/" + v + "/" + q
				done := make(chan string, 1)
				go func() {
					out, _ := runPeer(t, 10*time.Second, sub, "-h", host, "-p", port, "-V", v, "-q", q, "-t", topic, "-C", "1", "-v", "-i", "sub-"+v+q)
					done <- out
				}()
				// Wait until the subscription exists before publishing.
				eventually(t, "mosquitto_sub subscribed", func() bool {
					return g.metric(t, `isthmus_mqtt_subscriptions`) >= 1 && clientConnected(g, "sub-"+v+q)
				})
				if _, err := runPeer(t, 10*time.Second, pub, "-h", host, "-p", port, "-V", v, "-q", q, "-t", topic, "-m", "hello "+v); err != nil {
					t.Fatalf("mosquitto_pub: %v", err)
				}
				out := recv(t, done, "mosquitto_sub output")
				if strings.TrimSpace(out) != topic+" hello "+v {
					t.Fatalf("mosquitto_sub printed %q", out)
				}
			})
		}
	}
	t.Run("retained", func(t *testing.T) {
		if _, err := runPeer(t, 10*time.Second, pub, "-h", host, "-p", port, "-t", "mosq/state", "-m", "on", "-r", "-q", "1"); err != nil {
			t.Fatalf("mosquitto_pub -r: %v", err)
		}
		out, err := runPeer(t, 10*time.Second, sub, "-h", host, "-p", port, "-t", "mosq/state", "-C", "1", "-v", "-V", "mqttv5")
		if err != nil || strings.TrimSpace(out) != "mosq/state on" {
			t.Fatalf("retained via mosquitto_sub: %q %v", out, err)
		}
	})
}

func clientConnected(g *testGateway, id string) bool { return g.broker.ClientConnected(id) }

// TestMQTTjsOverWebSocket: MQTT.js (3.1.1 and 5) round-trips a QoS 1 message
// through ws://…/mqtt; a browser Origin that is not allowed is refused.
func TestMQTTjsOverWebSocket(t *testing.T) {
	node, dir := peer.NodeModules(t, "mqtt")
	g := startGateway(t, "")
	url := "ws://" + g.http + "/mqtt"
	script := filepath.Join(dir, "mqttjs_roundtrip.js")
	for _, v := range []string{"4", "5"} {
		out, err := runPeer(t, 15*time.Second, node, script, url, v)
		if err != nil {
			t.Fatalf("MQTT.js v%s: %v (%s)", v, err, out)
		}
		var m struct {
			Topic, Payload string
			QoS            int
			Properties     struct {
				ContentType    string            `json:"contentType"`
				UserProperties map[string]string `json:"userProperties"`
			}
		}
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("MQTT.js output %q: %v", out, err)
		}
		if m.Topic != "js/echo" || m.Payload != "hello over websocket" || m.QoS != 1 {
			t.Fatalf("MQTT.js v%s got %+v", v, m)
		}
		if v == "5" && (m.Properties.ContentType != "text/plain" || m.Properties.UserProperties["from"] != "mqttjs") {
			t.Fatalf("MQTT.js v5 properties lost: %+v", m.Properties)
		}
	}
	if v := g.metric(t, `isthmus_connections_accepted_total{protocol="mqtt"}`); v < 2 {
		t.Fatalf("accepted connections = %v", v)
	}

	// A browser page from another origin: MQTT.js cannot connect, and the
	// handshake answer is 403 naming the key to change.
	out, err := runPeer(t, 15*time.Second, node, script, url, "4", "http://evil.example")
	if err == nil || !strings.Contains(out, `"error"`) {
		t.Fatalf("MQTT.js connected from a foreign Origin: %q %v", out, err)
	}
	req, _ := http.NewRequest("GET", "http://"+g.http+"/mqtt", nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt", "Origin": "http://evil.example"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "allowed_origins") {
		t.Fatalf("foreign Origin: %d %q, want 403 naming http.allowed_origins", resp.StatusCode, body)
	}
}

// TestWebSocketAllowedOrigin: an origin on http.allowed_origins may connect.
func TestWebSocketAllowedOrigin(t *testing.T) {
	node, dir := peer.NodeModules(t, "mqtt")
	g := startGateway(t, "http:\n  listen: 127.0.0.1:0\n  allowed_origins: [\"https://dashboard.example\"]\n")
	out, err := runPeer(t, 15*time.Second, node, filepath.Join(dir, "mqttjs_roundtrip.js"), "ws://"+g.http+"/mqtt", "5", "https://dashboard.example")
	if err != nil || !strings.Contains(out, `"topic":"js/echo"`) {
		t.Fatalf("allowed origin refused: %q %v", out, err)
	}
	// And a WebSocket client and a TCP client see each other's messages.
	got := make(chan pahov3.Message, 1)
	c := v3(t, g.mqtt, "tcp-side", nil)
	wait(t, c.Subscribe("js/echo", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	if _, err := runPeer(t, 15*time.Second, node, filepath.Join(dir, "mqttjs_roundtrip.js"), "ws://"+g.http+"/mqtt", "4"); err != nil {
		t.Fatalf("MQTT.js: %v", err)
	}
	if m := recv(t, got, "message from the WebSocket client"); string(m.Payload()) != "hello over websocket" {
		t.Fatalf("TCP client got %q", m.Payload())
	}
}
