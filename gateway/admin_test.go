package gateway

import (
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
