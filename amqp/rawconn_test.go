package amqp

// Error paths driven by hand-written frames over a raw TCP socket: every violation must get the
// condition the spec names, in close, end or detach.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

type rawPeer struct {
	t  testing.TB
	nc net.Conn
	fr *frames.Reader
}

func rawDial(t testing.TB, url string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "amqp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawPeer{t: t, nc: nc, fr: frames.NewReader(nc, 1<<20)}
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

func (p *rawPeer) frame(typ frames.FrameType, ch uint16, body frames.FrameBody, payload []byte) []byte {
	p.t.Helper()
	b, err := frames.AppendFrame(nil, typ, ch, body, payload)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *rawPeer) send(ch uint16, body frames.FrameBody, payload []byte) {
	p.t.Helper()
	p.write(p.frame(frames.FrameAMQP, ch, body, payload))
}

// readHeader reads a protocol header from the server.
func (p *rawPeer) readHeader() frames.ProtocolHeader {
	p.t.Helper()
	h, err := p.fr.ReadProtocolHeader()
	if err != nil {
		p.t.Fatalf("reading protocol header: %v", err)
	}
	return h
}

// next returns the next non-empty frame's performative or SASL body.
func (p *rawPeer) next() (uint16, any) {
	p.t.Helper()
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.t.Fatalf("reading frame: %v", err)
		}
		if f.Empty() {
			continue
		}
		if f.Type == frames.FrameSASL {
			sf, err := frames.DecodeSASLFrame(bytes.Clone(f.Body))
			if err != nil {
				p.t.Fatal(err)
			}
			return 0, sf
		}
		perf, _, err := frames.DecodePerformative(bytes.Clone(f.Body))
		if err != nil {
			p.t.Fatal(err)
		}
		return f.Channel, perf
	}
}

// expect reads until a frame of type T arrives (skipping flows and others) and returns it.
func expect[T any](p *rawPeer) T {
	p.t.Helper()
	for {
		_, v := p.next()
		if x, ok := v.(T); ok {
			return x
		}
	}
}

// expectEOF checks that the server closed the socket.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	var b [256]byte
	for {
		_, err := p.nc.Read(b[:])
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			p.t.Fatalf("expected the server to close, got %v", err)
		}
		return
	}
}

// open does the plain header and open exchange (the server must allow anonymous).
func (p *rawPeer) open(o *frames.Open) *frames.Open {
	p.t.Helper()
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
	if h := p.readHeader(); h.ID != frames.ProtocolAMQP {
		p.t.Fatalf("server header %v", h)
	}
	if o == nil {
		o = &frames.Open{ContainerID: "raw", MaxFrameSize: 1 << 20, ChannelMax: 10}
	}
	p.send(0, o, nil)
	return expect[*frames.Open](p)
}

func (p *rawPeer) begin(ch uint16) *frames.Begin {
	p.t.Helper()
	p.send(ch, &frames.Begin{NextOutgoingID: 0, IncomingWindow: 1000, OutgoingWindow: 1000, HandleMax: 100}, nil)
	return expect[*frames.Begin](p)
}

// attachSender attaches a sending link and returns the server's answer.
func (p *rawPeer) attachSender(ch uint16, handle uint32, name, target string) *frames.Attach {
	p.t.Helper()
	p.send(ch, &frames.Attach{Name: name, Handle: handle, Role: frames.RoleSender, SndSettleMode: frames.SenderSettleModeMixed,
		Source: &frames.Source{}, Target: &frames.Target{Address: frames.Some(target)}, InitialDeliveryCount: frames.Some(uint32(0))}, nil)
	return expect[*frames.Attach](p)
}

