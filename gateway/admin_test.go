package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAdminEndpoint: liveness, readiness and Prometheus metrics with the
// names SPEC §8 promises.
func TestAdminEndpoint(t *testing.T) {
	g := startGateway(t, "")
	if code, body := httpDo(t, "GET", "http://"+g.admin+"/livez"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/livez: %d %q", code, body)
	}
	if code, body := httpDo(t, "GET", "http://"+g.admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	v3(t, g.mqtt, "counted", nil)
	code, body := httpDo(t, "GET", "http://"+g.admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`isthmus_build_info{version="test",commit="none",go_version="go`,
		`isthmus_connections{protocol="mqtt",transport="tcp"} 1`,
		`isthmus_connections{protocol="mqtt",transport="ws"} 0`,
		`isthmus_messages_received_total{protocol="mqtt"}`,
		`isthmus_messages_sent_total{protocol="mqtt"}`,
		`isthmus_received_bytes_total{protocol="mqtt"}`,
		`isthmus_sent_bytes_total{protocol="mqtt"}`,
		`isthmus_messages_dropped_total{protocol="mqtt",reason="write_queue_full"} 0`,
		`isthmus_connections_rejected_total{protocol="mqtt",reason="connect_timeout"}`,
		`isthmus_ready 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "isthmus_") && strings.Contains(line, "client") {
			t.Errorf("a metric carries a per-client label: %s", line)
		}
	}
	if code, _ := httpDo(t, "GET", "http://"+g.admin+"/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
	// The device-facing endpoint answers plain HTTP on the WebSocket path
	// with an explanation, not an upgrade.
	if code, body := httpDo(t, "GET", "http://"+g.http+"/mqtt"); code != 400 || !strings.Contains(body, "mqtt") {
		t.Errorf("plain GET on /mqtt: %d %q", code, body)
	}
}

// TestReloadKeepsListeners: Reload applies a new origin list at once and
// reports sections that need a restart.
func TestReloadKeepsListeners(t *testing.T) {
	g := startGateway(t, "")
	next := parseConfig(t, mergeYAML(baseYAML, "http:\n  listen: 127.0.0.1:0\n  allowed_origins: [\"https://a.example\"]\nmqtt:\n  listen: 127.0.0.1:0\n  max_connections: 5\n"))
	restart, err := g.Reload(next)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if len(restart) != 1 || restart[0] != "mqtt" {
		t.Fatalf("restart sections = %v, want [mqtt]", restart)
	}
	if got := g.Config().HTTP.AllowedOrigins; len(got) != 1 {
		t.Fatalf("allowed origins not applied: %v", got)
	}
	if v := g.metric(t, `isthmus_config_reloads_total{result="ok"}`); v != 1 {
		t.Fatalf("reload counter = %v", v)
	}
}

// TestAdminStatusAPI: /api/v1/status, routes, queues and uplinks answer JSON
// with the gateway's real state, and a browser gets the status page.
func TestAdminStatusAPI(t *testing.T) {
	g := startGateway(t, bridgeYAML+"queues:\n  - name: work\n")
	// Empty lists are [] for the status page's scripts, never null.
	if _, body := httpDo(t, "GET", "http://"+g.admin+"/api/v1/connections"); !strings.Contains(body, `"connections": []`) {
		t.Errorf("no clients: /api/v1/connections = %s", body)
	}
	c := v3(t, g.mqtt, "status-client", nil)
	wait(t, c.Publish("status/x", 1, false, "one"), "publish")
	snd := sender(t, amqpSession(t, g.amqpAddr(t)), "work")
	if err := send(snd, "", "queued"); err != nil {
		t.Fatalf("send to queue: %v", err)
	}

	var st apiStatus
	getJSON(t, "http://"+g.admin+"/api/v1/status", &st)
	if st.Version != "test" || st.GatewayID != "test-gw" || !st.Ready || st.Started.IsZero() {
		t.Errorf("status header: %+v", st)
	}
	if st.Connections["mqtt_tcp"] != 1 || st.Connections["amqp"] != 1 {
		t.Errorf("connections %v, want mqtt_tcp 1 and amqp 1", st.Connections)
	}
	if st.Messages["mqtt_received"] < 1 || st.Queues != 1 || st.MemoryBytes == 0 || len(st.Listeners) < 3 {
		t.Errorf("status numbers: messages %v, queues %d, memory %d, listeners %v", st.Messages, st.Queues, st.MemoryBytes, st.Listeners)
	}

	var routes struct {
		Routes     []apiRoute `json:"routes"`
		Unroutable string     `json:"unroutable"`
	}
	getJSON(t, "http://"+g.admin+"/api/v1/routes", &routes)
	if len(routes.Routes) != 2 || routes.Routes[0].Name != "default-mqtt-to-amqp" || routes.Routes[0].From != `mqtt "#"` || routes.Unroutable != "accept" {
		t.Errorf("routes: %+v", routes)
	}

	var queues struct {
		Queues []queueInfo `json:"queues"`
	}
	getJSON(t, "http://"+g.admin+"/api/v1/queues", &queues)
	if len(queues.Queues) != 1 || queues.Queues[0].Name != "work" || queues.Queues[0].Messages != 1 || queues.Queues[0].Bytes == 0 {
		t.Errorf("queues: %+v, want work holding 1 message", queues.Queues)
	}

	var uplinks struct {
		Uplinks []any  `json:"uplinks"`
		Note    string `json:"note"`
	}
	getJSON(t, "http://"+g.admin+"/api/v1/uplinks", &uplinks)
	if len(uplinks.Uplinks) != 0 || !strings.Contains(uplinks.Note, "not implemented") {
		t.Errorf("uplinks: %+v", uplinks)
	}

	req, _ := http.NewRequest("GET", "http://"+g.admin+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(page), "/api/v1/status") {
		t.Errorf("status page: %s, %d bytes", ct, len(page))
	}
	if code, body := httpDo(t, "GET", "http://"+g.admin+"/"); code != 200 || !strings.Contains(body, "/api/v1/status") || strings.Contains(body, "<html") {
		t.Errorf("plain index: %d %q", code, body)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	code, body := httpDo(t, "GET", url)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// TestAdminInspector: the inspector records nothing until it is read, then
// shows each routed message with its routes, their results and the answer
// the sender got, newest first.
func TestAdminInspector(t *testing.T) {
	g := startGateway(t, bridgeYAML)
	type inspected struct {
		Messages []traceEvent `json:"messages"`
	}
	c := v3(t, g.mqtt, "inspected", nil)
	wait(t, c.Publish("before/x", 1, false, "unseen"), "publish before the inspector is read")
	var got inspected
	getJSON(t, "http://"+g.admin+"/api/v1/inspector", &got)
	if len(got.Messages) != 0 {
		t.Fatalf("recorded before anyone looked: %+v", got.Messages)
	}

	sess := amqpSession(t, g.amqpAddr(t))
	r := receiver(t, sess, "seen/+")
	accept := func() {
		t.Helper()
		if err := r.AcceptMessage(context.Background(), receive(t, r)); err != nil {
			t.Fatalf("accept: %v", err)
		}
	}
	tok := c.Publish("seen/mqtt", 1, false, "one") // acknowledged once the AMQP receiver accepts
	accept()
	wait(t, tok, "publish")
	snd := sender(t, sess, "seen/amqp")
	done := make(chan error, 1)
	go func() { done <- send(snd, "", "two") }() // settled once the receiver accepts
	accept()
	if err := <-done; err != nil {
		t.Fatalf("AMQP send: %v", err)
	}
	eventually(t, "both messages inspected", func() bool {
		getJSON(t, "http://"+g.admin+"/api/v1/inspector", &got)
		return len(got.Messages) == 2
	})
	amqpIn, mqttIn := got.Messages[0], got.Messages[1]
	if mqttIn.From != `mqtt "seen/mqtt"` || mqttIn.Client != "inspected" || mqttIn.Delivery != "QoS 1" ||
		len(mqttIn.Routes) != 1 || mqttIn.Routes[0].Route != "default-mqtt-to-amqp" || mqttIn.Routes[0].Result != "1 receiver(s)" ||
		mqttIn.Outcome != "acknowledged (reason 0x00)" {
		t.Errorf("MQTT message: %+v", mqttIn)
	}
	if amqpIn.From != `amqp "seen/amqp"` || amqpIn.Delivery != "unsettled" || amqpIn.Outcome != "accepted" || len(amqpIn.Routes) != 2 ||
		amqpIn.Routes[0].Route != "(topic address)" || amqpIn.Routes[1].Route != "default-amqp-to-mqtt" || amqpIn.Routes[1].Result != "published" {
		t.Errorf("AMQP message: %+v", amqpIn)
	}
	if amqpIn.Seq <= mqttIn.Seq {
		t.Errorf("not newest first: seq %d then %d", amqpIn.Seq, mqttIn.Seq)
	}
}
