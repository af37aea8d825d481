package amqp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// panicFlag is a slog handler that records whether the engine logged a recovered panic: the
// engine survives panics at the connection boundary, but for the fuzzer any panic is a bug.
type panicFlag struct{ hit atomic.Bool }

func (h *panicFlag) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicFlag) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.hit.Store(true)
	}
	return nil
}
func (h *panicFlag) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicFlag) WithGroup(string) slog.Handler      { return h }

// fuzzPrologue is a valid plain handshake with one session and two links (a sender to "q" and
// a receiver from "q" with credit), after which the fuzzer's bytes follow.
func fuzzPrologue() []byte {
	must := func(b []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	b := frames.AppendProtocolHeader(nil, frames.ProtocolAMQP)
	b = must(frames.AppendFrame(b, frames.FrameAMQP, 0, &frames.Open{ContainerID: "fuzz", MaxFrameSize: 65536, ChannelMax: 3}, nil))
	b = must(frames.AppendFrame(b, frames.FrameAMQP, 0, &frames.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 7}, nil))
	b = must(frames.AppendFrame(b, frames.FrameAMQP, 0, &frames.Attach{Name: "s", Handle: 0, Role: frames.RoleSender,
		Source: &frames.Source{}, Target: &frames.Target{Address: frames.Some("q")}, InitialDeliveryCount: frames.Some(uint32(0))}, nil))
	b = must(frames.AppendFrame(b, frames.FrameAMQP, 0, &frames.Attach{Name: "r", Handle: 1, Role: frames.RoleReceiver,
		Source: &frames.Source{Address: frames.Some("q")}, Target: &frames.Target{}}, nil))
	b = must(frames.AppendFrame(b, frames.FrameAMQP, 0, &frames.Flow{NextIncomingID: frames.Some(uint32(0)), IncomingWindow: 100, OutgoingWindow: 100,
		Handle: frames.Some(uint32(1)), DeliveryCount: frames.Some(uint32(0)), LinkCredit: frames.Some(uint32(5))}, nil))
	return b
}

func fuzzSeeds() [][]byte {
	must := func(b []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	msg := must((&frames.Message{Data: [][]byte{[]byte("hello")}}).Encode(nil))
	fr := func(body frames.FrameBody, payload []byte) []byte {
		return must(frames.AppendFrame(nil, frames.FrameAMQP, 0, body, payload))
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tr := func(id uint32, more bool) *frames.Transfer {
		return &frames.Transfer{Handle: 0, DeliveryID: frames.Some(id), DeliveryTag: []byte{byte(id)}, MessageFormat: frames.Some(uint32(0)), More: more}
	}
	return [][]byte{
		nil,
		fr(tr(0, false), msg),
		cat(fr(tr(0, true), msg[:4]), fr(&frames.Transfer{Handle: 0, More: true}, msg[4:8]), fr(&frames.Transfer{Handle: 0}, msg[8:])),
		cat(fr(tr(0, true), msg[:4]), fr(&frames.Transfer{Handle: 0, Aborted: true}, nil), fr(tr(1, false), msg)),
		cat(fr(tr(0, false), msg), fr(&frames.Disposition{Role: frames.RoleReceiver, First: 0, Last: frames.Some(uint32(0xFFFFFFF0)), Settled: true, State: &frames.Accepted{}}, nil)),
		fr(&frames.Flow{IncomingWindow: 0, NextOutgoingID: 7, OutgoingWindow: 0, Handle: frames.Some(uint32(1)), LinkCredit: frames.Some(uint32(0xFFFFFFFF)), Drain: true, Echo: true}, nil),
		cat(fr(&frames.Detach{Handle: 0, Closed: true}, nil), fr(tr(0, false), msg)),
		cat(fr(&frames.Detach{Handle: 1}, nil), fr(&frames.Attach{Name: "r", Handle: 1, Role: frames.RoleReceiver}, nil)),
		fr(&frames.End{Error: &frames.Error{Condition: "x"}}, nil),
		fr(&frames.Close{}, nil),
		cat(fr(&frames.Begin{RemoteChannel: frames.Some(uint16(0)), IncomingWindow: 1, OutgoingWindow: 1}, nil), fr(&frames.Attach{Name: "s", Handle: 0, Role: frames.RoleSender}, nil)),
		[]byte{0, 0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 12, 2, 0, 0, 0, 0, 0x53, 0x13, 0x45},
		[]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0},
	}
}

// FuzzConn feeds arbitrary bytes to a server connection after a valid handshake. The server
// must never panic (even a recovered one), must end the connection when the input ends, and
// must leave no goroutine behind (ServeConn returns only after the connection's goroutines
// exited; the test node's are waited for; goleak checks the process at the end).
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	prologue := fuzzPrologue()
	f.Fuzz(func(t *testing.T, data []byte) {
		flag := &panicFlag{}
		node := newTestNode()
		node.credit = 5
		srv := NewServer(ServerOptions{AllowAnonymous: true, LinkHandler: node, Logger: slog.New(flag),
			MaxMessageSize: 1 << 16, SessionWindow: 16, HandshakeTimeout: 2 * time.Second, CloseTimeout: 200 * time.Millisecond})
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ServeConn(server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(prologue)
		_, _ = client.Write(data)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("ServeConn did not return after the input ended:\n%s", buf[:runtime.Stack(buf, true)])
		}
		nodeDone := make(chan struct{})
		go func() { node.wg.Wait(); close(nodeDone) }()
		select {
		case <-nodeDone:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("test node goroutines still running after the connection ended:\n%s", buf[:runtime.Stack(buf, true)])
		}
		if flag.hit.Load() {
			t.Fatal("the engine recovered a panic")
		}
	})
}
