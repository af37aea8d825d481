package devices

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ACL is a compiled list of MQTT topic filter patterns with {id} already
// substituted. It is immutable and safe for concurrent use. A nil *ACL allows
// nothing, so that the ACL of an unknown device fails closed.
type ACL struct {
	all      bool // AllowAll
	patterns []pattern
}

// AllowAll allows every topic and every filter, $-topics included: the ACL of
// local mode, where anonymous clients may do anything.
var AllowAll = &ACL{all: true}

// denyAll is the ACL of an absent list (and of the absent anonymous section).
var denyAll = &ACL{}

// pattern is one compiled filter. The fast kinds avoid the level walk for
// the common shapes (`telemetry`, `devices/sensor-42/#`, `#`).
type pattern struct {
	text      string   // after {id} substitution
	levels    []string // text split at '/'; "+" and "#" are wildcards (a literal level never is one)
	kind      patternKind
	wildFirst bool // first level is + or #: never matches a $-topic [MQTT-4.7.2-1]
}

type patternKind uint8

const (
	kindGeneral patternKind = iota
	kindExact               // no wildcard: the topic must equal text
	kindPrefix              // literal levels then a final #: text is "a/b/#"
	kindAll                 // "#" alone: every topic not starting with $
)

// maxTopicLen is the longest topic or filter MQTT can carry: a UTF-8 string
// is prefixed by a two-byte length [MQTT-1.5.4], [MQTT-4.7.3-3].
const maxTopicLen = 65535

// CompileACL substitutes id for every {id} in patterns and compiles them.
// Every invalid pattern is reported (as *PatternError values joined in one
// error). id may be "" only when no pattern uses {id}.
func CompileACL(patterns []string, id string) (*ACL, error) {
	a := &ACL{patterns: make([]pattern, 0, len(patterns))}
	var errs multiError
	for i, p := range patterns {
		text, msg := expand(p, id)
		if msg != "" {
			errs = append(errs, &PatternError{Index: i, Pattern: p, Msg: msg})
			continue
		}
		a.patterns = append(a.patterns, compile(text))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

// multiError joins PatternErrors; errors.As finds each one.
type multiError []error

func (m multiError) Error() string {
	var b strings.Builder
	for i, e := range m {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (m multiError) Unwrap() []error { return m }

// Patterns returns the compiled patterns ({id} substituted), for listings;
// nil for AllowAll.
func (a *ACL) Patterns() []string {
	if a == nil {
		return nil
	}
	out := make([]string, len(a.patterns))
	for i := range a.patterns {
		out[i] = a.patterns[i].text
	}
	return out
}

// String lists the patterns, or "all" for AllowAll.
func (a *ACL) String() string {
	if a != nil && a.all {
		return "all"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range a.Patterns() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(p))
	}
	b.WriteByte(']')
	return b.String()
}

// expand checks a pattern as written, substitutes id and checks the result
// as an MQTT topic filter. It returns the filter, or a message saying what is
// wrong.
func expand(p, id string) (string, string) {
	if !utf8.ValidString(p) {
		return "", "not valid UTF-8 [MQTT-1.5.4-1]"
	}
	uses := false
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '{':
			if strings.HasPrefix(p[i:], "{id}") {
				uses = true
				i += len("{id}") - 1
				continue
			}
			if j := strings.IndexAny(p[i+1:], "{}"); j >= 0 && p[i+1+j] == '}' {
				return "", "unknown placeholder " + p[i:i+2+j] + ": {id} is the only one"
			}
			return "", "'{' at byte " + strconv.Itoa(i) + " does not start {id}, the only placeholder (braces are reserved for placeholders)"
		case '}':
			return "", "'}' at byte " + strconv.Itoa(i) + " closes no placeholder ({id} is the only one; braces are reserved for placeholders)"
		}
	}
	if uses {
		if id == "" {
			return "", "{id} needs a device id, and there is none here (anonymous patterns cannot use it)"
		}
		if msg := checkID(id); msg != "" {
			return "", "{id} cannot be substituted: the id " + msg
		}
		p = strings.ReplaceAll(p, "{id}", id)
	}
	if msg := checkFilter(p); msg != "" {
		return "", msg
	}
	if p == "$share" || strings.HasPrefix(p, "$share/") {
		return "", "a shared subscription ($share/GROUP/FILTER) is not a pattern: write the FILTER part; shared subscriptions are checked by it"
	}
	return p, ""
}

// checkFilter returns what makes f an invalid MQTT topic filter, or "".
func checkFilter(f string) string {
	switch {
	case f == "":
		return "empty pattern: a topic filter has at least one character [MQTT-4.7.3-1]"
	case len(f) > maxTopicLen:
		return "longer than 65535 bytes, the longest topic filter MQTT can carry [MQTT-1.5.4]"
	case strings.IndexByte(f, 0) >= 0:
		return "contains the null character U+0000 [MQTT-4.7.3-2]"
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '#':
			if i > 0 && f[i-1] != '/' || i+1 < len(f) {
				return "'#' must be the last level, alone in it (as in a/#) [MQTT-4.7.1-2]"
			}
		case '+':
			if i > 0 && f[i-1] != '/' || i+1 < len(f) && f[i+1] != '/' {
				return "'+' must occupy a whole level (as in a/+/b) [MQTT-4.7.1-3]"
			}
		}
	}
	return ""
}

