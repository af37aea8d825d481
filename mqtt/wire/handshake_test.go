package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestHandshakeReadsConnectAhead: after Handshake the consumer reads the
// CONNECT and what follows byte-identical; a refused first packet and a
// silent peer end Handshake itself with the usual errors.
func TestHandshakeReadsConnectAhead(t *testing.T) {
	connect := pk(0x10, str("MQTT"), b(4, 0x02, 0, 30), str("hs"))
	ping := b(0xC0, 0)
	t.Run("valid", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		c := NewConn(srv, Config{ConnectTimeout: 2 * time.Second})
		go cli.Write(cat(connect, ping))
		if err := c.Handshake(); err != nil {
			t.Fatalf("Handshake: %v", err)
		}
		if c.Version() != 4 {
			t.Fatalf("version %d after Handshake", c.Version())
		}
		got := make([]byte, len(connect)+len(ping))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, cat(connect, ping)) {
			t.Fatalf("Read after Handshake: %x %v", got, err)
		}
		if err := c.Handshake(); err != nil {
			t.Fatalf("second Handshake: %v", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		var rejected *Error
		c := NewConn(srv, Config{ConnectTimeout: 2 * time.Second, MaxPacketSize: 1024, OnReject: func(e *Error) { rejected = e }})
		go func() {
			cli.Write(b(0x10, 0xff, 0xff, 0xff, 0x7f))
			io.Copy(io.Discard, cli)
		}()
		var e *Error
		if err := c.Handshake(); !errors.As(err, &e) || e.Reason != ReasonPacketTooLarge || rejected == nil {
			t.Fatalf("Handshake = %v, want packet too large reported to OnReject", err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("Read after a refused Handshake succeeded")
		}
	})
	t.Run("silent", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		c := NewConn(srv, Config{ConnectTimeout: 200 * time.Millisecond})
		start := time.Now()
		if err := c.Handshake(); !errors.Is(err, ErrConnectTimeout) {
			t.Fatalf("Handshake = %v, want ErrConnectTimeout", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("took %v", took)
		}
	})
}
