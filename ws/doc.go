// Package ws serves a byte-stream protocol (MQTT, AMQP) over WebSocket and
// hands each accepted connection to the protocol engine as a net.Conn. The
// engines never know about WebSocket: this package is the edge where a
// WebSocket becomes a stream.
//
// # Flow
//
// A Handler is an http.Handler mounted at one path (http.mqtt_path,
// http.amqp_path). For each request ServeHTTP:
//
//  1. answers 503 once Close or Shutdown has been called;
//  2. answers 400 with a plain-text explanation unless the request is a GET
//     asking to upgrade to websocket (RFC 6455 §4.1, §4.2.1);
//  3. checks Origin (RFC 6455 §4.2.2 /origin/, §10.2) and answers 403 when the
//     origin is not allowed (see Origin below);
//  4. requires the client to offer one of Options.Subprotocols in
//     Sec-WebSocket-Protocol (RFC 6455 §4.2.2 /subprotocol/; [MQTT-6.0.0-3]:
//     an MQTT client MUST offer "mqtt") and answers 400 naming the expected
//     subprotocols otherwise; the first of Options.Subprotocols the client
//     offered is echoed back ([MQTT-6.0.0-4] when "mqtt" is listed first);
//  5. upgrades with github.com/gorilla/websocket, which checks the remaining
//     handshake fields (Sec-WebSocket-Key, Sec-WebSocket-Version 13, RFC 6455
//     §4.2.1; a version mismatch is answered with Sec-WebSocket-Version: 13,
//     RFC 6455 §4.4), writing the 101 response under Options.HandshakeTimeout;
//  6. sets the read limit (RFC 6455 §10.4) and calls serve with a *Conn on the
//     request goroutine, recovering a panic in serve; when serve returns the
//     connection is closed.
//
// The Handler tracks every hijacked connection itself, because net/http
// forgets a connection once it is hijacked: Close closes them all with 1001
// (going away, RFC 6455 §7.4.1) and Shutdown waits for them to end.
//
// # Origin
//
// Browsers send Origin on every WebSocket handshake; other clients usually
// do not, and any non-browser client can forge it, so the check only protects
// against cross-site use by scripts in browsers (RFC 6455 §10.2). A request
// without an Origin header is therefore always accepted. With an empty
// Options.AllowedOrigins a request with an Origin is accepted only when the
// origin's host and port equal the request's Host (same origin; a missing
// port on either side means the default port of the origin's scheme). With a
// non-empty list, only the listed origins are accepted (exact
// scheme://host[:port] match, case-insensitive) and "*" accepts any.
//
// # The stream
//
// Conn turns messages into a byte stream. Read returns bytes across message
// boundaries: a protocol packet may span messages and a message may carry
// several packets ([MQTT-6.0.0-2]). Only binary messages carry data
// ([MQTT-6.0.0-1]): a text message makes Read close the connection with 1003
// (unsupported data, RFC 6455 §7.4.1) and return ErrTextMessage. A message
// larger than Options.ReadLimit makes Read close the connection with 1009
// (message too big, RFC 6455 §7.4.1) and return ErrMessageTooBig. Each Write
// sends exactly one binary message (RFC 6455 §5.6). gorilla/websocket
// reassembles fragmented messages (RFC 6455 §5.4), answers Ping with a Pong
// carrying the same application data (RFC 6455 §5.5.2, §5.5.3), rejects
// unmasked client frames, reserved opcodes and malformed control frames with
// 1002 (RFC 6455 §5.1, §5.2, §5.5) and answers a peer's Close frame
// (RFC 6455 §5.5.1). Read reports a Close with 1000, 1001 or 1005, and the TCP
// connection ending, as io.EOF, and any other code as *CloseError.
//
// Close sends a Close frame with 1000 (RFC 6455 §5.5.1, §7.4.1) under a short
// deadline and then closes the TCP connection, as the server should
// (RFC 6455 §7.1.1).
//
// Deadlines behave as on TCP with one difference inherited from
// gorilla/websocket: a Read or Write that times out leaves the WebSocket
// framing state unknown, so the connection is dead afterwards and later calls
// return the same timeout error. Engines use read deadlines to end idle
// connections, never to poll.
//
// # Not covered here
//
// Reading the HTTP request headers is bounded by the http.Server's
// ReadHeaderTimeout, not by this package. HTTP/2 extended CONNECT (RFC 8441)
// is not supported: net/http does not advertise it unless GODEBUG
// http2xconnect=1 is set, and such requests get 400. permessage-deflate
// (RFC 7692) is not negotiated.
package ws
