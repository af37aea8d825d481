package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDialEcho: a client from Dial against a Handler whose serve func echoes:
// concurrent writes arrive whole, reads cross message boundaries, Close ends
// the server's read with io.EOF (a Close frame, not a reset).
func TestDialEcho(t *testing.T) {
	serverEOF := make(chan error, 1)
	_, srv := startServer(t, Options{Subprotocols: []string{"amqp"}}, func(c net.Conn) {
		_, err := io.Copy(c, c)
		serverEOF <- err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, wsURL(srv), []string{"amqp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*Conn).Subprotocol(); got != "amqp" {
		t.Fatalf("subprotocol %q, want amqp", got)
	}
	const writers, per = 4, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + w)}, 100)
			for i := 0; i < per; i++ {
				if _, err := c.Write(msg); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}(w)
	}
	// Read in 7-byte pieces: the stream must be the messages in some order,
	// each 100 identical bytes (no interleaving inside a message).
	got := make([]byte, 0, writers*per*100)
	buf := make([]byte, 7)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < writers*per*100 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	wg.Wait()
	counts := map[byte]int{}
	for i := 0; i < len(got); i += 100 {
		m := got[i : i+100]
		if !bytes.Equal(m, bytes.Repeat(m[:1], 100)) {
			t.Fatalf("message at %d interleaved: %q", i, m)
		}
		counts[m[0]]++
	}
	for w := 0; w < writers; w++ {
		if counts[byte('a'+w)] != per {
			t.Fatalf("writer %d: %d messages echoed, want %d", w, counts[byte('a'+w)], per)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-serverEOF:
		if err != nil {
			t.Fatalf("server's copy ended with %v, want a clean EOF after the Close frame", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the close")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

func TestDialErrors(t *testing.T) {
	_, srv := startServer(t, Options{Subprotocols: []string{"mqtt"}}, func(c net.Conn) {})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := Dial(ctx, wsURL(srv), []string{"amqp"}, nil)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Body, "mqtt") {
		t.Fatalf("wrong subprotocol: %v, want a HandshakeError 400 naming mqtt", err)
	}
	if _, err := Dial(ctx, "http://"+srv.Listener.Addr().String(), nil, nil); err == nil || !strings.Contains(err.Error(), "ws:// or wss://") {
		t.Fatalf("http URL: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(ctx, "ws://"+addr+"/mqtt", []string{"mqtt"}, nil); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("closed port: %v, want connection refused", err)
	}
}
