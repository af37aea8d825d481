package devices

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// refMatch is the MQTT matching rule written the obvious way, as the
// reference the compiled ACL is checked against: does filter match topic?
func refMatch(filter, topic string) bool {
	if strings.HasPrefix(filter, "$share/") {
		parts := strings.SplitN(filter, "/", 3)
		if len(parts) < 3 || parts[1] == "" || parts[2] == "" {
			return false
		}
		filter = parts[2]
	}
	f, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	if (f[0] == "+" || f[0] == "#") && strings.HasPrefix(topic, "$") {
		return false // [MQTT-4.7.2-1]
	}
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(tl) || l != "+" && l != tl[i] {
			return false
		}
	}
	return len(f) == len(tl)
}

func mustACL(t testing.TB, id string, patterns ...string) *ACL {
	t.Helper()
	a, err := CompileACL(patterns, id)
	if err != nil {
		t.Fatalf("CompileACL(%q): %v", patterns, err)
	}
	return a
}

func TestAllowsTopic(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		allow    []string
		deny     []string
	}{
		{[]string{"devices/{id}/#"},
			[]string{"devices/sensor-42", "devices/sensor-42/", "devices/sensor-42/t", "devices/sensor-42/a/b/c", "devices/sensor-42//x"},
			[]string{"devices/sensor-420", "devices/sensor-420/x", "devices/sensor-4", "devices/sensor-4/x", "devices", "devices/", "devices//sensor-42",
				"Devices/sensor-42/x", "devices/sensor-42/+", "devices/sensor-42/#", "devices/sensor-42/a+", "", "devices/sensor-42/\x00"}},
		{[]string{"#"},
			[]string{"a", "/", "a/b/c", "//", "x$"},
			[]string{"$SYS/x", "$", "$events/presence", "$share/g/x", ""}},
		{[]string{"+/#"},
			[]string{"x", "x/y", "/"},
			[]string{"$events/presence", "$SYS"}},
		{[]string{"+"},
			[]string{"a", "sensor"},
			[]string{"a/b", "/", "$x"}},
		{[]string{"+/+"},
			[]string{"/", "a/b"},
			[]string{"a", "a/b/c", "$a/b"}},
		{[]string{"$SYS/#"},
			[]string{"$SYS", "$SYS/x", "$SYS/a/b"},
			[]string{"$SYSX", "$SYSX/a", "SYS/a", "$sys/a"}},
		{[]string{"$SYS/+/presence"},
			[]string{"$SYS/isthmus/presence"},
			[]string{"$SYS/presence", "$SYS/a/b/presence"}},
		{[]string{"devices/+/status"},
			[]string{"devices/a/status", "devices//status"},
			[]string{"devices/a/b/status", "devices/a/status/x", "devices/status", "devices/a/statu"}},
		{[]string{"/"},
			[]string{"/"},
			[]string{"", "//", "a/"}},
		{[]string{"a//b"},
			[]string{"a//b"},
			[]string{"a/b", "a///b"}},
		{[]string{"/#"},
			[]string{"/", "/a", "//"},
			[]string{"a", "a/"}},
		{[]string{"telemetry", "events/#"},
			[]string{"telemetry", "events", "events/x"},
			[]string{"telemetry/x", "Telemetry", "telemetr", "eventsx"}},
		{[]string{"a/+/c/#", "x/+/+"},
			[]string{"a/b/c", "a//c/d/e", "x/y/z", "x//"},
			[]string{"a/b", "a/b/d", "x/y", "x/y/z/w"}},
	} {
		a := mustACL(t, "sensor-42", tc.patterns...)
		for _, topic := range tc.allow {
			if !a.AllowsTopic(topic) {
				t.Errorf("%q does not allow topic %q", tc.patterns, topic)
			}
		}
		for _, topic := range tc.deny {
			if a.AllowsTopic(topic) {
				t.Errorf("%q allows topic %q", tc.patterns, topic)
			}
		}
	}
	var none *ACL
	if none.AllowsTopic("a") || none.AllowsFilter("a") || denyAll.AllowsTopic("a") || denyAll.AllowsFilter("#") {
		t.Error("a nil or empty ACL allows something")
	}
	for _, s := range []string{"a", "$SYS/x", "#", "$share/g/#"} {
		if !AllowAll.AllowsTopic(s) || !AllowAll.AllowsFilter(s) {
			t.Errorf("AllowAll refuses %q", s)
		}
	}
}

