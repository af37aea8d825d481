// Package config reads the gateway's YAML configuration (SPEC §3): strict
// decoding with a file:line:col and a key path for every problem, ${VAR}
// expansion, *_file secrets, defaults applied in one function, and a Validate
// that reports all problems at once.
//
// The steps of Parse, in order:
//
//  1. expand ${VAR}, ${VAR:-default}, ${VAR:?message} and $$ in the raw text,
//     line by line (env.go);
//  2. parse one YAML document into a yaml.Node tree and walk it against the
//     schema structs, recording where every key was written (decode.go);
//  3. read *_file secrets and make relative paths relative to the config
//     file's directory;
//  4. Defaults fills the keys the file does not contain (defaults.go);
//  5. Validate checks values, files and cross-key rules (validate.go).
//
// Problems from every step are collected and returned together as Errors.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultSource is Config.Source for the embedded default configuration.
const DefaultSource = "<default>"

// DefaultYAML returns the built-in default configuration (local mode), which
// is also the documented reference of every key: `isthmus config default`
// prints it.
func DefaultYAML() []byte {
	return append([]byte(nil), defaultYAML...)
}

// Load reads the configuration file at path, or the embedded default when path
// is "", expands environment variables from the process environment, applies
// defaults and validates. Relative paths inside a file are taken relative to
// the file's directory; those in the embedded default, relative to the working
// directory. On problems in the content the error is Errors.
func Load(path string) (*Config, error) {
	if path == "" {
		return parse(DefaultSource, "", defaultYAML, os.LookupEnv, readRegularFile)
	}
	data, err := readRegularFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse reads a configuration from data. name is the file name used in error
// positions and Config.Source; relative paths in the content are joined to its
// directory. lookupEnv resolves ${VAR} (nil: no variable is set). The returned
// Config has its defaults applied and has passed Validate; otherwise the error
// is Errors, holding every problem found, sorted by position.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parse(name, filepath.Dir(name), data, lookupEnv, readRegularFile)
}

func parse(name, base string, data []byte, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	// A UTF-8 byte order mark is not part of the text: YAML skips it, and
	// expand must not count it as a column.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	expanded, cols, envErrs := expand(data, lookupEnv)
	d := newDecoder(name, base, cols, readFile)
	c := &Config{Source: name}
	root, ok := d.walk.Root(expanded, "the configuration", "a mapping of sections (gateway:, mqtt:, http:, …)")
	if root != nil {
		d.mapping("", root, reflect.ValueOf(c).Elem())
	}
	errs := d.errs
	if ok {
		c.origin = &origin{file: name, keys: d.keys, readFile: readFile}
		d.resolvePaths(c)
		Defaults(c)
		if err := c.Validate(); err != nil {
			for _, e := range err.(Errors) {
				if !d.followOn(e) {
					errs = append(errs, e)
				}
			}
		}
	}
	errs = d.withEnvErrors(errs, envErrs)
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	return c, nil
}

// resolvePaths joins the relative file paths written in the file to the
// file's directory (the *_file secrets were read that way already).
func (d *decoder) resolvePaths(c *Config) {
	c.Gateway.DataDir = d.resolvePath(c.Gateway.DataDir)
	c.Auth.DevicesFile = d.resolvePath(c.Auth.DevicesFile)
	for _, t := range []*TLS{c.MQTT.TLS, c.AMQP.TLS, c.HTTP.TLS} {
		if t != nil {
			t.Cert = d.resolvePath(t.Cert)
			t.Key = d.resolvePath(t.Key)
			t.ClientCA = d.resolvePath(t.ClientCA)
		}
	}
}

// withEnvErrors adds the expansion errors, each with the key path written at
// its position. An unexpanded reference stays in the text as written, which
// may make other checks fail on the same line ("${PORT}" is not a port):
// those follow-on errors are dropped, the expansion error says what is wrong.
func (d *decoder) withEnvErrors(errs Errors, envErrs []envError) Errors {
	if len(envErrs) == 0 {
		return errs
	}
	lines := map[int]bool{}
	for _, e := range envErrs {
		lines[e.line] = true
	}
	kept := errs[:0]
	for _, e := range errs {
		if e.Path == "" || !lines[e.Line] { // keep syntax errors
			kept = append(kept, e)
		}
	}
	for _, e := range envErrs {
		kept = append(kept, &Error{File: d.file, Line: e.line, Col: e.col, Path: d.pathAt(e.line, e.col), Msg: e.msg})
	}
	return kept
}

// pathAt names the key whose key or value starts last before (line, col) on
// that line: the key a ${VAR} reference belongs to. Ties (a list item and its
// first key, an anchored value used twice) go to the deeper path, then to
// the first in sort order, so that the output does not depend on map order.
func (d *decoder) pathAt(line, col int) string {
	best, bestCol := "", 0
	for path, e := range d.keys {
		for _, p := range []pos{e.key, e.val} {
			if p.line != line || p.col > col {
				continue
			}
			if p.col > bestCol || p.col == bestCol && (len(path) > len(best) || len(path) == len(best) && path < best) {
				best, bestCol = path, p.col
			}
		}
	}
	return best
}

// readRegularFile reads a file the configuration names. Only regular files
// are read, up to maxFileSize: a FIFO or a device would block or never end.
func readRegularFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fileError(name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %s: not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fileError(name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fileError(name, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("cannot read %s: larger than %s", name, Size(maxFileSize))
	}
	return b, nil
}

// fileError says which file failed without repeating the name that
// *fs.PathError already carries ("cannot read x: open x: …").
func fileError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %w", name, err)
}
