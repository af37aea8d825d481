package frames

import (
	"io"
	"strconv"
)

// ProtocolHeaderSize is the size of the protocol header: "AMQP", protocol id, major, minor, revision.
const ProtocolHeaderSize = 8

// ProtocolID is byte 4 of the protocol header: which layer starts next. AMQP 1.0 §2.2, §5.1.
type ProtocolID uint8

const (
	ProtocolAMQP ProtocolID = 0 // AMQP 1.0 §2.2: plain AMQP frames follow
	ProtocolTLS  ProtocolID = 2 // AMQP 1.0 §5.2.1: a TLS handshake follows
	ProtocolSASL ProtocolID = 3 // AMQP 1.0 §5.3.1: SASL frames follow
)

func (id ProtocolID) String() string {
	switch id {
	case ProtocolAMQP:
		return "amqp"
	case ProtocolTLS:
		return "tls"
	case ProtocolSASL:
		return "sasl"
	}
	return "protocol-id(" + strconv.Itoa(int(id)) + ")"
}

// ProtocolHeader is the 8-byte header that opens a stream and each layer. AMQP 1.0 §2.2.
type ProtocolHeader struct {
	ID                     ProtocolID
	Major, Minor, Revision uint8
}

// Supported reports whether h is one this package speaks: id 0, 2 or 3 with version 1.0.0
// (MAJOR/MINOR/REVISION of §2.8.19, TLS-* of §5.2, SASL-* of §5.3).
func (h ProtocolHeader) Supported() bool {
	return (h.ID == ProtocolAMQP || h.ID == ProtocolTLS || h.ID == ProtocolSASL) &&
		h.Major == AMQPMajor && h.Minor == AMQPMinor && h.Revision == AMQPRevision
}

// Append appends the header's 8 bytes.
func (h ProtocolHeader) Append(b []byte) []byte {
	return append(b, 'A', 'M', 'Q', 'P', byte(h.ID), h.Major, h.Minor, h.Revision)
}

func (h ProtocolHeader) String() string {
	return "AMQP " + strconv.Itoa(int(h.ID)) + " " + strconv.Itoa(int(h.Major)) + "." +
		strconv.Itoa(int(h.Minor)) + "." + strconv.Itoa(int(h.Revision))
}

// AppendProtocolHeader appends the version 1.0.0 header of id.
func AppendProtocolHeader(b []byte, id ProtocolID) []byte {
	return ProtocolHeader{ID: id, Major: AMQPMajor, Minor: AMQPMinor, Revision: AMQPRevision}.Append(b)
}

// ParseProtocolHeader decodes the protocol header at the start of b. Input that does not start with
// "AMQP" is a framing error. A well-formed header with an id or version this package does not speak
// is returned together with ErrUnsupportedProtocol: AMQP 1.0 §2.2 then wants the server to answer
// with the header it supports and close the socket.
func ParseProtocolHeader(b []byte) (ProtocolHeader, error) {
	if len(b) < ProtocolHeaderSize {
		return ProtocolHeader{}, framingError("protocol-header", len(b), "need 8 bytes", io.ErrUnexpectedEOF)
	}
	if b[0] != 'A' || b[1] != 'M' || b[2] != 'Q' || b[3] != 'P' {
		return ProtocolHeader{}, framingError("protocol-header", 0, "does not start with \"AMQP\"", nil)
	}
	h := ProtocolHeader{ID: ProtocolID(b[4]), Major: b[5], Minor: b[6], Revision: b[7]}
	if !h.Supported() {
		return h, ErrUnsupportedProtocol
	}
	return h, nil
}

// LooksLikeTLS reports whether the first byte of a stream is a TLS handshake record (0x16) rather than
// a protocol header, as sent by amqps clients that skip the AMQP TLS header. AMQP 1.0 §5.2.
func LooksLikeTLS(first byte) bool { return first == 0x16 }