func encodedMsg(t testing.TB, s string) []byte {
	b, err := dataMsg(s).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func transfer(handle, id uint32, more bool) *frames.Transfer {
	return &frames.Transfer{Handle: handle, DeliveryID: frames.Some(id), DeliveryTag: []byte{byte(id)}, MessageFormat: frames.Some(uint32(0)), More: more}
}

func checkCond(t testing.TB, what string, e *frames.Error, want frames.Symbol) {
	t.Helper()
	if e == nil {
		t.Fatalf("%s without error, want %s", what, want)
	}
	if e.Condition != want {
		t.Fatalf("%s condition %s (%s), want %s", what, e.Condition, e.Description.Or(""), want)
	}
}

func TestRawBadProtocolHeader(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	for _, in := range []string{"HTTP/1.1\r\n", "AMQP\x00\x02\x00\x00", "AMQP\x09\x01\x00\x00"} {
		p := rawDial(t, url)
		p.write([]byte(in))
		// AMQP 1.0 §2.2: the server answers with a header it supports, then closes.
		var h [8]byte
		if _, err := io.ReadFull(p.nc, h[:]); err != nil {
			t.Fatalf("%q: no header back: %v", in, err)
		}
		if got, err := frames.ParseProtocolHeader(h[:]); err != nil || !got.Supported() {
			t.Fatalf("%q: answered %q", in, h[:])
		}
		p.expectEOF()
	}
}

func TestRawSASLRequired(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{PlainWithoutTLS: true, Authenticator: AuthenticatorFunc(func(context.Context, *AuthRequest) (string, error) { return "x", nil })})
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
	if h := p.readHeader(); h.ID != frames.ProtocolSASL {
		t.Fatalf("answered %v, want the SASL header", h)
	}
	p.expectEOF()
}

func TestRawBadSASL(t *testing.T) {
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) {
		if r.Password == "ok" {
			return r.Username, nil
		}
		return "", &SASLError{Code: frames.SASLCodeSysTemp, Err: errors.New("backend down")}
	})
	_, url, _ := startServer(t, ServerOptions{Authenticator: auth, PlainWithoutTLS: true})
	for _, tc := range []struct {
		name string
		init *frames.SASLInit
		want frames.SASLCode
	}{
		{"unoffered mechanism", &frames.SASLInit{Mechanism: "BOGUS"}, frames.SASLCodeAuth},
		{"anonymous not allowed", &frames.SASLInit{Mechanism: "ANONYMOUS"}, frames.SASLCodeAuth},
		{"malformed PLAIN", &frames.SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("no-nuls")}, frames.SASLCodeAuth},
		{"authenticator code", &frames.SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00u\x00bad")}, frames.SASLCodeSysTemp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rawDial(t, url)
			p.write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL))
			if h := p.readHeader(); h.ID != frames.ProtocolSASL {
				t.Fatalf("header %v", h)
			}
			mechs := expect[*frames.SASLMechanisms](p)
			if len(mechs.SASLServerMechanisms) != 1 || mechs.SASLServerMechanisms[0] != "PLAIN" {
				t.Fatalf("mechanisms %v, want [PLAIN]", mechs.SASLServerMechanisms)
			}
			p.write(p.frame(frames.FrameSASL, 0, tc.init, nil))
			out := expect[*frames.SASLOutcome](p)
			if out.Code != tc.want {
				t.Fatalf("outcome %d, want %d", out.Code, tc.want)
			}
			p.expectEOF()
		})
	}
	// PLAIN without an initial response: empty challenge, credentials in the response.
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL))
	p.readHeader()
	expect[*frames.SASLMechanisms](p)
	p.write(p.frame(frames.FrameSASL, 0, &frames.SASLInit{Mechanism: "PLAIN"}, nil))
	expect[*frames.SASLChallenge](p)
	p.write(p.frame(frames.FrameSASL, 0, &frames.SASLResponse{Response: []byte("\x00user\x00ok")}, nil))
	if out := expect[*frames.SASLOutcome](p); out.Code != frames.SASLCodeOK {
		t.Fatalf("outcome %d", out.Code)
	}
	// The server waits for our AMQP header before sending its own (rhea needs that).
	_ = p.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	if n, _ := p.nc.Read(b[:]); n != 0 {
		t.Fatal("server sent its AMQP header before ours")
	}
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
	if h := p.readHeader(); h.ID != frames.ProtocolAMQP {
		t.Fatalf("header %v", h)
	}
	p.send(0, &frames.Open{ContainerID: "raw", MaxFrameSize: 512, ChannelMax: 1}, nil)
	expect[*frames.Open](p)
}

func TestRawFrameTooLarge(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, MaxFrameSize: 1024})
	p := rawDial(t, url)
	if o := p.open(nil); o.MaxFrameSize != 1024 {
		t.Fatalf("server max-frame-size %d", o.MaxFrameSize)
	}
	var h [8]byte
	binary.BigEndian.PutUint32(h[:], 5000)
	h[4], h[5] = 2, 0
	p.write(h[:])
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondConnectionFramingError)
	p.expectEOF()
}

