package encoding

import (
	"strconv"
	"testing"
)

// transfer is the field set of a typical transfer performative (AMQP 1.0 §2.7.5).
type transfer struct {
	handle, deliveryID, messageFormat uint32
	tag                               []byte
	settled, more                     bool
}

var sampleTransfer = transfer{handle: 3, deliveryID: 70000, messageFormat: 0, settled: false, more: true,
	tag: []byte("0123456789abcdef")}

func appendTransfer(b []byte, t *transfer) []byte {
	b = AppendDescriptor(b, 0x14)
	b, l := BeginList(b)
	b = AppendUint(b, t.handle)
	l.Elem(b)
	b = AppendUint(b, t.deliveryID)
	l.Elem(b)
	b = AppendBinary(b, t.tag)
	l.Elem(b)
	b = AppendUint(b, t.messageFormat)
	l.Elem(b)
	b = AppendBool(b, t.settled)
	l.Elem(b)
	b = AppendBool(b, t.more)
	l.Elem(b)
	return l.EndTrimNulls(b)
}

// readTransfer is what package frames does: typed reads, no allocation, the tag aliasing the input.
func readTransfer(b []byte, t *transfer) error {
	r := NewReader(b)
	d, err := r.ReadDescriptor()
	if err != nil {
		return err
	}
	if !d.Is(0x14, "amqp:transfer:list") {
		return &DecodeError{Msg: "not a transfer"}
	}
	l, err := r.ReadList()
	if err != nil {
		return err
	}
	if t.handle, err = l.ReadUint(); err != nil {
		return err
	}
	if p, err := l.NextField(); err != nil {
		return err
	} else if p == Present {
		if t.deliveryID, err = l.ReadUint(); err != nil {
			return err
		}
	}
	if t.tag, err = l.ReadBinary(); err != nil {
		return err
	}
	if t.messageFormat, err = l.ReadUint(); err != nil {
		return err
	}
	if t.settled, err = l.ReadBool(); err != nil {
		return err
	}
	t.more, err = l.ReadBool()
	return err
}

func TestTransferRoundTrip(t *testing.T) {
	b := appendTransfer(nil, &sampleTransfer)
	var got transfer
	if err := readTransfer(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.handle != 3 || got.deliveryID != 70000 || string(got.tag) != "0123456789abcdef" || !got.more || got.settled {
		t.Fatalf("%+v", got)
	}
	r := NewReader(b)
	v, err := r.ReadValue()
	want := Described{Descriptor: uint64(0x14), Value: List{uint32(3), uint32(70000), []byte("0123456789abcdef"), uint32(0), false, true}}
	if err != nil || !Equal(v, want) {
		t.Fatalf("%#v %v", v, err)
	}
}

// Zero-allocation budgets on the hot paths.
func TestHotPathAllocations(t *testing.T) {
	ulong := AppendUlong(nil, 1<<40)
	bin := AppendBinary(nil, make([]byte, 1000))
	tr := appendTransfer(nil, &sampleTransfer)
	buf := make([]byte, 0, 256)
	var sink transfer
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"read ulong", func() {
			r := NewReader(ulong)
			if v, err := r.ReadUlong(); err != nil || v != 1<<40 {
				t.Fatal(v, err)
			}
		}},
		{"read binary subslice", func() {
			r := NewReader(bin)
			if v, err := r.ReadBinary(); err != nil || len(v) != 1000 {
				t.Fatal(err)
			}
		}},
		{"read described list header", func() {
			r := NewReader(tr)
			if d, err := r.ReadDescriptor(); err != nil || d.Code != 0x14 {
				t.Fatal(err)
			}
			if l, err := r.ReadList(); err != nil || l.Len() != 6 {
				t.Fatal(err)
			}
		}},
		{"read whole transfer", func() {
			if err := readTransfer(tr, &sink); err != nil {
				t.Fatal(err)
			}
		}},
		{"read symbol bytes and string bytes", func() {
			r := NewReader([]byte{0xa3, 1, 'a', 0xa1, 1, 'b'})
			if _, err := r.ReadSymbolBytes(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadStringBytes(); err != nil {
				t.Fatal(err)
			}
		}},
		{"encode transfer into a buffer", func() { buf = appendTransfer(buf[:0], &sampleTransfer) }},
		{"encode symbol array into a buffer", func() { buf = AppendSymbolArray(buf[:0], []Symbol{"a", "b"}) }},
	} {
		if n := testing.AllocsPerRun(200, tc.fn); n != 0 {
			t.Errorf("%s: %.1f allocations, want 0", tc.name, n)
		}
	}
}

func BenchmarkEncodeTransfer(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendTransfer(buf[:0], &sampleTransfer)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeTransfer(b *testing.B) {
	b.ReportAllocs()
	enc := appendTransfer(nil, &sampleTransfer)
	b.SetBytes(int64(len(enc)))
	var t transfer
	for b.Loop() {
		if err := readTransfer(enc, &t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTransferGeneric(b *testing.B) {
	b.ReportAllocs()
	enc := appendTransfer(nil, &sampleTransfer)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		r := NewReader(enc)
		if _, err := r.ReadValue(); err != nil {
			b.Fatal(err)
		}
	}
}

var map10 = func() Map {
	m := make(Map, 10)
	for i := range m {
		m[i] = MapEntry{Key: "key-" + strconv.Itoa(i), Value: "value-number-" + strconv.Itoa(i)}
	}
	return m
}()

func BenchmarkEncodeMap10(b *testing.B) {
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var m Compound
			buf, m = BeginMap(buf[:0])
			for _, e := range map10 {
				buf = AppendString(buf, e.Key.(string))
				buf = AppendString(buf, e.Value.(string))
				m.Entry(buf)
			}
			buf = m.End(buf)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = AppendValue(buf[:0], map10); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

func BenchmarkDecodeMap10(b *testing.B) {
	enc, _ := AppendValue(nil, map10)
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			r := NewReader(enc)
			m, err := r.ReadMap()
			if err != nil {
				b.Fatal(err)
			}
			for m.More() {
				if _, err := m.ReadStringBytes(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			r := NewReader(enc)
			if _, err := r.ReadValue(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
