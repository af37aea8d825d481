package wire

import (
	"errors"
	"fmt"
)

// MQTT 5 reason codes this package answers with (MQTT 5.0 §2.4). They are also
// the codes a v5 CONNACK or DISCONNECT carries when a packet is rejected.
const (
	ReasonMalformedPacket            byte = 0x81
	ReasonProtocolError              byte = 0x82
	ReasonUnsupportedProtocolVersion byte = 0x84
	ReasonTopicFilterInvalid         byte = 0x8F
	ReasonTopicNameInvalid           byte = 0x90
	ReasonTopicAliasInvalid          byte = 0x94
	ReasonPacketTooLarge             byte = 0x95
)

// Error is a packet rejected by Validate or the Reader. Reason is the MQTT 5
// reason code to answer with; Msg names the packet and the field at fault.
type Error struct {
	Reason byte
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("mqtt %s (0x%02X): %s", reasonName(e.Reason), e.Reason, e.Msg)
}

// ErrConnectTimeout is returned by Conn.Read when no complete, valid CONNECT
// arrived within Config.ConnectTimeout. The error also matches
// os.ErrDeadlineExceeded through errors.Is.
var ErrConnectTimeout = errors.New("mqtt/wire: no CONNECT within the connect timeout")

func reasonName(r byte) string {
	switch r {
	case ReasonMalformedPacket:
		return "malformed packet"
	case ReasonProtocolError:
		return "protocol error"
	case ReasonUnsupportedProtocolVersion:
		return "unsupported protocol version"
	case ReasonTopicFilterInvalid:
		return "topic filter invalid"
	case ReasonTopicNameInvalid:
		return "topic name invalid"
	case ReasonTopicAliasInvalid:
		return "topic alias invalid"
	case ReasonPacketTooLarge:
		return "packet too large"
	}
	return "error"
}

// The constructors below run only on the error path: the accepting path of the
// validator allocates nothing.

func malformed(format string, args ...any) *Error {
	return &Error{Reason: ReasonMalformedPacket, Msg: fmt.Sprintf(format, args...)}
}

func protocolErr(format string, args ...any) *Error {
	return &Error{Reason: ReasonProtocolError, Msg: fmt.Sprintf(format, args...)}
}

func reasonErr(reason byte, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
