package ws

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSubprotocolNegotiation(t *testing.T) {
	tests := []struct {
		name   string
		offer  []string
		want   string // negotiated subprotocol; "" means the handshake fails with 400
		inBody string // for failures
	}{
		{name: "mqtt", offer: []string{"mqtt"}, want: "mqtt"},
		{name: "mqttv3.1", offer: []string{"mqttv3.1"}, want: "mqttv3.1"},
		// Server preference wins ([MQTT-6.0.0-4]: "mqtt" when offered).
		{name: "both", offer: []string{"mqttv3.1", "mqtt"}, want: "mqtt"},
		{name: "unknown first", offer: []string{"foo", "mqttv3.1"}, want: "mqttv3.1"},
		{name: "none", offer: nil, inBody: "offer mqtt or mqttv3.1"},
		{name: "wrong", offer: []string{"amqp"}, inBody: `Sec-WebSocket-Protocol: "amqp"): offer mqtt or mqttv3.1`},
		// Subprotocol names are compared exactly (RFC 6455 §4.2.2).
		{name: "case", offer: []string{"MQTT"}, inBody: "offer mqtt or mqttv3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served := make(chan string, 1)
			_, srv := startServer(t, Options{}, func(c net.Conn) {
				served <- c.(*Conn).Subprotocol()
			})
			c, resp, err := dial(t, srv, nil, tt.offer...)
			if tt.want == "" {
				if !errors.Is(err, websocket.ErrBadHandshake) {
					t.Fatalf("dial error %v, want %v", err, websocket.ErrBadHandshake)
				}
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", resp.StatusCode)
				}
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), tt.inBody) {
					t.Fatalf("body %q does not contain %q", body, tt.inBody)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if got := c.Subprotocol(); got != tt.want {
				t.Errorf("client sees subprotocol %q, want %q", got, tt.want)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.want {
				t.Errorf("response Sec-WebSocket-Protocol %q, want %q", got, tt.want)
			}
			if got := recv(t, served); got != tt.want {
				t.Errorf("Conn.Subprotocol() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotAnUpgrade(t *testing.T) {
	called := atomic.Bool{}
	_, srv := startServer(t, Options{}, func(net.Conn) { called.Store(true) })
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead} {
		req, err := http.NewRequest(method, srv.URL+"/mqtt", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", method, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q, want text/plain", method, ct)
		}
		want := "this endpoint speaks WebSocket only: connect with a WebSocket client offering subprotocol mqtt or mqttv3.1"
		if method != http.MethodHead && !strings.Contains(string(body), want) {
			t.Errorf("%s: body %q, want %q", method, body, want)
		}
	}
	// A POST that claims to upgrade is still refused: RFC 6455 §4.1 wants GET.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mqtt", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST upgrade: status %d, want 400", resp.StatusCode)
	}
	if called.Load() {
		t.Error("serve was called for a request that is not an upgrade")
	}
}

// TestVersionMismatch: RFC 6455 §4.4, the answer names version 13.
func TestVersionMismatch(t *testing.T) {
	_, srv := startServer(t, Options{}, func(net.Conn) { t.Error("serve called") })
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/mqtt", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "8")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 16)))
	req.Header.Set("Sec-WebSocket-Protocol", "mqtt")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if v := resp.Header.Get("Sec-WebSocket-Version"); v != "13" {
		t.Errorf("Sec-WebSocket-Version %q, want 13", v)
	}
	if !strings.Contains(string(body), "version") {
		t.Errorf("body %q does not explain the version", body)
	}
}

func TestOrigin(t *testing.T) {
	const sameHost = "SAME" // replaced by the test server's scheme://host:port
	tests := []struct {
		name    string
		allowed []string
		origin  string // "" sends no Origin header
		ok      bool
	}{
		{name: "empty list, no origin", origin: "", ok: true},
		{name: "empty list, same origin", origin: sameHost, ok: true},
		{name: "empty list, same origin upper case", origin: "UPPER", ok: true},
		{name: "empty list, other origin", origin: "http://evil.example", ok: false},
		{name: "empty list, same host other port", origin: "http://127.0.0.1:1", ok: false},
		{name: "empty list, null origin", origin: "null", ok: false},
		{name: "list, listed", allowed: []string{"https://app.example.com"}, origin: "https://app.example.com", ok: true},
		{name: "list, listed case-insensitive", allowed: []string{"https://App.Example.com"}, origin: "HTTPS://app.example.COM", ok: true},
		{name: "list, other scheme", allowed: []string{"https://app.example.com"}, origin: "http://app.example.com", ok: false},
		{name: "list, other port", allowed: []string{"https://app.example.com"}, origin: "https://app.example.com:8443", ok: false},
		{name: "list replaces same origin", allowed: []string{"https://app.example.com"}, origin: sameHost, ok: false},
		{name: "list, no origin", allowed: []string{"https://app.example.com"}, origin: "", ok: true},
		{name: "star", allowed: []string{"*"}, origin: "http://evil.example", ok: true},
		{name: "star among others", allowed: []string{"https://a.example", "*"}, origin: "null", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served := make(chan struct{}, 1)
			_, srv := startServer(t, Options{AllowedOrigins: tt.allowed}, func(net.Conn) { served <- struct{}{} })
			origin := tt.origin
			switch origin {
			case sameHost:
				origin = srv.URL
			case "UPPER":
				origin = strings.ToUpper(srv.URL)
			}
			header := http.Header{}
			if origin != "" {
				header.Set("Origin", origin)
			}
			_, resp, err := dial(t, srv, header, "mqtt")
			if tt.ok {
				if err != nil {
					t.Fatalf("dial with Origin %q: %v", origin, err)
				}
				recv(t, served)
				return
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial with Origin %q: err %v, response %v; want 403", origin, err, resp)
			}
			body, _ := io.ReadAll(resp.Body)
			want := `origin "` + origin + `" not allowed: add it to http.allowed_origins`
			if !strings.Contains(string(body), want) {
				t.Errorf("body %q, want %q", body, want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin, host string
		want         bool
	}{
		{"http://example.com", "example.com", true},
		{"http://example.com", "example.com:80", true},
		{"http://example.com:80", "example.com", true},
		{"https://example.com", "example.com", true},
		{"https://example.com", "example.com:443", true},
		{"https://example.com", "example.com:80", false},
		{"http://Example.COM:8080", "example.com:8080", true},
		{"http://example.com:8080", "example.com:8081", false},
		{"http://example.com.evil.net", "example.com", false},
		{"http://[::1]:8080", "[::1]:8080", true},
		{"http://[::1]:8080", "[::2]:8080", false},
		{"null", "example.com", false},
		{"example.com", "example.com", false},
		{"http://", "", false},
		{"http://%zz", "example.com", false},
		{"file:///etc/passwd", "", false},
	}
	for _, tt := range tests {
		if got := sameOrigin(tt.origin, tt.host); got != tt.want {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", tt.origin, tt.host, got, tt.want)
		}
	}
}

func TestRemoteAddrIsTCPPeer(t *testing.T) {
	addrs := make(chan [2]string, 1)
	_, srv := startServer(t, Options{}, func(c net.Conn) {
		addrs <- [2]string{c.LocalAddr().String(), c.RemoteAddr().String()}
	})
	c := mustDial(t, srv)
	got := recv(t, addrs)
	if got[1] != c.LocalAddr().String() {
		t.Errorf("RemoteAddr %s, want the client's %s", got[1], c.LocalAddr())
	}
	if got[0] != c.RemoteAddr().String() {
		t.Errorf("LocalAddr %s, want %s", got[0], c.RemoteAddr())
	}
}

func TestHandlerClose(t *testing.T) {
	started := make(chan struct{}, 3)
	h, srv := startServer(t, Options{}, func(c net.Conn) {
		started <- struct{}{}
		echo(c)
	})
	var clients []*websocket.Conn
	for range 3 {
		clients = append(clients, mustDial(t, srv))
		recv(t, started)
	}
	if n := h.Active(); n != 3 {
		t.Fatalf("Active() = %d, want 3", n)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, c := range clients {
		if code := readCloseCode(t, c); code != websocket.CloseGoingAway {
			t.Errorf("client %d: close code %d, want 1001", i, code)
		}
	}
	waitFor(t, "Active() == 0", func() bool { return h.Active() == 0 })

	_, resp, err := dial(t, srv, nil, "mqtt")
	if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: err %v, response %v; want 503", err, resp)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("waits for serve", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		h, srv := startServer(t, Options{}, func(c net.Conn) {
			started <- struct{}{}
			<-release // the engine says goodbye on its own schedule
		})
		mustDial(t, srv)
		recv(t, started)
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v while a connection was being served", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if err := recv(t, done); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if n := h.Active(); n != 0 {
			t.Errorf("Active() = %d after Shutdown, want 0", n)
		}
	})
	t.Run("deadline closes the rest", func(t *testing.T) {
		started := make(chan struct{}, 1)
		h, srv := startServer(t, Options{}, func(c net.Conn) {
			started <- struct{}{}
			echo(c)
		})
		c := mustDial(t, srv)
		recv(t, started)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
		}
		if code := readCloseCode(t, c); code != websocket.CloseGoingAway {
			t.Errorf("close code %d, want 1001", code)
		}
	})
}

