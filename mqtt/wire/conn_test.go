package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// readPkt reads one MQTT packet from c, as a client would.
func readPkt(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	hdr := make([]byte, 1, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	for {
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			return nil, err
		}
		hdr = append(hdr, one[0])
		if one[0]&0x80 == 0 || len(hdr) == 5 {
			break
		}
	}
	rem, _, st := decodeVBI(hdr[1:])
	if st != vbiOK {
		return nil, errors.New("bad remaining length from server")
	}
	body := make([]byte, rem)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return cat(hdr, body), nil
}

// expectClosed checks the client sees the end of the connection and nothing
// more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("client read %d bytes, %v: want the connection closed", n, err)
	}
}

func TestConnPassesPacketsUnchanged(t *testing.T) {
	for _, v := range []byte{3, 4, 5} {
		client, server := tcpPair(t)
		c := NewConn(server, Config{MaxPacketSize: 1 << 20, ConnectTimeout: 2 * time.Second})
		all := cat(stream(v)...)
		go func() { _, _ = client.Write(all) }()
		got := make([]byte, 0, len(all))
		buf := make([]byte, 7) // small reads, as a consumer's own buffering may do
		for len(got) < len(all) {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("v%d: Read after %d bytes: %v", v, len(got), err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, all) {
			t.Fatalf("v%d: bytes differ", v)
		}
		if c.Version() != v {
			t.Fatalf("Version %d, want %d", c.Version(), v)
		}
		if c.NetConn() != server {
			t.Fatal("NetConn is not the wrapped connection")
		}
	}
}

// Whole packets already buffered are handed over in one Read.
func TestConnReadsSeveralPacketsAtOnce(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Config{ConnectTimeout: 2 * time.Second})
	all := cat(connect4, hx("C0 00"), hx("C0 00"), hx("C0 00"))
	if _, err := client.Write(all); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let it all arrive
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], all) {
		t.Fatalf("Read: % X, %v; want all %d bytes in one call", buf[:n], err, len(all))
	}
}

func TestConnConnectTimeoutSilentPeer(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Config{ConnectTimeout: 500 * time.Millisecond})
	// A consumer asking for no deadline does not lift the connect deadline.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 64))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrConnectTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want ErrConnectTimeout", err)
	}
	if elapsed < 450*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Fatalf("cut after %v, want about 500ms", elapsed)
	}
	expectClosed(t, client)
	if _, err2 := c.Read(make([]byte, 1)); err2 != err {
		t.Fatalf("second Read: %v", err2)
	}
}

// A peer dripping a valid CONNECT one byte every 200ms is cut at the
// deadline: it is absolute, not renewed by each byte.
func TestConnConnectTimeoutDrip(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Config{ConnectTimeout: 500 * time.Millisecond})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for _, x := range connect5 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := client.Write([]byte{x}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_, err := c.Read(make([]byte, 64))
	elapsed := time.Since(start)
	close(stop)
	<-done
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("got %v, want ErrConnectTimeout", err)
	}
	if elapsed < 450*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Fatalf("cut after %v, want about 500ms", elapsed)
	}
}

// The consumer's read deadline is held until CONNECT passes, then applied;
// without one, the connect deadline is lifted.
func TestConnHeldDeadline(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Config{ConnectTimeout: 2 * time.Second})
	if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond) // after the consumer's deadline
		_, _ = client.Write(connect4)
	}()
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], connect4) {
		t.Fatalf("CONNECT: % X, %v (the consumer's deadline must wait for it)", buf[:n], err)
	}
	start := time.Now()
	_, err = c.Read(buf)
	if !isTimeout(err) || errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("got %v, want the consumer's own (past) deadline", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("the held deadline was not applied")
	}

	client, server = tcpPair(t)
	c = NewConn(server, Config{ConnectTimeout: 300 * time.Millisecond})
	go func() {
		_, _ = client.Write(connect4)
		time.Sleep(700 * time.Millisecond) // past the connect timeout
		_, _ = client.Write(hx("C0 00"))
	}()
	if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], connect4) {
		t.Fatalf("CONNECT: %v", err)
	}
	if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], hx("C0 00")) {
		t.Fatalf("PINGREQ after the connect timeout: % X, %v (connect deadline not lifted)", buf[:n], err)
	}
}

