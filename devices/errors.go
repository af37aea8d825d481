package devices

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

var (
	// ErrBadCredentials is returned for an unknown id, a wrong password, a
	// device without a password, or a certificate that names no device (or
	// more than one). The cases are not told apart on purpose: a client must
	// not learn which ids exist.
	ErrBadCredentials = errors.New("devices: bad credentials")
	// ErrDisabled is returned for a device written with `enabled: false`, and
	// only once its credentials have been proven right.
	ErrDisabled = errors.New("devices: device is disabled")
	// ErrAmbiguousCertificate is returned (wrapped, with the ids) when the
	// Subject CN and the DNS names of a certificate name different devices.
	// It matches ErrBadCredentials too.
	ErrAmbiguousCertificate = errors.New("devices: bad credentials: certificate names more than one device")
)

// ambiguousError is ErrAmbiguousCertificate with the ids involved.
type ambiguousError struct{ a, b string }

func (e *ambiguousError) Error() string {
	return ErrAmbiguousCertificate.Error() + " (" + strconv.Quote(e.a) + " and " + strconv.Quote(e.b) + ")"
}

func (e *ambiguousError) Is(target error) bool {
	return target == ErrAmbiguousCertificate || target == ErrBadCredentials
}

// Error is one problem in a devices file, positioned at the key or value that
// causes it. It has the same shape and text as config.Error, so that
// `isthmus check` prints both files' problems alike. Line and Col are 1-based;
// they are 0 for a problem with the whole file (too large).
type Error struct {
	File      string
	Line, Col int
	Path      string // key path: devices[2].password, anonymous.publish[0]; "" for the file as a whole
	Msg       string
}

// Error formats the problem as FILE:LINE:COL: key.path: message; parts that
// are unknown are left out.
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

// Errors is every problem found in one devices file, sorted by position, so
// that a user fixes them all in one round.
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

// sorted orders the errors by line then column (stable: problems at one
// position keep the order they were found in) and drops exact duplicates,
// which a YAML alias used twice produces.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// PatternError is a topic pattern that CompileACL refuses.
type PatternError struct {
	Index   int    // position in the list given to CompileACL
	Pattern string // as written, before {id} substitution
	Msg     string
}

func (e *PatternError) Error() string {
	return "pattern " + strconv.Quote(e.Pattern) + ": " + e.Msg
}
