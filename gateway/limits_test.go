package gateway

import (
	"io"
	"testing"
	"time"
)

// TestAMQPMaxConnections: amqp.max_connections counts connections still in
// their handshake; one more socket is closed at once, and a slot freed by a
// closing client is usable again.
func TestAMQPMaxConnections(t *testing.T) {
	g := startGateway(t, "amqp:\n  listen: 127.0.0.1:0\n  max_connections: 2\n")
	addr := g.amqpAddr(t)
	first, err := amqpDial("amqp://"+addr, saslAnonymous())
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	// The second holds its slot without finishing its handshake: it gets the
	// server's SASL header (so the server counts it) and says nothing more.
	silent := dial(t, addr)
	silent.SetDeadline(time.Now().Add(3 * time.Second))
	silent.Write([]byte("AMQP\x03\x01\x00\x00"))
	if _, err := io.ReadFull(silent, make([]byte, 8)); err != nil {
		t.Fatalf("second connection: no SASL header back: %v", err)
	}
	third := dial(t, addr)
	third.SetDeadline(time.Now().Add(3 * time.Second))
	third.Write([]byte("AMQP\x00\x01\x00\x00"))
	if n, err := third.Read(make([]byte, 8)); err == nil || n > 0 {
		t.Fatalf("third connection answered (%d bytes, %v); want it closed at once", n, err)
	}
	first.Close()
	silent.Close()
	eventually(t, "a freed slot serves a new client", func() bool {
		c, err := amqpDial("amqp://"+addr, saslAnonymous())
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