// TestCloseRacesUpgrade: a connection upgraded after Close has started is
// closed with 1001 and never served.
func TestCloseRacesUpgrade(t *testing.T) {
	var served atomic.Int32
	h := NewHandler(Options{Subprotocols: mqttProtocols}, func(net.Conn) { served.Add(1) })
	// gorilla's CheckOrigin runs inside Upgrade, after ServeHTTP's closed
	// check and before registration: the window Close can hit.
	h.upgrader.CheckOrigin = func(*http.Request) bool { _ = h.Close(); return true }
	srv := httptest.NewUnstartedServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	c, _, err := dial(t, srv, nil, "mqtt")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if code := readCloseCode(t, c); code != websocket.CloseGoingAway {
		t.Errorf("close code %d, want 1001", code)
	}
	if n := served.Load(); n != 0 {
		t.Errorf("serve called %d times after Close", n)
	}
	if n := h.Active(); n != 0 {
		t.Errorf("Active() = %d, want 0", n)
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var calls atomic.Int32
	h, srv := startServer(t, Options{Logger: log}, func(c net.Conn) {
		if calls.Add(1) == 1 {
			panic("engine bug")
		}
		echo(c)
	})
	c := mustDial(t, srv)
	// RFC 6455 §7.4.1: 1011 for an unexpected condition.
	if code := readCloseCode(t, c); code != websocket.CloseInternalServerErr {
		t.Errorf("close code %d, want 1011", code)
	}
	waitFor(t, "Active() == 0", func() bool { return h.Active() == 0 })
	out := logs.String()
	for _, want := range []string{"panic serving websocket connection", "engine bug", "handler_test.go", "remote_addr="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// The handler keeps serving.
	c2 := mustDial(t, srv)
	if err := c2.WriteMessage(websocket.BinaryMessage, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := readBinary(t, c2); string(got) != "ok" {
		t.Errorf("echo %q after a panic, want %q", got, "ok")
	}
}

func TestNewHandlerPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil serve":       func() { NewHandler(Options{Subprotocols: mqttProtocols}, nil) },
		"no subprotocols": func() { NewHandler(Options{}, func(net.Conn) {}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewHandler did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestHandshakeTimeoutKeepsNoDeadline: the handshake deadline is gone once
// the connection is served; an idle connection outlives it.
func TestHandshakeTimeoutKeepsNoDeadline(t *testing.T) {
	const timeout = 30 * time.Millisecond
	_, srv := startServer(t, Options{HandshakeTimeout: timeout}, echo)
	c := mustDial(t, srv)
	time.Sleep(5 * timeout)
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if got := readBinary(t, c); string(got) != "late" {
		t.Errorf("echo %q, want %q", got, "late")
	}
}

// pipeWriter is an http.ResponseWriter whose hijacked connection is one end
// of a net.Pipe. A real socket's buffers swallow the 101 response however
// slow the client; a pipe blocks until the other end reads, which is what a
// stalled client looks like once those buffers are full.
type pipeWriter struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (p *pipeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return p.conn, bufio.NewReadWriter(bufio.NewReader(p.conn), bufio.NewWriter(p.conn)), nil
}

func TestHandshakeTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	var served atomic.Bool
	h := NewHandler(Options{Subprotocols: mqttProtocols, HandshakeTimeout: timeout}, func(net.Conn) { served.Store(true) })
	server, client := net.Pipe()
	defer client.Close()
	w := &pipeWriter{ResponseRecorder: httptest.NewRecorder(), conn: server}
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/mqtt", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")))
	r.Header.Set("Sec-WebSocket-Protocol", "mqtt")

	start := time.Now()
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(w, r) // the client end never reads the 101
		close(done)
	}()
	recv(t, done)
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("ServeHTTP returned after %v, before the %v handshake timeout", elapsed, timeout)
	}
	if served.Load() {
		t.Error("serve was called although the handshake never completed")
	}
	if n := h.Active(); n != 0 {
		t.Errorf("Active() = %d, want 0", n)
	}
	// The server end was closed: the client end sees EOF.
	_ = client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after timeout: %v, want EOF", err)
	}
}
