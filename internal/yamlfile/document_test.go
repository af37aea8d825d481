package yamlfile

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestRoot(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "~\n", "null\n", "---\n", "--- ~\n"} {
		w, probs := recorder(nil)
		root, ok := w.Root([]byte(in), "the file", "a mapping")
		if root != nil || !ok || len(*probs) > 0 {
			t.Errorf("%q: got %v, %v, %q; want an empty document", in, root, ok, *probs)
		}
	}
	w, probs := recorder(nil)
	root, ok := w.Root([]byte("a: 1\n"), "the file", "a mapping")
	if !ok || root == nil || root.Kind != yaml.MappingNode || root.Line != 1 || len(*probs) > 0 {
		t.Errorf("one mapping: got %#v, %v, %q", root, ok, *probs)
	}
	cases := []struct{ in, want string }{
		{"- 1\n", `1:1 : expected a mapping of things, got a list`},
		{"just text\n", `1:1 : expected a mapping of things, got "just text"`},
		{"a: 1\n---\nb: 2\n", `2:1 : a second YAML document (after ---) is not allowed: the file is one document`},
		{"---\na: 1\n---\n", `3:1 : a second YAML document (after ---) is not allowed: the file is one document`},
		{"a: 1\n---\nb: [\n", `3:1 : YAML syntax error: did not find expected node content`},
	}
	for _, tc := range cases {
		w, probs := recorder(nil)
		root, ok := w.Root([]byte(tc.in), "the file", "a mapping of things")
		if root != nil || ok || strings.Join(*probs, "\n") != tc.want {
			t.Errorf("%q: got %v, %v, %q; want %q", tc.in, root, ok, *probs, tc.want)
		}
	}
}

// TestRootPos: problems at a node are reported where Pos puts them; syntax
// errors, which have no column, at column 1.
func TestRootPos(t *testing.T) {
	w, probs := recorder(nil)
	w.Pos = func(n *yaml.Node) (int, int) { return n.Line + 100, n.Column + 10 }
	w.Root([]byte("a: 1\n---\nb: 2\n"), "the file", "a mapping")
	w.Root([]byte("a: [\n"), "the file", "a mapping")
	want := "102:11 : a second YAML document (after ---) is not allowed: the file is one document\n1:1 : YAML syntax error: did not find expected node content"
	if strings.Join(*probs, "\n") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(*probs, "\n"), want)
	}
}

// TestSyntaxErrorLine: yaml.v3 reports the line where the enclosing construct
// started; the error names the line of the culprit, inside the file, counted
// as yaml.v3 counts lines.
func TestSyntaxErrorLine(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"flow list left open", "a:\n  b: 1\n  c: [1, 2\nd: 3\n", 3, "did not find expected ',' or ']'"},
		{"bad indentation", "a:\n  b: 1\n  c: 2\n d: 3\n", 4, "did not find expected key"},
		{"key in a list", "a: 1\nb:\n  - x\n  y: 2\n", 4, "did not find expected '-' indicator"},
		{"tab", "a: 1\n\tb: 2\n", 2, "found a tab character that violates indentation"},
		{"unterminated quote", "a: 1\nb: 2\nc: \"x\n", 3, "found unexpected end of stream"},
		{"in the second document", "a: 1\n---\nb: [\n", 3, "did not find expected node content"},
		{"CRLF", "a: 1\r\nb:\r\n  - x\r\n  y: 2\r\n", 4, "did not find expected '-' indicator"},
		{"CR alone breaks lines", "a: 1\rb:\r  - x\r  y: 2\r", 4, "did not find expected '-' indicator"},
		{"NEL breaks lines", "a: 1\nb: \"é\u0085x\"\nc: [\n", 4, "did not find expected node content"},
		{"no line from yaml.v3", "a: 1\n\n\n\x01", 4, "control characters are not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, probs := recorder(nil)
			root, ok := w.Root([]byte(tc.in), "the file", "a mapping")
			want := []string{strconv.Itoa(tc.line) + ":1 : YAML syntax error: " + tc.msg}
			if root != nil || ok || strings.Join(*probs, "\n") != strings.Join(want, "\n") {
				t.Errorf("got %v, %v, %q; want %q", root, ok, *probs, want)
			}
		})
	}
}

// TestSyntaxErrorLineBounded: past maxSearchLines the search is skipped and
// yaml.v3's line is kept; the line is always inside the file.
func TestSyntaxErrorLineBounded(t *testing.T) {
	long := strings.Repeat("a: 1\n", maxSearchLines) + "b:\n  - x\n  y: 2\n"
	w, probs := recorder(nil)
	w.Root([]byte(long), "the file", "a mapping")
	// yaml.v3 names the line of b:, one before the list; the search would
	// have found y: 2.
	if want := strconv.Itoa(maxSearchLines+1) + ":1 : YAML syntax error: did not find expected '-' indicator"; len(*probs) != 1 || (*probs)[0] != want {
		t.Errorf("got %q, want yaml.v3's line: %q", *probs, want)
	}

	if _, m := splitYAMLError(errors.New("yaml: line 7: oops")); m != "oops" {
		t.Errorf("splitYAMLError kept the prefix: %q", m)
	}
	if l, m := splitYAMLError(errors.New("yaml: control characters are not allowed")); l != 0 || m != "control characters are not allowed" {
		t.Errorf("splitYAMLError without a line: %d %q", l, m)
	}
	for _, in := range []string{"\x01", "a: \x01\n", "\n\n\n\n{\n", "a: [\r\r\r"} {
		var line int
		w := &Walker{Report: func(l, col int, path, msg string) { line = l }}
		w.Root([]byte(in), "the file", "a mapping")
		if line < 1 || line > LineCount(in) {
			t.Errorf("%q: line %d, outside the file's %d lines", in, line, LineCount(in))
		}
	}
}

func TestSplitLines(t *testing.T) {
	in := "a\nb\r\nc\rd\u0085e\u2028f\u2029g"
	want := [][2]string{{"a", "\n"}, {"b", "\r\n"}, {"c", "\r"}, {"d", "\u0085"}, {"e", "\u2028"}, {"f", "\u2029"}, {"g", ""}}
	got := SplitLines(in)
	if len(got) != len(want) {
		t.Fatalf("SplitLines(%q) = %q", in, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i+1, got[i], want[i])
		}
	}
	for s, n := range map[string]int{"": 1, "a": 1, "a\n": 2, "a\nb": 2, "\r": 2, "\r\n": 2, "a\u2028b\n": 3} {
		if got := LineCount(s); got != n {
			t.Errorf("LineCount(%q) = %d, want %d", s, got, n)
		}
	}
}
