package mapping

import (
	"errors"
	"strconv"
	"strings"
)

// ErrUnsafeCapture is wrapped by every error that rendering a destination or a property returns:
// a captured level, client id or identity whose text would turn the result into a wildcard, add
// levels or an empty level, carry a NUL or a control character, or otherwise name something other
// than the one topic or address the route means (SPEC §5.3). The message is rejected and counted;
// it is never published to what the text would make of it.
var ErrUnsafeCapture = errors.New("mapping: unsafe capture")

// CompileError is one problem in the routes given to Compile. Path is the key path in the
// configuration file (routes[2].to.mqtt), so that the caller can attach the file position; Msg
// says what is wrong without repeating the path.
type CompileError struct {
	Route int    // index in the routes slice; -1 for problems outside routes (queues)
	Name  string // the route's name as written ("" when it has none)
	Path  string // key path: routes[2].to.mqtt, routes[0].delivery, queues[1].match
	Msg   string
}

// Error formats the problem as key.path: message (route "name"). The caller prefixes FILE:LINE:COL.
func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Name != "" {
		b.WriteString(" (route ")
		b.WriteString(strconv.Quote(e.Name))
		b.WriteByte(')')
	}
	return b.String()
}

// CompileErrors is every problem Compile found, in route order, so that a user fixes all of them
// in one round.
type CompileErrors []*CompileError

// Error prints one problem per line.
func (es CompileErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *CompileError values.
func (es CompileErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// RenderError says why one message could not be mapped by one route: which field of the route,
// which placeholder and what text it would have inserted. It wraps ErrUnsafeCapture.
type RenderError struct {
	Route       string // the route's name (or routes[i])
	Field       string // to.mqtt, to.amqp, to.address, properties.subject, application-properties.device-id
	Placeholder string // {device}, {#}, {client-id}; "" when the whole result is at fault
	Value       string // the offending text (truncated to 64 bytes)
	Reason      string
}

func (e *RenderError) Error() string {
	var b strings.Builder
	b.WriteString("mapping: route ")
	b.WriteString(strconv.Quote(e.Route))
	b.WriteString(" ")
	b.WriteString(e.Field)
	b.WriteString(": ")
	if e.Placeholder != "" {
		b.WriteString(e.Placeholder)
		b.WriteString(" = ")
	}
	b.WriteString(strconv.Quote(e.Value))
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrUnsafeCapture) true.
func (e *RenderError) Unwrap() error { return ErrUnsafeCapture }

// truncate bounds the text a RenderError quotes: it may come from a hostile peer.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	// Do not cut a UTF-8 sequence in two: strconv.Quote would show the broken tail as \x escapes,
	// which is honest but noisy.
	i := max
	for i > max-4 && i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
