package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// packetServer is a toy length-prefixed protocol standing in for MQTT: each
// packet is one length byte and that many bytes. It reports every packet it
// reads and writes it back with one Write.
func packetServer(packets chan<- []byte) func(net.Conn) {
	return func(c net.Conn) {
		for {
			var n [1]byte
			if _, err := io.ReadFull(c, n[:]); err != nil {
				return
			}
			p := make([]byte, 1+int(n[0]))
			p[0] = n[0]
			if _, err := io.ReadFull(c, p[1:]); err != nil {
				return
			}
			packets <- p
			if _, err := c.Write(p); err != nil {
				return
			}
		}
	}
}

func packet(body string) []byte { return append([]byte{byte(len(body))}, body...) }

func TestByteStream(t *testing.T) {
	t.Run("one message, three packets", func(t *testing.T) {
		packets := make(chan []byte, 8)
		_, srv := startServer(t, Options{}, packetServer(packets))
		c := mustDial(t, srv)
		want := [][]byte{packet("connect"), packet(""), packet("publish")}
		if err := c.WriteMessage(websocket.BinaryMessage, bytes.Join(want, nil)); err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			if got := recv(t, packets); !bytes.Equal(got, w) {
				t.Errorf("packet %d read as %q, want %q", i, got, w)
			}
			// One Write, one message.
			if got := readBinary(t, c); !bytes.Equal(got, w) {
				t.Errorf("message %d is %q, want %q", i, got, w)
			}
		}
	})
	t.Run("one packet, three messages", func(t *testing.T) {
		packets := make(chan []byte, 8)
		_, srv := startServer(t, Options{}, packetServer(packets))
		c := mustDial(t, srv)
		want := packet("a packet split over three messages")
		for _, part := range [][]byte{want[:1], want[1:10], want[10:]} {
			if err := c.WriteMessage(websocket.BinaryMessage, part); err != nil {
				t.Fatal(err)
			}
		}
		if got := recv(t, packets); !bytes.Equal(got, want) {
			t.Errorf("packet read as %q, want %q", got, want)
		}
		if got := readBinary(t, c); !bytes.Equal(got, want) {
			t.Errorf("message %q, want %q", got, want)
		}
	})
	t.Run("empty messages carry nothing", func(t *testing.T) {
		packets := make(chan []byte, 8)
		_, srv := startServer(t, Options{}, packetServer(packets))
		c := mustDial(t, srv)
		want := packet("xy")
		for _, part := range [][]byte{{}, want[:2], {}, {}, want[2:]} {
			if err := c.WriteMessage(websocket.BinaryMessage, part); err != nil {
				t.Fatal(err)
			}
		}
		if got := recv(t, packets); !bytes.Equal(got, want) {
			t.Errorf("packet read as %q, want %q", got, want)
		}
	})
	t.Run("fragmented message with a ping inside", func(t *testing.T) {
		packets := make(chan []byte, 8)
		_, srv := startServer(t, Options{}, packetServer(packets))
		// A 16-byte write buffer makes gorilla send the message as
		// several frames (RFC 6455 §5.4).
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, WriteBufferSize: 16}
		c, _, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pong := make(chan string, 1)
		c.SetPongHandler(func(data string) error { pong <- data; return nil })
		want := packet("fragmented across frames, with a ping between them")
		w, err := c.NextWriter(websocket.BinaryMessage)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(want[:40]); err != nil { // flushes two frames
			t.Fatal(err)
		}
		// RFC 6455 §5.5: control frames may be injected between fragments.
		if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(want[40:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, packets); !bytes.Equal(got, want) {
			t.Errorf("packet read as %q, want %q", got, want)
		}
		// Reading the echo runs the pong handler first: the server
		// answered the ping while it read the message.
		if got := readBinary(t, c); !bytes.Equal(got, want) {
			t.Errorf("message %q, want %q", got, want)
		}
		// RFC 6455 §5.5.3: the Pong carries the Ping's application data.
		if got := recv(t, pong); got != "are you there" {
			t.Errorf("pong data %q, want %q", got, "are you there")
		}
	})
}

