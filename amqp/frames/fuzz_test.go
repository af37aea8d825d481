package frames

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the seed corpora in testdata/fuzz from the vectors and transcripts")

// chunkReader returns its data in chunks whose sizes come from the data itself, so the fuzzer also
// explores frames split across reads.
type chunkReader struct {
	data []byte
	i    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + int(c.data[0]^byte(c.i*31))%64
	c.i++
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		r := NewReader(&chunkReader{data: data}, max)
		off := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				break
			}
			// The stream reader and the one-shot parser agree.
			pf, n, err := ParseFrame(data[off:], max)
			if err != nil || n != int(fr.Size) || !bytes.Equal(pf.Body, fr.Body) || pf.Header != fr.Header {
				t.Fatalf("Reader and ParseFrame disagree at %d: %v", off, err)
			}
			if HeaderSize+len(fr.Ext)+len(fr.Body) != int(fr.Size) {
				t.Fatalf("frame parts do not add up to %d", fr.Size)
			}
			off += n
			if fr.Empty() {
				continue
			}
			if fr.Type == FrameSASL {
				if s, err := DecodeSASLFrame(fr.Body); err == nil {
					checkIdempotent(t, s)
				}
				continue
			}
			if p, _, err := DecodePerformative(fr.Body); err == nil {
				checkIdempotent(t, p)
			}
		}
		// The one-shot reader agrees on the first frame.
		f1, err1 := ReadFrame(bytes.NewReader(data), max)
		f2, _, err2 := ParseFrame(data, max)
		if (err1 == nil) != (err2 == nil) || err1 == nil && !bytes.Equal(f1.Body, f2.Body) {
			t.Fatalf("ReadFrame %v vs ParseFrame %v", err1, err2)
		}
	})
}

func FuzzPerformative(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, payload, err := DecodePerformative(data); err == nil {
			if len(payload) > len(data) {
				t.Fatal("payload beyond input")
			}
			checkIdempotent(t, p)
		}
		if s, err := DecodeSASLFrame(data); err == nil {
			checkIdempotent(t, s)
		}
		if code, ok, err := PeekDescriptor(data); err == nil && ok {
			if c := newComposite(code); c != nil {
				if _, err := c.Decode(data); err == nil {
					checkIdempotent(t, c)
				}
			}
		}
	})
}

func FuzzMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if err := m.Decode(data); err != nil {
			return
		}
		if m.Bare != nil && !bytes.Contains(data, m.Bare) {
			t.Fatal("Bare is not part of the input")
		}
		// Forwarding keeps the bare message.
		fwd, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var m2 Message
		if err := m2.Decode(fwd); err != nil {
			t.Fatalf("decode of forwarded message: %v", err)
		}
		if !bytes.Equal(m2.Bare, m.Bare) {
			t.Fatal("forwarding changed the bare message")
		}
		// Re-encoding from the fields is idempotent.
		m.Bare = nil
		e1, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		var m3 Message
		if err := m3.Decode(e1); err != nil {
			t.Fatalf("decode of re-encoded message: %v", err)
		}
		m3.Bare = nil
		e2, _ := m3.Encode(nil)
		if !bytes.Equal(e1, e2) {
			t.Fatalf("encoding not idempotent:\n% x\n% x", e1, e2)
		}
	})
}

// checkIdempotent: Encode(Decode(Encode(x))) == Encode(x). (Bytes, not values: NaN floats in
// generic fields are not DeepEqual to themselves.)
func checkIdempotent(t *testing.T, c Composite) {
	t.Helper()
	e1, err := c.Encode(nil)
	if err != nil {
		t.Fatalf("encode of decoded %T: %v", c, err)
	}
	c2 := newComposite(c.Descriptor())
	if n, err := c2.Decode(e1); err != nil || n != len(e1) {
		t.Fatalf("decode of re-encoded %T: %v\n% x", c, err, e1)
	}
	e2, _ := c2.Encode(nil)
	if !bytes.Equal(e1, e2) {
		t.Fatalf("%T encoding not idempotent:\n% x\n% x", c, e1, e2)
	}
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/Fuzz*/seed-* with -write-corpus; without the flag it
// checks that each corpus has at least 20 seeds.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeCorpus {
		for _, target := range []string{"FuzzReadFrame", "FuzzPerformative", "FuzzMessage"} {
			seeds, _ := filepath.Glob(filepath.Join("testdata/fuzz", target, "*"))
			if len(seeds) < 20 {
				t.Errorf("%s has %d seeds, want 20+ (go test -run TestWriteFuzzCorpus -write-corpus)", target, len(seeds))
			}
		}
		return
	}
	var frames, perfs, msgs [][]byte
	for _, v := range vectors {
		b := hx(v.bytes)
		perfs = append(perfs, b)
		fr, _ := AppendFrame(nil, FrameAMQP, 1, v.want, nil)
		frames = append(frames, fr)
	}
	transcripts, _ := filepath.Glob("testdata/proton/*.c2s")
	s2c, _ := filepath.Glob("testdata/proton/*.s2c")
	for _, name := range append(transcripts, s2c...) {
		stream := readFile(t, name)
		// The AMQP part of the stream (after the last protocol header) as one multi-frame seed.
		if i := bytes.LastIndex(stream, []byte("AMQP")); i >= 0 && len(stream)-i-8 < 4096 {
			frames = append(frames, stream[i+8:])
		}
		d := decodeStream(t, stream)
		for _, p := range d.perfs {
			b, _ := p.Encode(nil)
			perfs = append(perfs, b)
		}
		for _, m := range d.payloads {
			if len(m) < 4096 {
				msgs = append(msgs, m)
			}
		}
	}
	g := &gen{r: rand.New(rand.NewPCG(7, 8))}
	for i := 0; i < 10; i++ {
		b, _ := g.message().Encode(nil)
		msgs = append(msgs, b)
	}
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata/fuzz", target)
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		n := 0
		for _, s := range seeds {
			if seen[string(s)] {
				continue
			}
			seen[string(s)] = true
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", n)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
		t.Logf("%s: %d seeds", target, n)
	}
	write("FuzzReadFrame", frames)
	write("FuzzPerformative", perfs)
	write("FuzzMessage", msgs)
}
