package mapping

import (
	"slices"
	"strings"
)

// node is one level of a topic tree: routes are stored at the node their pattern's last level
// leads to, so that matching a name costs one map lookup per level and per wildcard branch taken,
// whatever the number of routes.
type node struct {
	lits map[string]*node // literal levels
	plus *node            // `+` and {name}
	end  []*Route         // patterns that end at this node
	hash []*Route         // patterns that end with `#` below this node
	// endMark and hashMark record that something ends here even when no route is stored (queue
	// patterns use the tree only to answer whether a name matches).
	endMark, hashMark bool
}

// insert adds a pattern; r may be nil (queue patterns).
func (n *node) insert(p *pattern, r *Route) {
	for _, lv := range p.levels {
		switch lv.kind {
		case levelHash:
			n.hashMark = true
			if r != nil {
				n.hash = append(n.hash, r)
			}
			return
		case levelPlus:
			if n.plus == nil {
				n.plus = &node{}
			}
			n = n.plus
		default:
			c := n.lits[lv.lit]
			if c == nil {
				if n.lits == nil {
					n.lits = map[string]*node{}
				}
				c = &node{}
				n.lits[lv.lit] = c
			}
			n = c
		}
	}
	n.endMark = true
	if r != nil {
		n.end = append(n.end, r)
	}
}

// nextLevel returns the level of name that starts at pos and the start of the next one (-1 when
// it was the last).
func nextLevel(name string, pos int, sep byte) (string, int) {
	if j := strings.IndexByte(name[pos:], sep); j >= 0 {
		return name[pos : pos+j], pos + j + 1
	}
	return name[pos:], -1
}

// collect appends a Match for every route whose pattern matches name from level pos on (pos -1:
// every level consumed). root is true at the first level.
func (n *node) collect(dst []Match, name string, pos int, sep byte, root bool) []Match {
	if pos < 0 {
		for _, r := range n.end {
			dst = append(dst, Match{Route: r, Name: name})
		}
		// `#` also matches the parent level: "sport/#" matches "sport" (MQTT 5 §4.7.1.2).
		for _, r := range n.hash {
			dst = append(dst, Match{Route: r, Name: name})
		}
		return dst
	}
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a name starting with $.
	wild := !root || name[0] != '$'
	if wild {
		for _, r := range n.hash {
			dst = append(dst, Match{Route: r, Name: name})
		}
	}
	lv, next := nextLevel(name, pos, sep)
	if c := n.lits[lv]; c != nil {
		dst = c.collect(dst, name, next, sep, false)
	}
	if wild && n.plus != nil {
		dst = n.plus.collect(dst, name, next, sep, false)
	}
	return dst
}

// has reports whether any pattern in the tree matches name.
func (n *node) has(name string, pos int, sep byte, root bool) bool {
	if pos < 0 {
		return n.endMark || n.hashMark
	}
	wild := !root || name[0] != '$'
	if wild && n.hashMark {
		return true
	}
	lv, next := nextLevel(name, pos, sep)
	if c := n.lits[lv]; c != nil && c.has(name, next, sep, false) {
		return true
	}
	return wild && n.plus != nil && n.plus.has(name, next, sep, false)
}

// sortByIndex puts matches in configuration order (without allocating).
func sortByIndex(ms []Match) {
	if len(ms) > 1 {
		slices.SortFunc(ms, func(a, b Match) int { return a.Route.Index - b.Route.Index })
	}
}
