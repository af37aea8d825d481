package yamlfile

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Pair is one key of a mapping and its value, as written: an alias value is
// not followed.
type Pair struct{ Key, Value *yaml.Node }

// Walker reads one document for a reader (of the configuration, of the
// devices file) that records problems its own way. Report must be set.
type Walker struct {
	// Report records a problem at line:col, about key path ("" for the
	// document as a whole).
	Report func(line, col int, path, msg string)
	// Pos gives the position of n in the file as the user wrote it, when the
	// parsed text differs (${VAR} expansion shifts columns); nil means
	// n.Line, n.Column.
	Pos func(n *yaml.Node) (line, col int)
	// Visit is called for every key and every merged value Pairs reads; once
	// it returns false, Pairs reads no further and returns what it has. A
	// node reached through aliases is read once per use, so a reader of
	// untrusted files bounds the work with it. nil charges nothing.
	Visit func(n *yaml.Node, path string) bool
}

func (w *Walker) errorf(n *yaml.Node, path, format string, args ...any) {
	line, col := n.Line, n.Column
	if w.Pos != nil {
		line, col = w.Pos(n)
	}
	w.Report(line, col, path, fmt.Sprintf(format, args...))
}

func (w *Walker) visit(n *yaml.Node, path string) bool {
	return w.Visit == nil || w.Visit(n, path)
}

// Pairs returns mapping n's key/value pairs with YAML merge keys (<<: *base)
// expanded: keys written in the mapping override merged ones, and among
// merged mappings the earlier wins. A duplicate key written in the mapping,
// a key that is not a scalar and a merge key that refers to a mapping
// containing it are reported (at path) and left out.
func (w *Walker) Pairs(path string, n *yaml.Node) []Pair {
	var own, merged []Pair
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !w.visit(k, path) {
			return own
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			w.merge(path, v, &merged, map[*yaml.Node]bool{n: true}, map[*yaml.Node]bool{})
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, "expected a key name, got %s", Describe(k))
			continue
		}
		if prev, dup := first[k.Value]; dup {
			w.errorf(k, Join(path, k.Value), "duplicate key (first set at line %d)", prev.Line)
			continue
		}
		first[k.Value] = k
		own = append(own, Pair{k, v})
	}
	for _, p := range merged {
		if p.Key.Kind != yaml.ScalarNode {
			w.errorf(p.Key, path, "expected a key name, got %s", Describe(p.Key))
			continue
		}
		if _, set := first[p.Key.Value]; !set {
			first[p.Key.Value] = p.Key
			own = append(own, p)
		}
	}
	return own
}

// merge appends the pairs of the mapping(s) v names. visiting holds the
// mappings being merged (a cycle is an error); done, those merged already:
// merging one again adds nothing (the first wins), and skipping it keeps
// nested merges of merges linear instead of exponential.
func (w *Walker) merge(path string, v *yaml.Node, out *[]Pair, visiting, done map[*yaml.Node]bool) {
	v = Deref(v)
	if !w.visit(v, path) {
		return
	}
	switch v.Kind {
	case yaml.MappingNode:
		if visiting[v] {
			w.errorf(v, path, "merge key (<<) refers to a mapping that contains it")
			return
		}
		if done[v] {
			return
		}
		visiting[v], done[v] = true, true
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i]
			if !w.visit(k, path) {
				return
			}
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				w.merge(path, v.Content[i+1], out, visiting, done)
				continue
			}
			*out = append(*out, Pair{k, v.Content[i+1]})
		}
		delete(visiting, v)
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if it := Deref(item); it.Kind != yaml.MappingNode {
				w.errorf(it, path, "merge key (<<) expects a mapping or a list of mappings, got %s", Describe(it))
				continue
			}
			w.merge(path, item, out, visiting, done)
		}
	default:
		w.errorf(v, path, "merge key (<<) expects a mapping or a list of mappings, got %s", Describe(v))
	}
}

// Deref follows an alias (*name) to the node its anchor names.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is a null scalar: written without a value
// (`key:`), or as ~ or null.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names a node for "expected X, got Y" messages: its kind, or a
// scalar's value (quoted if a string, cut after 57 characters).
func Describe(n *yaml.Node) string {
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

// Join appends key to a key path: mqtt + tls is mqtt.tls; the root's path
// is "".
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Text reads a string value: any scalar except a boolean, which is nearly
// always a mistake in a string field (`container_id: true`). Numbers and
// timestamps keep their text as written. Other values are reported at path.
func (w *Walker) Text(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		w.errorf(n, path, "expected a string, got %s", Describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, true
	case "!!bool":
		w.errorf(n, path, "expected a string, got %s (quote it if you mean the text)", n.Value)
	default:
		w.errorf(n, path, "expected a string, got %s with tag %s", Describe(n), n.ShortTag())
	}
	return "", false
}