// rejectCase sends in after the consumer has read and answered CONNECT (as
// mochi does), and returns what the client receives after the CONNACK.
type rejectCase struct {
	name     string
	cfg      Config
	in       []byte
	connack  bool   // the consumer gets the CONNECT and answers it
	reason   byte   // the *Error Read returns
	answer   []byte // exact answer expected, if not a DISCONNECT with reason string
	reasonIn string // for a DISCONNECT with Reason String: text it contains
}

func TestConnRejections(t *testing.T) {
	cases := []rejectCase{
		{name: "v5 crash SUBSCRIBE: DISCONNECT 0x81 with reason string", in: cat(connect5, crashSubscribe), connack: true,
			reason: 0x81, reasonIn: "SUBSCRIBE topic filter 1 has no subscription options byte"},
		{name: "v5 bad filter: DISCONNECT 0x8F", in: cat(connect5, pk(0x82, u16(1), props(), str("a/#/b"), b(0))), connack: true,
			reason: 0x8F, reasonIn: "'#' must be the last level"},
		{name: "v5 too large: DISCONNECT 0x95", cfg: Config{MaxPacketSize: 64}, in: cat(connect5, pk(0x30, str("a"), props(), make([]byte, 100))), connack: true,
			reason: 0x95, reasonIn: "exceeds the maximum packet size"},
		{name: "v5 client max packet size: no reason string", connack: true,
			in:     cat(pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propMaximumPacketSize, u32(16))), str("c")), hx("C0 01 00")),
			reason: 0x81, answer: hx("E0 02 81 00")},
		{name: "v5 second CONNECT: DISCONNECT 0x82", in: cat(connect5, connect5), connack: true, reason: 0x82, reasonIn: "[MQTT-3.1.0-2]"},
		{name: "v5 bad CONNECT: CONNACK 0x81", in: pk(0x10, str("MQTT"), b(5), b(0x03), u16(0), props(), str("c")),
			reason: 0x81, answer: hx("20 03 00 81 00")},
		{name: "v5 CONNECT bad property: CONNACK 0x82", in: pk(0x10, str("MQTT"), b(5), b(0x02), u16(0), props(prop(propReceiveMaximum, u16(0))), str("c")),
			reason: 0x82, answer: hx("20 03 00 82 00")},
		{name: "level 6: CONNACK 0x01", in: pk(0x10, str("MQTT"), b(6), b(2), u16(0), str("c")), reason: 0x84, answer: hx("20 02 00 01")},
		{name: "3.1.1 bad SUBSCRIBE: close", in: cat(connect4, pk(0x82, u16(1), str("a"))), connack: true, reason: 0x81},
		{name: "3.1 bad PUBLISH: close", in: cat(connect3, pk(0x36, str("a"), u16(1))), connack: true, reason: 0x81},
		{name: "3.1.1 bad CONNECT: close", in: pk(0x10, str("MQTT"), b(4), b(0x03), u16(0), str("c")), reason: 0x81},
		{name: "not MQTT: close", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), reason: 0x82},
		{name: "PUBLISH before CONNECT: close", in: pk(0x30, str("a"), []byte("x")), reason: 0x82},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			var rejected []*Error
			tc.cfg.ConnectTimeout = 2 * time.Second
			tc.cfg.OnReject = func(e *Error) { rejected = append(rejected, e) }
			c := NewConn(server, tc.cfg)
			if _, err := client.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			consumerErr := make(chan error, 1)
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						consumerErr <- err
						return
					}
					if tc.connack && buf[0] == 0x10 && n > 0 {
						_, _ = c.Write(hx("20 03 00 00 00")) // what mochi sends
					}
				}
			}()
			if tc.connack {
				p, err := readPkt(client)
				if err != nil || p[0] != 0x20 {
					t.Fatalf("CONNACK: % X %v", p, err)
				}
			}
			switch {
			case tc.answer != nil:
				p, err := readPkt(client)
				if err != nil || !bytes.Equal(p, tc.answer) {
					t.Fatalf("answer % X, %v; want % X", p, err, tc.answer)
				}
			case tc.reasonIn != "":
				p, err := readPkt(client)
				if err != nil {
					t.Fatal(err)
				}
				checkDisconnect(t, p, tc.reason, tc.reasonIn)
			}
			expectClosed(t, client)
			err := <-consumerErr
			var e *Error
			if !errors.As(err, &e) || e.Reason != tc.reason {
				t.Fatalf("consumer got %v, want *Error 0x%02X", err, tc.reason)
			}
			if len(rejected) != 1 || rejected[0] != e {
				t.Fatalf("OnReject called with %v", rejected)
			}
		})
	}
}

