package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// TestSilentSocketClosed: a socket that sends nothing is closed at
// connect_timeout (700ms in the test config).
func TestSilentSocketClosed(t *testing.T) {
	g := startGateway(t, "")
	c := dial(t, g.mqtt)
	took, _ := closedWithin(t, c, 3*time.Second)
	if took < 600*time.Millisecond {
		t.Fatalf("closed after %v, before connect_timeout", took)
	}
	eventually(t, "connect_timeout counted", func() bool {
		return g.metric(t, `isthmus_connections_rejected_total{protocol="mqtt",reason="connect_timeout"}`) >= 1
	})
}

// TestDripFedConnectClosed: one byte every 150ms never completes CONNECT in
// time; the deadline is absolute, so the socket is cut at connect_timeout.
func TestDripFedConnectClosed(t *testing.T) {
	g := startGateway(t, "")
	c := dial(t, g.mqtt)
	pkt := connectV4("slowpoke", 30, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range pkt {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
	}()
	took, data := closedWithin(t, c, 3*time.Second)
	if took > 2*time.Second || len(data) != 0 {
		t.Fatalf("closed after %v having sent %x; want closed near 700ms with no CONNACK", took, data)
	}
	c.Close()
	<-done
}

// TestOversizedDeclaredPacketIsCheap: a fixed header declaring 256 MiB is
// refused at once, before any allocation, and 1,000 such connections leave
// the process's memory flat.
func TestOversizedDeclaredPacketIsCheap(t *testing.T) {
	g := startGateway(t, "")
	// 0x10 CONNECT with remaining length 268,435,455 (the maximum), then 5 bytes.
	hdr := []byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4, 'M', 'Q', 'T'}
	c := dial(t, g.mqtt)
	c.Write(hdr)
	if took, _ := closedWithin(t, c, 2*time.Second); took > 500*time.Millisecond {
		t.Fatalf("oversized packet took %v to be refused", took)
	}

	before, beforeRSS := memInUse(), rss(t)
	var wg sync.WaitGroup
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", g.mqtt)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			c.Write(hdr)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			// Closed with our bytes unread, so a reset is a close too.
			if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection not closed by the server: %v", err)
			}
		}()
	}
	wg.Wait()
	after := memInUse()
	t.Logf("1,000 oversized headers: heap+stacks %+d KiB, RSS %+d KiB", (int64(after)-int64(before))>>10, (rss(t)-beforeRSS)>>10)
	if grew := int64(after) - int64(before); grew > 4<<20 {
		t.Fatalf("1,000 oversized headers grew memory by %d KiB", grew>>10)
	}
	if v := g.metric(t, `isthmus_connections_rejected_total{protocol="mqtt",reason="packet_too_large"}`); v < 990 {
		t.Fatalf("packet_too_large rejections = %v, want about 1001", v)
	}
}

// TestDeclaredButUnsentPacketCostsWhatArrived: sockets that declare a 60 KiB
// CONNECT (under max_packet_size) and send 5 bytes cost what sockets that
// declare 100 bytes cost: memory follows the bytes that arrived. Allocating
// the declared size would cost 30 MB more for 500 sockets.
func TestDeclaredButUnsentPacketCostsWhatArrived(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  connect_timeout: 10s\n  max_packet_size: 64KiB\n")
	const n = 500
	growth := func(declared int) int64 {
		hdr := append([]byte{0x10}, remainingLength(declared)...)
		hdr = append(hdr, 0, 4, 'M', 'Q', 'T')
		before := memInUse()
		conns := make([]net.Conn, 0, n)
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", g.mqtt)
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			conns = append(conns, c)
			c.Write(hdr)
		}
		time.Sleep(500 * time.Millisecond) // let every connection read what it was sent
		grew := int64(memInUse()) - int64(before)
		for _, c := range conns {
			c.Close()
		}
		eventually(t, "sockets closed", func() bool { return g.broker.Sockets() == 0 })
		return grew
	}
	small := growth(100)
	large := growth(60 << 10)
	t.Logf("%d half-sent packets: declared 100 B grew %d KiB, declared 60 KiB grew %d KiB", n, small>>10, large>>10)
	if large-small > n*4<<10 {
		t.Fatalf("declaring 60 KiB costs %d bytes more per socket than declaring 100 B: the declared size is being allocated", (large-small)/n)
	}
}

