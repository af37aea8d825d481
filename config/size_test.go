package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want Size
		err  string // substring of the error; "" = no error
	}{
		{"0", 0, ""},
		{"512", 512, ""},
		{"512B", 512, ""},
		{"64KiB", 64 << 10, ""},
		{"1MiB", 1 << 20, ""},
		{"2GiB", 2 << 30, ""},
		{"1KB", 1000, ""},
		{"1MB", 1000000, ""},
		{"1GB", 1000000000, ""},
		{"1 MiB", 1 << 20, ""},
		{" 16KiB ", 16 << 10, ""},
		{"8589934591GiB", 8589934591 << 30, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"8589934592GiB", 0, "too large"},
		{"9223372036854775808", 0, "too large"},
		{"99999999999999999999999", 0, "too large"},
		{"1mib", 0, `unknown size unit "mib"`},
		{"1kb", 0, `unknown size unit "kb"`},
		{"1TiB", 0, "unknown size unit"},
		{"-1", 0, "negative"},
		{"-5KiB", 0, "negative"},
		{"1.5MiB", 0, "unknown size unit"},
		{"", 0, "expected a size"},
		{"MiB", 0, "expected a size"},
		{"0x10", 0, "unknown size unit"},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestSizeString(t *testing.T) {
	cases := []struct {
		in   Size
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1000, "1000B"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{3 << 10, "3KiB"},
		{1 << 20, "1MiB"},
		{1<<20 + 1<<10, "1025KiB"},
		{5 << 30, "5GiB"},
		{1 << 40, "1024GiB"},
		{math.MaxInt64, "9223372036854775807B"},
	}
	for _, tc := range cases {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
		back, err := ParseSize(tc.in.String())
		if err != nil || back != tc.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d back", tc.in.String(), back, err, int64(tc.in))
		}
	}
}

func TestSizeYAMLAndText(t *testing.T) {
	var v struct{ S Size }
	if err := yaml.Unmarshal([]byte("s: 64KiB"), &v); err != nil || v.S != 64<<10 {
		t.Errorf("yaml string: %d %v", v.S, err)
	}
	if err := yaml.Unmarshal([]byte("s: 4096"), &v); err != nil || v.S != 4096 {
		t.Errorf("yaml int: %d %v", v.S, err)
	}
	if err := yaml.Unmarshal([]byte("s: -1"), &v); err == nil {
		t.Error("yaml negative int accepted")
	}
	out, err := yaml.Marshal(struct{ S Size }{2 << 20})
	if err != nil || string(out) != "s: 2MiB\n" {
		t.Errorf("yaml.Marshal = %q, %v", out, err)
	}
	var s Size
	if err := s.UnmarshalText([]byte("1GB")); err != nil || s != 1e9 {
		t.Errorf("UnmarshalText: %d %v", s, err)
	}
	if b, _ := s.MarshalText(); string(b) != "1000000000B" {
		t.Errorf("MarshalText = %q", b)
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30s", 30 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"24h", 24 * time.Hour, ""},
		{"7d", 7 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"0d", 0, ""},
		{"0", 0, ""},
		{"-5s", -5 * time.Second, ""},
		{"-1d", -24 * time.Hour, ""},
		{"106751d", 106751 * 24 * time.Hour, ""},
		{"106752d", 0, "too large"},
		{"106751d23h47m16s", 106751*24*time.Hour + 23*time.Hour + 47*time.Minute + 16*time.Second, ""},
		{"106751d23h47m17s", 0, "too large"},
		{"1.25d", 30 * time.Hour, ""},
		{"30", 0, "has no unit"},
		{"1h5d", 0, "days must lead"},
		{"d", 0, "invalid duration"},
		{"infd", 0, "invalid duration"},
		{"1e3d", 0, "invalid duration"},
		{"1.2.3d", 0, "invalid duration"},
		{"10 seconds", 0, "invalid duration"},
		{"1d-5h", 0, "sign may only lead"},
		{"10 seconds", 0, "invalid duration"},
		{"", 0, "invalid duration"},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 24 * time.Hour: "24h", 90 * time.Second: "1m30s", 5 * time.Minute: "5m",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(want); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v", want, back, err)
		}
	}
}