func TestAllowsFilter(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		allow    []string
		deny     []string
	}{
		{[]string{"devices/{id}/#"},
			[]string{"devices/sensor-42/#", "devices/sensor-42", "devices/sensor-42/+", "devices/sensor-42/+/x/#", "devices/sensor-42/",
				"devices/sensor-42//x", "devices/sensor-42/commands/#", "$share/g/devices/sensor-42/#", "$share/g/devices/sensor-42"},
			[]string{"#", "+/#", "+", "devices/#", "devices/+", "devices/+/x", "devices/+/#", "devices/sensor-420/x", "devices/sensor-420/#",
				"devices/sensor-4/#", "devices//x", "devices", "$share/g/#", "$share//devices/sensor-42/#", "$share/g", "$share/g/",
				"$share/+/devices/sensor-42/x", "$share/#", "$share/g/devices/+/x",
				"devices/sensor-42/#/x", "devices/sensor-42/a+", "devices/sensor-42/a#", "", "devices/sensor-42/\x00", "$SYS/#"}},
		{[]string{"#"},
			[]string{"#", "+/#", "+", "a/b", "/", "a/+/#", "$share/g/#", "$share/g/a/b"},
			[]string{"$SYS/#", "$SYS/x", "$SYS", "$share/g/$SYS/x", "$share/g/$SYS/#", "$events/+"}},
		{[]string{"+/#"},
			[]string{"+/#", "a", "+", "a/#", "/"},
			[]string{"#", "$SYS/x", "$x"}}, // # is refused although +/# matches the same topics: sound, not complete
		{[]string{"$SYS/#"},
			[]string{"$SYS/#", "$SYS", "$SYS/broker/x", "$SYS/+", "$share/g/$SYS/#"},
			[]string{"#", "+/broker", "+/#", "$SYSX/a", "$SYSX/#", "$sys/#"}},
		{[]string{"devices/+/status"},
			[]string{"devices/+/status", "devices/a/status", "devices//status", "$share/g/devices/+/status"},
			[]string{"devices/#", "devices/+/+", "devices/+/status/#", "devices/+", "+/a/status", "devices/a/status/x"}},
		{[]string{"a/+"},
			[]string{"a/", "a/+", "a/b"},
			[]string{"a", "a/#", "a/b/c", "a/+/#", "+/b"}},
		{[]string{"a"},
			[]string{"a"},
			[]string{"a/#", "a/", "+", "#", "a/+"}},
		{[]string{"+"},
			[]string{"+", "a", "x"},
			[]string{"$x", "", "a/b", "#", "+/#"}},
		{[]string{"a", "a/+/#"},
			[]string{"a", "a/b", "a/+", "a/+/#", "a/b/c"},
			[]string{"a/#"}}, // only the union of both covers a/#: refused
		{[]string{"devices/{id}/#", "devices/{id}/commands/#", "telemetry", "events/+", "$SYS/isthmus/presence/{id}"},
			[]string{"events/+", "events/x", "telemetry", "$SYS/isthmus/presence/sensor-42", "$share/grp/events/+"},
			[]string{"events/#", "telemetry/#", "$SYS/isthmus/presence/+", "$SYS/isthmus/#", "events"}},
	} {
		a := mustACL(t, "sensor-42", tc.patterns...)
		for _, f := range tc.allow {
			if !a.AllowsFilter(f) {
				t.Errorf("%q does not allow filter %q", tc.patterns, f)
			}
		}
		for _, f := range tc.deny {
			if a.AllowsFilter(f) {
				t.Errorf("%q allows filter %q", tc.patterns, f)
			}
		}
	}
}

