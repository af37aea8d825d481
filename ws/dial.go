package ws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultDialHandshakeTimeout bounds the client's opening handshake when the
// context has no earlier deadline.
const DefaultDialHandshakeTimeout = 10 * time.Second

// HandshakeError reports a WebSocket opening handshake the server refused
// (RFC 6455 §4.1: any status but 101 fails the connection).
type HandshakeError struct {
	URL    string
	Status int    // HTTP status code of the refusal
	Body   string // the start of the response body: the server's reason
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("ws: %s refused the WebSocket handshake: HTTP %d", e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Dial opens a client WebSocket connection to url (ws:// or wss://),
// offering subprotocols, and returns it as a byte stream: the same Conn type
// a Handler serves, so a protocol client (MQTT, AMQP) can run over it as over
// TCP. Reads cross message boundaries; each Write is one binary message;
// Close sends a Close frame with 1000. tlsConf is used for wss:// (nil: the
// system roots, ServerName from the URL). When subprotocols are offered, the
// server must pick one of them (RFC 6455 §4.1, the client's 6th check).
func Dial(ctx context.Context, url string, subprotocols []string, tlsConf *tls.Config) (net.Conn, error) {
	if !strings.HasPrefix(url, "ws://") && !strings.HasPrefix(url, "wss://") {
		return nil, fmt.Errorf("ws: dial %q: the URL scheme must be ws:// or wss://", url)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialHandshakeTimeout)
		defer cancel()
	}
	d := websocket.Dialer{
		Subprotocols:    subprotocols,
		TLSClientConfig: tlsConf,
		Proxy:           http.ProxyFromEnvironment,
		// The context bounds the handshake; gorilla's own timeout would
		// replace an earlier deadline with a later one.
		HandshakeTimeout: 0,
	}
	wsc, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			return nil, &HandshakeError{URL: url, Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		}
		return nil, err
	}
	if len(subprotocols) > 0 && wsc.Subprotocol() == "" {
		// gorilla accepts a 101 without Sec-WebSocket-Protocol; the peer
		// would then speak something we did not ask for.
		_ = wsc.Close()
		return nil, fmt.Errorf("ws: %s selected no subprotocol, offered %q", url, subprotocols)
	}
	return newConn(wsc), nil
}
