package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
}

func newDecoder(file, base string, cols columnMap, readFile func(string) ([]byte, error)) *decoder {
	return &decoder{file: file, base: base, cols: cols, readFile: readFile, keys: map[string]entry{}, bad: map[string]bool{}, budget: maxGenericNodes}
}

func (d *decoder) at(n *yaml.Node) pos {
	return pos{n.Line, d.cols.original(n.Line, n.Column)}
}

func (d *decoder) errAt(p pos, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.line, Col: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
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
	d.errAt(d.at(n), path, format, args...)
}

// yamlLine finds the line yaml.v3 puts in its syntax errors ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// document parses data as exactly one YAML document and returns its root node,
// or nil when the document is empty. Syntax errors are recorded; yaml.v3 gives
// their line but no column, so they point at column 1.
func (d *decoder) document(data []byte) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntaxError(data, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorf(&extra, "", "a second YAML document (after ---) is not allowed: the configuration is one document")
		return nil, false
	case !errors.Is(err, io.EOF):
		d.syntaxError(data, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	root = deref(doc.Content[0])
	if isNull(root) {
		return nil, true
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "expected a mapping of sections (gateway:, mqtt:, http:, …), got %s", describe(root))
		return nil, false
	}
	return root, true
}

func (d *decoder) syntaxError(data []byte, err error) {
	line, msg := splitYAMLError(err)
	if l, ok := firstFailingLine(data, msg); ok {
		line = l
	}
	// Keep the position inside the file so that editors can jump to it.
	line = max(1, min(line, countLines(string(data))))
	d.errAt(pos{line, 1}, "", "YAML syntax error: %s", msg)
}

// splitYAMLError takes yaml.v3's "yaml: line N: message" apart.
func splitYAMLError(err error) (line int, msg string) {
	msg = err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// maxSearchLines bounds firstFailingLine's work (each step parses a prefix).
const maxSearchLines = 10_000

// firstFailingLine finds the line of a syntax error more precisely than
// yaml.v3, which reports the line where the enclosing construct started (or
// that line minus one): the shortest prefix of whole lines that fails with the
// same message ends at the culprit. Found by bisection: a parser that stops at
// the first error fails the same way on every longer prefix.
func firstFailingLine(data []byte, msg string) (int, bool) {
	lines := splitLines(string(data))
	if len(lines) > maxSearchLines {
		return 0, false
	}
	fails := func(n int) bool {
		var prefix strings.Builder
		for _, l := range lines[:n] {
			prefix.WriteString(l[0])
			prefix.WriteString(l[1])
		}
		dec := yaml.NewDecoder(strings.NewReader(prefix.String()))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			_, m := splitYAMLError(err)
			return m == msg
		}
	}
	lo, hi := 1, len(lines) // invariant: fails(hi)
	if !fails(hi) {
		return 0, false
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, true
}

// deref follows an alias (*name) to the node its anchor names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if r := []rune(v); len(r) > 60 {
		v = string(r[:57]) + "..."
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(v)
	}
	return v
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
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
	n = deref(n)
	if isNull(n) {
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
		if s, ok := d.str(path, n); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected an integer, got %s", describe(n))
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

// str accepts any scalar except booleans, which are nearly always a mistake
// in a string field (`container_id: true`). Numbers keep their text as written.
func (d *decoder) str(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, true
	case "!!bool":
		d.errorf(n, path, "expected a string, got %s (quote it if you mean the text)", n.Value)
	default:
		d.errorf(n, path, "expected a string, got %s with tag %s", describe(n), n.ShortTag())
	}
	return "", false
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
	d.errorf(n, path, "expected a duration such as \"30s\", \"5m\", \"24h\" or \"7d\", got %s", describe(n))
	return 0, false
}

type pair struct{ key, val *yaml.Node }

