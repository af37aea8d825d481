package wire

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"testing/iotest"
)

// streams per version: a CONNECT, then a packet of every kind a client sends.
func stream(v byte) [][]byte {
	switch v {
	case 3:
		return [][]byte{connect3,
			pk(0x32, str("a/b"), u16(1), []byte("hello")),
			pk(0x82, u16(2), str("a/#"), b(1)),
			pk(0x40, u16(3)), pk(0x50, u16(4)), pk(0x62, u16(5)), pk(0x70, u16(6)),
			pk(0xA2, u16(7), str("a/#")),
			hx("C0 00"), hx("E0 00")}
	case 4:
		return [][]byte{connect4,
			pk(0x30, str("a/b"), []byte("hello")),
			pk(0x34, str("a/b"), u16(1), bytes.Repeat([]byte("x"), 300)), // a two-byte Remaining Length
			pk(0x82, u16(2), str("a/+"), b(1), str("#"), b(2)),
			pk(0x40, u16(3)), pk(0x62, u16(5)),
			pk(0xA2, u16(7), str("a/+")),
			hx("C0 00"), hx("E0 00")}
	}
	return [][]byte{connect5,
		pk(0x30, str("a/b"), props(), []byte("hello")),
		pk(0x32, str("a/b"), u16(1), props(prop(propTopicAlias, u16(1)), user), bytes.Repeat([]byte("y"), 3000)),
		pk(0x82, u16(2), props(prop(propSubscriptionID, vbi(9))), str("$share/g/a"), b(0x01)),
		pk(0x40, u16(3), b(0x10)), pk(0x50, u16(4)), pk(0x62, u16(5), b(0x92), props()), pk(0x70, u16(6)),
		pk(0xA2, u16(7), props(), str("a")),
		hx("C0 00"),
		pk(0xE0, b(0x04), props(prop(propReasonString, str("bye"))))}
}

// chunkReader returns its chunks one Read at a time.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// readAll drains a Reader: the packets (copied) and the final error.
func readAll(r *Reader) ([][]byte, error) {
	var out [][]byte
	for {
		p, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, append([]byte{}, p...))
	}
}

func checkStream(t *testing.T, name string, want [][]byte, got [][]byte, err error) {
	t.Helper()
	if err != io.EOF {
		t.Fatalf("%s: ended with %v, want io.EOF", name, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, want %d", name, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: packet %d is % X, want % X", name, i, got[i], want[i])
		}
	}
}

// The Reader returns the same packets, byte for byte, however the stream is
// cut into reads.
func TestReaderSplitsAnywhere(t *testing.T) {
	for _, v := range []byte{3, 4, 5} {
		pkts := stream(v)
		all := cat(pkts...)
		readers := map[string]func() io.Reader{
			"whole":   func() io.Reader { return bytes.NewReader(all) },
			"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(all)) },
			"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(all)) },
			"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(all)) },
		}
		for name, mk := range readers {
			r := NewReader(mk(), 0)
			got, err := readAll(r)
			checkStream(t, name, pkts, got, err)
			if r.Version() != v {
				t.Fatalf("%s: Version %d, want %d", name, r.Version(), v)
			}
		}
		// Two reads, split at every byte; then three reads, split around it.
		for i := 0; i <= len(all); i++ {
			r := NewReader(&chunkReader{chunks: [][]byte{all[:i:i], all[i:]}}, 0)
			got, err := readAll(r)
			checkStream(t, "split", pkts, got, err)
			j := min(i+3, len(all))
			r = NewReader(&chunkReader{chunks: [][]byte{all[:i:i], all[i:j:j], all[j:]}}, 0)
			got, err = readAll(r)
			checkStream(t, "split3", pkts, got, err)
		}
	}
}

// A stream cut inside a packet never yields that packet: Next reports an
// unexpected EOF (or refuses the packet from what it has), for every cut.
func TestReaderStrictPrefixesAreIncomplete(t *testing.T) {
	for _, v := range []byte{3, 4, 5} {
		pkts := stream(v)
		for i, p := range pkts {
			before := cat(pkts[:i]...)
			for n := 1; n < len(p); n++ {
				r := NewReader(iotest.OneByteReader(bytes.NewReader(cat(before, p[:n]))), 0)
				for range pkts[:i] {
					if _, err := r.Next(); err != nil {
						t.Fatalf("v%d packet %d prefix %d: earlier packet: %v", v, i, n, err)
					}
				}
				got, err := r.Next()
				var e *Error
				if got != nil || (err != io.ErrUnexpectedEOF && !errors.As(err, &e)) {
					t.Fatalf("v%d packet %d cut at %d: got % X, %v", v, i, n, got, err)
				}
			}
		}
	}
}