func TestCompileACLErrors(t *testing.T) {
	for _, tc := range []struct {
		pattern, id, want string
	}{
		{"devices/{device}/#", "s", "unknown placeholder {device}: {id} is the only one"},
		{"devices/{id", "s", "'{' at byte 8 does not start {id}"},
		{"devices/{ID}", "s", "unknown placeholder {ID}"},
		{"devices/{id}}", "s", "'}' at byte 12 closes no placeholder"},
		{"}", "s", "'}' at byte 0"},
		{"a/#/b", "s", "'#' must be the last level"},
		{"a/b#", "s", "'#' must be the last level"},
		{"#/", "s", "'#' must be the last level"},
		{"a+/b", "s", "'+' must occupy a whole level"},
		{"a/+b", "s", "'+' must occupy a whole level"},
		{"", "s", "empty pattern"},
		{"{id}", "", "{id} needs a device id"},
		{"{id}/x", "a/b", "the id contains '/'"},
		{"{id}/x", "$SYS", "the id contains '$'"},
		{"$share/g/x", "s", "a shared subscription"},
		{"$share", "s", "a shared subscription"},
		{"a\x00b", "s", "null character"},
		{"a\xffb", "s", "not valid UTF-8"},
		{strings.Repeat("a", 65536), "s", "longer than 65535 bytes"},
	} {
		_, err := CompileACL([]string{"ok", tc.pattern}, tc.id)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Index != 1 || pe.Pattern != tc.pattern || !strings.Contains(pe.Msg, tc.want) {
			t.Errorf("CompileACL(%q, %q) = %v, want a PatternError at index 1 saying %q", tc.pattern, tc.id, err, tc.want)
		}
	}
	// Every bad pattern is reported, not only the first.
	_, err := CompileACL([]string{"a/#/b", "ok", "{x}"}, "s")
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Errorf("%d errors for 2 bad patterns: %v", n, err)
	}
	// What may be compiled.
	for _, p := range []string{"$SYS/#", "a//b", "/", "+", "#", "{id}", "x-{id}-y/{id}", "caf\u00e9/+", "$sharex/a", strings.Repeat("a", 65535)} {
		if _, err := CompileACL([]string{p}, "s"); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	a := mustACL(t, "sensor-42", "devices/{id}/#", "x-{id}-{id}")
	if got := a.Patterns(); len(got) != 2 || got[0] != "devices/sensor-42/#" || got[1] != "x-sensor-42-sensor-42" {
		t.Errorf("Patterns() = %q", got)
	}
	if a.String() != `["devices/sensor-42/#" "x-sensor-42-sensor-42"]` || AllowAll.String() != "all" {
		t.Errorf("String() = %s, %s", a, AllowAll)
	}
}

// testLevels are the random levels from an alphabet that holds the tricky
// cases: empty levels, $-levels, prefixes of one another.
var testLevels = []string{"a", "b", "ab", "", "$s", "$SYS"}

func randomFilter(r *rand.Rand, wild bool) string {
	for {
		if f := randomLevels(r, wild); f != "" {
			return f
		}
	}
}

func randomLevels(r *rand.Rand, wild bool) string {
	n := 1 + r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		switch x := r.IntN(10); {
		case wild && x < 2:
			parts[i] = "+"
		case wild && x == 2 && i == n-1:
			parts[i] = "#"
		default:
			parts[i] = testLevels[r.IntN(len(testLevels))]
		}
	}
	return strings.Join(parts, "/")
}

