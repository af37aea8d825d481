package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// checkAccepted asserts the crash-proof property for one accepted packet:
// mochi decodes it without a panic and without an error.
func checkAccepted(t *testing.T, version byte, pkt []byte) {
	t.Helper()
	panicked, err := mochiDecode(version, pkt)
	if panicked != nil {
		t.Fatalf("Validate(%d) accepts % X and mochi panics: %v", version, pkt, panicked)
	}
	if err != nil {
		t.Fatalf("Validate(%d) accepts % X and mochi refuses it: %v", version, pkt, err)
	}
}

func FuzzValidate(f *testing.F) {
	for _, v := range allVectors() {
		f.Add(v.v, v.pkt)
	}
	f.Fuzz(func(t *testing.T, version byte, pkt []byte) {
		err := Validate(version, pkt)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason < 0x80 || e.Msg == "" {
				t.Fatalf("error %#v is not a failing *Error", err)
			}
			return
		}
		checkAccepted(t, version, pkt)
	})
}

// splitReader serves data in chunks whose sizes cycle through sizes.
type splitReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(s.sizes) > 0 {
		n = min(n, int(s.sizes[s.i%len(s.sizes)])+1)
		s.i++
	}
	n = copy(p, s.data[:min(n, len(s.data))])
	s.data = s.data[n:]
	return n, nil
}

func FuzzReader(f *testing.F) {
	for _, v := range []byte{3, 4, 5} {
		all := cat(stream(v)...)
		f.Add(all, []byte{0})
		f.Add(all, []byte{6, 1, 200})
	}
	f.Add(cat(connect5, crashSubscribe), []byte{2})
	f.Add(cat(connect4, hx("30 FF FF FF 7F")), []byte{255})
	f.Add(cat(connect5, pk(0xF0, b(0x18), props(prop(propAuthMethod, str("m"))))), []byte{3})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		r := NewReader(&splitReader{data: data, sizes: sizes}, 4096)
		var got []byte
		for {
			version := r.Version()
			pkt, err := r.Next()
			if err != nil {
				var e *Error
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &e) {
					t.Fatalf("unexpected error %v", err)
				}
				if err == io.EOF && !bytes.Equal(got, data) {
					t.Fatal("clean EOF before the end of the data")
				}
				return
			}
			if len(pkt) > 4096 {
				t.Fatalf("%d byte packet past the 4096 byte limit", len(pkt))
			}
			if verr := Validate(version, pkt); verr != nil {
				t.Fatalf("Reader returned a packet Validate refuses: %v", verr)
			}
			checkAccepted(t, version, pkt)
			got = append(got, pkt...)
			if !bytes.HasPrefix(data, got) {
				t.Fatal("the packets are not the input, in order")
			}
		}
	})
}