// pairs returns a mapping's key/value pairs with YAML merge keys (<<: *base)
// expanded: keys written in the mapping override merged ones, and among merged
// mappings the earlier wins. Duplicate keys written in the mapping are errors.
func (d *decoder) pairs(path string, n *yaml.Node) []pair {
	var own, merged []pair
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(path, v, &merged, map[*yaml.Node]bool{n: true}, map[*yaml.Node]bool{})
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "expected a key name, got %s", describe(k))
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.errorf(k, join(path, k.Value), "duplicate key (first set at line %d)", prev.Line)
			continue
		}
		first[k.Value] = k
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if _, set := first[p.key.Value]; !set {
			first[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

// merge appends the pairs of the mapping(s) v names. visiting holds the
// mappings being merged (a cycle is an error); done, those merged already:
// merging one again adds nothing (the first wins), and skipping it keeps
// nested merges of merges linear instead of exponential.
func (d *decoder) merge(path string, v *yaml.Node, out *[]pair, visiting, done map[*yaml.Node]bool) {
	v = deref(v)
	switch v.Kind {
	case yaml.MappingNode:
		if visiting[v] {
			d.errorf(v, path, "merge key (<<) refers to a mapping that contains it")
			return
		}
		if done[v] {
			return
		}
		visiting[v], done[v] = true, true
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				d.merge(path, v.Content[i+1], out, visiting, done)
				continue
			}
			*out = append(*out, pair{k, v.Content[i+1]})
		}
		delete(visiting, v)
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if it := deref(item); it.Kind != yaml.MappingNode {
				d.errorf(it, path, "merge key (<<) expects a mapping or a list of mappings, got %s", describe(it))
				continue
			}
			d.merge(path, item, out, visiting, done)
		}
	default:
		d.errorf(v, path, "merge key (<<) expects a mapping or a list of mappings, got %s", describe(v))
	}
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
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	var files []pair
	for _, p := range d.pairs(path, n) {
		name := p.key.Value
		child := join(path, name)
		val := deref(p.val)
		if f, ok := fields[name]; ok {
			d.keys[child] = entry{key: d.at(p.key), val: d.at(val), null: isNull(val)}
			d.value(child, p.val, v.Field(f.index))
			continue
		}
		if base, ok := strings.CutSuffix(name, fileSuffix); ok && fields[base].str {
			files = append(files, p)
			continue
		}
		d.errorf(p.key, child, "unknown key%s", suggest(name, fields))
	}
	// After the loop, so that foo and foo_file are seen in either order.
	for _, p := range files {
		base := strings.TrimSuffix(p.key.Value, fileSuffix)
		target := join(path, base)
		if e, set := d.keys[target]; set {
			d.errorf(p.key, join(path, p.key.Value), "both %s (line %d) and %s are set; keep one", base, e.key.line, p.key.Value)
			continue
		}
		val := deref(p.val)
		d.keys[target] = entry{key: d.at(p.key), val: d.at(val), null: isNull(val)}
		if isNull(val) {
			continue
		}
		file, ok := d.str(join(path, p.key.Value), val)
		var secret string
		if ok {
			var err error
			if secret, err = d.readSecret(file); err != nil {
				d.errorf(val, join(path, p.key.Value), "%v", err)
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

// suggest proposes the known keys closest to an unknown one.
func suggest(name string, fields map[string]field) string {
	var known []string
	for k, f := range fields {
		known = append(known, k)
		if f.str {
			known = append(known, k+fileSuffix)
		}
	}
	best, picks := 3, []string(nil)
	for _, k := range known {
		dist := editDistance(strings.ToLower(name), k)
		limit := min(2, max(1, len(k)/4))
		if dist > limit || dist > best {
			continue
		}
		if dist < best {
			best, picks = dist, nil
		}
		picks = append(picks, k)
	}
	if len(picks) == 0 {
		return ""
	}
	slices.Sort(picks)
	return " (did you mean " + strings.Join(picks, " or ") + "?)"
}

// editDistance counts the single-character insertions, deletions,
// substitutions and swaps of neighbours (optimal string alignment) between a
// and b, with '-' and '_' counted equal so that max-connections finds
// max_connections and kye finds key.
func editDistance(a, b string) int {
	norm := func(s string) []rune { return []rune(strings.ReplaceAll(s, "-", "_")) }
	ra, rb := norm(a), norm(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb)) // no key is that long: not a typo of one
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func (d *decoder) list(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		child := path + "[" + strconv.Itoa(i) + "]"
		it := deref(item)
		d.keys[child] = entry{key: d.at(item), val: d.at(it), null: isNull(it)}
		if isNull(it) {
			d.errorf(it, child, "empty list item")
			continue
		}
		d.value(child, item, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) dict(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(path, n) {
		child := join(path, p.key.Value)
		val := deref(p.val)
		d.keys[child] = entry{key: d.at(p.key), val: d.at(val), null: isNull(val)}
		var elem reflect.Value
		if v.Type().Elem().Kind() == reflect.Interface {
			elem = reflect.ValueOf(d.generic(child, p.val, 0))
		} else {
			s, ok := "", true
			if !isNull(val) {
				s, ok = d.str(child, val)
			}
			if !ok {
				continue
			}
			elem = reflect.ValueOf(s)
		}
		if !elem.IsValid() { // a null value
			elem = reflect.Zero(v.Type().Elem())
		}
		m.SetMapIndex(reflect.ValueOf(p.key.Value), elem)
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
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.pairs(path, n) {
			m[p.key.Value] = d.generic(join(path, p.key.Value), p.val, depth+1)
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
			d.errorf(n, path, "cannot read value %s: %v", describe(n), strings.TrimPrefix(err.Error(), "yaml: "))
			return nil
		}
		return x
	}
	d.errorf(n, path, "unexpected %s", describe(n))
	return nil
}
