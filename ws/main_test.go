package ws

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// connection the Handler hijacks must end with its serve call.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var mqttProtocols = []string{"mqtt", "mqttv3.1"}

// startServer serves h on a real listener at 127.0.0.1:0. Cleanup closes the
// handler, waits for every serve call to return and stops the server.
func startServer(t testing.TB, opts Options, serve func(net.Conn)) (*Handler, *httptest.Server) {
	t.Helper()
	if opts.Subprotocols == nil {
		opts.Subprotocols = mqttProtocols
	}
	h := NewHandler(opts, serve)
	srv := httptest.NewUnstartedServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		_ = h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown after Close: %v (%d connections still served)", err, h.Active())
		}
		srv.Close()
	})
	return h, srv
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/mqtt"
}

// dial connects a gorilla client; the caller checks err.
func dial(t testing.TB, srv *httptest.Server, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(wsURL(srv), header)
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	if resp != nil && resp.Body != nil {
		// The dialer leaves the body of a failed handshake for the caller.
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	return c, resp, err
}

// mustDial dials with subprotocol mqtt and fails the test on error.
func mustDial(t testing.TB, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	c, _, err := dial(t, srv, nil, "mqtt")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// echo is the simplest engine: it copies the stream back.
func echo(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// readCloseCode reads until the server's Close frame and returns its code.
func readCloseCode(t testing.TB, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("read: %v, want a Close frame", err)
	}
}

// readBinary reads one message and checks it is binary.
func readBinary(t testing.TB, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.BinaryMessage {
		t.Fatalf("message type %d, want binary (%d)", typ, websocket.BinaryMessage)
	}
	return p
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the server side")
		panic("unreachable")
	}
}

// lockedBuffer collects log output written from connection goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
