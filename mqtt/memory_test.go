package mqtt

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// memInUse is heap plus goroutine stacks after a GC.
func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// idleCost opens n MQTT 3.1.1 connections to addr and returns the memory they
// added to this process, per connection.
func idleCost(t *testing.T, addr string, n int) int64 {
	t.Helper()
	before := memInUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		id := fmt.Sprintf("idle-%04d", i)
		c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 120, 0, byte(len(id))}, id...))
		ack := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("CONNACK %d: %x %v", i, ack, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	return (memInUse() - before) / int64(n)
}

// TestIdleConnectionCostVsBareMochi compares the memory one idle MQTT
// connection costs behind this adapter (framing layer, tracking, smaller
// buffers and write queue) with bare mochi and its own TCP listener with its
// defaults, in the same process and run. The adapter must cost less.
func TestIdleConnectionCostVsBareMochi(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory figures are meaningless under -race or -short")
	}
	const n = 500
	bare := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	bare.AddHook(new(allowAll), nil)
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := bare.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := bare.Serve(); err != nil {
		t.Fatal(err)
	}
	bareCost := idleCost(t, tcp.Address(), n)
	bare.Close()

	b, err := New(Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln, TransportTCP)
	ours := idleCost(t, ln.Addr().String(), n)
	t.Logf("bytes per idle MQTT connection (heap + stacks, client side included): bare mochi %d, isthmus %d (%.2fx)",
		bareCost, ours, float64(ours)/float64(bareCost))
	if ours >= bareCost {
		t.Fatalf("the adapter costs %.2fx bare mochi per idle connection", float64(ours)/float64(bareCost))
	}
}

// allowAll admits every client to the bare mochi server.
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "allow-all" }
func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }
