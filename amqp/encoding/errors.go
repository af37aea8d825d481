package encoding

import (
	"errors"
	"strconv"
)

// DecodeCondition is the AMQP error condition for malformed encodings. AMQP 1.0 §2.8.15.
const DecodeCondition = "amqp:decode-error"

// DecodeError reports malformed or unexpected input. Every decoder in this package returns
// errors of this type (never panics).
type DecodeError struct {
	Field  string // the field being decoded, if the caller named it (see WithField); may be dotted, "attach.source"
	Offset int    // byte offset in the input given to NewReader where the offending value starts
	Msg    string // what is wrong
}

func (e *DecodeError) Error() string {
	s := "amqp: decode error at offset " + strconv.Itoa(e.Offset)
	if e.Field != "" {
		s += " in field " + e.Field
	}
	return s + ": " + e.Msg
}

// Condition returns "amqp:decode-error", the condition to put in the amqp:error a peer receives.
func (e *DecodeError) Condition() string { return DecodeCondition }

// WithField names the field a *DecodeError occurred in: it sets Field when empty and otherwise prefixes
// it ("source" + "address" gives "source.address"), so nested decoders can each add their level.
// Other errors are returned unchanged. It allocates only when err is a *DecodeError.
func WithField(err error, field string) error {
	var de *DecodeError
	if !errors.As(err, &de) {
		return err
	}
	e := *de
	if e.Field == "" {
		e.Field = field
	} else {
		e.Field = field + "." + e.Field
	}
	return &e
}

// EncodeError reports a value AppendValue or AppendArray cannot encode: an unsupported Go type,
// array elements that do not match the array's Code, a descriptor that is neither uint64 nor Symbol.
type EncodeError struct {
	Msg string
}

func (e *EncodeError) Error() string { return "amqp: encode error: " + e.Msg }