func TestRawOpenTooLargeBeforeOpen(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolAMQP))
	p.readHeader()
	expect[*frames.Open](p)
	// AMQP 1.0 §2.4.1: until both opens are exchanged, frames are at most 512 bytes.
	o := &frames.Open{ContainerID: strings.Repeat("x", 600)}
	p.send(0, o, nil)
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondConnectionFramingError)
	p.expectEOF()
}

func TestRawBadDoffAndDecodeError(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	p := rawDial(t, url)
	p.open(nil)
	p.write([]byte{0, 0, 0, 8, 1, 0, 0, 0}) // doff 1
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondConnectionFramingError)

	p = rawDial(t, url)
	p.open(nil)
	p.begin(0)
	// An attach whose mandatory name is null.
	body := []byte{0x00, 0x53, 0x12, 0xc0, 0x04, 0x03, 0x40, 0x43, 0x42}
	b := frames.AppendHeader(nil, frames.Header{Size: uint32(8 + len(body)), DataOffset: 2})
	p.write(append(b, body...))
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondDecodeError)
	p.send(0, &frames.Close{}, nil)
	p.expectEOF()
}

func TestRawUnmappedChannelAndChannelMax(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, ChannelMax: 3})
	p := rawDial(t, url)
	p.open(nil)
	p.send(2, &frames.Flow{IncomingWindow: 1, NextOutgoingID: 0, OutgoingWindow: 1}, nil)
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondNotAllowed)

	p = rawDial(t, url)
	p.open(nil)
	p.send(9, &frames.Begin{IncomingWindow: 1, OutgoingWindow: 1, HandleMax: 1}, nil)
	checkCond(t, "close", expect[*frames.Close](p).Error, frames.CondConnectionFramingError)
}

// acceptManual is a LinkHandler that accepts every peer sender with manual credit (none granted).
var acceptManual = LinkHandlerFunc(func(req *LinkRequest) error {
	if req.PeerRole() == frames.RoleSender {
		_, err := req.AcceptReceiver(&ReceiverOptions{ManualCredit: true, Credit: 10})
		return err
	}
	_, err := req.AcceptSender(nil)
	return err
})

func TestRawTransferWithoutCredit(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: acceptManual})
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)
	a := p.attachSender(0, 0, "l0", "q")
	p.send(0, transfer(0, 0, false), encodedMsg(t, "no credit"))
	d := expect[*frames.Detach](p)
	if d.Handle != a.Handle || !d.Closed {
		t.Fatalf("detach %+v", d)
	}
	checkCond(t, "detach", d.Error, frames.CondLinkTransferLimitExceeded)
	// Answer the detach: the session stays usable.
	p.send(0, &frames.Detach{Handle: 0, Closed: true}, nil)
	p.attachSender(0, 0, "l0", "q")
}

func TestRawUnknownHandleAndHandleInUse(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)
	p.send(0, transfer(7, 0, false), encodedMsg(t, "x"))
	checkCond(t, "end", expect[*frames.End](p).Error, frames.CondSessionUnattachedHandle)

	p = rawDial(t, url)
	p.open(nil)
	p.begin(0)
	p.attachSender(0, 0, "a", "q-h")
	p.send(0, &frames.Attach{Name: "b", Handle: 0, Role: frames.RoleSender, Target: &frames.Target{}, InitialDeliveryCount: frames.Some(uint32(0))}, nil)
	checkCond(t, "end", expect[*frames.End](p).Error, frames.CondSessionHandleInUse)
	// The session is in DISCARDING; after our end the channel can begin again.
	p.send(0, &frames.End{}, nil)
	p.begin(0)
}

func TestRawWindowViolation(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, SessionWindow: 4}, func(srv *Server) { srv.cfg.fixedWindow = true })
	p := rawDial(t, url)
	p.open(nil)
	if b := p.begin(0); b.IncomingWindow != 4 {
		t.Fatalf("incoming-window %d", b.IncomingWindow)
	}
	p.attachSender(0, 0, "w", "sink-w")
	expect[*frames.Flow](p) // credit
	msg := encodedMsg(t, "w")
	for i := range uint32(5) {
		p.send(0, transfer(0, i, false), msg)
	}
	checkCond(t, "end", expect[*frames.End](p).Error, frames.CondSessionWindowViolation)
}