// checkDisconnect parses an MQTT 5 DISCONNECT with a Reason String.
func checkDisconnect(t *testing.T, p []byte, reason byte, text string) {
	t.Helper()
	if p[0] != 0xE0 {
		t.Fatalf("not a DISCONNECT: % X", p)
	}
	if e := Validate(5, p); e != nil {
		t.Fatalf("our DISCONNECT is not valid MQTT 5: %v", e)
	}
	c := cursor{b: p, off: 1}
	_, _ = c.vbi()
	rc, _ := c.u8()
	if rc != reason {
		t.Fatalf("DISCONNECT reason 0x%02X, want 0x%02X", rc, reason)
	}
	plen, _ := c.vbi()
	if plen == 0 {
		t.Fatal("no Reason String")
	}
	if id, _ := c.u8(); id != propReasonString {
		t.Fatalf("property 0x%02X, want Reason String", id)
	}
	s, _ := c.lenPrefixed()
	if !strings.Contains(string(s), text) {
		t.Fatalf("Reason String %q lacks %q", s, text)
	}
}

// The answer to a refusal never lands inside a consumer's Write: the client
// sees whole packets only, with the DISCONNECT among them.
func TestConnWritesDoNotInterleave(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Config{ConnectTimeout: 2 * time.Second})
	if _, err := client.Write(connect5); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	// A publish of 3000 bytes: large enough for partial socket writes to show.
	pub := pk(0x30, str("out/x"), props(), bytes.Repeat([]byte("z"), 3000))
	var wg sync.WaitGroup
	var writes atomic.Int64
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(pub); err != nil {
					return
				}
				writes.Add(1)
			}
		}()
	}
	readerDone := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 64))
		readerDone <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := client.Write(crashSubscribe); err != nil {
		t.Fatal(err)
	}
	var sawDisconnect bool
	var pubs int
	for {
		p, err := readPkt(client)
		if err != nil {
			break
		}
		switch {
		case bytes.Equal(p, pub):
			pubs++
		case p[0] == 0xE0:
			checkDisconnect(t, p, 0x81, "SUBSCRIBE")
			sawDisconnect = true
		default:
			t.Fatalf("client received a mangled packet: % X...", p[:min(len(p), 16)])
		}
	}
	close(stop)
	wg.Wait()
	if err := <-readerDone; err == nil {
		t.Fatal("Read did not fail")
	}
	if !sawDisconnect || pubs == 0 {
		t.Fatalf("DISCONNECT seen %v, %d publishes of %d writes", sawDisconnect, pubs, writes.Load())
	}
}

// net.Pipe has no half-close: the answer is written and the pipe closed.
func TestConnOverPipe(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Config{ConnectTimeout: 2 * time.Second})
	go func() { _, _ = client.Write(cat(connect5, crashSubscribe)) }()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	p, err := readPkt(client)
	if err != nil {
		t.Fatal(err)
	}
	checkDisconnect(t, p, 0x81, "subscription options")
	expectClosed(t, client)
	var e *Error
	if err := <-errc; !errors.As(err, &e) {
		t.Fatalf("consumer: %v", err)
	}
}

func TestConnDisconnectPacketTruncatesReasonString(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	p := disconnectPacket(nil, &Error{Reason: 0x82, Msg: long}, 0)
	// Fixed header 3, reason 1, property length 2, identifier and length 3.
	if len(p) > 9+maxReasonString {
		t.Fatalf("%d byte DISCONNECT", len(p))
	}
	if e := Validate(5, p); e != nil {
		t.Fatalf("truncated DISCONNECT invalid: %v", e)
	}
	checkDisconnect(t, p, 0x82, "éé")
	short := disconnectPacket(nil, &Error{Reason: 0x81, Msg: "m"}, 0)
	if !bytes.Equal(short, cat(hx("E0 06 81 04 1F"), str("m"))) {
		t.Fatalf("short DISCONNECT % X", short)
	}
}
