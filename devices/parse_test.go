package devices

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/{good,bad}/*.golden from the current output")

// golden compares got with the .golden file beside yamlFile (or rewrites it
// with -update).
func golden(t *testing.T, yamlFile, got string) {
	t.Helper()
	g := strings.TrimSuffix(yamlFile, ".yaml") + ".golden"
	if *update {
		if err := os.WriteFile(g, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(g)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got:\n%s--- want:\n%s", g, got, want)
	}
}

// dump prints everything a Registry holds, for the golden files of good
// inputs.
func dump(r *Registry) string {
	var b strings.Builder
	for _, d := range r.Devices() {
		fmt.Fprintf(&b, "device %q enabled=%v password=%q cert_cn=%q\n", d.ID, d.Enabled, d.Password, d.CertCN)
		fmt.Fprintf(&b, "  publish   %q -> %s\n", d.Publish, r.Publish(d.ID))
		fmt.Fprintf(&b, "  subscribe %q -> %s\n", d.Subscribe, r.Subscribe(d.ID))
		keys := make([]string, 0, len(d.Labels))
		for k := range d.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  label %q=%q\n", k, d.Labels[k])
		}
	}
	pub, sub := r.Anonymous()
	fmt.Fprintf(&b, "anonymous publish %s subscribe %s\n", pub, sub)
	return b.String()
}

func TestParseGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, d := range r.Devices() {
				if r.Lookup(d.ID) != d || r.Publish(d.ID) == nil || r.Subscribe(d.ID) == nil {
					t.Errorf("device %q: Lookup or its ACLs missing", d.ID)
				}
			}
			golden(t, file, dump(r))
		})
	}
}

func TestParseBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r, err := Load(file)
			if r != nil || err == nil {
				t.Fatalf("Load accepted %s", file)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("error is %T, want Errors matching ErrInvalidFile: %v", err, err)
			}
			for _, e := range errs {
				if e.File != file || e.Line < 1 || e.Col < 1 {
					t.Errorf("badly positioned: %#v", e)
				}
				if strings.Contains(e.Msg, "hunter2") {
					t.Errorf("a message shows the plaintext password: %s", e)
				}
			}
			golden(t, file, err.Error()+"\n")
		})
	}
}

func TestParseFull(t *testing.T) {
	r, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range r.Devices() {
		ids = append(ids, d.ID)
	}
	if want := []string{"sensor-42", "backend-service", "camera-7", "old-sensor"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %q, want %q in file order", ids, want)
	}
	s := r.Lookup("sensor-42")
	if s.CertCN != "sensor-42" || !s.Enabled || s.Labels["site"] != "plant-1" || s.Labels["line"] != "3" ||
		!slices.Equal(s.Publish, []string{"devices/{id}/#"}) {
		t.Errorf("sensor-42 = %+v", s)
	}
	if r.Lookup("old-sensor").Enabled {
		t.Error("old-sensor: enabled: false not read")
	}
	if r.Lookup("nobody") != nil || r.Publish("nobody") != nil || r.Subscribe("nobody") != nil {
		t.Error("an unknown id has a device or ACLs")
	}
	if r.Publish("nobody").AllowsTopic("devices/nobody/x") {
		t.Error("the nil ACL of an unknown id allows a topic")
	}
	if !r.Publish("sensor-42").AllowsTopic("devices/sensor-42/temp") || r.Publish("sensor-42").AllowsTopic("devices/camera-7/temp") {
		t.Error("sensor-42's publish ACL is not devices/sensor-42/#")
	}
	if !r.Publish("camera-7").AllowsTopic("devices/camera-7-aux/x") || r.Subscribe("camera-7").AllowsFilter("x") {
		t.Error("camera-7: partial-level {id} or absent subscribe list wrong")
	}
	pub, sub := r.Anonymous()
	if !pub.AllowsTopic("public/x") || pub.AllowsTopic("devices/x") || !sub.AllowsFilter("$SYS/isthmus/presence/+") {
		t.Errorf("anonymous ACLs %s %s", pub, sub)
	}
	if r.File() != "testdata/good/full.yaml" {
		t.Errorf("File() = %q", r.File())
	}
	// Devices returns a copy: changing it does not change the registry.
	r.Devices()[0] = nil
	if r.Devices()[0] == nil {
		t.Error("Devices returned the registry's own slice")
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# c\n", "devices:\n", "devices: []\n", "devices: ~\nanonymous: ~\n", "---\n", "~\n"} {
		r, err := Parse("x.yaml", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		pub, sub := r.Anonymous()
		if len(r.Devices()) != 0 || pub == nil || sub == nil || pub.AllowsTopic("a") || sub.AllowsFilter("#") {
			t.Errorf("%q: not an empty, deny-all registry", src)
		}
	}
}

func TestLoadLimits(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalidFile) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	data := bytes.Repeat([]byte("#\n"), MaxFileSize/2+1)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(big)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "larger than 16 MiB") || errs[0].File != big || !errors.Is(err, ErrInvalidFile) {
		t.Errorf("oversized file: %v", err)
	}
	// Exactly at the limit is accepted (comments only: an empty registry).
	if _, err := Parse("max.yaml", data[:MaxFileSize]); err != nil {
		t.Errorf("file at the limit: %v", err)
	}
}

// TestAliasBombs: YAML aliases are followed by the decoder, never expanded
// into a tree; a file made of aliases to aliases costs time linear in its
// size (bounded by maxVisits) and yields a bounded error list.
func TestAliasBombs(t *testing.T) {
	var laughs strings.Builder
	laughs.WriteString("devices:\n  - id: a\n    cert_cn: a\n    labels: {x: y}\n    publish: &l0 [\"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\", \"x\"]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&laughs, "  - id: a%d\n    cert_cn: a%d\n    publish: &l%d [", i, i, i)
		for j := range 10 {
			if j > 0 {
				laughs.WriteString(", ")
			}
			fmt.Fprintf(&laughs, "*l%d", i-1)
		}
		laughs.WriteString("]\n")
	}
	laughs.WriteString("  - &d {id: dup, cert_cn: dup, publish: *l9, subscribe: *l9}\n")
	for range 20000 {
		laughs.WriteString("  - *d\n")
	}

	// Merge keys: each mapping merges the previous one twice, so that a
	// naive expansion doubles at every level.
	var merges strings.Builder
	merges.WriteString("devices:\n  - &m0 {id: m, cert_cn: m}\n")
	for i := 1; i < 64; i++ {
		fmt.Fprintf(&merges, "  - &m%d {<<: [*m%d, *m%d], id: m%d, cert_cn: m%d}\n", i, i-1, i-1, i, i)
	}
	merges.WriteString("  - &last {<<: [")
	for i := range 64 {
		if i > 0 {
			merges.WriteString(", ")
		}
		fmt.Fprintf(&merges, "*m%d", i)
	}
	merges.WriteString("], id: last, cert_cn: last}\n")
	for range 50000 {
		merges.WriteString("  - *last\n")
	}

	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)

	for name, src := range map[string]string{"laughs": laughs.String(), "merges": merges.String(), "deep": "devices: " + deep + "\n"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			r, err := Parse(name+".yaml", []byte(src))
			took := time.Since(start)
			var errs Errors
			if r != nil || !errors.As(err, &errs) {
				t.Fatalf("accepted: %v", err)
			}
			if len(errs) > maxErrors+1 {
				t.Errorf("%d errors, want at most %d", len(errs), maxErrors+1)
			}
			if took > 10*time.Second {
				t.Errorf("took %v for %d bytes", took, len(src))
			}
			t.Logf("%d bytes: %v, %d errors, first: %v", len(src), took, len(errs), errs[0])
		})
	}
}
