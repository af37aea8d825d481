package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

// sizeUnits are the accepted suffixes of a Size, case-sensitive: binary units
// (KiB = 1024) and decimal ones (KB = 1000), as disk and network tools print them.
var sizeUnits = map[string]int64{
	"":    1,
	"B":   1,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
}

// errSizeSyntax is the message for a Size that does not parse; the YAML
// decoder and UnmarshalText both use it.
const errSizeSyntax = `expected a size such as 1048576, "512B", "64KiB", "1MiB", "2GiB" or "1MB"`

// ParseSize parses a byte count: a non-negative integer optionally followed
// (spaces allowed in between) by B, KiB, MiB, GiB, KB, MB or GB.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("negative size %q", s)
	}
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%s, got %q", errSizeSyntax, s)
	}
	unit := strings.TrimLeft(t[i:], " ")
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q in %q (units: B, KiB, MiB, GiB, KB, MB, GB; case matters)", unit, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n * mult), nil
}

// String prints the size in the largest binary unit that represents it
// exactly: 1048576 → "1MiB", 1536 → "1536B". ParseSize reads it back.
func (s Size) String() string {
	switch {
	case s != 0 && s%(1<<30) == 0:
		return strconv.FormatInt(int64(s>>30), 10) + "GiB"
	case s != 0 && s%(1<<20) == 0:
		return strconv.FormatInt(int64(s>>20), 10) + "MiB"
	case s != 0 && s%(1<<10) == 0:
		return strconv.FormatInt(int64(s>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler (flags, JSON).
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as its String form.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML accepts an integer or a string, for code that decodes a Size
// with yaml.v3 directly; Parse has its own positioned decoder.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := sizeFromNode(n)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// sizeFromNode reads a Size from a YAML scalar: a plain integer is a byte
// count, a string goes through ParseSize.
func sizeFromNode(n *yaml.Node) (Size, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, errors.New(errSizeSyntax + ", got " + yamlfile.Describe(n))
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return 0, fmt.Errorf("size %s is too large", n.Value)
		}
		if v < 0 {
			return 0, fmt.Errorf("negative size %s", n.Value)
		}
		return Size(v), nil
	case "!!str":
		return ParseSize(n.Value)
	}
	return 0, errors.New(errSizeSyntax + ", got " + yamlfile.Describe(n))
}

// ParseDuration is time.ParseDuration plus a "d" unit for days of 24 hours,
// which may lead the value ("7d", "1d12h", "1.5d").
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	sign := time.Duration(1)
	if rest, ok := strings.CutPrefix(t, "-"); ok {
		sign, t = -1, rest
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	var days time.Duration
	if j := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }); j > 0 && t[j] == 'd' {
		if !decimal(t[:j]) {
			return 0, fmt.Errorf("invalid duration %q: write it like \"7d\" or \"1d12h\"", s)
		}
		const day = 24 * time.Hour
		if whole, err := strconv.ParseInt(t[:j], 10, 64); err == nil {
			if whole > math.MaxInt64/int64(day) {
				return 0, fmt.Errorf("duration %q is too large", s)
			}
			days = time.Duration(whole) * day
		} else {
			n, err := strconv.ParseFloat(t[:j], 64)
			if err != nil || n*float64(day) >= math.MaxInt64 {
				return 0, fmt.Errorf("duration %q is too large", s)
			}
			days = time.Duration(n * float64(day))
		}
		t = t[j+1:]
		if t == "" {
			return sign * days, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		if strings.Contains(err.Error(), `unknown unit "d"`) {
			return 0, fmt.Errorf("invalid duration %q: days must lead, as in \"7d\" or \"1d12h\"", s)
		}
		if strings.Contains(err.Error(), "missing unit") {
			return 0, fmt.Errorf("duration %q has no unit: write it like \"30s\", \"5m\", \"24h\" or \"7d\"", s)
		}
		return 0, fmt.Errorf("invalid duration %q: write it like \"30s\", \"1m30s\", \"24h\" or \"7d\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: a sign may only lead", s)
	}
	if d > math.MaxInt64-days {
		return 0, fmt.Errorf("duration %q is too large", s)
	}
	return sign * (days + d), nil
}

// decimal reports whether s is digits with at most one '.', the only number
// form allowed before "d" (ParseFloat alone would take "inf" and "1e3").
func decimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case '0' <= s[i] && s[i] <= '9':
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// formatDuration prints d the way a person writes it in the file ("24h",
// "1m30s"; time.Duration.String would give "24h0m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
