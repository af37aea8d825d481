package yamlfile

import (
	"errors"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Col: 5, Path: "mqtt.tls.cert", Msg: "m"}, "f.yaml:3:5: mqtt.tls.cert: m"},
		{Error{File: "d.yaml", Line: 3, Col: 5, Path: "devices[2].password", Msg: "m"}, "d.yaml:3:5: devices[2].password: m"},
		{Error{File: "f.yaml", Line: 3, Col: 5, Msg: "m"}, "f.yaml:3:5: m"},
		{Error{File: "f.yaml", Path: "a", Msg: "m"}, "f.yaml: a: m"},
		{Error{File: "d.yaml", Msg: "too big"}, "d.yaml: too big"},
		{Error{Line: 1, Col: 2, Msg: "m"}, "1:2: m"},
		{Error{Path: "a", Msg: "m"}, "a: m"},
		{Error{}, ""},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
	es := Errors{{File: "f", Line: 2, Col: 1, Msg: "b"}, {File: "f", Line: 1, Col: 1, Msg: "a"}}
	if got := es.Error(); got != "f:2:1: b\nf:1:1: a" {
		t.Errorf("Errors.Error() = %q: want one line per problem, in the list's order", got)
	}
	var one *Error
	if !errors.As(error(es), &one) || one != es[0] {
		t.Errorf("errors.As did not find the first *Error: %v", one)
	}
	if got := (Errors{}).Error(); got != "" {
		t.Errorf("empty Errors.Error() = %q", got)
	}
}

// TestSorted: by line, then column; stable among equal positions; exact
// duplicates (an alias used twice) dropped, near ones kept.
func TestSorted(t *testing.T) {
	e := func(line, col int, path, msg string) *Error {
		return &Error{File: "f", Line: line, Col: col, Path: path, Msg: msg}
	}
	es := Errors{
		e(3, 1, "c", "third"),
		e(1, 9, "a", "second"),
		e(2, 1, "b", "dup"),
		e(1, 2, "a", "first"),
		e(2, 1, "b", "dup"),  // exact duplicate of an earlier one: dropped
		e(2, 1, "b", "dup2"), // same position, other message: kept, after "dup"
		e(0, 0, "", "whole file"),
		e(3, 1, "c", "third"), // duplicate, far from the first as written
	}
	got := es.Sorted()
	want := []string{"whole file", "first", "second", "dup", "dup2", "third"}
	if len(got) != len(want) {
		t.Fatalf("Sorted() = %v, want messages %q", got, want)
	}
	for i, w := range want {
		if got[i].Msg != w {
			t.Errorf("Sorted()[%d] = %v, want message %q\n%v", i, got[i], w, got)
		}
	}
	if Errors(nil).Sorted() != nil {
		t.Error("nil Errors sorted is not nil")
	}
}
