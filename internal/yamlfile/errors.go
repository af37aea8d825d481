// Package yamlfile holds what the readers of isthmus's YAML files (the
// configuration in package config, the devices file in package devices)
// share. Both walk the yaml.Node tree themselves instead of calling
// yaml.Unmarshal: that is the only way to give every problem a line, a column
// and a key path, and to report all of them in one pass (yaml.v3's
// KnownFields stops at the first and has no column).
//
// A reader sets up a Walker with its way to record problems, gets the root
// mapping from Walker.Root (syntax errors at the line of the culprit), reads
// mappings with Walker.Pairs (merge keys expanded, alias cycles refused) and
// strings with Walker.Text, names what it found with Describe in "expected X,
// got Y" messages, proposes known keys with Suggest, and returns every problem
// at once as Errors, sorted.
package yamlfile

import (
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a YAML file, positioned at the key or value that
// causes it. Line and Col are 1-based and refer to the file as the user wrote
// it; they are 0 when there is no position (a value built in code, a problem
// with the whole file).
type Error struct {
	File      string
	Line, Col int
	Path      string // key path: mqtt.tls.cert, devices[2].password; "" when no key is involved
	Msg       string
}

// Error formats the problem as FILE:LINE:COL: key.path: message, the form
// `isthmus check` prints and editors understand. Parts that are unknown (no
// position, no path) are left out.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Col))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, so that a user fixes them all
// in one round instead of one per run.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Sorted orders es in place by line then column and returns it without exact
// duplicates, which a YAML alias used twice produces. The sort is stable:
// problems found at one position keep the order they were found in. The
// result shares es's array.
func (es Errors) Sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}
