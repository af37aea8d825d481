package mapping

import (
	"errors"
	"strings"
	"testing"

	"github.com/isthmus-iot/isthmus/config"
)

// route builds a RouteConfig from / to maps; the rest is set by the caller.
func route(name string, from, to map[string]any) RouteConfig {
	return RouteConfig{Name: name, From: from, To: to}
}

func mq(s string) map[string]any { return map[string]any{"mqtt": s} }
func aq(s string) map[string]any { return map[string]any{"amqp": s} }

func TestCompileErrors(t *testing.T) {
	opts := Options{GatewayID: "gw", Uplinks: []string{"backend"}}
	tests := []struct {
		name  string
		route RouteConfig
		path  string // expected key path of the (first) error
		msg   string // substring of its message
	}{
		{"template capture missing", route("r", mq("devices/{device}/x"), aq("t/{site}")), "routes[0].to.amqp", "template uses {site} which the pattern does not capture"},
		{"no from", route("r", nil, aq("t")), "routes[0].from", "missing: give one of mqtt, amqp or uplink"},
		{"no to", route("r", mq("a"), nil), "routes[0].to", "missing"},
		{"two kinds in from", route("r", map[string]any{"mqtt": "a", "amqp": "b"}, aq("t")), "routes[0].from", "give only one of mqtt, amqp or uplink (found mqtt and amqp)"},
		{"unknown key in from", route("r", map[string]any{"mqtt": "a", "qos": 1}, aq("t")), "routes[0].from.qos", "unknown key (a mqtt source takes mqtt)"},
		{"unknown key in to", route("r", mq("a"), map[string]any{"amqp": "t", "retain": true}), "routes[0].to.retain", "unknown key (a amqp destination takes amqp)"},
		{"only unknown keys", route("r", map[string]any{"topic": "a"}, aq("t")), "routes[0].from", "give one of mqtt, amqp or uplink"},
		{"hash not last", route("r", mq("a/#/b"), aq("t")), "routes[0].from.mqtt", "# must be the last level"},
		{"plus inside level", route("r", mq("a/b+/c"), aq("t")), "routes[0].from.mqtt", "+ and # must stand alone"},
		{"hash inside level", route("r", mq("a/b#"), aq("t")), "routes[0].from.mqtt", "+ and # must stand alone"},
		{"capture named twice", route("r", mq("{x}/{x}"), aq("t")), "routes[0].from.mqtt", "capture {x} is named twice"},
		{"capture reserved", route("r", mq("{topic}/a"), aq("t")), "routes[0].from.mqtt", "{topic} is reserved"},
		{"capture {#}", route("r", mq("a/{#}"), aq("t")), "routes[0].from.mqtt", "write #"},
		{"capture bad name", route("r", mq("a/{a b}"), aq("t")), "routes[0].from.mqtt", "must be letters, digits"},
		{"capture empty name", route("r", mq("a/{}"), aq("t")), "routes[0].from.mqtt", "must be letters, digits"},
		{"capture inside level", route("r", mq("a/x{id}"), aq("t")), "routes[0].from.mqtt", "a capture must be a whole level"},
		{"lone brace", route("r", mq("a/{b"), aq("t")), "routes[0].from.mqtt", "a capture must be a whole level"},
		{"empty pattern", route("r", mq(""), aq("t")), "routes[0].from.mqtt", "empty pattern"},
		{"empty inner level", route("r", mq("a//b"), aq("t")), "routes[0].from.mqtt", "empty level"},
		{"trailing slash", route("r", mq("a/"), aq("t")), "routes[0].from.mqtt", "empty level"},
		{"NUL in pattern", route("r", mq("a\x00"), aq("t")), "routes[0].from.mqtt", "NUL"},
		{"bad UTF-8", route("r", mq("a\xff"), aq("t")), "routes[0].from.mqtt", "UTF-8"},
		{"pattern not a string", route("r", map[string]any{"mqtt": 42}, aq("t")), "routes[0].from.mqtt", "expected a string, got a number"},
		{"pattern missing value", route("r", map[string]any{"mqtt": nil}, aq("t")), "routes[0].from.mqtt", "missing value"},
		{"wildcard in template", route("r", mq("a/#"), aq("t/+")), "routes[0].to.amqp", "+ and # are wildcards"},
		{"hash in template", route("r", mq("a/#"), mq("t/#")), "routes[0].to.mqtt", "+ and # are wildcards"},
		{"empty template", route("r", mq("a"), aq("")), "routes[0].to.amqp", "empty template"},
		{"empty level in template", route("r", mq("a"), aq("x//y")), "routes[0].to.amqp", "empty level"},
		{"{#} without #", route("r", mq("a/+"), aq("t/{#}")), "routes[0].to.amqp", "the pattern does not end with #"},
		{"{#} inside a level", route("r", mq("a/#"), aq("t/x{#}")), "routes[0].to.amqp", "must be a whole level"},
		{"{topic} for amqp source", route("r", aq("a/#"), mq("{topic}")), "routes[0].to.mqtt", "use {address}"},
		{"{address} for mqtt source", route("r", mq("a/#"), aq("{address}")), "routes[0].to.amqp", "use {topic}"},
		{"unclosed brace", route("r", mq("a"), aq("t/{x")), "routes[0].to.amqp", "unclosed {"},
		{"unmatched brace", route("r", mq("a"), aq("t/x}")), "routes[0].to.amqp", "unmatched }"},
		{"placeholder not a name", route("r", mq("a"), aq("t/{a.b}")), "routes[0].to.amqp", "is not a name"},
		{"qos out of range", route("r", aq("a"), map[string]any{"mqtt": "t", "qos": 3}), "routes[0].to.qos", "expected 0, 1 or 2"},
		{"qos not a number", route("r", aq("a"), map[string]any{"mqtt": "t", "qos": "1"}), "routes[0].to.qos", "expected 0, 1 or 2"},
		{"qos fraction", route("r", aq("a"), map[string]any{"mqtt": "t", "qos": 1.5}), "routes[0].to.qos", "expected 0, 1 or 2"},
		{"retain not bool", route("r", aq("a"), map[string]any{"mqtt": "t", "retain": "yes"}), "routes[0].to.retain", "expected true or false"},
		{"queues not bool", route("r", map[string]any{"amqp": "a", "queues": 1}, mq("t")), "routes[0].from.queues", "expected true or false"},
		{"unknown uplink", route("r", mq("a"), map[string]any{"uplink": "nope", "address": "x"}), "routes[0].to.uplink", `no uplink named "nope" (configured: backend)`},
		{"uplink without address", route("r", mq("a"), map[string]any{"uplink": "backend"}), "routes[0].to.address", "missing"},
		{"uplink source without address", route("r", map[string]any{"uplink": "backend"}, mq("a")), "routes[0].from.address", "missing"},
		{"bad separator", route("r", mq("a"), map[string]any{"uplink": "backend", "address": "x", "separator": ":"}), "routes[0].to.separator", `separator must be "/" or "."`},
		{"address key on mqtt", route("r", mq("a"), map[string]any{"mqtt": "t", "address": "x"}), "routes[0].to.address", "unknown key"},
		{"unknown property", func() RouteConfig {
			r := route("r", mq("a"), aq("t"))
			r.Properties = map[string]string{"colour": "red"}
			return r
		}(), "routes[0].properties.colour", "unknown property (settable: subject"},
		{"fixed property", func() RouteConfig {
			r := route("r", mq("a"), aq("t"))
			r.Properties = map[string]string{"message-id": "x"}
			return r
		}(), "routes[0].properties.message-id", "is set by the gateway"},
		{"AMQP property name on MQTT destination", func() RouteConfig {
			r := route("r", aq("a"), mq("t"))
			r.Properties = map[string]string{"subject": "x"}
			return r
		}(), "routes[0].properties.subject", "MQTT 5 names"},
		{"non-ASCII symbol property", func() RouteConfig {
			r := route("r", mq("a"), aq("t"))
			r.Properties = map[string]string{"content-type": "text/é"}
			return r
		}(), "routes[0].properties.content-type", "must be ASCII"},
		{"property placeholder unknown", func() RouteConfig {
			r := route("r", mq("a/{x}"), aq("t"))
			r.ApplicationProperties = map[string]string{"site": "{site}"}
			return r
		}(), "routes[0].application-properties.site", "template uses {site}"},
		{"empty application property", func() RouteConfig {
			r := route("r", mq("a"), aq("t"))
			r.ApplicationProperties = map[string]string{"site": ""}
			return r
		}(), "routes[0].application-properties.site", "empty value"},
		{"amqp to amqp properties", func() RouteConfig {
			r := route("r", aq("a"), aq("t"))
			r.Properties = map[string]string{"subject": "x"}
			return r
		}(), "routes[0].properties", "bare message is immutable"},
		{"amqp to amqp application-properties", func() RouteConfig {
			r := route("r", aq("a"), map[string]any{"uplink": "backend", "address": "x"})
			r.ApplicationProperties = map[string]string{"k": "v"}
			return r
		}(), "routes[0].application-properties", "bare message is immutable"},
		{"unknown delivery", func() RouteConfig {
			r := route("r", mq("a"), aq("t"))
			r.Delivery = "twice"
			return r
		}(), "routes[0].delivery", `unknown delivery mode "twice"`},
		{"qos contradicts delivery", func() RouteConfig {
			r := route("r", aq("a"), map[string]any{"mqtt": "t", "qos": 0})
			r.Delivery = "exactly-once"
			return r
		}(), "routes[0].to.qos", "qos 0 contradicts delivery: exactly-once"},
		{"require_subscriber on uplink", func() RouteConfig {
			r := route("r", mq("a"), map[string]any{"uplink": "backend", "address": "x"})
			r.RequireSubscriber = true
			return r
		}(), "routes[0].require_subscriber", "mqtt and amqp destinations only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile([]RouteConfig{tt.route}, opts)
			if err == nil {
				t.Fatalf("compiled %+v; want error %s: %s", tt.route, tt.path, tt.msg)
			}
			if r != nil {
				t.Errorf("got a Router with an error")
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *CompileError", err, err)
			}
			if ce.Path != tt.path || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("got %s: %s\nwant %s: …%s…", ce.Path, ce.Msg, tt.path, tt.msg)
			}
			if ce.Route != 0 || ce.Name != "r" {
				t.Errorf("error names route %d %q, want 0 \"r\"", ce.Route, ce.Name)
			}
			if want := tt.path + ": "; !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), `(route "r")`) {
				t.Errorf("Error() = %q, want %q… (route \"r\")", err.Error(), want)
			}
		})
	}
}

