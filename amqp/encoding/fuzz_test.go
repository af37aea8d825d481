package encoding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadValue decodes arbitrary input; whatever decodes must re-encode, decode again to an Equal
// value and re-encode to the same bytes; the typed readers and Skip must agree with ReadValue, and
// nothing may panic. Seeds: testdata/fuzz/FuzzReadValue (every format code, written by
// TestWriteFuzzSeeds).
func FuzzReadValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		v, err := r.ReadValue()
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			// The typed walk must not panic either; it may accept what ReadValue rejects only
			// because it checks sizes, not contents.
			skeleton(b)
			m := NewReader(b)
			m.ReadMultiple()
			return
		}
		end := r.Offset()
		s := NewReader(b)
		if err := s.Skip(); err != nil || s.Offset() != end {
			t.Fatalf("Skip disagrees with ReadValue: %v, offset %d want %d", err, s.Offset(), end)
		}
		if _, err := skeleton(b); err != nil {
			t.Fatalf("typed walk failed on a valid value: %v", err)
		}
		enc, err := AppendValue(nil, v)
		if err != nil {
			t.Fatalf("AppendValue of decoded %#v: %v", v, err)
		}
		r2 := NewReader(enc)
		v2, err := r2.ReadValue()
		if err != nil || r2.More() {
			t.Fatalf("re-decode of % x: %v (more=%v)", enc, err, r2.More())
		}
		if !Equal(v, v2) {
			t.Fatalf("decoded %#v, re-decoded %#v", v, v2)
		}
		enc2, err := AppendValue(nil, v2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding unstable: % x then % x (%v)", enc, enc2, err)
		}
		// Described values re-encode byte for byte from the input.
		if _, ok := v.(Described); ok && !bytes.Equal(enc, b[:end]) {
			t.Fatalf("described value re-encoded as % x, input % x", enc, b[:end])
		}
	})
}

const seedDir = "testdata/fuzz/FuzzReadValue"

// TestWriteFuzzSeeds regenerates the committed seed corpus: AMQP_WRITE_SEEDS=1 go test -run WriteFuzzSeeds
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("AMQP_WRITE_SEEDS") != "1" {
		t.Skip("set AMQP_WRITE_SEEDS=1 to rewrite " + seedDir)
	}
	var seeds [][]byte
	for _, v := range vectors {
		seeds = append(seeds, mustHex(t, v.hex))
	}
	g := newGen(4)
	for i := 0; i < 40; i++ {
		b, err := AppendValue(nil, g.value(1))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) <= 512 {
			seeds = append(seeds, b)
		}
	}
	for _, h := range []string{"c0 09 02 00 53 01 00 53 02 40 41", "e0 09 02 00 53 24 c0 01 00 01 00", "56 02", "c0 03 01 40 40", "d0 00 00 00 05 80 00 00 00 40"} {
		seeds = append(seeds, mustHex(t, h))
	}
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		sum := sha256.Sum256(s)
		name := filepath.Join(seedDir, "seed-"+hex.EncodeToString(sum[:8]))
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d seeds", len(seeds))
}

// The committed corpus covers every format code, described values and arrays of every element code.
func TestFuzzSeedsCoverEveryCode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(seedDir, "*"))
	if err != nil || len(files) < 30 {
		t.Fatalf("%d seed files in %s (%v); want 30 or more", len(files), seedDir, err)
	}
	seen := map[Code]bool{}
	for _, name := range files {
		b, err := readSeed(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sk, _ := skeleton(b) // invalid seeds contribute what precedes the fault
		for _, c := range sk {
			seen[c] = true
		}
	}
	for c := 0; c < 256; c++ {
		if code := Code(c); (code.Valid() || code == CodeDescribed) && !seen[code] {
			t.Errorf("no seed uses %s", code)
		}
	}
}

func readSeed(name string) ([]byte, error) {
	body, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, fmt.Errorf("not a one-[]byte fuzz corpus file")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	return []byte(s), err
}
