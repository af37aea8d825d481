package mapping

import (
	"fmt"
	"strings"
	"testing"
)

// refMatch is the slow reference matcher the tree is checked against: MQTT 5 §4.7 written as
// directly as possible. pattern levels {name} match like +.
func refMatch(pattern string, sep byte, name string) bool {
	f := strings.Split(pattern, string(sep))
	t := strings.Split(name, string(sep))
	if name == "" {
		return false
	}
	// [MQTT-4.7.2-1] a leading wildcard does not match a name starting with $.
	if strings.HasPrefix(name, "$") && (f[0] == "+" || f[0] == "#" || isCapture(f[0])) {
		return false
	}
	var rec func(f, t []string) bool
	rec = func(f, t []string) bool {
		if len(f) == 0 {
			return len(t) == 0
		}
		if f[0] == "#" {
			return true // also matches zero levels: the parent
		}
		if len(t) == 0 {
			return false
		}
		if f[0] == "+" || isCapture(f[0]) {
			return rec(f[1:], t[1:])
		}
		lit := strings.NewReplacer("{{", "{", "}}", "}").Replace(f[0])
		return lit == t[0] && rec(f[1:], t[1:])
	}
	return rec(f, t)
}

func TestMatchTable(t *testing.T) {
	tests := []struct {
		pattern, topic string
		match          bool
		captures       string // name=value pairs in order, {#} last
	}{
		{"a/b", "a/b", true, ""},
		{"a/b", "a/b/c", false, ""},
		{"a/b", "a", false, ""},
		{"a/+", "a/b", true, ""},
		{"a/+", "a/", true, ""}, // + matches an empty level
		{"a/+", "a", false, ""},
		{"a/+", "a/b/c", false, ""},
		{"a/#", "a", true, "#="}, // # matches the parent level
		{"a/#", "a/b/c", true, "#=b/c"},
		{"a/#", "ab", false, ""},
		{"#", "a/b", true, "#=a/b"},
		{"#", "/a", true, "#=/a"},
		{"#", "$SYS/x", false, ""},
		{"+/x", "$SYS/x", false, ""},
		{"{d}/x", "$SYS/x", false, ""},
		{"$SYS/#", "$SYS/x", true, "#=x"},
		{"a/+/#", "a/b", true, "#="},
		{"devices/{device}/telemetry/#", "devices/d1/telemetry/t/1", true, "device=d1 #=t/1"},
		{"devices/{device}/telemetry/#", "devices//telemetry", true, "device= #="},
		{"{site}/+/{device}", "s/x/d", true, "site=s device=d"},
		{"/a/{b}", "/a/c", true, "b=c"},
		{"/a/{b}", "a/c", false, ""},
		{"a/{{b}}", "a/{b}", true, ""},
		{"a/{{b}}", "a/b", false, ""},
		{"A/b", "a/b", false, ""}, // case matters [MQTT-4.7.3-4]
		{"a/ü", "a/ü", true, ""},
	}
	for _, tt := range tests {
		r, err := Compile([]RouteConfig{route("r", mq(tt.pattern), aq("x"))}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		ms := r.MatchMQTT(tt.topic)
		if got := len(ms) == 1; got != tt.match {
			t.Errorf("%q matches %q: %v, want %v", tt.pattern, tt.topic, got, tt.match)
			continue
		}
		if ref := refMatch(tt.pattern, '/', tt.topic); ref != tt.match {
			t.Errorf("reference matcher disagrees with the table on %q %q", tt.pattern, tt.topic)
		}
		if !tt.match {
			continue
		}
		var cs []string
		for _, c := range ms[0].Captures() {
			cs = append(cs, c.Name+"="+c.Value)
		}
		if got := strings.Join(cs, " "); got != tt.captures {
			t.Errorf("%q on %q captures %q, want %q", tt.pattern, tt.topic, got, tt.captures)
		}
	}
}

// TestMatchEveryRoute checks that every matching route fires, once, in configuration order,
// and that routes of other spaces do not.
func TestMatchEveryRoute(t *testing.T) {
	routes := []RouteConfig{
		route("hash", mq("#"), aq("x")),
		route("exact", mq("a/b/c"), aq("x")),
		route("amqp", aq("a/b/c"), mq("x")),
		route("plus", mq("a/+/c"), aq("x")),
		route("capture", mq("a/{b}/c"), aq("x")),
		route("a-hash", mq("a/#"), aq("x")),
		route("other", mq("a/b/d"), aq("x")),
		route("deep-hash", mq("a/b/c/#"), aq("x")),
	}
	r, err := Compile(routes, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range r.MatchMQTT("a/b/c") {
		names = append(names, m.Route.Name)
		if m.Name != "a/b/c" {
			t.Errorf("Match.Name = %q", m.Name)
		}
	}
	if got, want := strings.Join(names, " "), "hash exact plus capture a-hash deep-hash"; got != want {
		t.Errorf("matched %q, want %q", got, want)
	}
	if ms := r.MatchAMQP("a/b/c"); len(ms) != 1 || ms[0].Route.Name != "amqp" {
		t.Errorf("MatchAMQP = %v", ms)
	}
	if ms := r.MatchMQTT(""); ms != nil {
		t.Errorf("the empty topic matched %v", ms)
	}
	if ms := r.MatchUplink("backend", "a/b/c"); ms != nil {
		t.Errorf("uplink matched %v with no uplink routes", ms)
	}
	// Appending keeps what dst held.
	dst := r.AppendMatchMQTT([]Match{{Name: "keep"}}, "a/b/d")
	if len(dst) != 4 || dst[0].Name != "keep" || dst[1].Route.Name != "hash" || dst[3].Route.Name != "other" {
		t.Errorf("AppendMatchMQTT = %v", dst)
	}
}

func TestMatchQueues(t *testing.T) {
	r, err := Compile(append(DefaultRoutes(), route("explicit", aq("jobs/#"), mq("j/{#}"))), Options{
		Queues: []QueueConfig{{Name: "telemetry"}, {Match: "jobs/#"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr  string
		queue bool
		names string
	}{
		{"telemetry", true, ""},
		{"jobs/1", true, "explicit"}, // a route that names a queue pattern still fires
		{"jobs", true, "explicit"},
		{"a/b", false, DefaultAMQPToMQTT},
		{"telemetry/x", false, DefaultAMQPToMQTT},
	}
	for _, tt := range tests {
		if got := r.IsQueue(tt.addr); got != tt.queue {
			t.Errorf("IsQueue(%q) = %v", tt.addr, got)
		}
		var names []string
		for _, m := range r.MatchAMQP(tt.addr) {
			names = append(names, m.Route.Name)
		}
		if got := strings.Join(names, " "); got != tt.names {
			t.Errorf("MatchAMQP(%q) = %q, want %q", tt.addr, got, tt.names)
		}
	}
}

func TestMatchUplink(t *testing.T) {
	routes := []RouteConfig{
		route("dotted", map[string]any{"uplink": "b", "address": "cmd.{device}.#", "separator": "."}, mq("devices/{device}/cmd/{#}")),
		route("slashed", map[string]any{"uplink": "b", "address": "/queues/{q}"}, mq("q/{q}")),
		route("other uplink", map[string]any{"uplink": "c", "address": "#"}, mq("c/{#}")),
	}
	r, err := Compile(routes, Options{Uplinks: []string{"b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	ms := r.MatchUplink("b", "cmd.dev%2E1.set.v1%2E2")
	if len(ms) != 1 || ms[0].Route.Name != "dotted" {
		t.Fatalf("MatchUplink = %v", ms)
	}
	if got := fmt.Sprint(ms[0].Captures()); got != "[{device dev.1} {# set/v1.2}]" {
		t.Errorf("captures %s: the escapes are undone and levels become /", got)
	}
	to, err := ms[0].Destination("", "")
	if err != nil || to != "devices/dev.1/cmd/set/v1.2" {
		t.Errorf("Destination = %q, %v", to, err)
	}
	if ms := r.MatchUplink("b", "/queues/jobs"); len(ms) != 1 || ms[0].Route.Name != "slashed" {
		t.Errorf("MatchUplink slashed = %v", ms)
	}
	if ms := r.MatchUplink("c", "cmd.x"); len(ms) != 1 || ms[0].Route.Name != "other uplink" {
		t.Errorf("MatchUplink other = %v", ms)
	}
	if ms := r.MatchUplink("nope", "cmd.x"); len(ms) != 0 {
		t.Errorf("an unknown uplink matched %v", ms)
	}
}

// TestMatchAllocs: with a reused destination slice, matching allocates nothing.
func TestMatchAllocs(t *testing.T) {
	r := benchRouter(t, 1000)
	dst := make([]Match, 0, 8)
	allocs := testing.AllocsPerRun(1000, func() {
		dst = r.AppendMatchMQTT(dst[:0], "devices/d500/telemetry/temperature")
	})
	if allocs != 0 || len(dst) != 1 {
		t.Errorf("AppendMatchMQTT: %v allocs, %d matches; want 0 allocs, 1 match", allocs, len(dst))
	}
	allocs = testing.AllocsPerRun(1000, func() {
		dst = r.MatchMQTT("devices/d500/telemetry/temperature")
	})
	if allocs > 1 {
		t.Errorf("MatchMQTT: %v allocs, want at most 1 (the result)", allocs)
	}
}

// TestRouterConcurrent: a Router is read-only after Compile; many goroutines may match and map
// through it at once (run with -race).
func TestRouterConcurrent(t *testing.T) {
	r := benchRouter(t, 100)
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 500 {
				topic := fmt.Sprintf("devices/d%d/telemetry/s%d", (g*31+i)%100, i)
				ms := r.MatchMQTT(topic)
				if len(ms) != 1 {
					err = fmt.Errorf("%s: %d matches", topic, len(ms))
					break
				}
				if _, e := ms[0].FromMQTT(&MQTTMessage{Topic: topic, QoS: 1}, Env{Sequence: uint64(i)}); e != nil {
					err = e
					break
				}
				_ = r.Explain(Probe{From: KindAMQP, Name: "commands/x"}).String()
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