// TestCompileAllErrors checks that every problem of every route is reported in one go, in route
// order, and that a route's later fields are still checked after an earlier one failed.
func TestCompileAllErrors(t *testing.T) {
	bad := route("a", mq("a/#/b"), aq("t"))
	bad.Delivery = "sometimes"
	routes := []RouteConfig{
		bad,
		route("ok", mq("x"), aq("y")),
		route("a", aq("q"), map[string]any{"mqtt": "t", "qos": 7}),
		{From: mq("z"), To: aq("{nope}")},
	}
	_, err := Compile(routes, Options{})
	var es CompileErrors
	if !errors.As(err, &es) {
		t.Fatalf("got %T %v, want CompileErrors", err, err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Path)
	}
	want := []string{"routes[0].delivery", "routes[0].from.mqtt", "routes[2].name", "routes[2].to.qos", "routes[3].to.amqp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("error paths %v, want %v\n%v", got, want, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("Error() has %d lines, want %d", n, len(want))
	}
	if es[4].Name != "" || strings.Contains(es[4].Error(), "(route") {
		t.Errorf("an unnamed route's error names it: %q", es[4].Error())
	}
}

func TestCompileQueuePatterns(t *testing.T) {
	_, err := Compile(nil, Options{Queues: []QueueConfig{{Name: "a"}, {Match: "jobs/{x}"}}})
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Path != "queues[1].match" || ce.Route != -1 {
		t.Fatalf("got %v, want an error at queues[1].match", err)
	}
}

