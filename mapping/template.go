package mapping

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// outKind is what a template renders: it decides which captured text is unsafe.
type outKind uint8

const (
	outTopic      outKind = iota // an MQTT topic name
	outAddress                   // an address in the gateway's AMQP space (MQTT-style levels)
	outUplink                    // an address on an uplink (the backend's syntax; `.` separator optional)
	outString                    // an AMQP string property or application-property value
	outSymbol                    // an AMQP symbol property (content-type, content-encoding): ASCII
	outMQTTString                // an MQTT 5 UTF-8 string property (no NUL, [MQTT-1.5.4-2])
	outBinary                    // an MQTT 5 binary property (correlation data)
)

func (k outKind) isAddress() bool { return k <= outUplink }

// maxTopicLen is the longest MQTT topic name: a UTF-8 string's length is a Two Byte Integer. [MQTT-1.5.4]
const maxTopicLen = 65535

// A template renders a destination or a property value from the message's captures. It is split
// into output levels (groups) at compile time so that rendering knows, without scanning, which
// placeholders make up a whole level.
type template struct {
	text   string
	kind   outKind
	sep    byte // output level separator (address kinds)
	groups []group
	dollar bool // the literal text itself starts with `$`
}

type group struct {
	segs  []segment
	lit   bool // holds literal text
	multi bool // holds a multi-level placeholder ({#}, {topic}, {address})
	rest  bool // is exactly {#}: collapses with its separator when {#} matched nothing
}

type segKind uint8

const (
	segLiteral  segKind = iota
	segCapture          // one captured level
	segRest             // {#}
	segWhole            // {topic} / {address}
	segClientID         // {client-id}
	segIdentity         // {identity}
)

type segment struct {
	kind  segKind
	lit   string // segLiteral
	level int    // segCapture: the source level; segRest: the level `#` stands at
	name  string // as written, for errors: {device}
}

func (s *segment) single() bool { return s.kind != segRest && s.kind != segWhole }

// scope is what a route's templates may refer to: the captures of its source pattern and the
// names every message supplies.
type scope struct {
	src *pattern
	// whole is phTopic for MQTT sources and phAddress for AMQP and uplink sources.
	whole string
}

func (sc *scope) resolve(name string) (segment, string) {
	ph := "{" + name + "}"
	switch name {
	case phRest:
		if !sc.src.hash {
			return segment{}, "template uses {#} but the pattern does not end with #"
		}
		return segment{kind: segRest, level: len(sc.src.levels) - 1, name: ph}, ""
	case phClientID:
		return segment{kind: segClientID, name: ph}, ""
	case phIdentity:
		return segment{kind: segIdentity, name: ph}, ""
	case phTopic, phAddress:
		if name != sc.whole {
			return segment{}, "template uses " + ph + " but the source is " + map[string]string{phAddress: "an AMQP address: use {address}", phTopic: "an MQTT topic: use {topic}"}[sc.whole]
		}
		return segment{kind: segWhole, name: ph}, ""
	}
	for _, c := range sc.src.captures {
		if c.name == name {
			return segment{kind: segCapture, level: c.level, name: ph}, ""
		}
	}
	if !validName(name) {
		return segment{}, "placeholder " + strconv.Quote(ph) + " is not a name (letters, digits, _ or -); write {{ or }} for a literal brace"
	}
	return segment{}, "template uses " + ph + " which the pattern does not capture"
}

