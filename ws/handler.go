package ws

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults applied by NewHandler to zero Options fields.
const (
	// DefaultReadLimit is the largest message accepted when Options.ReadLimit
	// is zero.
	DefaultReadLimit = 1 << 20
	// DefaultHandshakeTimeout bounds writing the 101 response when
	// Options.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = 10 * time.Second
)

// closeTimeout bounds sending a Close frame: a peer that does not read must
// not hold a closing connection (or Handler.Close) for long.
const closeTimeout = time.Second

// Options configure a Handler. The Handler copies them; later changes to the
// slices have no effect.
type Options struct {
	// Subprotocols are the WebSocket subprotocols this endpoint speaks, in
	// order of preference, e.g. "mqtt", "mqttv3.1" or "amqp", "AMQPWSB10".
	// A client must offer one of them (RFC 6455 §4.2.2). Required.
	Subprotocols []string
	// AllowedOrigins is the browser Origin allow-list: entries are
	// scheme://host[:port], compared case-insensitively; "*" allows any.
	// Empty allows same-origin requests only. Requests without Origin (not
	// from a browser) are always allowed. See the package doc.
	AllowedOrigins []string
	// ReadLimit is the largest message accepted, in bytes (RFC 6455 §10.4).
	// Zero means DefaultReadLimit; negative is treated as zero.
	ReadLimit int64
	// HandshakeTimeout bounds writing the 101 Switching Protocols response.
	// Zero means DefaultHandshakeTimeout. The request headers are bounded by
	// the http.Server's ReadHeaderTimeout.
	HandshakeTimeout time.Duration
	// Logger receives connection events (debug) and recovered panics
	// (error). Nil discards.
	Logger *slog.Logger
}

// Handler upgrades HTTP requests to WebSocket and serves each connection as a
// net.Conn. It is safe for concurrent use. Create it with NewHandler.
type Handler struct {
	serve        func(net.Conn)
	subprotocols []string
	offerHint    string // "mqtt or mqttv3.1", for error texts
	anyOrigin    bool
	origins      map[string]struct{} // lower-cased allow-list, nil when empty
	readLimit    int64
	log          *slog.Logger
	upgrader     websocket.Upgrader // immutable after NewHandler

	mu     sync.Mutex
	closed bool               // guarded by mu; set by Close and Shutdown
	conns  map[*Conn]struct{} // guarded by mu; live hijacked connections
}

// NewHandler returns a Handler that calls serve for every accepted
// connection, on the request's goroutine. serve owns the connection until it
// returns; the Handler closes it afterwards. NewHandler panics when serve is
// nil or opts.Subprotocols is empty, which are programming errors.
func NewHandler(opts Options, serve func(net.Conn)) *Handler {
	if serve == nil {
		panic("ws: NewHandler: nil serve func")
	}
	if len(opts.Subprotocols) == 0 {
		panic("ws: NewHandler: Options.Subprotocols is empty")
	}
	h := &Handler{
		serve:        serve,
		subprotocols: append([]string(nil), opts.Subprotocols...),
		readLimit:    opts.ReadLimit,
		log:          opts.Logger,
		conns:        make(map[*Conn]struct{}),
	}
	h.offerHint = strings.Join(h.subprotocols, " or ")
	if h.readLimit <= 0 {
		h.readLimit = DefaultReadLimit
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			h.anyOrigin = true
			continue
		}
		if h.origins == nil {
			h.origins = make(map[string]struct{}, len(opts.AllowedOrigins))
		}
		h.origins[strings.ToLower(o)] = struct{}{}
	}
	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: timeout,
		Subprotocols:     h.subprotocols,
		// ServeHTTP has already checked the origin with the rules above;
		// gorilla's own check would reject listed cross-origin requests.
		CheckOrigin: func(*http.Request) bool { return true },
		Error:       upgradeError,
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}

	// RFC 6455 §4.1, §4.2.1: the opening handshake is a GET with
	// Upgrade: websocket and Connection: Upgrade.
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) {
		h.reject(w, r, http.StatusBadRequest, fmt.Sprintf(
			"this endpoint speaks WebSocket only: connect with a WebSocket client offering subprotocol %s",
			h.offerHint))
		return
	}

	// RFC 6455 §4.2.2 /origin/, §10.2.
	if origin := r.Header.Get("Origin"); !h.originAllowed(origin, r.Host) {
		h.reject(w, r, http.StatusForbidden, fmt.Sprintf(
			"origin %q not allowed: add it to http.allowed_origins", origin))
		return
	}

	// RFC 6455 §4.2.2 /subprotocol/; [MQTT-6.0.0-3].
	if !h.offersSubprotocol(r) {
		h.reject(w, r, http.StatusBadRequest, fmt.Sprintf(
			"no supported WebSocket subprotocol offered (Sec-WebSocket-Protocol: %q): offer %s",
			r.Header.Get("Sec-WebSocket-Protocol"), h.offerHint))
		return
	}

	// Upgrade echoes the first of h.subprotocols the client offered
	// ([MQTT-6.0.0-4]) and answers bad keys or versions itself (RFC 6455
	// §4.2.1, §4.4) through upgradeError.
	wsc, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Debug("websocket upgrade failed",
			"remote_addr", r.RemoteAddr, "path", r.URL.Path, "err", err)
		return
	}
	wsc.SetReadLimit(h.readLimit) // RFC 6455 §10.4
	c := newConn(wsc)

	h.mu.Lock()
	if h.closed {
		// Close ran between the check above and the upgrade.
		h.mu.Unlock()
		c.closeWith(websocket.CloseGoingAway, "server is shutting down", time.Now().Add(closeTimeout))
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()

	log := h.log.With("remote_addr", wsc.RemoteAddr().String(), "path", r.URL.Path,
		"subprotocol", wsc.Subprotocol())
	log.Debug("websocket connection opened")
	start := time.Now()

	h.serveConn(c, log)
	_ = c.Close()

	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	log.Debug("websocket connection closed", "duration", time.Since(start))
}

