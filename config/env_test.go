package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "alpha", "E": "", "U": "ünï", "HASH": "x #y"}[k]
		return v, ok
	}
	cases := []struct {
		name, in, want string
		errs           []string // "line:col message-substring"
	}{
		{"plain", "a: ${A}\n", "a: alpha\n", nil},
		{"set but empty", "a: '${E}'\n", "a: ''\n", nil},
		{"default when unset", "a: ${NOPE:-fallback value}\n", "a: fallback value\n", nil},
		{"default when empty", "a: ${E:-d}\n", "a: d\n", nil},
		{"no default when set", "a: ${A:-d}\n", "a: alpha\n", nil},
		{"empty default", "a: x${NOPE:-}y\n", "a: xy\n", nil},
		{"required and set", "a: ${A:?need A}\n", "a: alpha\n", nil},
		{"dollar dollar", "a: $$ and $${A} and $$$$\n", "a: $ and ${A} and $$\n", nil},
		{"lone dollars stay", "a: $2a$10$abc $A $\n", "a: $2a$10$abc $A $\n", nil},
		{"comment not expanded", "a: ${A} # ${NOPE} $$\n# ${NOPE}\n", "a: alpha # ${NOPE} $$\n# ${NOPE}\n", nil},
		{"hash inside quotes is not a comment", "a: \"x #${A}\"\nb: 'it''s #${A}'\n", "a: \"x #alpha\"\nb: 'it''s #alpha'\n", nil},
		{"hash without a space is not a comment", "a: x#${A}\n", "a: x#alpha\n", nil},
		{"apostrophe in a plain scalar", "a: it's ${A} # ${NOPE}\n", "a: it's alpha # ${NOPE}\n", nil},
		{"multi-line double quotes", "a: \"one\n  two # ${A}\"\nb: ${A} # ${NOPE}\n", "a: \"one\n  two # alpha\"\nb: alpha # ${NOPE}\n", nil},
		{"block scalar keeps #", "a: |\n  x # ${A}\n\n  y\nb: 1 # ${NOPE}\n", "a: |\n  x # alpha\n\n  y\nb: 1 # ${NOPE}\n", nil},
		{"unicode", "a: ${U}-${U}\n", "a: ünï-ünï\n", nil},
		{"crlf", "a: ${A}\r\nb: 1\r\n", "a: alpha\r\nb: 1\r\n", nil},
		{"unset", "x: 1\na: ab${NOPE}\n", "x: 1\na: ab${NOPE}\n", []string{"2:6 NOPE is not set"}},
		{"required unset", "a: ${NOPE:?give NOPE}\n", "a: ${NOPE:?give NOPE}\n", []string{"1:4 NOPE is unset or empty: give NOPE"}},
		{"required empty", "a: ${E:?}\n", "a: ${E:?}\n", []string{"1:4 E is unset or empty: required"}},
		{"bad name", "a: ${1A} ${A-x} ${}\n", "a: ${1A} ${A-x} ${}\n", []string{"1:4 invalid variable reference ${1A}", "1:10 invalid variable reference ${A-x}", "1:17 invalid variable reference ${}"}},
		{"bad operator", "a: ${A:=x}\n", "a: ${A:=x}\n", []string{"1:4 invalid variable reference ${A:=x}"}},
		{"nested", "a: ${NOPE:-${A}}\n", "a: ${NOPE:-${A}}\n", []string{"1:4 nested"}},
		{"unterminated", "a: x ${A\nb: 1\n", "a: x ${A\nb: 1\n", []string{"1:6 unterminated"}},
		{"several on a line", "a: ${NOPE} ${A} ${NOPE2}\n", "a: ${NOPE} alpha ${NOPE2}\n", []string{"1:4 NOPE is", "1:17 NOPE2 is"}},
		{"column after unicode", "é: ${NOPE}\n", "é: ${NOPE}\n", []string{"1:4 NOPE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, errs := expand([]byte(tc.in), env)
			if string(out) != tc.want {
				t.Errorf("expand(%q) = %q, want %q", tc.in, out, tc.want)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("got %d errors %v, want %v", len(errs), errs, tc.errs)
			}
			for i, e := range errs {
				at, msg, _ := strings.Cut(tc.errs[i], " ")
				if got := strconv.Itoa(e.line) + ":" + strconv.Itoa(e.col); got != at || !strings.Contains(e.msg, msg) {
					t.Errorf("error %d = %s %q, want %s %q", i, got, e.msg, at, msg)
				}
			}
		})
	}
	// A value with a line break would shift every following line.
	_, _, errs := expand([]byte("a: ${NL}\n"), func(string) (string, bool) { return "x\ny", true })
	if len(errs) != 1 || !strings.Contains(errs[0].msg, "line break") {
		t.Errorf("line break in value: %v", errs)
	}
}

func TestColumnMap(t *testing.T) {
	// Original line 1: `k: ${A} x $$ y` with A=alpha → `k: alpha x $ y`.
	_, cols, _ := expand([]byte("k: ${A} x $$ y\n"), func(string) (string, bool) { return "alpha", true })
	for expanded, want := range map[int]int{1: 1, 4: 4, 6: 4, 8: 4, 9: 8, 10: 9, 11: 10, 12: 11, 13: 13, 14: 14} {
		if got := cols.original(1, expanded); got != want {
			t.Errorf("column %d maps to %d, want %d", expanded, got, want)
		}
	}
	if got := cols.original(2, 7); got != 7 {
		t.Errorf("a line without substitutions must map to itself, got %d", got)
	}
}
