package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/isthmus-iot/isthmus/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// paho 3.1.1 keeps a package-level logger goroutine-free, but its
		// router and mochi's tickers stop asynchronously after Close.
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*router).matchAndDispatch"),
	)
}

// testGateway is a running gateway on 127.0.0.1 ephemeral ports.
type testGateway struct {
	*Server
	mqtt, mqtts, http, admin string // host:port of each bound listener
}

// baseYAML is the config every test starts from: all listeners on ephemeral
// loopback ports, short timeouts so hardening tests run fast.
const baseYAML = `
gateway: {id: test-gw, shutdown_timeout: 5s}
auth: {anonymous: true}
limits: {connect_rate: 0}
mqtt:
  listen: 127.0.0.1:0
  connect_timeout: 700ms
  max_packet_size: 64KiB
http:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
`

// startGateway parses baseYAML merged with extra (extra's top-level sections
// replace the base's) and starts the gateway; it stops at test cleanup. Its
// log goes to stderr with -v.
func startGateway(t *testing.T, extra string) *testGateway {
	t.Helper()
	logw := io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	return startGatewayLog(t, extra, slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startGatewayLog is startGateway logging to h.
func startGatewayLog(t *testing.T, extra string, h slog.Handler) *testGateway {
	t.Helper()
	cfg := parseConfig(t, mergeYAML(baseYAML, extra))
	s, err := New(cfg, slog.New(h), BuildInfo{Version: "test", Commit: "none"})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("gateway.Start: %v", err)
	}
	g := &testGateway{Server: s}
	for _, l := range s.Listeners() {
		switch l.Name {
		case "mqtt.listen":
			g.mqtt = l.Addr.String()
		case "mqtt.tls.listen":
			g.mqtts = l.Addr.String()
		case "http.listen":
			g.http = l.Addr.String()
		case "admin.listen":
			g.admin = l.Addr.String()
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && err != ErrServerClosed {
			t.Errorf("shutdown: %v", err)
		}
	})
	return g
}

// listenerAddr is the host:port the listener name (as in Listeners) bound.
func (g *testGateway) listenerAddr(t *testing.T, name string) string {
	t.Helper()
	for _, l := range g.Listeners() {
		if l.Name == name {
			return l.Addr.String()
		}
	}
	t.Fatalf("no %s bound", name)
	return ""
}

func (g *testGateway) amqpAddr(t *testing.T) string {
	t.Helper()
	return g.listenerAddr(t, "amqp.listen")
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config:\n%v\n--- yaml:\n%s", err, yaml)
	}
	return cfg
}

// mergeYAML replaces base's top-level sections with extra's.
func mergeYAML(base, extra string) string {
	sections := func(s string) (order []string, m map[string]string) {
		m = map[string]string{}
		var cur string
		for _, line := range strings.Split(s, "\n") {
			if line == "" {
				continue
			}
			if line[0] != ' ' && line[0] != '#' {
				cur = strings.SplitN(line, ":", 2)[0]
				order = append(order, cur)
			}
			m[cur] += line + "\n"
		}
		return order, m
	}
	bo, bm := sections(base)
	eo, em := sections(extra)
	var out strings.Builder
	for _, k := range bo {
		if v, ok := em[k]; ok {
			out.WriteString(v)
		} else {
			out.WriteString(bm[k])
		}
	}
	for _, k := range eo {
		if _, ok := bm[k]; !ok {
			out.WriteString(em[k])
		}
	}
	return out.String()
}

// v3 connects a paho 3.1.1 client.
func v3(t *testing.T, addr, id string, mod func(*pahov3.ClientOptions)) pahov3.Client {
	t.Helper()
	o := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	if mod != nil {
		mod(o)
	}
	c := pahov3.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect %s to %s: %v", id, addr, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c
}

func wait(t *testing.T, tok pahov3.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// recv waits for one message on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing received in 5s", what)
	}
	var zero T
	return zero
}

// expectNone checks that nothing arrives on ch for d.
func expectNone[T any](t *testing.T, ch <-chan T, d time.Duration, what string, show func(T) string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Errorf("%s: got %s", what, show(v))
	case <-time.After(d):
	}
}

// httpDo sends a request without a body and returns the status and body.
func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric scrapes the admin endpoint and returns the value of one series.
func (g *testGateway) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := httpDo(t, "GET", "http://"+g.admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	t.Fatalf("series %s not in /metrics:\n%s", series, body)
	return 0
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 5s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial opens a raw TCP connection for hand-written packets.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writeFile replaces a file atomically, so that the gateway's pollers never
// read half of it.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