// validFilter is checkFilter as a predicate, without building messages.
func validFilter(f string) bool {
	if f == "" || len(f) > maxTopicLen || strings.IndexByte(f, 0) >= 0 {
		return false
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '#':
			if i > 0 && f[i-1] != '/' || i+1 < len(f) {
				return false
			}
		case '+':
			if i > 0 && f[i-1] != '/' || i+1 < len(f) && f[i+1] != '/' {
				return false
			}
		}
	}
	return true
}

// checkID returns what makes id unusable, or "". Ids are substituted into
// topic patterns, where / + # would widen the grant and a leading $ would
// reach the system topics, and they are MQTT user names.
func checkID(id string) string {
	const why = " (ids are substituted for {id} in topic patterns and used as MQTT user names)"
	switch {
	case id == "":
		return "is empty"
	case len(id) > 256:
		return "is longer than 256 bytes" + why
	case !utf8.ValidString(id):
		return "is not valid UTF-8" + why
	}
	for _, r := range id {
		switch {
		case r == '/' || r == '+' || r == '#' || r == '$':
			return "contains " + strconv.QuoteRune(r) + why
		case r == 0:
			return "contains the null character U+0000" + why
		case unicode.IsSpace(r):
			return "contains white space " + strconv.QuoteRune(r) + why
		case unicode.IsControl(r):
			return "contains the control character " + strconv.QuoteRune(r) + why
		}
	}
	return ""
}

func compile(text string) pattern {
	p := pattern{text: text, levels: strings.Split(text, "/")}
	p.wildFirst = p.levels[0] == "+" || p.levels[0] == "#"
	switch {
	case text == "#":
		p.kind = kindAll
	case strings.IndexByte(text, '+') < 0 && strings.IndexByte(text, '#') < 0:
		p.kind = kindExact
	case strings.IndexByte(text, '+') < 0: // # is last, and not alone
		p.kind = kindPrefix
	}
	return p
}

// AllowsTopic reports whether a concrete topic name (or AMQP address) matches
// some pattern. A name holding + or # is a filter, not a name
// [MQTT-3.3.2-2]: it is refused, so that a caller that mistakes a filter for
// a name fails closed; so are the empty name and names holding U+0000.
// It does not allocate.
func (a *ACL) AllowsTopic(topic string) bool {
	if a == nil {
		return false
	}
	if a.all {
		return true
	}
	if topic == "" || strings.IndexByte(topic, '+') >= 0 || strings.IndexByte(topic, '#') >= 0 || strings.IndexByte(topic, 0) >= 0 {
		return false
	}
	for i := range a.patterns {
		if a.patterns[i].matchTopic(topic) {
			return true
		}
	}
	return false
}

// matchTopic applies the MQTT matching rules [MQTT-4.7] to a non-empty
// topic name without wildcards.
func (p *pattern) matchTopic(topic string) bool {
	switch p.kind {
	case kindExact:
		return topic == p.text
	case kindPrefix:
		// a/b/# matches a/b itself and everything under a/b/ [MQTT-4.7.1-2].
		return topic == p.text[:len(p.text)-2] || strings.HasPrefix(topic, p.text[:len(p.text)-1])
	case kindAll:
		return topic[0] != '$' // [MQTT-4.7.2-1]
	}
	if p.wildFirst && topic[0] == '$' {
		return false // [MQTT-4.7.2-1]
	}
	rest, done := topic, false
	for _, l := range p.levels {
		if l == "#" {
			return true
		}
		if done {
			return false
		}
		var cur string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			cur, rest = rest[:i], rest[i+1:]
		} else {
			cur, done = rest, true
		}
		if l != "+" && l != cur {
			return false
		}
	}
	return done
}

// AllowsFilter reports whether every topic the MQTT filter can match is
// allowed, by checking that one pattern covers the filter (see the package
// documentation). A shared subscription $share/GROUP/F is checked as F. An
// invalid filter (or malformed $share) is not allowed. It does not allocate.
func (a *ACL) AllowsFilter(filter string) bool {
	if a == nil {
		return false
	}
	if a.all {
		return true
	}
	if !validFilter(filter) {
		return false
	}
	if strings.HasPrefix(filter, "$share/") {
		var ok bool
		if filter, ok = shareFilter(filter); !ok {
			return false
		}
	}
	for i := range a.patterns {
		if a.patterns[i].coversFilter(filter) {
			return true
		}
	}
	return false
}

// shareFilter returns the topic filter of a valid filter that starts with
// $share/: $share/{ShareName}/{filter}, where ShareName is at least one
// character without / + # [MQTT-4.8.2-1], [MQTT-4.8.2-2].
func shareFilter(f string) (string, bool) {
	rest := f[len("$share/"):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", false
	}
	if group := rest[:i]; group == "+" || group == "#" {
		return "", false // validFilter has made sure wildcards fill whole levels
	}
	if rest = rest[i+1:]; rest == "" {
		return "", false
	}
	return rest, true
}

// coversFilter reports whether every topic that valid filter f matches is
// matched by p, walking both level by level.
func (p *pattern) coversFilter(f string) bool {
	if p.wildFirst && f[0] == '$' {
		// f names $-topics explicitly; a wildcard first level never matches them [MQTT-4.7.2-1].
		return false
	}
	rest, done := f, false
	for _, l := range p.levels {
		if l == "#" {
			return true // covers the rest, including no level at all
		}
		if done {
			return false // f stops where p requires another level
		}
		var cur string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			cur, rest = rest[:i], rest[i+1:]
		} else {
			cur, done = rest, true
		}
		switch {
		case cur == "#":
			return false // f matches any depth from here; only a # in p covers that
		case l == "+":
			// + covers a literal level or a + (both are one level).
		case cur == "+" || l != cur:
			return false
		}
	}
	return done
}
