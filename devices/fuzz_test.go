package devices

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; it returns either a Registry or non-empty
// Errors, each positioned; in an accepted Registry every device is found by
// its id, has a valid id and hash, and its patterns compile to the ACLs the
// Registry holds. Seeds: testdata/fuzz/FuzzParse and every YAML file under
// testdata.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(name, data)
		if err != nil {
			if r != nil {
				t.Fatal("a Registry returned along with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("error is %T %v, want non-empty Errors matching ErrInvalidFile", err, err)
			}
			for i, e := range errs {
				last := i == len(errs)-1 && strings.HasPrefix(e.Msg, "stopped after")
				if e.File != name || e.Msg == "" || !last && (e.Line < 1 || e.Col < 1) {
					t.Fatalf("badly positioned error %#v", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range r.Devices() {
			if seen[d.ID] {
				t.Fatalf("id %q twice", d.ID)
			}
			seen[d.ID] = true
			if r.Lookup(d.ID) != d {
				t.Fatalf("Lookup(%q) does not find it", d.ID)
			}
			if msg := checkID(d.ID); msg != "" {
				t.Fatalf("accepted id %q: %s", d.ID, msg)
			}
			if d.Password == "" && d.CertCN == "" {
				t.Fatalf("device %q has no credentials", d.ID)
			}
			if d.Password != "" && checkHash(d.Password) != "" {
				t.Fatalf("device %q: accepted hash %q", d.ID, d.Password)
			}
			for _, side := range []struct {
				pats []string
				acl  *ACL
			}{{d.Publish, r.Publish(d.ID)}, {d.Subscribe, r.Subscribe(d.ID)}} {
				a, err := CompileACL(side.pats, d.ID)
				if err != nil {
					t.Fatalf("device %q: %v", d.ID, err)
				}
				if side.acl == nil || side.acl.String() != a.String() {
					t.Fatalf("device %q: registry ACL %s, compiled %s", d.ID, side.acl, a)
				}
			}
		}
		if pub, sub := r.Anonymous(); pub == nil || sub == nil {
			t.Fatal("nil anonymous ACL")
		}
	})
}

// FuzzACL: CompileACL, AllowsTopic and AllowsFilter never panic; AllowsTopic
// agrees with the reference matcher; a pattern covers itself; and when
// AllowsFilter(filter) holds, every topic the filter matches is allowed. The
// topic checked is the fuzzer's own and one built from the filter by filling
// its wildcards with the topic's levels, so that matching pairs are common.
func FuzzACL(f *testing.F) {
	for _, s := range [][3]string{
		{"devices/{id}/#", "devices/sensor-42/+", "devices/sensor-42/x"},
		{"devices/{id}/#", "devices/+/x", "devices/sensor-43/x"},
		{"#", "#", "$SYS/x"},
		{"+/#", "$share/g/#", "a/b"},
		{"$SYS/#", "$SYS/+", "$SYS/x"},
		{"a/+/c", "a/+/c", "a//c"},
		{"a//b", "a//+", "a//b"},
		{"{id}", "sensor-42", "sensor-42"},
		{"/", "/#", "/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, filter, topic string) {
		a, err := CompileACL([]string{pattern}, "sensor-42")
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Msg == "" {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		p := a.patterns[0].text
		if !a.AllowsFilter(p) {
			t.Fatalf("pattern %q does not cover itself", p)
		}
		allowsFilter := a.AllowsFilter(filter)
		if allowsFilter && !validFilter(filter) {
			t.Fatalf("invalid filter %q allowed", filter)
		}
		for _, tp := range []string{topic, fill(filter, topic)} {
			got := a.AllowsTopic(tp)
			if tp == "" || strings.ContainsAny(tp, "+#\x00") {
				if got {
					t.Fatalf("%q allows the invalid topic name %q", p, tp)
				}
				continue
			}
			if want := refMatch(p, tp); got != want {
				t.Fatalf("%q AllowsTopic(%q) = %v, reference says %v", p, tp, got, want)
			}
			if allowsFilter && refMatch(filter, tp) && !got {
				t.Fatalf("%q allows filter %q but not topic %q, which it matches", p, filter, tp)
			}
		}
	})
}

// fill builds a topic from filter: each + takes the next level of topic, a
// # takes what is left of topic (maybe nothing).
func fill(filter, topic string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			filter = f
		}
	}
	src := strings.Split(topic, "/")
	var out []string
	for _, l := range strings.Split(filter, "/") {
		switch l {
		case "+":
			if len(src) > 0 {
				out, src = append(out, src[0]), src[1:]
			} else {
				out = append(out, "")
			}
		case "#":
			out, src = append(out, src...), nil
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "/")
}
