package frames

import (
	"errors"
	"strings"
)

// ErrUnsupportedProtocol is returned with a well-formed protocol header whose id or version this
// package does not speak. AMQP 1.0 §2.2: answer with a supported header, then close.
var ErrUnsupportedProtocol = errors.New("amqp: unsupported protocol header")

// DecodeError reports input that violates the frame layout or a type's encoding rules. It carries
// the AMQP condition a peer should receive in close (or detach/end) and names what was wrong.
type DecodeError struct {
	// Condition is CondConnectionFramingError for frame-level faults (header, size, type, truncated
	// frames) and CondDecodeError for malformed or missing fields. AMQP 1.0 §2.8.15, §2.8.16.
	Condition Symbol
	// Type is the composite or section being decoded ("attach", "message"), "frame" at frame level.
	Type string
	// Field is the field (dotted for nested values, "source.filter") or header part ("size", "doff").
	Field string
	// Offset is the byte offset of the fault from the start of the decoded input, when known.
	Offset int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error (an *encoding.DecodeError, io.ErrUnexpectedEOF, a read error), or nil.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Condition))
	b.WriteString(": ")
	b.WriteString(e.Type)
	if e.Field != "" {
		b.WriteByte('.')
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// AMQPError returns the error to send to the peer (in close, end or detach).
func (e *DecodeError) AMQPError() *Error {
	d := e.Type
	if e.Field != "" {
		d += "." + e.Field
	}
	return &Error{Condition: e.Condition, Description: Some(d + ": " + e.Msg)}
}

func framingError(field string, off int, msg string, err error) error {
	return &DecodeError{Condition: CondConnectionFramingError, Type: "frame", Field: field, Offset: off, Msg: msg, Err: err}
}

func decodeError(typ, field string, off int, msg string, err error) error {
	return &DecodeError{Condition: CondDecodeError, Type: typ, Field: field, Offset: off, Msg: msg, Err: err}
}

// Error makes the AMQP error composite (§2.8.14) a Go error, so the engine can return what it
// received or will send.
func (e *Error) Error() string {
	s := "amqp: " + string(e.Condition)
	if e.Description.Valid {
		s += ": " + e.Description.V
	}
	return s
}
