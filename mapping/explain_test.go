package mapping

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/explain/*.golden from the current output")

// explainRouter is the configuration of SPEC §5.3 with a few more routes: the dry-run examples.
func explainRouter(t *testing.T) *Router {
	t.Helper()
	tele := route("telemetry", mq("devices/{device}/telemetry/#"), aq("telemetry"))
	tele.Properties = map[string]string{"subject": "{device}", "content-type": "application/json"}
	tele.ApplicationProperties = map[string]string{"device-id": "{device}"}
	cmd := route("commands", aq("commands/{device}"), map[string]any{"mqtt": "devices/{device}/commands", "qos": 1, "retain": false})
	cmd.RequireSubscriber = true
	backend := route("to-backend", mq("devices/{device}/telemetry/#"), map[string]any{"uplink": "backend", "address": "/exchanges/amq.topic/{device}.{#}", "separator": "."})
	backend.Delivery = "at-least-once"
	events := route("events", mq("devices/+/events/#"), mq("events/{client-id}/{#}"))
	events.Delivery = "at-most-once"
	fromBackend := route("from-backend", map[string]any{"uplink": "backend", "address": "cmd.{device}.#", "separator": "."}, mq("devices/{device}/commands/{#}"))
	fromBackend.ApplicationProperties = map[string]string{"origin": "backend"}
	fwd := route("archive", aq("commands/#"), map[string]any{"uplink": "backend", "address": "/queues/archive"})
	routes := append([]RouteConfig{tele, cmd, backend, events, fromBackend, fwd}, DefaultRoutes()...)
	r, err := Compile(routes, Options{GatewayID: "edge-01", Uplinks: []string{"backend"}, Unroutable: "accept",
		Queues: []QueueConfig{{Name: "telemetry"}, {Match: "jobs/#"}}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExplainGolden(t *testing.T) {
	r := explainRouter(t)
	probes := map[string]Probe{
		"mqtt-telemetry":     {From: KindMQTT, Name: "devices/sensor-42/telemetry/temp", QoS: 1, ClientID: "sensor-42", Identity: "sensor-42"},
		"mqtt-qos2-dotted":   {From: KindMQTT, Name: "devices/v1.2/telemetry", QoS: 2, ClientID: "c", Identity: "v1.2"},
		"mqtt-events-qos0":   {From: KindMQTT, Name: "devices/x/events/door/open", ClientID: "x"},
		"mqtt-unsafe-client": {From: KindMQTT, Name: "devices/x/events/door", QoS: 1, ClientID: "a/b"},
		"mqtt-sys":           {From: KindMQTT, Name: "$SYS/broker/uptime"},
		"amqp-command":       {From: KindAMQP, Name: "commands/sensor-42", ClientID: "backend-app", Identity: "backend-service"},
		"amqp-presettled":    {From: KindAMQP, Name: "lights/kitchen", Settled: true},
		"amqp-wildcard":      {From: KindAMQP, Name: "commands/+"},
		"amqp-queue":         {From: KindAMQP, Name: "jobs/42"},
		"uplink-command":     {From: KindUplink, Uplink: "backend", Name: "cmd.v1%2E2.reboot.now"},
		"uplink-nothing":     {From: KindUplink, Uplink: "backend", Name: "other"},
	}
	for name, p := range probes {
		t.Run(name, func(t *testing.T) {
			got := r.Explain(p).String()
			path := filepath.Join("testdata", "explain", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Explain output differs from %s (go test -update rewrites it):\n%s", path, got)
			}
		})
	}
}

// TestExplainStructure checks the struct the CLI gets, independently of the text.
func TestExplainStructure(t *testing.T) {
	r := explainRouter(t)
	e := r.Explain(Probe{From: KindMQTT, Name: "devices/d/telemetry/t", QoS: 1, Identity: "d"})
	var names []string
	for _, x := range e.Routes {
		names = append(names, x.Route.Name)
		if x.Err != nil {
			t.Errorf("%s: %v", x.Route.Name, x.Err)
		}
	}
	if got := strings.Join(names, " "); got != "telemetry to-backend "+DefaultMQTTToAMQP {
		t.Fatalf("routes %q", got)
	}
	x := e.Routes[1]
	if x.Address != "/exchanges/amq.topic/d.t" || x.Policy.Settled || x.Policy.Guarantee != AtLeastOnce {
		t.Errorf("to-backend: %+v", x)
	}
	if e := r.Explain(Probe{From: KindAMQP, Name: "telemetry"}); !e.Queue || len(e.Routes) != 0 {
		t.Errorf("a queue address: %+v", e)
	}
	if e := r.Explain(Probe{From: KindAMQP, Name: "commands/a"}); len(e.Routes) != 3 || !e.Routes[1].Forwarded {
		t.Errorf("amqp command: %+v", e.Routes)
	}
}