// serveConn runs serve with the recovery net/http gives handlers: a panic in
// one connection's engine must not take the process down.
func (h *Handler) serveConn(c *Conn, log *slog.Logger) {
	defer func() {
		if v := recover(); v != nil {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			log.Error("panic serving websocket connection", "panic", v, "stack", string(buf))
			// RFC 6455 §7.4.1: 1011, the server hit an unexpected condition.
			c.closeWith(websocket.CloseInternalServerErr, "internal error", time.Now().Add(closeTimeout))
		}
	}()
	h.serve(c)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.log.Debug("websocket handshake rejected", "remote_addr", r.RemoteAddr,
		"path", r.URL.Path, "status", status, "reason", msg)
	http.Error(w, msg, status)
}

// upgradeError answers the handshake errors gorilla detects, in plain text.
func upgradeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	// RFC 6455 §4.4: a server that rejects the version names the versions
	// it speaks; harmless on the other errors.
	w.Header().Set("Sec-WebSocket-Version", "13")
	http.Error(w, reason.Error(), status)
}

func (h *Handler) offersSubprotocol(r *http.Request) bool {
	for _, offered := range websocket.Subprotocols(r) {
		for _, p := range h.subprotocols {
			// Subprotocol names are compared exactly, as gorilla's
			// selection does, so the check and the echo agree.
			if offered == p {
				return true
			}
		}
	}
	return false
}

// originAllowed applies the rules in the package doc.
func (h *Handler) originAllowed(origin, host string) bool {
	if origin == "" {
		return true // not a browser: nothing to protect against (RFC 6455 §10.2)
	}
	if h.anyOrigin {
		return true
	}
	if h.origins != nil {
		_, ok := h.origins[strings.ToLower(origin)]
		return ok
	}
	return sameOrigin(origin, host)
}

// sameOrigin reports whether origin names the same host and port as the
// request's Host header. Browsers omit default ports in both, so a missing
// port is the default port of the origin's scheme.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return false // includes "null", sent by sandboxed pages
	}
	var def string
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		def = "80"
	case "https", "wss":
		def = "443"
	}
	oHost, oPort := u.Hostname(), u.Port()
	hu := url.URL{Host: host}
	rHost, rPort := hu.Hostname(), hu.Port()
	if oPort == "" {
		oPort = def
	}
	if rPort == "" {
		rPort = def
	}
	return oHost != "" && strings.EqualFold(oHost, rHost) && oPort == rPort
}

// Active returns the number of connections currently being served.
func (h *Handler) Active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Close makes further requests answer 503 and closes every live connection
// with 1001 (going away, RFC 6455 §7.4.1), without waiting for serve to
// return. Engines that can say goodbye in their own protocol should do so
// before Close. Close always returns nil; it implements io.Closer.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	live := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		live = append(live, c)
	}
	h.mu.Unlock()

	// One deadline for all: a stalled peer costs closeTimeout once, not
	// once per connection.
	deadline := time.Now().Add(closeTimeout)
	for _, c := range live {
		c.closeWith(websocket.CloseGoingAway, "server is shutting down", deadline)
	}
	return nil
}

// Shutdown makes further requests answer 503 and waits until every serve call
// has returned (the engines ended their connections) or ctx is done; then it
// closes what is left as Close does and returns ctx.Err().
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()

	// Polling with backoff, as net/http.Server.Shutdown does: a
	// notification channel would cost every connection's exit path.
	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if h.Active() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			_ = h.Close()
			return ctx.Err()
		case <-timer.C:
			wait = min(2*wait, 100*time.Millisecond)
			timer.Reset(wait)
		}
	}
}
