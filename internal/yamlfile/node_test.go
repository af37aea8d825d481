package yamlfile

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// recorder is a Walker that keeps its problems as "line:col path: message".
func recorder(visit func(*yaml.Node, string) bool) (*Walker, *[]string) {
	var problems []string
	w := &Walker{
		Report: func(line, col int, path, msg string) {
			problems = append(problems, fmt.Sprintf("%d:%d %s: %s", line, col, path, msg))
		},
		Visit: visit,
	}
	return w, &problems
}

// walk parses src, reads the pairs of the mapping at key under the root (the
// root itself when key is ""), and returns them as key=value and the
// problems as line:col path: message.
func walk(t *testing.T, src, key string, visit func(*yaml.Node, string) bool) (pairs, problems []string) {
	t.Helper()
	w, probs := recorder(visit)
	root, ok := w.Root([]byte(src), "the file", "a mapping")
	if !ok || root == nil {
		t.Fatalf("Root: %v, %v", root, *probs)
	}
	n := root
	if key != "" {
		for _, p := range w.Pairs("", root) {
			if p.Key.Value == key {
				n = Deref(p.Value)
			}
		}
		*probs = nil
	}
	for _, p := range w.Pairs(key, n) {
		v := Deref(p.Value)
		if v.Kind == yaml.ScalarNode {
			pairs = append(pairs, p.Key.Value+"="+v.Value)
		} else {
			pairs = append(pairs, p.Key.Value+"="+Describe(v))
		}
	}
	return pairs, *probs
}

