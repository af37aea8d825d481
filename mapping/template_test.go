package mapping

import (
	"errors"
	"strings"
	"testing"
)

// renderCase compiles one route, matches name against it and renders the destination.
func renderOne(t *testing.T, from, to map[string]any, name, clientID, identity string) (string, error) {
	t.Helper()
	r, err := Compile([]RouteConfig{route("r", from, to)}, Options{Uplinks: []string{"b"}})
	if err != nil {
		t.Fatalf("compile %v → %v: %v", from, to, err)
	}
	var ms []Match
	switch {
	case from["mqtt"] != nil:
		ms = r.MatchMQTT(name)
	case from["amqp"] != nil:
		ms = r.MatchAMQP(name)
	default:
		ms = r.MatchUplink("b", name)
	}
	if len(ms) != 1 {
		t.Fatalf("%v does not match %q", from, name)
	}
	return ms[0].Destination(clientID, identity)
}

func TestRender(t *testing.T) {
	up := func(addr string, sep string) map[string]any {
		m := map[string]any{"uplink": "b", "address": addr}
		if sep != "" {
			m["separator"] = sep
		}
		return m
	}
	tests := []struct {
		name         string
		from, to     map[string]any
		src          string
		client, iden string
		want         string // rendered result, or the reason of the error when wantErr
		wantErr      bool
	}{
		{"captures", mq("devices/{d}/{k}"), aq("{k}/{d}"), "devices/x/temp", "", "", "temp/x", false},
		{"rest", mq("a/#"), aq("b/{#}"), "a/c/d", "", "", "b/c/d", false},
		{"rest empty collapses", mq("a/#"), aq("b/{#}"), "a", "", "", "b", false},
		{"rest empty first collapses", mq("a/#"), aq("{#}/b"), "a", "", "", "b", false},
		{"rest empty middle collapses", mq("a/#"), aq("x/{#}/y"), "a", "", "", "x/y", false},
		{"rest empty alone", mq("a/#"), aq("{#}"), "a", "", "", "renders empty", true},
		{"rest keeps source's empty levels", mq("a/#"), aq("b/{#}"), "a//c", "", "", "b//c", false},
		{"whole topic", mq("#"), aq("{topic}"), "/lead/slash", "", "", "/lead/slash", false},
		{"client and identity", mq("x"), mq("c/{client-id}/{identity}"), "x", "c1", "dev-1", "c/c1/dev-1", false},
		{"capture in text", mq("d/{id}"), aq("dev-{id}-events"), "d/7", "", "", "dev-7-events", false},
		{"literal braces", mq("d/{id}"), aq("{{{id}}}"), "d/7", "", "", "{7}", false},
		{"literal dollar is the user's", mq("d/{id}"), mq("$share-like/{id}"), "d/7", "", "", "$share-like/7", false},

		// Injection: captured text never makes a wildcard, extra or empty level, or a $ name.
		{"plus from amqp", aq("commands/{d}"), mq("devices/{d}/cmd"), "commands/+", "", "", "contains +", true},
		{"hash from amqp", aq("commands/{d}"), mq("devices/{d}/cmd"), "commands/#", "", "", "contains #", true},
		{"plus inside", aq("commands/{d}"), mq("devices/{d}/cmd"), "commands/a+b", "", "", "contains +", true},
		{"wildcard in rest", aq("c/#"), mq("d/{#}"), "c/x/+", "", "", "contains +", true},
		{"wildcard in whole", aq("#"), mq("{address}"), "x/#", "", "", "contains #", true},
		{"empty capture", aq("c/{d}"), mq("devices/{d}/cmd"), "c/", "", "", "empty, which would make an empty level", true},
		{"empty capture in text is fine", aq("c/{d}"), mq("devices/x{d}/cmd"), "c/", "", "", "devices/x/cmd", false},
		{"two empty captures in one level", aq("c/{a}/{b}"), mq("d/{a}{b}/e"), "c//", "", "", "empty", true},
		{"NUL", aq("c/{d}"), mq("d/{d}"), "c/a\x00b", "", "", "NUL", true},
		{"control character", aq("c/{d}"), mq("d/{d}"), "c/a\nb", "", "", "control character", true},
		{"C1 control character", aq("c/{d}"), mq("d/{d}"), "c/a\u0085b", "", "", "control character", true},
		{"bad UTF-8", aq("c/{d}"), mq("d/{d}"), "c/a\xffb", "", "", "UTF-8", true},
		{"client id with slash", mq("x"), mq("c/{client-id}"), "x", "a/b", "", "contains /, which would add levels", true},
		{"client id wildcard", mq("x"), aq("c/{client-id}"), "x", "#", "", "contains #", true},
		{"empty client id", mq("x"), mq("c/{client-id}"), "x", "", "", "empty", true},
		{"anonymous identity", mq("x"), mq("c/{identity}/x"), "x", "c", "", "empty", true},
		{"dollar from capture", aq("c/{d}"), mq("{d}/x"), "c/$SYS", "", "", "start the topic with $", true},
		{"dollar from client id", mq("x"), aq("{client-id}"), "x", "$events", "", "start the address with $", true},
		{"dollar inside is fine", aq("c/{d}"), mq("x/{d}"), "c/$SYS", "", "", "x/$SYS", false},
		{"too long", aq("c/#"), mq("{#}"), "c/" + strings.Repeat("x", maxTopicLen+1), "", "", "longer than 65535", true},
		{"longest", aq("c/#"), mq("{#}"), "c/" + strings.Repeat("x", maxTopicLen), "", "", strings.Repeat("x", maxTopicLen), false},

		// Uplinks: the backend's syntax, `.` separator escaping, * refused.
		{"uplink slash", mq("devices/{d}/#"), up("/queues/{d}", ""), "devices/x/y", "", "", "/queues/x", false},
		{"uplink dotted", mq("devices/{d}/#"), up("/exchanges/amq.topic/devices.{d}.{#}", "."), "devices/v1.2/a/b%c", "", "", "/exchanges/amq.topic/devices.v1%2E2.a.b%25c", false},
		{"uplink dotted whole", mq("#"), up("{topic}", "."), "a.b/c", "", "", "a%2Eb.c", false},
		{"uplink dotted rest empty", mq("a/#"), up("k.{#}", "."), "a", "", "", "k", false},
		{"uplink star", mq("d/{d}"), up("k.{d}", "."), "d/*", "", "", "contains *", true},
		{"uplink client slash", mq("x"), up("k.{client-id}", "."), "x", "a/b", "", "contains /", true},
		{"uplink to uplink dotted", map[string]any{"uplink": "b", "address": "in.{x}.#", "separator": "."}, up("out.{x}.{#}", "."), "in.a%2Eb.c.d", "", "", "out.a%2Eb.c.d", false},
		{"uplink dotted to mqtt", map[string]any{"uplink": "b", "address": "in.{x}", "separator": "."}, mq("x/{x}"), "in.a%2Eb", "", "", "x/a.b", false},
		{"uplink dotted level with slash", map[string]any{"uplink": "b", "address": "in.{x}", "separator": "."}, mq("x/{x}"), "in.a/b", "", "", "contains /", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderOne(t, tt.from, tt.to, tt.src, tt.client, tt.iden)
			if tt.wantErr {
				var re *RenderError
				if err == nil || !errors.Is(err, ErrUnsafeCapture) || !errors.As(err, &re) {
					t.Fatalf("rendered %q, %v; want an unsafe-capture error", truncate(got), err)
				}
				if !strings.Contains(re.Reason, tt.want) {
					t.Errorf("reason %q, want …%s…", re.Reason, tt.want)
				}
				if re.Route != "r" || !strings.HasPrefix(re.Field, "to.") {
					t.Errorf("error names %q %q", re.Route, re.Field)
				}
				if got != "" {
					t.Errorf("rendered %q alongside an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("rendered %q, %v; want %q", truncate(got), err, truncate(tt.want))
			}
		})
	}
}

func TestRenderErrorText(t *testing.T) {
	_, err := renderOne(t, aq("commands/{device}"), mq("devices/{device}/commands"), "commands/"+strings.Repeat("+", 100), "", "")
	want := `mapping: route "r" to.mqtt: {device} = "` + strings.Repeat("+", 64) + `…": contains +, which would make a wildcard`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestRenderAllocs(t *testing.T) {
	r := benchRouter(t, 10)
	ms := r.MatchMQTT("devices/d5/telemetry/temperature")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := ms[0].Destination("c", ""); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Destination: %v allocs, want 1 (the string)", allocs)
	}
}
