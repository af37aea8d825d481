// Package amqp is an AMQP 1.0 engine (OASIS AMQP 1.0 Parts 2, 3 and 5) for both roles: the server
// the gateway exposes and the client it uses for uplinks. The codecs live in amqp/encoding and
// amqp/frames; this package drives them over a net.Conn. API.md beside this file summarizes the
// API the gateway uses.
//
// # Protocol flow
//
// A connection starts with protocol headers (AMQP 1.0 §2.2). A server (Server.ServeConn) reads the
// first byte: 0x16 is a TLS ClientHello (amqps), answered by a TLS handshake before the header.
// Then, under ServerOptions.HandshakeTimeout:
//
//	"AMQP" 2 1 0 0  → TLS header: echo it, TLS handshake, expect a new header inside TLS (§5.2)
//	"AMQP" 3 1 0 0  → SASL: echo, sasl-mechanisms, sasl-init [, challenge/response], sasl-outcome,
//	                  then the client's "AMQP" 0 1 0 0, and only then ours (§5.3; rhea stalls if
//	                  outcome, header and open arrive together)
//	"AMQP" 0 1 0 0  → no SASL: accepted only with AllowAnonymous; otherwise answered with the
//	                  SASL header and closed
//	anything else   → answered with the header we support, then closed
//
// Both sides then send open (frames at most 512 bytes until both opens were seen, §2.4.1). The
// peer may pipeline begin, attach, flow and transfer after its open: they stay buffered in the
// frame reader. A client (Dial, NewConn) runs the mirror image.
//
// # Goroutines and ownership
//
// Each connection has one reader goroutine (it decodes frames, handles open, close and begin, and
// hands every other performative to its session's bounded queue) and one writer goroutine (it
// drains its bounded queue into one buffer, writes it once, and sends an empty frame when nothing
// was written for half of the peer's idle-time-out). Each session has one goroutine that owns its
// state: the session windows, its links' credit and delivery counts, the unsettled deliveries.
// Application calls (Send, Receive's settlements, IssueCredit, attach, detach) are closures run on
// that goroutine; the session goroutine never blocks on the application. Every peer attach is
// decided by the LinkHandler on a goroutine of its own. All these goroutines are started through
// one tracker per connection, which Conn.Done waits for; a panic on any of them closes the
// connection with amqp:internal-error instead of crashing the process.
//
// # Flow control and memory
//
// Transfers consume one unit of the session incoming-window per frame (§2.5.6); the window is
// re-advertised on its own once half is used, so it never stalls and never floods. A transfer
// beyond it ends the session with amqp:session:window-violation. Link credit (§2.6.7) is what
// bounds memory: a Receiver's capacity (ReceiverOptions.Credit) counts deliveries queued for
// Receive or held unsettled, credit is granted only up to it, and a slow application therefore
// withholds credit. Messages are reassembled from their frames with one copy, bounded by the link's
// max-message-size (amqp:link:message-size-exceeded beyond it). A Sender holds at most MaxInFlight
// deliveries and splits each by the peer's max-frame-size; Sender.WaitCredit lets a queue hand over
// messages only when the peer asked for them. Serial-number arithmetic (RFC 1982) is used for
// delivery-count, delivery-id and transfer-id, and windows are clamped at zero, never wrapped.
//
// # Link recovery
//
// AMQP 1.0 §2.6.13 and §3.4.6 (resume.go). A Server detaches a link with amqp:link:stolen when the
// same container (and identity) attaches a link of the same name and role on another connection,
// before the LinkHandler sees the new attach. A Sender attached with SenderOptions.Resumable keeps
// its unsettled and queued deliveries when the link is suspended (detach closed=false, or the
// session or connection lost); SenderOptions.Resume re-attaches the link elsewhere with the
// unsettled map and reconciles it with the peer's: outcomes the peer holds settle the receipts
// (settled by a resume=true transfer, without a duplicate), deliveries cancelled mid-transfer are
// aborted (resume=true, aborted=true), the rest are resent whole with resume=true. A fresh attach
// carries a null map. On the receiving side the handler sees the peer's map
// (LinkRequest.Unsettled) and answers with ReceiverOptions.Unsettled; resumed transfers of tags it
// holds an outcome for are not delivered again.
//
// # Errors
//
// *Error is an AMQP error (condition, description, info). *ConnError, *SessionError and
// *LinkError report the end of each scope, with the peer's error (RemoteErr), ours (LocalErr) and
// the local cause (Err); errors.Is matches ErrConnClosed, ErrSessionClosed and ErrLinkClosed, and
// errors.As finds the *Error inside. Protocol violations get the spec's condition: framing
// errors close the connection, window violations and unknown handles end the session, transfers
// without credit or beyond max-message-size detach the link.
package amqp