// TestSmallReads: a Read buffer smaller than the message returns the message
// in pieces, in order.
func TestSmallReads(t *testing.T) {
	got := make(chan []byte, 1)
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		var all []byte
		buf := make([]byte, 3)
		for len(all) < 100 {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- all
	})
	c := mustDial(t, srv)
	want := make([]byte, 100)
	for i := range want {
		want[i] = byte(i)
	}
	for _, part := range [][]byte{want[:50], want[50:51], want[51:]} {
		if err := c.WriteMessage(websocket.BinaryMessage, part); err != nil {
			t.Fatal(err)
		}
	}
	if g := recv(t, got); !bytes.Equal(g, want) {
		t.Errorf("read %v, want %v", g, want)
	}
}

func TestEchoStream(t *testing.T) {
	_, srv := startServer(t, Options{}, echo)
	c := mustDial(t, srv)
	rng := rand.New(rand.NewPCG(1, 2))
	var sent, echoed []byte
	for range 50 {
		msg := make([]byte, rng.IntN(5000))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		sent = append(sent, msg...)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
	}
	for len(echoed) < len(sent) {
		echoed = append(echoed, readBinary(t, c)...)
	}
	if !bytes.Equal(echoed, sent) {
		t.Fatalf("echoed stream differs from the sent one (%d vs %d bytes)", len(echoed), len(sent))
	}
}

func TestReadLimit(t *testing.T) {
	const limit = 64
	for _, tt := range []struct {
		name string
		send func(c *websocket.Conn) error
	}{
		{"one frame", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, make([]byte, limit+1))
		}},
		{"fragments adding up", func(c *websocket.Conn) error {
			w, err := c.NextWriter(websocket.BinaryMessage)
			if err != nil {
				return err
			}
			for range 3 {
				if _, err := w.Write(make([]byte, 30)); err != nil {
					return err
				}
			}
			return w.Close()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			_, srv := startServer(t, Options{ReadLimit: limit}, func(c net.Conn) {
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if err != nil {
						readErr <- err
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						readErr <- err
						return
					}
				}
			})
			d := websocket.Dialer{Subprotocols: []string{"mqtt"}, WriteBufferSize: 16}
			c, _, err := d.Dial(wsURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A message at the limit passes.
			if err := c.WriteMessage(websocket.BinaryMessage, make([]byte, limit)); err != nil {
				t.Fatal(err)
			}
			// The client sends 16-byte frames, and Read returns what has
			// arrived: the echo may come in several messages.
			for got := 0; got < limit; {
				got += len(readBinary(t, c))
				if got > limit {
					t.Fatalf("echo of %d bytes, want %d", got, limit)
				}
			}
			if err := tt.send(c); err != nil {
				t.Fatal(err)
			}
			// RFC 6455 §7.4.1: 1009, message too big.
			if code := readCloseCode(t, c); code != websocket.CloseMessageTooBig {
				t.Errorf("close code %d, want 1009", code)
			}
			_ = c.Close()
			if err := recv(t, readErr); !errors.Is(err, ErrMessageTooBig) {
				t.Errorf("server Read error %v, want %v", err, ErrMessageTooBig)
			}
		})
	}
}

func TestDefaultReadLimit(t *testing.T) {
	h := NewHandler(Options{Subprotocols: mqttProtocols, ReadLimit: -1}, func(net.Conn) {})
	if h.readLimit != DefaultReadLimit {
		t.Errorf("read limit %d, want DefaultReadLimit %d", h.readLimit, DefaultReadLimit)
	}
}

func TestTextMessage(t *testing.T) {
	readErr := make(chan error, 1)
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		_, err := io.ReadAll(c)
		if err == nil {
			err = errors.New("ReadAll ended without error")
		}
		readErr <- err
	})
	c := mustDial(t, srv)
	if err := c.WriteMessage(websocket.TextMessage, []byte("CONNECT")); err != nil {
		t.Fatal(err)
	}
	// [MQTT-6.0.0-1]; RFC 6455 §7.4.1: 1003, unsupported data.
	if code := readCloseCode(t, c); code != websocket.CloseUnsupportedData {
		t.Errorf("close code %d, want 1003", code)
	}
	if err := recv(t, readErr); !errors.Is(err, ErrTextMessage) {
		t.Errorf("server Read error %v, want %v", err, ErrTextMessage)
	}
}

