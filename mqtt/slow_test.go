package mqtt

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestSlowPersistentSubscriberLosesNothing: QoS 1 messages to a persistent
// subscriber that stopped reading are not dropped when its write queue fills
// (mochi v2.7.9 would): publishers wait SlowSubscriberTimeout, then the client
// is disconnected, and it gets every message, in order, when its session
// resumes.
func TestSlowPersistentSubscriberLosesNothing(t *testing.T) {
	b, err := New(Options{ConnectTimeout: 5 * time.Second, WriteQueue: 4, SlowSubscriberTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.Serve(ln, TransportTCP)
	addr := ln.Addr().String()

	slow := dialRaw(t, addr, "slow", false)
	slow.c.(*net.TCPConn).SetReadBuffer(1024)
	slow.c.Write([]byte{0x82, 8, 0, 1, 0, 3, 'b', '/', '#', 1})
	if typ, _ := slow.read(); typ != 0x90 {
		t.Fatalf("no SUBACK: %x", typ)
	}
	const n = 1000               // under the 1,024 messages a session stores (maxInflight)
	payload := make([]byte, 100) // packets under 128 bytes: rawClient reads one-byte lengths
	for i := 0; i < n; i++ {
		copy(payload, fmt.Sprintf("%06d", i))
		if err := b.PublishMessage(&Publish{Topic: "b/x", QoS: 1, Payload: append([]byte(nil), payload...)}, PublishOptions{}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.ClientConnected("slow") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if b.ClientConnected("slow") {
		t.Fatal("QoS 1 messages beyond its write queue to a client that does not read: still connected, so mochi dropped them")
	}
	slow.c.Close()

	again := dialRaw(t, addr, "slow", false)
	next := 0
	for next < n {
		typ, body := again.read()
		if typ&0xF0 != 0x30 {
			continue
		}
		seq := string(body[5+2 : 5+2+6]) // topic "b/x" (2+3 bytes), packet id (2)
		if seq != fmt.Sprintf("%06d", next) {
			t.Fatalf("message %d arrived as %q: lost or out of order", next, seq)
		}
		again.c.Write([]byte{0x40, 2, body[5], body[6]})
		next++
	}
}

// TestSlowSubscriberBackPressure: a clean-session QoS 1 subscriber that reads
// slower than the publisher gets every message in order: the publisher waits
// for room instead of mochi dropping messages (write queue 4, 20,000
// messages, far more than the 1,024 a session may hold unacknowledged).
func TestSlowSubscriberBackPressure(t *testing.T) {
	b, err := New(Options{ConnectTimeout: 5 * time.Second, WriteQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.Serve(ln, TransportTCP)

	sub := dialRaw(t, ln.Addr().String(), "reader", true)
	sub.c.Write([]byte{0x82, 8, 0, 1, 0, 3, 'b', '/', '#', 1})
	if typ, _ := sub.read(); typ != 0x90 {
		t.Fatalf("no SUBACK: %x", typ)
	}
	const n = 20000
	done := make(chan error, 1)
	go func() {
		payload := make([]byte, 100)
		for i := 0; i < n; i++ {
			copy(payload, fmt.Sprintf("%06d", i))
			if err := b.PublishMessage(&Publish{Topic: "b/x", QoS: 1, Payload: append([]byte(nil), payload...)}, PublishOptions{}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		if i%500 == 0 {
			time.Sleep(20 * time.Millisecond) // a slow reader
		}
		typ, body := sub.read()
		if typ&0xF0 != 0x30 {
			t.Fatalf("packet %x", typ)
		}
		if seq := string(body[7:13]); seq != fmt.Sprintf("%06d", i) {
			t.Fatalf("message %d arrived as %q: lost or out of order", i, seq)
		}
		sub.c.Write([]byte{0x40, 2, body[5], body[6]})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !b.ClientConnected("reader") {
		t.Fatal("a slow but reading subscriber was disconnected")
	}
}
