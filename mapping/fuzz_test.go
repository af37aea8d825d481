package mapping

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fillPattern makes a name the pattern should match: wildcards and captures are replaced by the
// comma-separated pieces of fill, `#` by what remains.
func fillPattern(pattern string, sep byte, fill string) string {
	pieces := strings.Split(fill, ",")
	next := func() string {
		p := pieces[0]
		if len(pieces) > 1 {
			pieces = pieces[1:]
		}
		return strings.ReplaceAll(p, string(sep), "")
	}
	levels := strings.Split(pattern, string(sep))
	for i, lv := range levels {
		switch {
		case lv == "+" || isCapture(lv):
			levels[i] = next()
		case lv == "#":
			levels[i] = strings.Join(pieces, string(sep))
		default:
			levels[i] = strings.NewReplacer("{{", "{", "}}", "}").Replace(lv)
		}
	}
	return strings.Join(levels, string(sep))
}

// FuzzCompilePattern: no pattern makes Compile panic, and an accepted pattern matches exactly the
// names the slow reference matcher says it matches, with the captures at the right levels.
func FuzzCompilePattern(f *testing.F) {
	for _, s := range [][3]string{
		{"devices/{device}/telemetry/#", "devices/d1/telemetry/x", "d1,a,b"},
		{"#", "$SYS/x", "a"},
		{"+/+", "a/", ","},
		{"a/{{b}}/+", "a/{b}/c", "c"},
		{"/a/{x}", "/a/b", "b"},
		{"a.{b}.#", "a.x%2Ey.z", "x%2Ey,z"},
		{"{a}/{a}", "x/y", "x,y"},
		{"a/#/b", "a/x/b", "x"},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2], false)
		f.Add(s[0], s[1], s[2], true)
	}
	f.Fuzz(func(t *testing.T, pattern, name, fill string, dotted bool) {
		var from map[string]any
		sep := byte('/')
		if dotted {
			sep = '.'
			from = map[string]any{"uplink": "u", "address": pattern, "separator": "."}
		} else {
			from = mq(pattern)
		}
		r, err := Compile([]RouteConfig{route("r", from, mq("x"))}, Options{Uplinks: []string{"u"}})
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Path == "" || ce.Msg == "" {
				t.Fatalf("error %v is not a positioned CompileError", err)
			}
			return
		}
		match := func(n string) []Match {
			if dotted {
				return r.MatchUplink("u", n)
			}
			return r.MatchMQTT(n)
		}
		for _, n := range []string{name, fillPattern(pattern, sep, fill)} {
			ms := match(n)
			if got, want := len(ms) == 1, refMatch(pattern, sep, n); got != want {
				t.Fatalf("pattern %q on %q: tree %v, reference %v", pattern, n, got, want)
			}
			if len(ms) == 1 {
				levels := strings.Split(n, string(sep))
				p := ms[0].Route.pattern
				for i, c := range ms[0].Captures() {
					var want string
					if i < len(p.captures) {
						want = levels[p.captures[i].level]
						if dotted {
							want = UnescapeLevel(want)
						}
					} else if k := len(p.levels) - 1; k < len(levels) {
						want = strings.Join(levels[k:], string(sep))
						if dotted {
							want = KeyToTopic(want)
						}
					}
					if c.Value != want {
						t.Fatalf("pattern %q on %q: {%s} = %q, want %q", pattern, n, c.Name, c.Value, want)
					}
				}
			}
		}
	})
}

// FuzzRender: whatever the captured text, client id or identity, a rendered topic or address has
// no wildcard, NUL or control character, no empty level its template or source did not have, and
// does not start with $ unless its template does. Refusals are ErrUnsafeCapture.
func FuzzRender(f *testing.F) {
	for _, s := range [][4]string{
		{"devices/{a}/{b}/{#}", "x/+/y/z", "c", "i"},
		{"{client-id}/{identity}", "x/y/z", "a/b", ""},
		{"{a}{b}/x", "//", "c", "i"},
		{"{#}", "x/y", "c", "i"},
		{"t/{a}", "$SYS/y/z", "c", "i"},
		{"{a}/t", "x/$SYS/z", "c", "i"},
		{"{address}", "a/#", "c", "i"},
		{"k.{a}.{#}", "v1.2/%/z/w", "c", "i"},
		{"out/{#}", "a/b", "c\x00", "i\n"},
	} {
		for kind := range uint8(4) {
			f.Add(s[0], s[1], s[2], s[3], kind)
		}
	}
	f.Fuzz(func(t *testing.T, tmpl, name, clientID, identity string, kind uint8) {
		to := map[string]any{}
		dest := outTopic
		switch kind % 4 {
		case 0:
			to["mqtt"] = tmpl
		case 1:
			to["amqp"], dest = tmpl, outAddress
		case 2:
			to["uplink"], to["address"], dest = "u", tmpl, outUplink
		case 3:
			to["uplink"], to["address"], to["separator"], dest = "u", tmpl, ".", outUplink
		}
		// An AMQP source: its address may hold anything a peer sends, wildcards included.
		r, err := Compile([]RouteConfig{route("r", aq("{a}/{b}/#"), to)}, Options{Uplinks: []string{"u"}})
		if err != nil {
			return
		}
		ms := r.MatchAMQP(name)
		if len(ms) == 0 {
			return
		}
		out, err := ms[0].Destination(clientID, identity)
		if err != nil {
			if !errors.Is(err, ErrUnsafeCapture) {
				t.Fatalf("error %v does not wrap ErrUnsafeCapture", err)
			}
			return
		}
		literal := literalText(ms[0].Route.to)
		if dest != outUplink || !strings.ContainsAny(literal, "+#*") {
			bad := "+#\x00"
			if dest == outUplink {
				bad += "*"
			}
			if strings.ContainsAny(out, bad) {
				t.Fatalf("template %q, name %q, client %q, identity %q: rendered %q", tmpl, name, clientID, identity, out)
			}
		}
		for _, r := range out {
			if (r < 0x20 || r >= 0x7f && r <= 0x9f) && !strings.ContainsRune(literal, r) {
				t.Fatalf("rendered %q holds control character %U", out, r)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("rendered %q is not UTF-8", out)
		}
		if dest == outUplink {
			return
		}
		if len(out) == 0 || dest == outTopic && len(out) > maxTopicLen {
			t.Fatalf("rendered %d bytes", len(out))
		}
		if out[0] == '$' && tmpl[0] != '$' {
			t.Fatalf("template %q rendered %q, a $ name", tmpl, out)
		}
		sourceEmpty := strings.Contains(name, "//") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/")
		if !sourceEmpty && !strings.HasPrefix(tmpl, "/") {
			for _, lv := range strings.Split(out, "/") {
				if lv == "" {
					t.Fatalf("template %q, name %q, client %q, identity %q: rendered %q with an empty level", tmpl, name, clientID, identity, out)
				}
			}
		}
	})
}

// literalText returns the literal parts of a template.
func literalText(t *template) string {
	var b strings.Builder
	for _, g := range t.groups {
		for _, s := range g.segs {
			if s.kind == segLiteral {
				b.WriteString(s.lit)
			}
		}
	}
	return b.String()
}