func TestPeerClose(t *testing.T) {
	tests := []struct {
		name    string
		close   func(c *websocket.Conn) error
		wantEOF bool
		want    CloseError
	}{
		{"normal", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		}, true, CloseError{}},
		{"going away", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, "tab closed"), time.Now().Add(time.Second))
		}, true, CloseError{}},
		{"no status", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, nil, time.Now().Add(time.Second))
		}, true, CloseError{}},
		{"tcp only", func(c *websocket.Conn) error { return c.NetConn().Close() }, true, CloseError{}},
		{"application code", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second))
		}, false, CloseError{Code: 4000, Reason: "bye"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			_, srv := startServer(t, Options{}, func(c net.Conn) {
				_, err := c.Read(make([]byte, 10))
				readErr <- err
			})
			c := mustDial(t, srv)
			if err := tt.close(c); err != nil {
				t.Fatal(err)
			}
			err := recv(t, readErr)
			if tt.wantEOF {
				if err != io.EOF {
					t.Errorf("Read error %v, want io.EOF", err)
				}
				return
			}
			var ce *CloseError
			if !errors.As(err, &ce) || *ce != tt.want {
				t.Errorf("Read error %v, want %+v", err, tt.want)
			}
		})
	}
}

// TestProtocolErrors: frames that break RFC 6455 framing end the connection
// with 1002 (protocol error) and a Read error; gorilla does the checking.
func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte // written raw after the handshake
	}{
		// RFC 6455 §5.1: a client MUST mask every frame.
		{"unmasked frame", []byte{0x82, 0x01, 'x'}},
		// RFC 6455 §5.2: opcodes 0x3-0x7 are reserved.
		{"reserved opcode", []byte{0x83, 0x80, 0, 0, 0, 0}},
		// RFC 6455 §5.5: control frames carry at most 125 bytes.
		{"long ping", []byte{0x89, 0x80 | 126, 0, 126, 0, 0, 0, 0}},
		// RFC 6455 §5.5: control frames are never fragmented.
		{"fragmented ping", []byte{0x09, 0x80, 0, 0, 0, 0}},
		// RFC 6455 §5.4: a continuation frame needs a message to continue.
		{"orphan continuation", []byte{0x80, 0x80, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			_, srv := startServer(t, Options{}, func(c net.Conn) {
				_, err := io.ReadAll(c)
				readErr <- err
			})
			c := mustDial(t, srv)
			if _, err := c.NetConn().Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			if code := readCloseCode(t, c); code != websocket.CloseProtocolError {
				t.Errorf("close code %d, want 1002", code)
			}
			if err := recv(t, readErr); err == nil || err == io.EOF {
				t.Errorf("server Read error %v, want a protocol error", err)
			}
		})
	}
}

