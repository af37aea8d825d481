package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

// The decoder walks the yaml.Node tree itself instead of calling
// yaml.Unmarshal: that is the only way to give every problem (unknown key,
// wrong type, bad value) a line, a column and a key path, and to report all of
// them in one pass (yaml.v3's KnownFields stops at the first and has no column).

// pos is a 1-based position in the file as written.
type pos struct{ line, col int }

// entry records where a key and its value were written. For list items both
// are the item's position.
type entry struct {
	key, val pos
	null     bool // written without a value (`listen:` or `listen: ~`): counts as absent
}

// origin is what a parsed Config remembers about its source: positions for
// Validate's errors, which keys were written for Defaults, and how to read
// the files the config names.
type origin struct {
	file     string
	keys     map[string]entry
	readFile func(string) ([]byte, error)
}

// present reports whether the source gave path a value. A nil origin (a
// Config built in code) has no keys: every zero field counts as absent.
func (o *origin) present(path string) bool {
	if o == nil {
		return false
	}
	e, ok := o.keys[path]
	return ok && !e.null
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// maxGenericNodes bounds the work spent on free-form values (uplinks[].sasl,
// routes[].from, …): a YAML alias that refers to its own ancestor, or a
// "billion laughs" of nested aliases, would otherwise expand without end.
const maxGenericNodes = 100_000

type decoder struct {
	file     string
	base     string // directory that relative paths are joined to; "" keeps them relative to the working directory
	cols     columnMap
	readFile func(string) ([]byte, error)
	keys     map[string]entry
	bad      map[string]bool // paths with a decode error
	errs     Errors
	budget   int
	walk     yamlfile.Walker // reports through errAt
}

func newDecoder(file, base string, cols columnMap, readFile func(string) ([]byte, error)) *decoder {
	d := &decoder{file: file, base: base, cols: cols, readFile: readFile, keys: map[string]entry{}, bad: map[string]bool{}, budget: maxGenericNodes}
	d.walk = yamlfile.Walker{Report: d.errAt, Pos: d.lineCol}
	return d
}

func (d *decoder) at(n *yaml.Node) pos {
	return pos{n.Line, d.cols.original(n.Line, n.Column)}
}

// lineCol is at for yamlfile.Walker.Pos.
func (d *decoder) lineCol(n *yaml.Node) (line, col int) {
	p := d.at(n)
	return p.line, p.col
}

func (d *decoder) errAt(line, col int, path, msg string) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Path: path, Msg: msg})
	d.failed(path)
}

// failed marks path as not decoded. Its value counts as absent and gets its
// default, and Validate's errors about it are dropped (followOn): the decode
// error already says what is wrong.
func (d *decoder) failed(path string) {
	d.bad[path] = true
	if e, ok := d.keys[path]; ok {
		e.null = true
		d.keys[path] = e
	}
}

// followOn reports whether a Validate error is about a key (or a key inside
// a value) that already failed to decode: the first error says it all.
func (d *decoder) followOn(e *Error) bool {
	for p := e.Path; p != ""; p = parent(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line, col := d.lineCol(n)
	d.errAt(line, col, path, fmt.Sprintf(format, args...))
}

// resolvePath makes a relative path written in the file relative to the file's
// directory (SPEC §3: a config is portable with the files beside it).
func (d *decoder) resolvePath(p string) string {
	if p == "" || d.base == "" || d.base == "." || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.base, p)
}

// value decodes n into v, whose type is one of the schema's.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	n = yamlfile.Deref(n)
	if yamlfile.IsNull(n) {
		return
	}
	switch v.Type() {
	case durationType:
		if dur, ok := d.duration(path, n); ok {
			v.SetInt(int64(dur))
		}
		return
	case sizeType:
		s, err := sizeFromNode(n)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.SetInt(int64(s))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(path, n, v)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(path, n, v.Elem())
	case reflect.String:
		if s, ok := d.walk.Text(path, n); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", yamlfile.Describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, path, "expected true or false, got %s", yamlfile.Describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected an integer, got %s", yamlfile.Describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "integer %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		d.list(path, n, v)
	case reflect.Map:
		d.dict(path, n, v)
	default:
		// The schema uses only the kinds above; a new field of another kind
		// must be taught here, and the tests decode every field.
		panic("config: unsupported field type " + v.Type().String())
	}
}

func (d *decoder) duration(path string, n *yaml.Node) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			dur, err := ParseDuration(n.Value)
			if err != nil {
				d.errorf(n, path, "%v", err)
				return 0, false
			}
			return dur, true
		case "!!int", "!!float":
			// 0 is the same in every unit; any other bare number is ambiguous.
			if v, err := strconv.ParseFloat(n.Value, 64); err == nil && v == 0 {
				return 0, true
			}
			d.errorf(n, path, "a bare number is not a duration: add a unit, as in \"%ss\" or \"%sm\" (units: ms, s, m, h, d)", n.Value, n.Value)
			return 0, false
		}
	}
	d.errorf(n, path, "expected a duration such as \"30s\", \"5m\", \"24h\" or \"7d\", got %s", yamlfile.Describe(n))
	return 0, false
}

// field is one yaml key of a schema struct.
type field struct {
	index int
	str   bool // a string field: foo_file may stand for it
}

