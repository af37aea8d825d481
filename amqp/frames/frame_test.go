package frames

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func TestParseHeader(t *testing.T) {
	cases := []struct {
		name, bytes string
		max         uint32
		field       string // "" = valid
		want        Header
	}{
		{"heartbeat", `00 00 00 08 02 00 00 00`, 512, "", Header{Size: 8, DataOffset: 2}},
		{"sasl", `00 00 00 20 02 01 00 00`, 512, "", Header{Size: 32, DataOffset: 2, Type: FrameSASL}},
		{"channel", `00 00 01 00 02 00 ff fe`, 512, "", Header{Size: 256, DataOffset: 2, Channel: 0xfffe}},
		{"extended header", `00 00 00 10 04 00 00 00`, 512, "", Header{Size: 16, DataOffset: 4}},
		{"size at max", `00 00 02 00 02 00 00 00`, 512, "", Header{Size: 512, DataOffset: 2}},
		{"size below 8", `00 00 00 07 02 00 00 00`, 512, "size", Header{}},     // §2.3.1
		{"size 0", `00 00 00 00 02 00 00 00`, 512, "size", Header{}},           // §2.3.1
		{"doff 1", `00 00 00 08 01 00 00 00`, 512, "doff", Header{}},           // §2.3.1
		{"doff 0", `00 00 00 08 00 00 00 00`, 512, "doff", Header{}},           // §2.3.1
		{"doff beyond size", `00 00 00 0c 04 00 00 00`, 512, "doff", Header{}}, // header longer than frame
		{"size above max", `00 00 02 01 02 00 00 00`, 512, "size", Header{}},   // §2.4.1 MIN-MAX-FRAME-SIZE
		{"huge size", `ff ff ff ff 02 00 00 00`, 1 << 20, "size", Header{}},
		{"type 2", `00 00 00 08 02 02 00 00`, 512, "type", Header{}},
		{"short", `00 00 00 08 02 00 00`, 512, "header", Header{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHeader(hx(c.bytes), c.max)
			if c.field == "" {
				if err != nil || h != c.want {
					t.Fatalf("got %+v %v, want %+v", h, err, c.want)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Condition != CondConnectionFramingError || de.Field != c.field {
				t.Fatalf("got %v, want framing error on %s", err, c.field)
			}
		})
	}
}

func TestParseHeaderAllocs(t *testing.T) {
	b := hx(`00 00 01 00 02 00 00 01`)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := ParseHeader(b, 1<<20); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseHeader allocates %v times", n)
	}
}

// A transfer performative decodes without allocating (tag aliased, accepted is zero-size).
func TestTransferDecodeAllocs(t *testing.T) {
	tr := &Transfer{Handle: 3, DeliveryID: Some[uint32](70000), DeliveryTag: []byte("tag-0001"),
		MessageFormat: Some[uint32](0), Settled: Some(false), More: false, State: &Accepted{}}
	b, err := tr.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Transfer
	n := testing.AllocsPerRun(1000, func() {
		if _, err := got.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Transfer.Decode: %v allocs", n)
	if n != 0 {
		t.Fatalf("Transfer.Decode allocates %v times", n)
	}
	frame, _ := AppendFrame(nil, FrameAMQP, 1, tr, []byte("payload"))
	n = testing.AllocsPerRun(1000, func() {
		f, _, err := ParseFrame(frame, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := got.Decode(f.Body); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("ParseFrame + Transfer.Decode allocate %v times", n)
	}
}

func TestProtocolHeader(t *testing.T) {
	for _, c := range []struct {
		bytes string
		want  ProtocolHeader
		err   error
	}{
		{`"AMQP" 00 01 00 00`, ProtocolHeader{ProtocolAMQP, 1, 0, 0}, nil},
		{`"AMQP" 02 01 00 00`, ProtocolHeader{ProtocolTLS, 1, 0, 0}, nil},
		{`"AMQP" 03 01 00 00`, ProtocolHeader{ProtocolSASL, 1, 0, 0}, nil},
		{`"AMQP" 01 01 00 00`, ProtocolHeader{1, 1, 0, 0}, ErrUnsupportedProtocol}, // AMQP 0-10's id
		{`"AMQP" 00 00 09 01`, ProtocolHeader{0, 0, 9, 1}, ErrUnsupportedProtocol}, // AMQP 0-9-1
		{`"AMQP" 00 01 00 01`, ProtocolHeader{0, 1, 0, 1}, ErrUnsupportedProtocol}, // revision 1
	} {
		h, err := ParseProtocolHeader(hx(c.bytes))
		if h != c.want || err != c.err {
			t.Errorf("%s: %v %v, want %v %v", c.bytes, h, err, c.want, c.err)
		}
		if c.err == nil && !bytes.Equal(AppendProtocolHeader(nil, h.ID), hx(c.bytes)) {
			t.Errorf("AppendProtocolHeader(%v)", h.ID)
		}
	}
	for _, bad := range []string{`"AMQX" 00 01 00 00`, `16 03 01 00 a5 01 00 00`, `"AMQP" 00 01`} {
		var de *DecodeError
		if _, err := ParseProtocolHeader(hx(bad)); !errors.As(err, &de) || de.Condition != CondConnectionFramingError {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if !LooksLikeTLS(0x16) || LooksLikeTLS('A') {
		t.Error("LooksLikeTLS")
	}
}

// A stream as a server reads it: SASL header, SASL frames, AMQP header, AMQP frames, heartbeats,
// delivered one byte at a time and in large chunks.
func TestReader(t *testing.T) {
	var s []byte
	s = AppendProtocolHeader(s, ProtocolSASL)
	s, _ = AppendFrame(s, FrameSASL, 0, &SASLInit{Mechanism: "ANONYMOUS"}, nil)
	s = AppendProtocolHeader(s, ProtocolAMQP)
	s, _ = AppendFrame(s, FrameAMQP, 0, mk(func(o *Open) { o.ContainerID = "c" }), nil)
	s = AppendEmptyFrame(s, 0)
	big := bytes.Repeat([]byte("x"), 5000)
	transferAt := len(s)
	s, _ = AppendFrame(s, FrameAMQP, 7, &Transfer{Handle: 1, DeliveryID: Some[uint32](0), DeliveryTag: []byte{0}}, big)

	for name, src := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(s)),
		"half":     iotest.HalfReader(bytes.NewReader(s)),
		"whole":    bytes.NewReader(s),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src, MinMaxFrameSize)
			if h, err := r.ReadProtocolHeader(); err != nil || h.ID != ProtocolSASL {
				t.Fatal(h, err)
			}
			f, err := r.ReadFrame()
			if err != nil || f.Type != FrameSASL {
				t.Fatal(f, err)
			}
			if sf, err := DecodeSASLFrame(f.Body); err != nil || sf.(*SASLInit).Mechanism != "ANONYMOUS" {
				t.Fatal(sf, err)
			}
			if h, err := r.ReadProtocolHeader(); err != nil || h.ID != ProtocolAMQP {
				t.Fatal(h, err)
			}
			f, err = r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if p, _, err := DecodePerformative(f.Body); err != nil || p.(*Open).ContainerID != "c" {
				t.Fatal(p, err)
			}
			if f, err = r.ReadFrame(); err != nil || !f.Empty() {
				t.Fatal(f, err)
			}
			// The transfer is larger than 512: refused until the limit is raised (after open).
			var de *DecodeError
			if _, err := NewReader(bytes.NewReader(s[transferAt:]), 512).ReadFrame(); !errors.As(err, &de) || de.Field != "size" {
				t.Fatalf("oversize frame: %v", err)
			}
			r.SetMaxFrameSize(1 << 16)
			f, err = r.ReadFrame()
			if err != nil || f.Channel != 7 {
				t.Fatal(err)
			}
			_, payload, err := DecodePerformative(f.Body)
			if err != nil || !bytes.Equal(payload, big) {
				t.Fatalf("payload %d bytes, %v", len(payload), err)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("at end: %v", err)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	frame, _ := AppendFrame(nil, FrameAMQP, 2, &Flow{IncomingWindow: 1, NextOutgoingID: 2, OutgoingWindow: 3}, nil)
	f, err := ReadFrame(iotest.OneByteReader(bytes.NewReader(frame)), 512)
	if err != nil || f.Channel != 2 {
		t.Fatal(f, err)
	}
	if p, _, err := DecodePerformative(f.Body); err != nil || p.(*Flow).OutgoingWindow != 3 {
		t.Fatal(p, err)
	}
	if _, err := ReadFrame(bytes.NewReader(nil), 512); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	var de *DecodeError
	if _, err := ReadFrame(bytes.NewReader(frame[:10]), 512); !errors.As(err, &de) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ReadFrame(iotest.ErrReader(errors.New("boom")), 512); err == nil {
		t.Fatal("read error lost")
	}
}

// countingReader yields its data, then EOF: a peer that stopped sending.
type countingReader struct {
	data []byte
	sent int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.sent == len(c.data) {
		return 0, io.EOF
	}
	n := copy(p, c.data[c.sent:])
	c.sent += n
	return n, nil
}

// A header claiming a huge frame, followed by a few bytes: the readers allocate in proportion to
// what arrived, not to the claim.
func TestReadFrameAllocatesWhatArrived(t *testing.T) {
	claim := hx(`7f ff ff ff 02 00 00 00`) // 2 GiB - 1
	data := append(claim, bytes.Repeat([]byte{0x40}, 3000)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(&countingReader{data: data}, 1<<31)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrame: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("ReadFrame allocated %d bytes for 3000 received", got)
	}

	r := NewReader(&countingReader{data: data}, 1<<31)
	runtime.ReadMemStats(&before)
	_, err = r.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Reader: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("Reader allocated %d bytes for 3008 received", got)
	}
	if c := cap(r.buf); c > 2*len(data)+minReaderBuf {
		t.Fatalf("Reader buffer %d for %d bytes received", c, len(data))
	}
}

// The reader releases a huge buffer once it is drained.
func TestReaderReleasesBigBuffer(t *testing.T) {
	big := make([]byte, 2<<20)
	s, _ := AppendFrame(nil, FrameAMQP, 0, &Transfer{Handle: 0}, big)
	s = AppendEmptyFrame(s, 0)
	r := NewReader(bytes.NewReader(s), 4<<20)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if cap(r.buf) > keepReadBuf {
		t.Fatalf("buffer of %d kept after the big frame", cap(r.buf))
	}
}