// memInUse is heap plus goroutine stacks, after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// rss reads the process's resident set size from /proc.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestMochiCrashPacketRefused: the truncated MQTT 5 SUBSCRIBE that panics
// mochi v2.7.9's decoder gets DISCONNECT 0x81 (malformed packet) from our
// framing layer, and the gateway keeps serving.
func TestMochiCrashPacketRefused(t *testing.T) {
	g := startGateway(t, "")
	c := dial(t, g.mqtt)
	c.Write(mqttConnect{version: 5, clientID: "crasher", keepAlive: 30}.bytes())
	if typ, _, err := readPacket(c, 5*time.Second); typ != 0x20 {
		t.Fatalf("no CONNACK: 0x%02x %v", typ, err)
	}
	c.Write([]byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x74})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, _ := io.ReadAll(c)
	if len(rest) < 3 || rest[0] != 0xE0 || rest[2] != 0x81 {
		t.Fatalf("want DISCONNECT 0x81 then close, got %x", rest)
	}
	// The process is alive and serving.
	pub := v3(t, g.mqtt, "after-crash", nil)
	wait(t, pub.Publish("alive", 1, false, "yes"), "publish after crash packet")
	if v := g.metric(t, `isthmus_connections_rejected_total{protocol="mqtt",reason="malformed"}`); v < 1 {
		t.Fatalf("malformed rejections = %v", v)
	}
}

// TestMaxConnections: the client over mqtt.max_connections gets CONNACK
// "server unavailable" (3.1.1) and is counted.
func TestMaxConnections(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  max_connections: 3\n")
	for i := 0; i < 3; i++ {
		v3(t, g.mqtt, fmt.Sprintf("c%d", i), nil)
	}
	c := dial(t, g.mqtt)
	c.Write(connectV4("c3", 30, nil))
	_, data := closedWithin(t, c, 3*time.Second)
	if len(data) < 4 || data[0] != 0x20 || data[3] != 0x03 {
		t.Fatalf("4th client got %x, want CONNACK return code 3 (server unavailable)", data)
	}
}

// TestSlowSubscriberBounded: a subscriber that never reads cannot make the
// broker queue without bound: its write queue (mqtt.write_queue) fills, new
// messages to it are dropped and counted, and other clients are unaffected.
func TestSlowSubscriberBounded(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  write_queue: 8\n")
	stuck := dial(t, g.mqtt)
	stuck.(*net.TCPConn).SetReadBuffer(4096)
	connectOK(t, stuck, mqttConnect{version: 4, clientID: "stuck"}) // no keep-alive
	stuck.Write(packet(0x82, append([]byte{0, 1}, append(mqttString("flood/#"), 0)...)))
	time.Sleep(100 * time.Millisecond) // SUBACK in flight; never read again

	pub := v3(t, g.mqtt, "flooder", nil)
	payload := strings.Repeat("x", 4096)
	before := memInUse()
	drops := func() float64 {
		return g.metric(t, `isthmus_messages_dropped_total{protocol="mqtt",reason="write_queue_full"}`)
	}
	// Socket buffers absorb a few MB before the broker's queue fills.
	for i := 0; i < 6000 && (i%500 != 499 || drops() == 0); i++ {
		wait(t, pub.Publish("flood/x", 0, false, payload), "publish")
	}
	if drops() == 0 {
		t.Fatal("24 MB to a subscriber that does not read and nothing was dropped")
	}
	if grew := int64(memInUse()) - int64(before); grew > 16<<20 {
		t.Fatalf("a stuck subscriber grew memory by %d MiB", grew>>20)
	}
	// Other clients still get service.
	got := make(chan pahov3.Message, 1)
	ok := v3(t, g.mqtt, "healthy", nil)
	wait(t, ok.Subscribe("ping", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	wait(t, pub.Publish("ping", 1, false, "pong"), "publish")
	recv(t, got, "message to a healthy client")
}

// TestShutdownWithStuckClients: shutdown completes within its timeout while
// many clients disconnect at once and some have stopped reading (mochi's
// Close deadlocks there, issue 488).
func TestShutdownWithStuckClients(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  write_queue: 4\n")
	for i := 0; i < 20; i++ {
		c := dial(t, g.mqtt)
		c.(*net.TCPConn).SetReadBuffer(4096)
		c.Write(mqttConnect{version: 5, clientID: fmt.Sprintf("stuck%d", i), keepAlive: 30}.bytes())
		c.Write(packet(0x82, append([]byte{0, 1, 0}, append(mqttString("big/#"), 0)...)))
	}
	var healthy []pahov3.Client
	for i := 0; i < 100; i++ {
		healthy = append(healthy, v3(t, g.mqtt, fmt.Sprintf("ok%d", i), nil))
	}
	time.Sleep(200 * time.Millisecond)
	big := strings.Repeat("y", 32<<10)
	for i := 0; i < 200; i++ {
		healthy[0].Publish("big/x", 0, false, big)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	err := g.Shutdown(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	eventually(t, "every client disconnected", func() bool {
		for _, c := range healthy {
			if c.IsConnectionOpen() {
				return false
			}
		}
		return true
	})
}
