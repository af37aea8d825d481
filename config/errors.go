package config

import (
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, positioned at the key or value that
// causes it. Line and Col are 1-based and refer to the file as written (before
// ${VAR} expansion); they are 0 when the Config was built in code and has no
// source positions.
type Error struct {
	File      string
	Line, Col int
	Path      string // key path: mqtt.tls.cert, routes[2].from; "" when no key is involved
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

// Errors is every problem found in one configuration, sorted by position.
// Parse and Validate return it (as error) so that a user fixes all problems in
// one round instead of one per run.
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

// sorted orders the errors by line then column (stable, so problems found at
// the same position keep the order they were found in) and drops exact
// duplicates, which a YAML alias used twice can produce.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// asError turns an empty list into a nil error: a nil Errors stored in an
// error interface would not compare equal to nil.
func (es Errors) asError() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}

// At returns an error positioned at key path in the file the Config came
// from (or at its nearest written ancestor), for problems found outside this
// package, such as routes that do not compile.
func (c *Config) At(path, msg string) *Error {
	k := &checker{c: c}
	k.keyErr(path, "%s", msg)
	return k.errs[0]
}
