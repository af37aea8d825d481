// Package wire is isthmus's own MQTT framing layer: it sits between a
// client's socket and mochi-mqtt, so that every byte mochi reads has first
// been framed and structurally validated here.
//
// # Why
//
// mochi-mqtt v2.7.9, which the gateway embeds, trusts its input more than a
// server facing devices can afford:
//
//   - Its SUBSCRIBE decoder panics on malformed input, and a panic on a
//     client goroutine kills the whole process: in MQTT 5 it reads the
//     subscription options byte after each topic filter without a bounds
//     check, so 82 06 00 01 00 00 01 74 (a filter "t" and no options byte)
//     indexes past the end of the packet. Fuzzing mochi's decoders directly
//     (1.5 million inputs, every packet type and version) found no other
//     panic; every panic found is this one, for any filter in the list.
//   - It reads property lists past their declared length: a property that
//     straddles the end is decoded from the bytes of the next field, which
//     are then decoded a second time as that field.
//   - It has no deadline before CONNECT: a socket that sends nothing, or one
//     byte at a time, is kept forever.
//   - It allocates the declared Remaining Length before reading the body, so
//     5 bytes declaring 256 MiB cost 256 MiB unless MaximumPacketSize is set.
//   - It accepts a Remaining Length of more than 4 bytes, filters such as
//     "a+/b" or "sport#", acknowledgements of packet identifier 0, bytes
//     after the last field of a CONNECT, DISCONNECT and PUBACK reason codes
//     that do not exist, and property values the spec forbids (Receive
//     Maximum 0, Payload Format Indicator 2, ...).
//
// # Flow
//
// The listener wraps each accepted net.Conn with NewConn and hands the result
// to mochi. From then on:
//
//  1. NewConn sets the read deadline to now + Config.ConnectTimeout. Deadlines
//     the consumer sets are held back until a CONNECT has passed, so the
//     connect deadline stays absolute.
//  2. Conn.Read pulls the next packet from a Reader. The Reader reads the
//     first byte and refuses a wrong packet type or flags at once, reads the
//     Remaining Length (at most 4 bytes) and refuses a packet over the size
//     limit before reading its body, then reads the body into a buffer that
//     grows only as bytes arrive.
//  3. The whole packet goes through Validate for the connection's protocol
//     version: 0 before CONNECT (only CONNECT is valid), then 3, 4 or 5 as
//     the CONNECT said. Validate checks every length, string, flag, property
//     and topic rule that makes a packet malformed or a protocol error, and
//     everything mochi would choke on.
//  4. A packet that passes is copied to mochi unchanged. Once the CONNECT has
//     passed, the held read deadline (mochi's keep-alive) takes over.
//  5. A packet that fails ends the connection: an MQTT 5 client gets a
//     DISCONNECT with the reason code and a Reason String (or a CONNACK with
//     the reason code when its CONNECT was the culprit), a 3.x client nothing
//     (but CONNACK 0x01 for an unsupported protocol level), then the socket is
//     closed and Read returns an error wrapping the *Error, so mochi drops the
//     client the ordinary way.
//
// Validate is pure and usable on its own. The package does not import mochi;
// its tests do, to check that every packet Validate accepts decodes in mochi
// without a panic.
package wire
