package yamlfile

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Root parses data as exactly one YAML document and returns its root mapping
// with aliases followed, or nil and true when the document is empty or null.
// It reports a syntax error (at column 1 of its line: yaml.v3 gives no
// column), a second document (after ---), and a root that is not a mapping;
// file names the file in the message of the second ("the devices file"),
// want what the root should be in the last ("a mapping of sections").
func (w *Walker) Root(data []byte, file, want string) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		w.syntaxError(data, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		w.errorf(&extra, "", "a second YAML document (after ---) is not allowed: %s is one document", file)
		return nil, false
	case !errors.Is(err, io.EOF):
		w.syntaxError(data, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	root = Deref(doc.Content[0])
	if IsNull(root) {
		return nil, true
	}
	if root.Kind != yaml.MappingNode {
		w.errorf(root, "", "expected %s, got %s", want, Describe(root))
		return nil, false
	}
	return root, true
}

func (w *Walker) syntaxError(data []byte, err error) {
	line, msg := splitYAMLError(err)
	if l, ok := firstFailingLine(data, msg); ok {
		line = l
	}
	// Keep the position inside the file so that editors can jump to it.
	line = max(1, min(line, LineCount(string(data))))
	w.Report(line, 1, "", "YAML syntax error: "+msg)
}

// yamlLine finds the line yaml.v3 puts in its syntax errors ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// splitYAMLError takes yaml.v3's "yaml: line N: message" apart.
func splitYAMLError(err error) (line int, msg string) {
	msg = err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// maxSearchLines bounds firstFailingLine's work (each step parses a prefix).
const maxSearchLines = 10_000

// firstFailingLine finds the line of a syntax error more precisely than
// yaml.v3, which reports the line where the enclosing construct started (or
// that line minus one): the shortest prefix of whole lines that fails with the
// same message ends at the culprit. Found by bisection: a parser that stops at
// the first error fails the same way on every longer prefix.
func firstFailingLine(data []byte, msg string) (int, bool) {
	lines := SplitLines(string(data))
	if len(lines) == 0 || len(lines) > maxSearchLines {
		return 0, false
	}
	ends := make([]int, len(lines)) // ends[i]: length of the prefix of lines 1..i+1
	n := 0
	for i, l := range lines {
		n += len(l[0]) + len(l[1])
		ends[i] = n
	}
	fails := func(n int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[n-1]]))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			_, m := splitYAMLError(err)
			return m == msg
		}
	}
	lo, hi := 1, len(lines) // invariant: fails(hi)
	if !fails(hi) {
		return 0, false
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, true
}

// SplitLines cuts text into lines the way YAML counts them, so that line
// numbers agree with the parser's: a line ends at \r\n, \n or \r, and, as in
// yaml.v3 (YAML 1.1 §5.4), at NEL (U+0085), LS (U+2028) and PS (U+2029). Each
// element is the line's text and its terminator ("" for the last line).
func SplitLines(s string) [][2]string {
	var lines [][2]string
	start := 0
	for i := 0; i < len(s); {
		n := 0
		switch {
		case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
			n = 2
		case s[i] == '\n' || s[i] == '\r':
			n = 1
		case strings.HasPrefix(s[i:], "\u0085"), strings.HasPrefix(s[i:], "\u2028"), strings.HasPrefix(s[i:], "\u2029"):
			_, n = utf8.DecodeRuneInString(s[i:])
		}
		if n == 0 {
			i++
			continue
		}
		lines = append(lines, [2]string{s[start:i], s[i : i+n]})
		i += n
		start = i
	}
	if start < len(s) {
		lines = append(lines, [2]string{s[start:], ""})
	}
	return lines
}

// LineCount is the number of the last line of s, in SplitLines' terms.
func LineCount(s string) int {
	lines := SplitLines(s)
	if len(lines) == 0 || lines[len(lines)-1][1] != "" {
		return len(lines) + 1 // the text ends with a line break: an empty line follows
	}
	return len(lines)
}