func TestReaderRefusalIsSticky(t *testing.T) {
	in := cat(connect5, crashSubscribe, hx("C0 00"))
	r := NewReader(bytes.NewReader(in), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonMalformedPacket {
		t.Fatalf("crash SUBSCRIBE: %v", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Fatalf("after a refusal Next returned %v, want the same error", err2)
	}
}

// The first byte is judged before anything else is read: an HTTP request on
// the MQTT port is refused after one byte.
func TestReaderRefusesFirstByteEarly(t *testing.T) {
	src := &countingReader{r: iotest.OneByteReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")))}
	_, err := NewReader(src, 0).Next()
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonProtocolError {
		t.Fatalf("got %v, want a protocol error", err)
	}
	if src.n != 1 {
		t.Fatalf("read %d bytes before refusing, want 1", src.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// errReader fails the test if it is read: nothing past the fixed header may be
// read when the header already shows the packet is too large.
type errReader struct{ read bool }

func (e *errReader) Read([]byte) (int, error) {
	e.read = true
	return 0, errors.New("read past the fixed header")
}

func TestReaderSizeCapBeforeBody(t *testing.T) {
	// A CONNECT declaring 268,435,455 bytes: only the 9 bytes that hold the
	// protocol name and level are read (an MQTT 5 client is owed CONNACK 0x95).
	hdr := hx("10 FF FF FF 7F 00 04 4D 51 54 54 05 C2 00")
	tail := &errReader{}
	r := NewReader(io.MultiReader(bytes.NewReader(hdr), tail), 1024)
	_, err := r.Next()
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonPacketTooLarge {
		t.Fatalf("got %v, want packet too large", err)
	}
	if tail.read {
		t.Fatal("the Reader read past the protocol level of a CONNECT too large")
	}
	if r.bad.version != 5 {
		t.Fatalf("level of the refused CONNECT = %d, want 5", r.bad.version)
	}
	// Any other packet: nothing past the fixed header.
	tail = &errReader{}
	r = NewReader(io.MultiReader(bytes.NewReader(hx("30 FF FF FF 7F")), tail), 1024)
	r.version = 4
	if _, err := r.Next(); !errors.As(err, &e) || e.Reason != ReasonPacketTooLarge {
		t.Fatalf("PUBLISH: got %v, want packet too large", err)
	}
	if tail.read {
		t.Fatal("the Reader read past the fixed header of a PUBLISH too large")
	}

	// And it costs a handful of small objects (the Reader, its 2 KiB buffer,
	// the error and its message), not the declared size.
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = NewReader(bytes.NewReader(hdr), 1024).Next()
	})
	if allocs > 10 {
		t.Fatalf("%v allocations to refuse a declared-huge packet", allocs)
	}
	if n := allocatedBy(func() { _, _ = NewReader(bytes.NewReader(hdr), 1024).Next() }); n > 8<<10 {
		t.Fatalf("refusing a declared-huge packet allocated %d bytes", n)
	}
}

// allocatedBy measures the bytes f allocates.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A peer that declares a 1 MiB packet and sends 5 bytes of it costs what it
// sent plus the base buffer, not 1 MiB; memory grows with the bytes received.
func TestReaderMemoryFollowsBytesReceived(t *testing.T) {
	huge := cat(b(0x30), vbi(1<<20), []byte{0, 1, 'a', 'b', 'c'})
	var r *Reader
	n := allocatedBy(func() {
		r = NewReader(io.MultiReader(bytes.NewReader(connect4), bytes.NewReader(huge)), 2<<20)
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	if n > 16<<10 {
		t.Fatalf("declared 1 MiB, sent 5 bytes: %d bytes allocated", n)
	}
	if len(r.buf) > initialBufSize {
		t.Fatalf("buffer grew to %d bytes", len(r.buf))
	}

	// 100 KiB of a declared 1 MiB: the buffer stays within twice that.
	sent := 100 << 10
	body := cat(str("t"), make([]byte, sent))
	r = NewReader(io.MultiReader(bytes.NewReader(connect4), bytes.NewReader(cat(b(0x30), vbi(1<<20), body))), 2<<20)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if len(r.buf) > 2*(sent+8) {
		t.Fatalf("%d bytes received, buffer of %d", sent, len(r.buf))
	}
}

// After a big packet the Reader drops its big buffer instead of keeping it
// for the life of the connection.
func TestReaderShrinksAfterBigPacket(t *testing.T) {
	big := pk(0x30, str("big"), make([]byte, 200<<10))
	small := pk(0x30, str("s"), []byte("x"))
	r := NewReader(bytes.NewReader(cat(connect4, big, small, small)), 0)
	for i, want := range [][]byte{connect4, big, small} {
		got, err := r.Next()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if len(r.buf) > keepBufSize {
		t.Fatalf("kept a %d byte buffer after the big packet", len(r.buf))
	}
	if got, err := r.Next(); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("last packet: % X %v", got, err)
	}
}

func TestReaderSetMaxPacketSize(t *testing.T) {
	pub := pk(0x30, str("a"), make([]byte, 20))
	r := NewReader(bytes.NewReader(cat(connect4, pub)), 64)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	r.SetMaxPacketSize(len(pub) - 1)
	_, err := r.Next()
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonPacketTooLarge {
		t.Fatalf("got %v, want packet too large", err)
	}
	// Exactly at the limit passes.
	r = NewReader(bytes.NewReader(cat(connect4, pub)), len(pub))
	if _, err := readAll(r); err != io.EOF {
		t.Fatalf("packet of exactly the limit: %v", err)
	}
}

// AUTH is a Protocol Error unless the CONNECT chose an Authentication Method
// [MQTT-4.12.0-7]: the Reader remembers the CONNECT to check it.
func TestReaderAuthNeedsConnectMethod(t *testing.T) {
	auth := pk(0xF0, b(0x19), props(prop(propAuthMethod, str("SCRAM"))))
	r := NewReader(bytes.NewReader(cat(connect5, auth)), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonProtocolError {
		t.Fatalf("AUTH without a method in CONNECT: %v", err)
	}
	withMethod := pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propAuthMethod, str("SCRAM"))), str("c"))
	r = NewReader(bytes.NewReader(cat(withMethod, auth)), 0)
	if got, err := readAll(r); err != io.EOF || len(got) != 2 {
		t.Fatalf("AUTH after a CONNECT with a method: %d packets, %v", len(got), err)
	}
}

// scriptedReader returns one step per Read: data or an error.
type scriptedReader struct {
	steps []struct {
		data []byte
		err  error
	}
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

// A deadline in the middle of a packet is not fatal: Next returns it, and the
// next call resumes the same packet.
func TestReaderResumesAfterTransientError(t *testing.T) {
	pub := pk(0x30, str("a/b"), []byte("hello"))
	s := &scriptedReader{}
	add := func(d []byte, err error) {
		s.steps = append(s.steps, struct {
			data []byte
			err  error
		}{d, err})
	}
	add(connect4, nil)
	add(pub[:4], os.ErrDeadlineExceeded) // data and error together
	add(pub[4:], nil)
	r := NewReader(s, 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	got, err := r.Next()
	if err != nil || !bytes.Equal(got, pub) {
		t.Fatalf("resumed: % X, %v", got, err)
	}
}

// loopReader serves data over and over, without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// publishLoop is a Reader past CONNECT reading an endless run of small
// QoS 1 PUBLISH packets of the given version.
func publishLoop(v byte) *Reader {
	var one, conn []byte
	switch v {
	case 5:
		one, conn = pk(0x32, str("sensors/42/temp"), u16(7), props(), []byte(`{"t":21.5}`)), connect5
	default:
		one, conn = pk(0x32, str("sensors/42/temp"), u16(7), []byte(`{"t":21.5}`)), connect4
	}
	// 37 packets per loop, so reads cut packets at varying places.
	r := NewReader(io.MultiReader(bytes.NewReader(conn), &loopReader{data: bytes.Repeat(one, 37)}), 1<<20)
	if _, err := r.Next(); err != nil {
		panic(err)
	}
	return r
}

func TestReaderSteadyStateAllocatesNothing(t *testing.T) {
	for _, v := range []byte{4, 5} {
		r := publishLoop(v)
		for i := 0; i < 100; i++ { // warm up: the buffer exists
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("v%d: %v allocations per packet", v, allocs)
		}
	}
}

func BenchmarkReaderNext(b *testing.B) {
	for _, v := range []byte{4, 5} {
		b.Run(map[byte]string{4: "v311", 5: "v5"}[v], func(b *testing.B) {
			r := publishLoop(v)
			p, _ := r.Next()
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
