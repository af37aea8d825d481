package mqtt

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// acceptAll settles every intercepted publish as accepted at once.
type acceptAll struct{}

func (acceptAll) Intercept(p *Publish, settle func(Decision)) {
	if settle != nil {
		go settle(Decision{})
	}
}

func (acceptAll) Active() bool { return true }

// rawClient is a hand-driven MQTT 3.1.1 client.
type rawClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr, id string, clean bool) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	flags := byte(0)
	if clean {
		flags = 0x02
	}
	c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, flags, 0, 30, 0, byte(len(id))}, id...))
	rc := &rawClient{t, c, bufio.NewReader(c)}
	if typ, _ := rc.read(); typ != 0x20 {
		t.Fatalf("no CONNACK: %x", typ)
	}
	return rc
}

func (rc *rawClient) read() (byte, []byte) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	typ, err := rc.r.ReadByte()
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	n, _ := rc.r.ReadByte()
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	return typ, body
}

// TestPacketIDCollisionKeepsOutbound: a device publishing with the packet
// identifier of an unacknowledged server→device QoS 1 message must not make
// the broker forget that message (mochi 519/545): it is resent when the
// device's persistent session resumes.
func TestPacketIDCollisionKeepsOutbound(t *testing.T) {
	for name, ic := range map[string]Interceptor{"plain": nil, "intercepted": acceptAll{}} {
		t.Run(name, func(t *testing.T) {
			b, err := New(Options{ConnectTimeout: 5 * time.Second, Interceptor: ic})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			go b.Serve(ln, TransportTCP)
			addr := ln.Addr().String()

			dev := dialRaw(t, addr, "dev", false)
			dev.c.Write([]byte{0x82, 9, 0, 1, 0, 4, 'd', 'o', 'w', 'n', 1})
			if typ, _ := dev.read(); typ != 0x90 {
				t.Fatalf("no SUBACK: %x", typ)
			}
			if err := b.Publish("down", []byte("cmd"), false, 1); err != nil {
				t.Fatal(err)
			}
			typ, body := dev.read()
			if typ&0xF0 != 0x30 {
				t.Fatalf("expected PUBLISH, got %x", typ)
			}
			id1, id2 := body[6], body[7] // after the 2+4-byte topic "down"
			// Not acknowledged. Now the device publishes with the same id.
			dev.c.Write([]byte{0x32, 7, 0, 2, 'u', 'p', id1, id2, 'x'})
			if typ, body := dev.read(); typ != 0x40 || body[0] != id1 || body[1] != id2 {
				t.Fatalf("PUBACK for the device's publish: %x %x", typ, body)
			}
			dev.c.Close()
			time.Sleep(100 * time.Millisecond)

			again := dialRaw(t, addr, "dev", false)
			typ, body = again.read()
			if typ != 0x3A || string(body[2:6]) != "down" || string(body[8:]) != "cmd" {
				t.Fatalf("the unacknowledged server→device message was not resent: %x %q", typ, body)
			}
		})
	}
}
