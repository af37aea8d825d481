package wire

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// allowAll lets every client in and every topic through. (mochi's own
// hooks/auth needs a YAML module this repository does not require.)
type allowAll struct{ mqtt.HookBase }

func (allowAll) ID() string { return "allow-all" }

func (allowAll) Provides(b byte) bool { return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck }

func (allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// A real mochi server behind Conn: valid traffic flows both ways, the packet
// that would crash it is answered with a DISCONNECT and mochi drops the client
// the ordinary way, and a silent socket is cut at the connect timeout.

func newMochi(t *testing.T) *mqtt.Server {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMochiBehindConn(t *testing.T) {
	cases := []struct {
		v         byte
		connect   []byte
		subscribe []byte
		publish   []byte
		bad       []byte
	}{
		{5, connect5, pk(0x82, u16(1), props(), str("a/#"), b(1)), pk(0x32, str("a/b"), u16(2), props(), []byte("hi")), crashSubscribe},
		{4, connect4, pk(0x82, u16(1), str("a/#"), b(1)), pk(0x32, str("a/b"), u16(2), []byte("hi")), pk(0x82, u16(3), str("a+/b"), b(0))},
		{3, connect3, pk(0x82, u16(1), str("a/#"), b(1)), pk(0x32, str("a/b"), u16(2), []byte("hi")), pk(0x82, u16(3))},
	}
	for _, tc := range cases {
		s := newMochi(t)
		client, server := tcpPair(t)
		var rejected *Error
		done := make(chan error, 1)
		go func() {
			done <- s.EstablishConnection("wire", NewConn(server, Config{
				MaxPacketSize:  1 << 16,
				ConnectTimeout: 2 * time.Second,
				OnReject:       func(e *Error) { rejected = e },
			}))
		}()
		send := func(p []byte) {
			t.Helper()
			if _, err := client.Write(p); err != nil {
				t.Fatalf("v%d: write: %v", tc.v, err)
			}
		}
		recv := func() []byte {
			t.Helper()
			p, err := readPkt(client)
			if err != nil {
				t.Fatalf("v%d: read: %v", tc.v, err)
			}
			return p
		}
		send(tc.connect)
		if p := recv(); p[0] != 0x20 || p[3] != 0 {
			t.Fatalf("v%d: CONNACK % X", tc.v, p)
		}
		send(tc.subscribe)
		if p := recv(); p[0] != 0x90 {
			t.Fatalf("v%d: SUBACK % X", tc.v, p)
		}
		send(tc.publish)
		seen := map[byte]bool{}
		for len(seen) < 2 { // our own message back, and the PUBACK, in any order
			seen[recv()[0]>>4] = true
		}
		if !seen[typePublish] || !seen[typePuback] {
			t.Fatalf("v%d: after PUBLISH got types %v", tc.v, seen)
		}
		send(tc.bad)
		if tc.v == 5 {
			checkDisconnect(t, recv(), 0x81, "SUBSCRIBE topic filter 1")
		}
		expectClosed(t, client)
		select {
		case err := <-done:
			var e *Error
			if !errors.As(err, &e) || e != rejected {
				t.Fatalf("v%d: mochi ended with %v, OnReject got %v", tc.v, err, rejected)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("v%d: mochi did not drop the client", tc.v)
		}
	}
}

func TestMochiConnectTimeout(t *testing.T) {
	s := newMochi(t)
	client, server := tcpPair(t)
	start := time.Now()
	err := s.EstablishConnection("wire", NewConn(server, Config{ConnectTimeout: 300 * time.Millisecond}))
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("mochi ended with %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
	expectClosed(t, client)
}
