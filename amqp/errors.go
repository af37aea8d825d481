package amqp

import (
	"errors"
	"fmt"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// Sentinel errors. The scope errors (*ConnError, *SessionError, *LinkError) match the first three
// with errors.Is.
var (
	ErrConnClosed    = errors.New("amqp: connection closed")
	ErrSessionClosed = errors.New("amqp: session closed")
	ErrLinkClosed    = errors.New("amqp: link closed")
	// ErrServerClosed is returned by Serve after Shutdown or Close, like http.ErrServerClosed.
	ErrServerClosed = errors.New("amqp: server closed")
	// ErrSettled is returned when a delivery that is already settled is settled again.
	ErrSettled = errors.New("amqp: delivery already settled")
	// ErrMessageTooLarge is returned by a send whose message exceeds the peer's max-message-size.
	// AMQP 1.0 §2.7.3.
	ErrMessageTooLarge = errors.New("amqp: message exceeds the peer's max-message-size")
	// ErrCredit is returned by IssueCredit when the credit would exceed what the receiver can buffer,
	// or when credit is managed automatically.
	ErrCredit = errors.New("amqp: credit exceeds the receiver's capacity")
	// ErrAborted is the error of a receipt whose delivery was aborted (AMQP 1.0 §2.6.14) or dropped
	// before it was sent, after Cancel.
	ErrAborted = errors.New("amqp: delivery aborted")
)

// Error is an AMQP error (AMQP 1.0 §2.8.14): what a peer sends in close, end, detach or a rejected
// outcome, and what a LinkHandler returns to refuse a link.
type Error struct {
	// Condition is a symbolic error condition, such as frames.CondNotFound ("amqp:not-found").
	Condition frames.Symbol
	// Description is a human-readable text; may be empty.
	Description string
	// Info is a map of further information; may be nil.
	Info frames.Fields
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "amqp: " + string(e.Condition)
	}
	return "amqp: " + string(e.Condition) + ": " + e.Description
}

// errorf builds an *Error with a formatted description.
func errorf(cond frames.Symbol, format string, args ...any) *Error {
	return &Error{Condition: cond, Description: fmt.Sprintf(format, args...)}
}

// toFrame converts e to the wire composite; nil stays nil.
func (e *Error) toFrame() *frames.Error {
	if e == nil {
		return nil
	}
	fe := &frames.Error{Condition: e.Condition, Info: e.Info}
	if e.Description != "" {
		fe.Description = frames.Some(e.Description)
	}
	return fe
}

// fromFrame converts a received error composite; nil stays nil.
func fromFrame(fe *frames.Error) *Error {
	if fe == nil {
		return nil
	}
	return &Error{Condition: fe.Condition, Description: fe.Description.Or(""), Info: fe.Info}
}

// asError returns err as an *Error: itself, the *Error it wraps, the condition of a decode error, or
// amqp:internal-error with err's text.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var de *frames.DecodeError
	if errors.As(err, &de) {
		return fromFrame(de.AMQPError())
	}
	return &Error{Condition: frames.CondInternalError, Description: err.Error()}
}

// ConnError reports the end of a connection. RemoteErr is the error the peer sent in close (nil for
// a clean close or none at all), LocalErr the one this side sent, Err the local cause (a network
// error, a decode error, a timeout) when there is one. errors.Is(err, ErrConnClosed) is true.
type ConnError struct {
	RemoteErr *Error
	LocalErr  *Error
	Err       error
}

func (e *ConnError) Error() string { return scopeString("connection", e.RemoteErr, e.LocalErr, e.Err) }

// Unwrap returns the remote error, the local cause and the local error, so errors.As finds the
// condition.
func (e *ConnError) Unwrap() []error { return unwrapScope(e.RemoteErr, e.LocalErr, e.Err) }

// Is makes every *ConnError match ErrConnClosed.
func (e *ConnError) Is(target error) bool { return target == ErrConnClosed }

// SessionError reports the end of a session (AMQP 1.0 §2.7.8 end), with the same fields as
// ConnError. A session ended because its connection ended has Err set to the *ConnError.
type SessionError struct {
	RemoteErr *Error
	LocalErr  *Error
	Err       error
}

func (e *SessionError) Error() string { return scopeString("session", e.RemoteErr, e.LocalErr, e.Err) }

// Unwrap returns the remote error, the local cause and the local error.
func (e *SessionError) Unwrap() []error { return unwrapScope(e.RemoteErr, e.LocalErr, e.Err) }

// Is makes every *SessionError match ErrSessionClosed.
func (e *SessionError) Is(target error) bool { return target == ErrSessionClosed }

// LinkError reports the end of a link (AMQP 1.0 §2.7.7 detach) or its refusal, with the same
// fields as ConnError. A link ended by its session has Err set to the *SessionError.
type LinkError struct {
	RemoteErr *Error
	LocalErr  *Error
	Err       error
}

func (e *LinkError) Error() string { return scopeString("link", e.RemoteErr, e.LocalErr, e.Err) }

// Unwrap returns the remote error, the local cause and the local error.
func (e *LinkError) Unwrap() []error { return unwrapScope(e.RemoteErr, e.LocalErr, e.Err) }

// Is makes every *LinkError match ErrLinkClosed.
func (e *LinkError) Is(target error) bool { return target == ErrLinkClosed }

func scopeString(scope string, remote, local *Error, cause error) string {
	switch {
	case remote != nil:
		return "amqp: " + scope + " closed by peer: " + string(remote.Condition) + descSuffix(remote)
	case local != nil:
		return "amqp: " + scope + " closed: " + string(local.Condition) + descSuffix(local)
	case cause != nil:
		return "amqp: " + scope + " closed: " + cause.Error()
	}
	return "amqp: " + scope + " closed"
}

func descSuffix(e *Error) string {
	if e.Description == "" {
		return ""
	}
	return ": " + e.Description
}

func unwrapScope(remote, local *Error, cause error) []error {
	errs := make([]error, 0, 3)
	if remote != nil {
		errs = append(errs, remote)
	}
	if cause != nil {
		errs = append(errs, cause)
	}
	if local != nil {
		errs = append(errs, local)
	}
	return errs
}

// SASLError is a failed SASL exchange (AMQP 1.0 §5.3.3.5). An Authenticator returns one to choose
// the outcome code (frames.SASLCodeAuth for bad credentials, frames.SASLCodeSysTemp when a backend
// is unavailable); a client gets one when the server's outcome is not ok.
type SASLError struct {
	Code frames.SASLCode
	Err  error
}

func (e *SASLError) Error() string {
	s := fmt.Sprintf("amqp: SASL failed with code %d (%s)", e.Code, saslCodeName(e.Code))
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SASLError) Unwrap() error { return e.Err }

func saslCodeName(c frames.SASLCode) string {
	switch c {
	case frames.SASLCodeOK:
		return "ok"
	case frames.SASLCodeAuth:
		return "auth"
	case frames.SASLCodeSys:
		return "sys"
	case frames.SASLCodeSysPerm:
		return "sys-perm"
	case frames.SASLCodeSysTemp:
		return "sys-temp"
	}
	return "unknown"
}