func TestPairsMergeKeys(t *testing.T) {
	cases := []struct {
		name, src, key string
		pairs, probs   []string
	}{
		{"plain", "a: 1\nb: 2\n", "", []string{"a=1", "b=2"}, nil},
		{"written keys override merged ones, wherever the << is",
			"base: &b {x: 1, y: 2}\nm:\n  y: 9\n  <<: *b\n  z: 3\n", "m",
			[]string{"y=9", "z=3", "x=1"}, nil},
		{"among merged mappings the earlier wins",
			"b1: &b1 {x: 1}\nb2: &b2 {x: 2, y: 2}\nm: {<<: [*b1, *b2]}\n", "m",
			[]string{"x=1", "y=2"}, nil},
		{"merges of merges",
			"b1: &b1 {x: 1}\nb2: &b2 {<<: *b1, y: 2}\nm: {<<: *b2, z: 3}\n", "m",
			[]string{"z=3", "x=1", "y=2"}, nil},
		{"an inline mapping merges too", "m: {<<: {x: 1}, y: 2}\n", "m", []string{"y=2", "x=1"}, nil},
		{"duplicate written key",
			"m:\n  a: 1\n  a: 2\n", "m",
			[]string{"a=1"}, []string{"3:3 m.a: duplicate key (first set at line 2)"}},
		{"a duplicate merged key is no error",
			"b: &b {a: 1}\nm: {<<: [*b, *b], a: 2}\n", "m", []string{"a=2"}, nil},
		{"written key not a scalar",
			"m:\n  [a]: 1\n  b: 2\n", "m",
			[]string{"b=2"}, []string{"2:3 m: expected a key name, got a list"}},
		{"merged key not a scalar",
			"m:\n  <<: {[a]: 1, b: 2}\n", "m",
			[]string{"b=2"}, []string{"2:8 m: expected a key name, got a list"}},
		{"merge of a scalar",
			"m:\n  <<: 1\n  b: 2\n", "m",
			[]string{"b=2"}, []string{"2:7 m: merge key (<<) expects a mapping or a list of mappings, got 1"}},
		{"merge of a list with a scalar in it",
			"b: &b {x: 1}\nm: {<<: [*b, \"s\"]}\n", "m",
			[]string{"x=1"}, []string{`2:14 m: merge key (<<) expects a mapping or a list of mappings, got "s"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pairs, probs := walk(t, tc.src, tc.key, nil)
			if strings.Join(pairs, " ") != strings.Join(tc.pairs, " ") {
				t.Errorf("pairs %q, want %q", pairs, tc.pairs)
			}
			if strings.Join(probs, "\n") != strings.Join(tc.probs, "\n") {
				t.Errorf("problems\n%s\nwant\n%s", strings.Join(probs, "\n"), strings.Join(tc.probs, "\n"))
			}
		})
	}
}

// TestPairsAliasCycles: a merge key that reaches the mapping holding it is
// refused, not followed forever; the rest of the mapping is still read.
func TestPairsAliasCycles(t *testing.T) {
	for _, tc := range []struct{ name, src, key, want string }{
		{"itself", "m: &m {<<: *m, a: 1}\n", "m", "1:4 m: merge key (<<) refers to a mapping that contains it"},
		{"through another", "a: &a {x: 1}\nm: &m {<<: [*a, {<<: *m}], b: 2}\n", "m", "2:4 m: merge key (<<) refers to a mapping that contains it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pairs, probs := walk(t, tc.src, tc.key, nil)
			if len(probs) != 1 || probs[0] != tc.want {
				t.Errorf("problems %q, want %q", probs, tc.want)
			}
			if len(pairs) == 0 {
				t.Error("the mapping's own keys are lost")
			}
		})
	}
}

// TestPairsMergeBomb: merge keys whose values merge other mappings many times
// over are expanded once per mapping (8^12 pairs otherwise).
func TestPairsMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a: &a {listen: \"\"}\n")
	prev := "a"
	for i := range 12 {
		fmt.Fprintf(&b, "x%d: &m%d {<<: [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s], k%d: %d}\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, i, i)
		prev = fmt.Sprintf("m%d", i)
	}
	fmt.Fprintf(&b, "m: {<<: *%s}\n", prev)
	visits := 0
	pairs, probs := walk(t, b.String(), "m", func(*yaml.Node, string) bool { visits++; return true })
	if len(probs) != 0 || len(pairs) != 13 || pairs[0] != "listen=" || pairs[12] != "k11=11" {
		t.Errorf("pairs %q, problems %q", pairs, probs)
	}
	if visits > 1000 {
		t.Errorf("%d visits: the merges were expanded more than once each", visits)
	}
}

// TestPairsVisit: Visit is charged for every key and merged value, and a
// false stops the reading.
func TestPairsVisit(t *testing.T) {
	src := "b: &b {x: 1, y: 2}\nm: {a: 1, <<: *b, c: 3}\n"
	var seen []string
	all, _ := walk(t, src, "m", func(n *yaml.Node, path string) bool {
		seen = append(seen, path+":"+Describe(n))
		return true
	})
	// The walk helper reads the root first (b, m), then m.
	want := `:"b" :"m" m:"a" m:<< m:a mapping m:"x" m:"y" m:"c"`
	if strings.Join(seen, " ") != want {
		t.Errorf("visits %s\nwant   %s", strings.Join(seen, " "), want)
	}
	if len(all) != 4 {
		t.Errorf("pairs %q", all)
	}
	for budget := range 9 {
		left := budget
		got, _ := walk(t, src, "m", func(*yaml.Node, string) bool { left--; return left >= 0 })
		if budget < 8 && len(got) >= len(all) {
			t.Errorf("budget %d: all %d pairs read", budget, len(got))
		}
		if budget == 8 && len(got) != len(all) {
			t.Errorf("budget %d: %d pairs, want %d", budget, len(got), len(all))
		}
	}
}

func TestDescribe(t *testing.T) {
	root := parse(t, "m: {a: 1}\nl: [1]\ns: text\nq: \"42\"\ni: 42\nb: true\nn: ~\nlong: "+strings.Repeat("é", 61)+"\n")
	want := map[string]string{"m": "a mapping", "l": "a list", "s": `"text"`, "q": `"42"`, "i": "42", "b": "true", "n": "~",
		"long": `"` + strings.Repeat("é", 57) + `..."`}
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if got := Describe(v); got != want[k] {
			t.Errorf("%s: Describe = %q, want %q", k, got, want[k])
		}
	}
	if got := Describe(&yaml.Node{Kind: yaml.AliasNode, Value: "x"}); got != "an alias" {
		t.Errorf("alias: %q", got)
	}
}

func TestDerefIsNullJoin(t *testing.T) {
	root := parse(t, "a: &x {k: v}\nb: *x\nc: &n\nd: *n\ne: \"\"\n")
	node := map[string]*yaml.Node{}
	for i := 0; i < len(root.Content); i += 2 {
		node[root.Content[i].Value] = root.Content[i+1]
	}
	if node["b"].Kind != yaml.AliasNode || Deref(node["b"]) != node["a"] || Deref(node["a"]) != node["a"] {
		t.Error("Deref does not follow the alias to its anchor")
	}
	if !IsNull(node["c"]) || IsNull(node["d"]) || !IsNull(Deref(node["d"])) || IsNull(node["e"]) {
		t.Error("IsNull: want true for c and *n followed, false for the alias itself and for \"\"")
	}
	// A hand-built chain of aliases longer than yaml.v3 ever makes stops.
	n := &yaml.Node{Kind: yaml.AliasNode}
	n.Alias = n
	if Deref(n) != n {
		t.Error("a self-referring alias")
	}
	if Join("", "a") != "a" || Join("a", "b") != "a.b" || Join("l[0]", "b") != "l[0].b" {
		t.Error("Join")
	}
}

// parse returns the root mapping of src, which must have no problem.
func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	w, probs := recorder(nil)
	root, ok := w.Root([]byte(src), "the file", "a mapping")
	if !ok || root == nil || len(*probs) > 0 {
		t.Fatalf("Root: %v %v", root, *probs)
	}
	return root
}

func TestText(t *testing.T) {
	root := parse(t, "s: text\nq: \"true\"\ni: 0042\nf: 1.50\nts: 2024-01-02\nb: yes\nt: true\nl: [x]\nm: {}\nbin: !!binary aGk=\n")
	w, probs := recorder(nil)
	var got []string
	for _, p := range w.Pairs("", root) {
		if s, ok := w.Text(p.Key.Value, Deref(p.Value)); ok {
			got = append(got, p.Key.Value+"="+s)
		}
	}
	// Numbers keep their text; yes is a string in YAML 1.2 (yaml.v3).
	want := "s=text q=true i=0042 f=1.50 ts=2024-01-02 b=yes"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
	wantProbs := []string{
		"7:4 t: expected a string, got true (quote it if you mean the text)",
		"8:4 l: expected a string, got a list",
		"9:4 m: expected a string, got a mapping",
		"10:6 bin: expected a string, got aGk= with tag !!binary",
	}
	if strings.Join(*probs, "\n") != strings.Join(wantProbs, "\n") {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(*probs, "\n"), strings.Join(wantProbs, "\n"))
	}
}