// topicsOf returns random topics drawn from filter f's shape: + and # are
// replaced by random levels. Some do not match f (a $ where f starts with a
// wildcard); the caller filters with refMatch.
func topicsOf(r *rand.Rand, f string) []string {
	if strings.HasPrefix(f, "$share/") {
		f = strings.SplitN(f, "/", 3)[2]
	}
	var out []string
	for range 8 {
		var parts []string
		for _, l := range strings.Split(f, "/") {
			switch l {
			case "+":
				parts = append(parts, testLevels[r.IntN(len(testLevels))])
			case "#":
				for range r.IntN(3) {
					parts = append(parts, testLevels[r.IntN(len(testLevels))])
				}
			default:
				parts = append(parts, l)
			}
		}
		if t := strings.Join(parts, "/"); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// TestACLProperty: for random pattern/filter pairs, AllowsFilter(F) implies
// that every topic F matches passes AllowsTopic, and AllowsTopic agrees with
// the reference matcher on every topic.
func TestACLProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	allowed, total := 0, 0
	for range 200000 {
		np := 1 + r.IntN(2)
		pats := make([]string, np)
		for i := range pats {
			pats[i] = randomFilter(r, true)
		}
		a, err := CompileACL(pats, "s")
		if err != nil {
			t.Fatalf("%q: %v", pats, err)
		}
		f := randomFilter(r, true)
		if r.IntN(8) == 0 {
			f = "$share/g/" + f
		}
		total++
		ok := a.AllowsFilter(f)
		if ok {
			allowed++
		}
		for _, topic := range topicsOf(r, f) {
			want := false
			for _, p := range pats {
				want = want || refMatch(p, topic)
			}
			if got := a.AllowsTopic(topic); got != want {
				t.Fatalf("%q AllowsTopic(%q) = %v, reference says %v", pats, topic, got, want)
			}
			if ok && refMatch(f, topic) && !want {
				t.Fatalf("%q allows filter %q but not topic %q, which it matches", pats, f, topic)
			}
		}
	}
	// The property is vacuous if nothing is ever allowed.
	if allowed < total/50 {
		t.Fatalf("only %d of %d filters allowed: the generator does not exercise AllowsFilter", allowed, total)
	}
	t.Logf("%d of %d random filters allowed", allowed, total)
}

// TestACLCoverExact compares AllowsFilter with the definition for a single
// pattern: P covers F iff every topic F matches is matched by P, checked
// over every topic of up to 4 levels from a small alphabet. AllowsFilter must
// never allow more; it may refuse a covered filter only in the documented
// blind spot: F ends with # where P has + then # (# and +/# match the same
// topics, as a topic has at least one level).
func TestACLCoverExact(t *testing.T) {
	alpha := []string{"a", "b", "", "$s"}
	var topics []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, l := range alpha {
			topic := l
			if depth > 0 {
				topic = prefix + "/" + l
			}
			if topic != "" {
				topics = append(topics, topic)
			}
			if depth < 3 {
				gen(topic, depth+1)
			}
		}
	}
	gen("", 0)
	var filters []string
	var genF func(prefix string, depth int)
	genF = func(prefix string, depth int) {
		for _, l := range []string{"a", "", "$s", "+", "#"} {
			f := l
			if depth > 0 {
				f = prefix + "/" + l
			}
			if validFilter(f) {
				filters = append(filters, f)
			}
			if l != "#" && depth < 2 {
				genF(f, depth+1)
			}
		}
	}
	genF("", 0)
	blind := 0
	for _, p := range filters {
		a := mustACL(t, "s", p)
		for _, f := range filters {
			covered := true
			for _, topic := range topics {
				if refMatch(f, topic) && !refMatch(p, topic) {
					covered = false
					break
				}
			}
			switch got := a.AllowsFilter(f); {
			case got && !covered:
				t.Errorf("pattern %q allows filter %q, which matches a topic the pattern does not", p, f)
			case !got && covered:
				if !strings.HasSuffix(f, "#") || !strings.HasSuffix(p, "+/#") {
					t.Errorf("pattern %q covers filter %q but AllowsFilter refuses it", p, f)
				}
				blind++
			}
		}
	}
	t.Logf("%d patterns x %d filters over %d topics; %d covered pairs refused (+/# vs #)", len(filters), len(filters), len(topics), blind)
}

func TestAllowsZeroAllocs(t *testing.T) {
	a := benchACL(t)
	for name, f := range map[string]func(){
		"topic hit":   func() { a.AllowsTopic("commands/sensor-42/reboot/reply") },
		"topic miss":  func() { a.AllowsTopic("devices/sensor-43/telemetry/temperature") },
		"filter hit":  func() { a.AllowsFilter("$share/g/devices/sensor-42/+/status") },
		"filter miss": func() { a.AllowsFilter("devices/+/telemetry/#") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

// benchACL is a device with 5 patterns, the shapes SPEC §7 shows.
func benchACL(tb testing.TB) *ACL {
	return mustACL(tb, "sensor-42",
		"devices/{id}/#",
		"telemetry/{id}",
		"events/+/{id}",
		"$SYS/isthmus/presence/{id}",
		"commands/{id}/+/reply")
}

func BenchmarkAllowsTopic(b *testing.B) {
	a := benchACL(b)
	for _, bc := range []struct{ name, topic string }{
		{"first", "devices/sensor-42/telemetry/temperature"},
		{"last", "commands/sensor-42/reboot/reply"},
		{"miss", "devices/sensor-43/telemetry/temperature"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			want := bc.name != "miss"
			for b.Loop() {
				if a.AllowsTopic(bc.topic) != want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkAllowsFilter(b *testing.B) {
	a := benchACL(b)
	for _, bc := range []struct{ name, filter string }{
		{"first", "devices/sensor-42/+/status"},
		{"last", "commands/sensor-42/+/reply"},
		{"shared", "$share/g/devices/sensor-42/#"},
		{"miss", "devices/+/telemetry/#"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			want := bc.name != "miss"
			for b.Loop() {
				if a.AllowsFilter(bc.filter) != want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