func TestCompileAccepts(t *testing.T) {
	routes := []RouteConfig{
		route("leading slash", mq("/a/b"), aq("/x/{topic}")),
		route("literal braces", mq("a/{{b}}"), aq("x/{{y}}")),
		route("all placeholders", mq("{site}/+/{device}/#"), aq("{site}/{device}/{client-id}/{identity}/{#}")),
		route("uplink dotted", mq("devices/{d}/#"), map[string]any{"uplink": "backend", "address": "/exchanges/amq.topic/{d}.{#}", "separator": "."}),
		route("uplink source", map[string]any{"uplink": "backend", "address": "cmd.{d}", "separator": "."}, mq("devices/{d}/cmd")),
		route("uplink empty levels", map[string]any{"uplink": "backend", "address": "/queues//x"}, mq("q")),
		route("qos forms", aq("a"), map[string]any{"mqtt": "t", "qos": uint64(2), "retain": true}),
		route("qos float", aq("b"), map[string]any{"mqtt": "t", "qos": float64(1)}),
		route("dollar literal", mq("a"), mq("$share-not/x")),
	}
	routes[6].Delivery = "exactly-once"
	r, err := Compile(routes, Options{Uplinks: []string{"backend"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Routes()) != len(routes) {
		t.Fatalf("%d routes compiled, want %d", len(r.Routes()), len(routes))
	}
	rt := r.Routes()[6]
	if rt.QoS != 2 || rt.Retain != RetainTrue || rt.Delivery != ExactlyOnce || rt.To.Kind != KindMQTT {
		t.Errorf("route 6 = %+v", rt)
	}
	if rt := r.Routes()[3]; rt.To.Separator != '.' || rt.To.Uplink != "backend" || rt.To.Kind != KindUplink {
		t.Errorf("route 3 = %+v", rt.To)
	}
	if r.Unroutable() != "accept" {
		t.Errorf("Unroutable() = %q, want accept by default", r.Unroutable())
	}
	unnamed, err := Compile([]RouteConfig{{From: mq("a"), To: aq("b")}}, Options{})
	if err != nil || unnamed.Routes()[0].Name != "routes[0]" {
		t.Errorf("unnamed route: %v %v", unnamed, err)
	}
}

// TestRouteConfigMatchesConfig: config.Route and RouteConfig convert into each other, so the
// gateway hands the configuration's routes over without copying field by field, and config can
// use DefaultRoutes. It stops compiling when either type changes alone.
func TestRouteConfigMatchesConfig(t *testing.T) {
	in := config.Route{Name: "n", From: mq("a"), To: aq("b"), Delivery: "auto",
		Properties: map[string]string{"subject": "s"}, ApplicationProperties: map[string]string{"k": "v"}, RequireSubscriber: true}
	rc := RouteConfig(in)
	if back := config.Route(rc); back.Name != "n" || back.From["mqtt"] != "a" || !back.RequireSubscriber || back.Properties["subject"] != "s" {
		t.Errorf("round trip %+v", back)
	}
	if _, err := Compile([]RouteConfig{rc}, Options{}); err != nil {
		t.Error(err)
	}
	var q config.Queue
	_ = QueueConfig{Name: q.Name, Match: q.Match}
}