func TestConnClose(t *testing.T) {
	results := make(chan []error, 1)
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		first := c.Close()
		second := c.Close()
		_, werr := c.Write([]byte("after close"))
		_, rerr := c.Read(make([]byte, 1))
		results <- []error{first, second, werr, rerr}
	})
	c := mustDial(t, srv)
	// RFC 6455 §7.4.1: 1000, normal closure.
	if code := readCloseCode(t, c); code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want 1000", code)
	}
	errs := recv(t, results)
	if errs[0] != nil {
		t.Errorf("first Close: %v", errs[0])
	}
	for i, name := range []string{"", "second Close", "Write after Close", "Read after Close"} {
		if i > 0 && !errors.Is(errs[i], net.ErrClosed) {
			t.Errorf("%s: %v, want net.ErrClosed", name, errs[i])
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	const writers, perWriter = 8, 200
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				// Each message: writer id, sequence number, then a
				// body whose length and bytes both depend on them.
				for seq := range perWriter {
					msg := make([]byte, 8+(w*perWriter+seq)%300)
					binary.BigEndian.PutUint32(msg, uint32(w))
					binary.BigEndian.PutUint32(msg[4:], uint32(seq))
					for i := 8; i < len(msg); i++ {
						msg[i] = byte(w*31 + seq)
					}
					if _, err := c.Write(msg); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			// Deadlines are set concurrently with Writes, as mochi's
			// reader does on every packet.
			for range perWriter {
				_ = c.SetDeadline(time.Now().Add(time.Minute))
			}
		})
		wg.Wait()
		_, _ = io.Copy(io.Discard, c) // until the client closes
	})
	c := mustDial(t, srv)
	next := make([]int, writers)
	for range writers * perWriter {
		msg := readBinary(t, c)
		if len(msg) < 8 {
			t.Fatalf("message of %d bytes", len(msg))
		}
		w, seq := int(binary.BigEndian.Uint32(msg)), int(binary.BigEndian.Uint32(msg[4:]))
		if w >= writers || seq != next[w] {
			t.Fatalf("message from writer %d seq %d, want seq %d", w, seq, next[w])
		}
		next[w]++
		if want := 8 + (w*perWriter+seq)%300; len(msg) != want {
			t.Fatalf("writer %d seq %d: %d bytes, want %d", w, seq, len(msg), want)
		}
		for _, b := range msg[8:] {
			if b != byte(w*31+seq) {
				t.Fatalf("writer %d seq %d: body corrupted", w, seq)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestDeadlines(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		results := make(chan []error, 1)
		_, srv := startServer(t, Options{}, func(c net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, first := c.Read(make([]byte, 10))
			_, second := c.Read(make([]byte, 10))
			results <- []error{first, second}
		})
		mustDial(t, srv)
		errs := recv(t, results)
		for i, err := range errs {
			if !isTimeout(err) {
				t.Errorf("Read %d: %v, want a timeout matching os.ErrDeadlineExceeded", i, err)
			}
		}
	})
	t.Run("write, set before", func(t *testing.T) {
		writeErr := make(chan error, 1)
		_, srv := startServer(t, Options{}, func(c net.Conn) {
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			writeErr <- fillUntilError(c)
		})
		mustDial(t, srv) // never reads: the socket buffers fill up
		if err := recv(t, writeErr); !isTimeout(err) {
			t.Errorf("Write: %v, want a timeout", err)
		}
	})
	t.Run("write, set while blocked", func(t *testing.T) {
		writeErr := make(chan error, 1)
		_, srv := startServer(t, Options{}, func(c net.Conn) {
			go func() {
				time.Sleep(200 * time.Millisecond)
				_ = c.SetWriteDeadline(time.Now())
			}()
			writeErr <- fillUntilError(c)
		})
		mustDial(t, srv)
		if err := recv(t, writeErr); !isTimeout(err) {
			t.Errorf("Write: %v, want a timeout", err)
		}
	})
}

// fillUntilError writes 1 MiB messages to a peer that does not read until a
// Write fails; it gives up after 1 GiB.
func fillUntilError(c net.Conn) error {
	msg := make([]byte, 1<<20)
	for range 1024 {
		if _, err := c.Write(msg); err != nil {
			return err
		}
	}
	return errors.New("1 GiB written to a peer that does not read")
}

// TestAllocs pins the allocation budget of the stream adapter: a Write is
// free, a Read costs gorilla's message reader once per message.
func TestAllocs(t *testing.T) {
	conns := make(chan net.Conn, 1)
	done := make(chan struct{})
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		conns <- c
		<-done
	})
	defer close(done)
	client := mustDial(t, srv)
	c := recv(t, conns)

	const runs = 100
	msg := make([]byte, 64)
	for range runs + 1 { // AllocsPerRun runs once more to warm up
		if err := client.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}); a > 1 {
		t.Errorf("Read of one 64 B message: %.1f allocs, want at most 1", a)
	}
	// The client does not read: 101 small messages fit in the socket buffers.
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Write of 64 B: %.1f allocs, want 0", a)
	}
}

// BenchmarkEchoRoundTrip64 measures one 64 B message from a gorilla client
// through Conn.Read and Conn.Write and back, over loopback TCP. Allocations
// count both ends.
func BenchmarkEchoRoundTrip64(b *testing.B) {
	_, srv := startServer(b, Options{}, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	c := mustDial(b, srv)
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
		_, r, err := c.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(fmt.Errorf("echo: %w", err))
		}
	}
}