func TestRawOversizeMessage(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, MaxMessageSize: 100})
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)
	if a := p.attachSender(0, 0, "big", "q-big"); a.MaxMessageSize.Or(0) != 100 {
		t.Fatalf("attach max-message-size %v", a.MaxMessageSize)
	}
	expect[*frames.Flow](p)
	// Two frames of 60 bytes: the second goes beyond the limit.
	p.send(0, transfer(0, 0, true), make([]byte, 60))
	p.send(0, &frames.Transfer{Handle: 0, More: true}, make([]byte, 60))
	d := expect[*frames.Detach](p)
	checkCond(t, "detach", d.Error, frames.CondLinkMessageSizeExceeded)
}

// TestRawAbortAndPipelining sends header, open, begin, attach and a multi-frame delivery that is
// then aborted, all in one write before reading anything (Proton pipelines like this), then a
// normal delivery: only the second reaches the node.
func TestRawAbortAndPipelining(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	p := rawDial(t, url)
	var b []byte
	b = frames.AppendProtocolHeader(b, frames.ProtocolAMQP)
	b = append(b, p.frame(frames.FrameAMQP, 0, &frames.Open{ContainerID: "pipe", MaxFrameSize: 65536}, nil)...)
	b = append(b, p.frame(frames.FrameAMQP, 0, &frames.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)...)
	b = append(b, p.frame(frames.FrameAMQP, 0, &frames.Attach{Name: "p", Handle: 0, Role: frames.RoleSender,
		Source: &frames.Source{}, Target: &frames.Target{Address: frames.Some("q-pipe")}, InitialDeliveryCount: frames.Some(uint32(0))}, nil)...)
	p.write(b)
	p.readHeader()
	expect[*frames.Open](p)
	expect[*frames.Begin](p)
	expect[*frames.Attach](p)
	if f := expect[*frames.Flow](p); f.LinkCredit.Or(0) == 0 {
		t.Fatal("no credit")
	}
	full := encodedMsg(t, "aborted message")
	p.send(0, transfer(0, 0, true), full[:5])
	p.send(0, &frames.Transfer{Handle: 0, More: true}, full[5:10])
	p.send(0, &frames.Transfer{Handle: 0, Aborted: true}, nil)
	p.send(0, transfer(0, 1, false), encodedMsg(t, "second"))
	disp := expect[*frames.Disposition](p)
	if disp.First != 1 || !disp.Settled {
		t.Fatalf("disposition %+v, want delivery 1 settled", disp)
	}
	if _, ok := disp.State.(*frames.Accepted); !ok {
		t.Fatalf("state %T", disp.State)
	}
	got := <-node.queue("q-pipe").ch
	if !bytes.Equal(got, encodedMsg(t, "second")) {
		t.Fatalf("queued %q", got)
	}
	select {
	case extra := <-node.queue("q-pipe").ch:
		t.Fatalf("aborted delivery reached the node: %q", extra)
	default:
	}
}

// TestRawDispositionHugeRange: a disposition over 2^31 ids is handled by walking the unsettled
// map, not the range (RabbitMQ #17407).
func TestRawDispositionHugeRange(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true})
	node.queue("q-range").ch <- encodedMsg(t, "r")
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)
	p.send(0, &frames.Attach{Name: "r", Handle: 0, Role: frames.RoleReceiver, Source: &frames.Source{Address: frames.Some("q-range")}, Target: &frames.Target{}}, nil)
	expect[*frames.Attach](p)
	p.send(0, &frames.Flow{NextIncomingID: frames.Some(uint32(0)), IncomingWindow: 100, OutgoingWindow: 100, Handle: frames.Some(uint32(0)),
		DeliveryCount: frames.Some(uint32(0)), LinkCredit: frames.Some(uint32(10))}, nil)
	tr := expect[*frames.Transfer](p)
	start := time.Now()
	p.send(0, &frames.Disposition{Role: frames.RoleReceiver, First: tr.DeliveryID.V, Last: frames.Some(tr.DeliveryID.V + 0x7FFFFFF0), Settled: true, State: &frames.Accepted{}}, nil)
	// The server is still responsive: an echo flow is answered at once.
	p.send(0, &frames.Flow{NextIncomingID: frames.Some(uint32(1)), IncomingWindow: 100, OutgoingWindow: 100, Echo: true}, nil)
	expect[*frames.Flow](p)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("huge disposition range took %v", d)
	}
}