// parseTemplate compiles a template of the given kind. sep is the output level separator for
// address kinds. The error string is the message of a CompileError.
func parseTemplate(text string, kind outKind, sep byte, sc *scope) (*template, string) {
	if text == "" {
		return nil, "empty template"
	}
	if msg := checkText(text); msg != "" {
		return nil, "template " + msg
	}
	t := &template{text: text, kind: kind, sep: sep, dollar: text[0] == '$'}
	var lit strings.Builder
	cur := group{}
	flush := func() {
		if lit.Len() > 0 {
			cur.segs = append(cur.segs, segment{kind: segLiteral, lit: lit.String()})
			cur.lit = true
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case kind.isAddress() && c == sep:
			flush()
			t.groups = append(t.groups, cur)
			cur = group{}
		case c == '{' && i+1 < len(text) && text[i+1] == '{', c == '}' && i+1 < len(text) && text[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(text[i+1:], '}')
			if end < 0 {
				return nil, "unclosed { in template; write {{ for a literal brace"
			}
			name := text[i+1 : i+1+end]
			seg, msg := sc.resolve(name)
			if msg != "" {
				return nil, msg
			}
			flush()
			cur.segs = append(cur.segs, seg)
			if !seg.single() {
				cur.multi = true
			}
			i += end + 1
		case c == '}':
			return nil, "unmatched } in template; write }} for a literal brace"
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	t.groups = append(t.groups, cur)

	for i := range t.groups {
		g := &t.groups[i]
		g.rest = len(g.segs) == 1 && g.segs[0].kind == segRest
		if kind == outSymbol {
			for _, s := range g.segs {
				if s.kind == segLiteral && !isASCII(s.lit) {
					return nil, "a symbol property must be ASCII"
				}
			}
		}
		if kind != outTopic && kind != outAddress {
			continue
		}
		for _, s := range g.segs {
			if s.kind == segLiteral && strings.ContainsAny(s.lit, "+#") {
				return nil, "a destination names one " + kind.noun() + ": + and # are wildcards and cannot be published to"
			}
		}
		if len(g.segs) == 0 && (i > 0 || len(t.groups) == 1) {
			return nil, "empty level in " + strconv.Quote(text) + " (a//b or a trailing /); only a leading / may make an empty level"
		}
		if g.multi && len(g.segs) != 1 {
			// A multi-level value inside other text would make its first and last levels depend on
			// the message; keeping it whole keeps the level structure predictable.
			return nil, "a multi-level placeholder ({#}, {topic}, {address}) must be a whole level"
		}
	}
	return t, ""
}

func (k outKind) noun() string {
	if k == outTopic {
		return "topic"
	}
	return "address"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// source is the message-side input of rendering: the name a route matched and the sender.
type source struct {
	name     string // the topic or address as received
	sep      byte   // its level separator: '/' or, for uplinks with separator ".", '.'
	clientID string
	identity string
}

// levelAt returns level i of name (levels split by sep). It assumes name has that level: the
// pattern matched it.
func levelAt(name string, sep byte, i int) string {
	for ; i > 0; i-- {
		j := strings.IndexByte(name, sep)
		if j < 0 {
			return ""
		}
		name = name[j+1:]
	}
	if j := strings.IndexByte(name, sep); j >= 0 {
		return name[:j]
	}
	return name
}

// restFrom returns what a `#` at level i matched: the levels from i on, or "" when `#` matched
// the parent level only ("a/#" matching "a").
func restFrom(name string, sep byte, i int) string {
	for ; i > 0; i-- {
		j := strings.IndexByte(name, sep)
		if j < 0 {
			return ""
		}
		name = name[j+1:]
	}
	return name
}

// value returns a placeholder's text in topic form (levels split by '/', separator escapes
// undone) and whether it is a single level.
func (s *segment) value(src *source) string {
	switch s.kind {
	case segCapture:
		v := levelAt(src.name, src.sep, s.level)
		if src.sep == '.' {
			v = UnescapeLevel(v)
		}
		return v
	case segRest:
		v := restFrom(src.name, src.sep, s.level)
		if src.sep == '.' {
			v = KeyToTopic(v)
		}
		return v
	case segWhole:
		if src.sep == '.' {
			return KeyToTopic(src.name)
		}
		return src.name
	case segClientID:
		return src.clientID
	case segIdentity:
		return src.identity
	}
	return s.lit
}

// render appends the template's result to dst. Captured text is checked for what would change
// the meaning of the result (SPEC §5.3): the literal text was checked by Compile.
func (t *template) render(dst []byte, src *source, route, field string) ([]byte, error) {
	start := len(dst)
	emitted := false
	for gi := range t.groups {
		g := &t.groups[gi]
		if g.rest && t.kind.isAddress() {
			s := &g.segs[0]
			v := s.value(src)
			if v == "" {
				// `#` also matches the parent level (MQTT 5 §4.7.1.2): "a/#" matches "a". Then
				// {#} is empty and takes its separator with it: "out/{#}" renders "out".
				continue
			}
			if emitted {
				dst = append(dst, t.sep)
			}
			emitted = true
			var reason string
			if dst, reason = t.appendValue(dst, v, false); reason != "" {
				return dst[:start], &RenderError{Route: route, Field: field, Placeholder: s.name, Value: truncate(v), Reason: reason}
			}
			continue
		}
		if t.kind.isAddress() && emitted {
			dst = append(dst, t.sep)
		}
		emitted = true
		gstart := len(dst)
		for si := range g.segs {
			s := &g.segs[si]
			if s.kind == segLiteral {
				dst = append(dst, s.lit...)
				continue
			}
			v := s.value(src)
			var reason string
			if dst, reason = t.appendValue(dst, v, s.single()); reason != "" {
				return dst[:start], &RenderError{Route: route, Field: field, Placeholder: s.name, Value: truncate(v), Reason: reason}
			}
		}
		if t.kind.isAddress() && !g.lit && len(g.segs) > 0 && len(dst) == gstart {
			return dst[:start], &RenderError{Route: route, Field: field, Placeholder: g.segs[0].name, Value: "", Reason: "empty, which would make an empty level"}
		}
	}
	out := dst[start:]
	switch {
	case len(out) == 0 && t.kind.isAddress():
		return dst[:start], &RenderError{Route: route, Field: field, Value: "", Reason: "renders empty"}
	case t.kind == outTopic && len(out) > maxTopicLen:
		return dst[:start], &RenderError{Route: route, Field: field, Value: truncate(string(out)), Reason: "longer than 65535 bytes, the limit of an MQTT topic [MQTT-1.5.4]"}
	case (t.kind == outTopic || t.kind == outAddress) && out[0] == '$' && !t.dollar:
		// Names starting with $ belong to the broker and the gateway ($SYS, $events): captured
		// text must not reach them. [MQTT-4.7.2-1]
		return dst[:start], &RenderError{Route: route, Field: field, Value: truncate(string(out)), Reason: "captured text would start the " + t.kind.noun() + " with $, which is reserved"}
	}
	return dst, nil
}

// appendValue checks one placeholder's value for the template's kind and appends it, escaping
// it for a `.` separator. A non-empty reason means the value is refused.
func (t *template) appendValue(dst []byte, v string, single bool) ([]byte, string) {
	switch t.kind {
	case outBinary:
		return append(dst, v...), ""
	case outString:
		if !utf8.ValidString(v) {
			return dst, "is not valid UTF-8"
		}
		return append(dst, v...), ""
	case outSymbol:
		if !isASCII(v) {
			return dst, "is not ASCII, which a symbol property requires"
		}
		return append(dst, v...), ""
	case outMQTTString:
		if msg := checkText(v); msg != "" {
			return dst, msg
		}
		return append(dst, v...), ""
	}
	if reason := unsafeText(v, single, t.kind == outUplink); reason != "" {
		return dst, reason
	}
	if t.sep != '.' {
		return append(dst, v...), ""
	}
	if single {
		return appendEscapedLevel(dst, v), ""
	}
	return AppendTopicAsKey(dst, v), ""
}

// unsafeText returns why a placeholder value may not go into an address or topic, or "". single
// values must stay one level; uplink values must not carry the `*` wildcard of AMQP brokers
// (Artemis addresses, RabbitMQ binding keys) either.
func unsafeText(v string, single, uplink bool) string {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0:
				return "contains a NUL character" // [MQTT-1.5.4-2]
			case c == '+' || c == '#':
				return "contains " + string(c) + ", which would make a wildcard" // [MQTT-3.3.2-2]
			case c == '*' && uplink:
				return "contains *, a wildcard on AMQP brokers"
			case c == '/' && single:
				return "contains /, which would add levels"
			case c < 0x20 || c == 0x7f:
				return "contains a control character" // MQTT 5 §1.5.4 SHOULD NOT
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && n <= 1 {
			return "is not valid UTF-8" // [MQTT-1.5.4-1]
		}
		if r >= 0x80 && r <= 0x9f {
			return "contains a control character"
		}
		i += n
	}
	return ""
}
