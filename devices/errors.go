package devices

import (
	"errors"
	"strconv"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
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
	// ErrInvalidFile matches the error of Parse and Load for a devices file
	// with problems, whose list errors.As finds as Errors. Errors is the type
	// of config.Errors too: this tells the two files' problems apart.
	ErrInvalidFile = errors.New("devices: invalid devices file")
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
// causes it; Line and Col are 0 for a problem with the whole file (too
// large). It is config.Error, so that `isthmus check` prints both files'
// problems alike.
type Error = yamlfile.Error

// Errors is every problem found in one devices file, sorted by position, so
// that a user fixes them all in one round. It is config.Errors; errors.Is(err,
// ErrInvalidFile) tells the devices file's apart.
type Errors = yamlfile.Errors

// fileErrors is how Parse returns Errors: the same text, and a match for
// ErrInvalidFile.
type fileErrors struct{ errs Errors }

func (e *fileErrors) Error() string { return e.errs.Error() }

func (e *fileErrors) Unwrap() error { return e.errs }

func (e *fileErrors) Is(target error) bool { return target == ErrInvalidFile }

// PatternError is a topic pattern that CompileACL refuses.
type PatternError struct {
	Index   int    // position in the list given to CompileACL
	Pattern string // as written, before {id} substitution
	Msg     string
}

func (e *PatternError) Error() string {
	return "pattern " + strconv.Quote(e.Pattern) + ": " + e.Msg
}