func fieldsOf(t reflect.Type) map[string]field {
	fields := make(map[string]field, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = field{index: i, str: f.Type.Kind() == reflect.String}
	}
	return fields
}

// fileSuffix marks a key that reads its value from a file: `password_file:
// /run/secrets/pw` stands for `password: <content>` (SPEC §3).
const fileSuffix = "_file"

// maxFileSize bounds every file the configuration names (secrets, PEM
// certificates and keys): they are small, and a path mistyped as /dev/zero
// must not exhaust memory.
const maxFileSize = 4 << 20

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", yamlfile.Describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	var files []yamlfile.Pair
	for _, p := range d.walk.Pairs(path, n) {
		name := p.Key.Value
		child := yamlfile.Join(path, name)
		val := yamlfile.Deref(p.Value)
		if f, ok := fields[name]; ok {
			d.keys[child] = entry{key: d.at(p.Key), val: d.at(val), null: yamlfile.IsNull(val)}
			d.value(child, p.Value, v.Field(f.index))
			continue
		}
		if base, ok := strings.CutSuffix(name, fileSuffix); ok && fields[base].str {
			files = append(files, p)
			continue
		}
		d.errorf(p.Key, child, "unknown key%s", suggest(name, fields))
	}
	// After the loop, so that foo and foo_file are seen in either order.
	for _, p := range files {
		base := strings.TrimSuffix(p.Key.Value, fileSuffix)
		target := yamlfile.Join(path, base)
		if e, set := d.keys[target]; set {
			d.errorf(p.Key, yamlfile.Join(path, p.Key.Value), "both %s (line %d) and %s are set; keep one", base, e.key.line, p.Key.Value)
			continue
		}
		val := yamlfile.Deref(p.Value)
		d.keys[target] = entry{key: d.at(p.Key), val: d.at(val), null: yamlfile.IsNull(val)}
		if yamlfile.IsNull(val) {
			continue
		}
		file, ok := d.walk.Text(yamlfile.Join(path, p.Key.Value), val)
		var secret string
		if ok {
			var err error
			if secret, err = d.readSecret(file); err != nil {
				d.errorf(val, yamlfile.Join(path, p.Key.Value), "%v", err)
				ok = false
			}
		}
		if !ok {
			d.failed(target) // the error names foo_file; foo's checks would only repeat it
			continue
		}
		v.Field(fields[base].index).SetString(secret)
	}
}

// readSecret reads a *_file value: the file's content without its trailing
// line break(s), which editors and `echo` add.
func (d *decoder) readSecret(file string) (string, error) {
	if file == "" {
		return "", errors.New("empty file name")
	}
	b, err := d.readFile(d.resolvePath(file))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// suggest proposes the known keys closest to an unknown one, foo_file
// variants of string fields included.
func suggest(name string, fields map[string]field) string {
	var known []string
	for k, f := range fields {
		known = append(known, k)
		if f.str {
			known = append(known, k+fileSuffix)
		}
	}
	return yamlfile.Suggest(name, known)
}

func (d *decoder) list(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", yamlfile.Describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		child := path + "[" + strconv.Itoa(i) + "]"
		it := yamlfile.Deref(item)
		d.keys[child] = entry{key: d.at(item), val: d.at(it), null: yamlfile.IsNull(it)}
		if yamlfile.IsNull(it) {
			d.errorf(it, child, "empty list item")
			continue
		}
		d.value(child, item, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) dict(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", yamlfile.Describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range d.walk.Pairs(path, n) {
		child := yamlfile.Join(path, p.Key.Value)
		val := yamlfile.Deref(p.Value)
		d.keys[child] = entry{key: d.at(p.Key), val: d.at(val), null: yamlfile.IsNull(val)}
		var elem reflect.Value
		if v.Type().Elem().Kind() == reflect.Interface {
			elem = reflect.ValueOf(d.generic(child, p.Value, 0))
		} else {
			s, ok := "", true
			if !yamlfile.IsNull(val) {
				s, ok = d.walk.Text(child, val)
			}
			if !ok {
				continue
			}
			elem = reflect.ValueOf(s)
		}
		if !elem.IsValid() { // a null value
			elem = reflect.Zero(v.Type().Elem())
		}
		m.SetMapIndex(reflect.ValueOf(p.Key.Value), elem)
	}
	v.Set(m)
}

// generic decodes a free-form value (the sections that are not implemented
// yet keep some of their sub-structure as maps) into map[string]any, []any or
// a scalar, with string keys only.
func (d *decoder) generic(path string, n *yaml.Node, depth int) any {
	if d.budget <= 0 {
		return nil
	}
	d.budget--
	if d.budget == 0 || depth > 64 {
		d.errorf(n, path, "value is nested too deeply or expands too many aliases")
		d.budget = 0 // report once
		return nil
	}
	n = yamlfile.Deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.walk.Pairs(path, n) {
			m[p.Key.Value] = d.generic(yamlfile.Join(path, p.Key.Value), p.Value, depth+1)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.generic(path+"["+strconv.Itoa(i)+"]", item, depth+1)
		}
		return s
	case yaml.ScalarNode:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "cannot read value %s: %v", yamlfile.Describe(n), strings.TrimPrefix(err.Error(), "yaml: "))
			return nil
		}
		return x
	}
	d.errorf(n, path, "unexpected %s", yamlfile.Describe(n))
	return nil
}