func TestRawHandshakeTimeout(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, HandshakeTimeout: 200 * time.Millisecond})
	p := rawDial(t, url)
	start := time.Now()
	p.expectEOF()
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// TestRawSilentPeerDropped: after open, a peer that sends nothing (no heartbeats) is closed with
// amqp:resource-limit-exceeded once the server's idle timeout expires; the server itself sends
// heartbeats meanwhile at half of what we advertised.
func TestRawSilentPeerDropped(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, IdleTimeout: 600 * time.Millisecond})
	p := rawDial(t, url)
	o := p.open(&frames.Open{ContainerID: "silent", MaxFrameSize: 4096, IdleTimeOut: frames.Some(uint32(100))})
	if o.IdleTimeOut.Or(0) != 300 {
		t.Fatalf("server advertised idle-time-out %v, want half of 600ms", o.IdleTimeOut)
	}
	start := time.Now()
	empties := 0
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.Empty() {
			empties++
			continue
		}
		perf, _, err := frames.DecodePerformative(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		cl, ok := perf.(*frames.Close)
		if !ok {
			continue
		}
		checkCond(t, "close", cl.Error, frames.CondResourceLimitExceeded)
		break
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("dropped after %v, before the idle timeout", d)
	}
	if empties < 5 {
		t.Fatalf("server sent %d heartbeats in %v for a peer asking every 100ms", empties, time.Since(start))
	}
	p.expectEOF()
}

func TestRawDuplicateLinkNameAndHandleMax(t *testing.T) {
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, HandleMax: 3})
	p := rawDial(t, url)
	p.open(nil)
	if b := p.begin(0); b.HandleMax != 3 {
		t.Fatalf("handle-max %d", b.HandleMax)
	}
	p.attachSender(0, 0, "dup", "q-dup")
	// AMQP 1.0 §2.6.1: the name with this role is attached already: refused the spec's way, an
	// attach with a null target, then detach with the error.
	a := p.attachSender(0, 1, "dup", "q-dup")
	if a.Target != nil {
		t.Fatalf("refusal carries target %+v", a.Target)
	}
	d := expect[*frames.Detach](p)
	checkCond(t, "detach", d.Error, frames.CondNotAllowed)
	if d.Handle != a.Handle || !d.Closed {
		t.Fatalf("detach %+v for attach handle %d", d, a.Handle)
	}
	p.send(0, &frames.Detach{Handle: 1, Closed: true}, nil)
	// A handle above handle-max ends the session.
	p.send(0, &frames.Attach{Name: "x", Handle: 4, Role: frames.RoleSender, Target: &frames.Target{}, InitialDeliveryCount: frames.Some(uint32(0))}, nil)
	checkCond(t, "end", expect[*frames.End](p).Error, frames.CondNotAllowed)
}

// TestRawDispositionRanges: settlements of consecutive deliveries may be merged into ranges;
// every delivery must be covered exactly once, accepted and settled.
func TestRawDispositionRanges(t *testing.T) {
	const n = 50
	// The handler receives all n deliveries, then accepts them from n goroutines at once: the
	// concurrent settlements are what the session merges.
	h := LinkHandlerFunc(func(req *LinkRequest) error {
		rcv, err := req.AcceptReceiver(&ReceiverOptions{Credit: n})
		if err != nil {
			return err
		}
		go func() {
			ctx := context.Background()
			var ds []*Delivery
			for range n {
				d, err := rcv.Receive(ctx)
				if err != nil {
					return
				}
				ds = append(ds, d)
			}
			var wg sync.WaitGroup
			for _, d := range ds {
				wg.Add(1)
				go func() { defer wg.Done(); _ = d.Accept(ctx) }()
			}
			wg.Wait()
		}()
		return nil
	})
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true, LinkHandler: h})
	p := rawDial(t, url)
	p.open(nil)
	p.begin(0)
	p.attachSender(0, 0, "ranges", "sink-ranges")
	expect[*frames.Flow](p)
	var b []byte
	for i := range uint32(n) {
		tr := transfer(0, i, false)
		tr.Settled = frames.Some(false)
		b = append(b, p.frame(frames.FrameAMQP, 0, tr, encodedMsg(t, "r"))...)
	}
	p.write(b)
	seen := make(map[uint32]int)
	frames_ := 0
	for len(seen) < n {
		d := expect[*frames.Disposition](p)
		frames_++
		if !d.Settled || d.Role != frames.RoleReceiver {
			t.Fatalf("disposition %+v", d)
		}
		if _, ok := d.State.(*frames.Accepted); !ok {
			t.Fatalf("state %T", d.State)
		}
		for id := d.First; ; id++ {
			seen[id]++
			if id == d.Last.Or(d.First) {
				break
			}
		}
	}
	for id, c := range seen {
		if id >= n || c != 1 {
			t.Fatalf("delivery %d covered %d times", id, c)
		}
	}
	t.Logf("%d deliveries settled in %d disposition frames", n, frames_)
}

