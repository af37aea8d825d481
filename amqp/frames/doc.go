// Package frames implements the AMQP 1.0 frame layer: protocol headers, the frame header, the 9
// performatives, the 5 SASL frames, delivery states, termini, errors, the transaction types and
// message sections (OASIS AMQP 1.0 Parts 2, 3, 4 and 5), on top of the type system of amqp/encoding.
// It has no network code and no goroutines; the engine in package amqp drives it.
//
// # Stream layout
//
// Every connection starts with an 8-byte protocol header (§2.2): "AMQP", a protocol id and the
// version 1.0.0. Id 3 starts SASL (§5.3.1): SASL frames follow until sasl-outcome, then both sides
// send a new header. Id 2 starts TLS (§5.2.1), after which a new header follows inside TLS. Id 0
// starts AMQP frames:
//
//	"AMQP" 3 1 0 0 → sasl-mechanisms / sasl-init / [challenge / response]* / sasl-outcome
//	"AMQP" 0 1 0 0 → open, begin, attach, flow, transfer, disposition, detach, end, close
//
// # Frame layout (§2.3.1)
//
//	 0        4      5      6        8                4*DOFF                      SIZE
//	+--------+------+------+--------+----------------+---------------------------+
//	|  SIZE  | DOFF | TYPE |  chan  | extended header | body                      |
//	+--------+------+------+--------+----------------+---------------------------+
//
// SIZE is the whole frame in bytes (≥ 8), DOFF the header length in 4-byte words (≥ 2), TYPE 0x00
// for AMQP frames (§2.3.2) and 0x01 for SASL frames (§5.3.1); bytes 6–7 are the channel of an AMQP
// frame and unused in SASL frames. The extended header has no defined use and is skipped. The
// body is one performative (a described list), followed, for transfer only, by payload: a piece of
// a message. A frame without body is an empty frame, sent as a heartbeat (§2.4.5). Each peer
// announces the largest frame it accepts in open.max-frame-size (§2.7.1); before open, frames are
// limited to MIN-MAX-FRAME-SIZE, 512 bytes (§2.4.1). ParseHeader enforces all of this before any
// body byte is read, so the size a peer claims never decides an allocation; ReadFrame and Reader
// grow their buffers only as bytes arrive.
//
// # Composite types (§1.4 of Part 1, generated)
//
// Performatives, SASL frames, delivery states, termini, errors and the transaction types are
// composites: a descriptor (ulong code or symbol, both accepted) and a list whose i-th element is
// the i-th field. zz_generated_*.go are produced from the spec's XML by internal/gen (go generate):
// the structs, the spec tables and the field codecs. The rules they follow:
//
//   - Trailing fields may be omitted; null means "absent". Decode applies the field's default
//     (open.max-frame-size 4294967295, attach.snd-settle-mode mixed, ...); Encode leaves out a field
//     equal to its default and every trailing absent field.
//   - A missing mandatory field is a *DecodeError (amqp:decode-error) naming it, such as
//     "attach.name"; nested fields are dotted ("attach.source.filter").
//   - Optional fields without a default are Optional[T] (or nil for slices, maps and pointers), so
//     that absent stays distinct from zero.
//   - multiple="true" fields (capabilities, locales, SASL mechanisms, outcomes) accept a single
//     value, an array, or (as Proton Python sends) a list; they are encoded as an array.
//   - Elements beyond the known fields are ignored (a newer peer's additions).
//   - delivery-tag is at most 32 bytes (§2.8.7) on decode and encode.
//   - Unknown descriptors are an error for performatives and SASL frames; in delivery-state and
//     outcome positions, an open archetype, they decode to *Extension; filters (§3.5.8) stay
//     generic encoding.Described values. Both keep their original bytes and re-encode them
//     unchanged.
//
// Decoded binary fields (delivery-tag, data sections, Message.Bare) alias the input; strings and
// generic values are copied. Decoding a transfer performative does not allocate.
//
// # Messages (§3.2)
//
// A message is the concatenated payload of a delivery's transfers: header, delivery-annotations,
// message-annotations, properties, application-properties, body (one amqp-value, one or more data,
// or one or more amqp-sequence sections) and footer, each optional (the body too, leniently) and in
// that order. Message.Decode checks the order and keeps the bytes of the bare message (properties
// through body) in Message.Bare; Message.Encode writes Bare verbatim after a freshly encoded header
// and annotations, which is how a gateway forwards a message without touching what the sender signed.
//
// # Errors
//
// Frame-level faults (bad size, doff or type, truncated frames, a malformed protocol header) carry
// amqp:connection:framing-error (§2.8.16); malformed or missing fields carry amqp:decode-error
// (§2.8.15). DecodeError.AMQPError builds the error to send in close.
package frames
