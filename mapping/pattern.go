package mapping

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// A pattern is a compiled source filter: MQTT filter syntax (levels split by sep, `+` for one
// level, a trailing `#` for the rest) where a level written {name} matches like `+` and captures
// the level's text under name. [MQTT-4.7.1-2] [MQTT-4.7.1-3]
type pattern struct {
	text     string
	sep      byte
	levels   []plevel
	captures []capture // in order of appearance
	hash     bool      // ends with `#`: captures the rest as {#}
}

type levelKind uint8

const (
	levelLiteral levelKind = iota
	levelPlus              // `+` or {name}
	levelHash              // `#`, always last
)

type plevel struct {
	kind levelKind
	lit  string // levelLiteral: the text to compare (braces unescaped)
}

// capture names a single level of the source.
type capture struct {
	name  string
	level int
}

// Reserved placeholder names: they are not captured by a pattern but supplied by the message.
const (
	phTopic    = "topic"     // the whole source topic (MQTT sources)
	phAddress  = "address"   // the whole source address (AMQP and uplink sources)
	phClientID = "client-id" // the sender's MQTT client id or AMQP container id
	phIdentity = "identity"  // the sender's authenticated identity
	phRest     = "#"         // what a trailing `#` matched
)

func reserved(name string) bool {
	switch name {
	case phTopic, phAddress, phClientID, phIdentity, phRest:
		return true
	}
	return false
}

// validName reports whether a capture name is one or more of A-Z a-z 0-9 _ -.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkText refuses what no topic, address or template may hold: it must be valid UTF-8 without
// NUL. [MQTT-1.5.4-1] [MQTT-1.5.4-2]; AMQP 1.0 Part 1 §1.6.20 (strings are UTF-8).
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL character"
	}
	return ""
}

// patternRules says what a pattern may contain besides the MQTT filter syntax.
type patternRules struct {
	captures   bool // {name} levels allowed (routes yes, queue patterns no)
	emptyLevel bool // empty levels anywhere (uplink addresses, whose syntax is the backend's)
}

// parsePattern compiles a source filter. The error string is the message of a CompileError.
func parsePattern(text string, sep byte, rules patternRules) (*pattern, string) {
	if text == "" {
		return nil, "empty pattern: write # to match everything" // [MQTT-4.7.3-1]
	}
	if msg := checkText(text); msg != "" {
		return nil, "pattern " + msg
	}
	p := &pattern{text: text, sep: sep}
	n := strings.Count(text, string(sep)) + 1
	p.levels = make([]plevel, 0, n)
	rest := text
	seen := map[string]bool{}
	for i := 0; ; i++ {
		lv, more := rest, false
		if j := strings.IndexByte(rest, sep); j >= 0 {
			lv, rest, more = rest[:j], rest[j+1:], true
		}
		switch {
		case lv == "+":
			p.levels = append(p.levels, plevel{kind: levelPlus})
		case lv == "#":
			if more {
				// [MQTT-4.7.1-2] the multi-level wildcard must be the last character of the filter.
				return nil, "# must be the last level of the pattern"
			}
			p.levels = append(p.levels, plevel{kind: levelHash})
			p.hash = true
		case isCapture(lv):
			name := lv[1 : len(lv)-1]
			if !rules.captures {
				return nil, "level " + strconv.Quote(lv) + ": captures are not allowed here; use + or #"
			}
			if msg := checkCaptureName(name); msg != "" {
				return nil, msg
			}
			if seen[name] {
				return nil, "capture {" + name + "} is named twice"
			}
			seen[name] = true
			p.captures = append(p.captures, capture{name: name, level: i})
			p.levels = append(p.levels, plevel{kind: levelPlus})
		case strings.ContainsAny(lv, "+#"):
			// [MQTT-4.7.1-2] [MQTT-4.7.1-3] a wildcard occupies a whole level.
			return nil, "level " + strconv.Quote(lv) + ": + and # must stand alone in a level"
		default:
			lit, msg := unescapeBraces(lv)
			if msg != "" {
				return nil, "level " + strconv.Quote(lv) + ": " + msg
			}
			if lv == "" && !rules.emptyLevel && (i > 0 || !more) {
				// MQTT allows empty levels, but inside or at the end of a pattern they are nearly
				// always a typo (a//b, a/). A leading / is common enough to be meant.
				return nil, "empty level in " + strconv.Quote(text) + " (a//b or a trailing /); only a leading / may make an empty level"
			}
			p.levels = append(p.levels, plevel{kind: levelLiteral, lit: lit})
		}
		if !more {
			break
		}
	}
	return p, ""
}

// isCapture reports whether a whole level is {name}: one pair of braces with none inside, and
// not the escape {{.
func isCapture(lv string) bool {
	return len(lv) >= 2 && lv[0] == '{' && lv[len(lv)-1] == '}' && !strings.ContainsAny(lv[1:len(lv)-1], "{}")
}

func checkCaptureName(name string) string {
	switch {
	case name == phRest:
		return "{#} is not a pattern level: write # (what it matches is available as {#})"
	case reserved(name):
		return "{" + name + "} is reserved (it is supplied by the message); choose another capture name"
	case !validName(name):
		return "capture name " + strconv.Quote(name) + " must be letters, digits, _ or -"
	}
	return ""
}

// unescapeBraces turns {{ into { and }} into }; a lone brace is an error, so that a mistyped
// capture ({name, name}) is not silently taken as literal text.
func unescapeBraces(s string) (string, string) {
	if !strings.ContainsAny(s, "{}") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '{' || c == '}' {
			if i+1 < len(s) && s[i+1] == c {
				b.WriteByte(c)
				i++
				continue
			}
			return "", "a capture must be a whole level written {name}; write {{ or }} for a literal brace"
		}
		b.WriteByte(c)
	}
	return b.String(), ""
}