// TestRawSerialWrap starts the peer's transfer-ids, delivery-ids and delivery-count just below
// 2^32: the arithmetic must wrap (RFC 1982), never refuse credit or the window.
func TestRawSerialWrap(t *testing.T) {
	_, url, node := startServer(t, ServerOptions{AllowAnonymous: true, SessionWindow: 16})
	p := rawDial(t, url)
	p.open(nil)
	const start = uint32(0xFFFFFFF0)
	p.send(0, &frames.Begin{NextOutgoingID: start, IncomingWindow: 1000, OutgoingWindow: 1000, HandleMax: 10}, nil)
	expect[*frames.Begin](p)
	p.send(0, &frames.Attach{Name: "wrap", Handle: 0, Role: frames.RoleSender, Source: &frames.Source{},
		Target: &frames.Target{Address: frames.Some("q-wrap")}, InitialDeliveryCount: frames.Some(start)}, nil)
	expect[*frames.Attach](p)
	f := expect[*frames.Flow](p)
	if f.DeliveryCount.Or(0) != start || f.LinkCredit.Or(0) == 0 {
		t.Fatalf("flow %+v", f)
	}
	const n = 40
	credit := f.LinkCredit.V
	sent := uint32(0)
	settled := 0
	for sent < n {
		// Send within link credit (the server re-advertises its session window as it goes).
		for sent < n && credit > 0 {
			p.send(0, transfer(0, start+sent, false), encodedMsg(t, "w"))
			sent++
			credit--
		}
		for settled < int(sent) {
			_, v := p.next()
			switch x := v.(type) {
			case *frames.Flow:
				if x.Handle.Valid {
					credit = x.DeliveryCount.V + x.LinkCredit.V - (start + sent)
				}
			case *frames.Disposition:
				for id := x.First; ; id++ {
					settled++
					if id == x.Last.Or(x.First) {
						break
					}
				}
			case *frames.Detach, *frames.End, *frames.Close:
				t.Fatalf("server ended: %+v", x)
			}
		}
	}
	for range n {
		<-node.queue("q-wrap").ch
	}
}

// PLAIN on a connection without TLS sends the password in the clear: it is
// offered only with PlainWithoutTLS, and a client choosing it anyway fails.
func TestRawPlainNeedsTLS(t *testing.T) {
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) { return r.Username, nil })
	_, url, _ := startServer(t, ServerOptions{Authenticator: auth, AllowAnonymous: true})
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL))
	if h := p.readHeader(); h.ID != frames.ProtocolSASL {
		t.Fatalf("header %v", h)
	}
	mechs := expect[*frames.SASLMechanisms](p)
	if len(mechs.SASLServerMechanisms) != 1 || mechs.SASLServerMechanisms[0] != "ANONYMOUS" {
		t.Fatalf("mechanisms %v on plaintext, want [ANONYMOUS]", mechs.SASLServerMechanisms)
	}
	p.write(p.frame(frames.FrameSASL, 0, &frames.SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00u\x00pw")}, nil))
	if out := expect[*frames.SASLOutcome](p); out.Code != frames.SASLCodeAuth {
		t.Fatalf("PLAIN on plaintext: outcome %d, want auth (1)", out.Code)
	}
	p.expectEOF()
}

// With no mechanism possible on a connection (no TLS, no anonymous access, PLAIN not allowed in
// the clear) the server answers the SASL header with the TLS header and closes, instead of an
// empty sasl-mechanisms (AMQP 1.0 §5.3.3.1 requires one at least).
func TestRawNoMechanismPossible(t *testing.T) {
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) { return r.Username, nil })
	_, url, _ := startServer(t, ServerOptions{Authenticator: auth, TLSConfig: &tls.Config{}})
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolSASL))
	if h := p.readHeader(); h.ID != frames.ProtocolTLS {
		t.Fatalf("answered %v, want the TLS header", h)
	}
	p.expectEOF()
}
