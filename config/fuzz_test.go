package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

// FuzzParse: Parse never panics; it returns either a Config or Errors whose
// every entry has a position inside the file; an accepted Config marshals to
// YAML that parses back to the same values. Files are read only from under
// testdata/ (a mutated *_file or cert path must not reach /dev or /proc).
// Seeds: testdata/fuzz/FuzzParse plus every YAML file under testdata.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	sub, _ := filepath.Glob("testdata/*/*/*.yaml")
	for _, file := range append(files, sub...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add(DefaultYAML())
	root, err := filepath.Abs("testdata")
	if err != nil {
		f.Fatal(err)
	}
	sandbox := func(name string) ([]byte, error) {
		abs, err := filepath.Abs(name)
		if err != nil || !strings.HasPrefix(abs, root+string(filepath.Separator)) {
			return nil, fmt.Errorf("cannot read %s: outside the fuzz sandbox", name)
		}
		return readRegularFile(abs)
	}
	const name = "testdata/bad/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(name, filepath.Dir(name), data, lookupTestEnv, sandbox)
		if err != nil {
			if c != nil {
				t.Fatal("a Config returned along with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is %T %v, want non-empty Errors", err, err)
			}
			lines := yamlfile.LineCount(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
			for _, e := range errs {
				if e.File != name || e.Line < 1 || e.Line > lines || e.Col < 1 || e.Msg == "" {
					t.Fatalf("badly positioned error %#v (file has %d lines)", e, lines)
				}
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		// Paths are already resolved: parse the output from the working directory.
		back, err := parse(name, "", out, nil, sandbox)
		if err != nil {
			t.Fatalf("marshalled config does not parse back:\n%v\n--- input:\n%s\n--- output:\n%s", err, data, out)
		}
		c.origin, back.origin = nil, nil
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip changed the config\n--- input:\n%s\n--- output:\n%s\n%+v\n%+v", data, out, c, back)
		}
	})
}
