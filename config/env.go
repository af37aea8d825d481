package config

import (
	"strings"
	"unicode/utf8"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

// Environment expansion (SPEC §3) works on the raw text, before YAML parsing,
// one line at a time: a substituted value may not contain a newline, so every
// line keeps its number. Columns after a substitution shift; columnMap records
// each substitution so that positions reported later point at the text the
// user wrote.
//
// Forms:
//
//	${VAR}            value of VAR; an error if VAR is unset (set and empty is fine)
//	${VAR:-default}   value of VAR, or default when VAR is unset or empty
//	${VAR:?message}   value of VAR; an error carrying message when VAR is unset or empty
//	$$                a literal $
//
// A lone $ followed by anything else stays as it is (bcrypt hashes, regexps).
// Nothing is expanded inside YAML comments, so a commented-out line that names
// an unset variable is not an error.

// subst is one substitution on a line, in 1-based rune columns.
type subst struct {
	origCol, origLen int // the ${...} or $$ as written
	newCol, newLen   int // the text that replaced it
}

// columnMap maps a column in the expanded text back to the column in the
// original text, per line. Lines without substitutions are absent.
type columnMap map[int][]subst

// original returns the column in the original text for column col of line
// line in the expanded text. A column inside a substituted value maps to the
// start of the ${ that produced it.
func (m columnMap) original(line, col int) int {
	delta := 0
	for _, s := range m[line] {
		if col < s.newCol {
			break
		}
		if col < s.newCol+s.newLen {
			return s.origCol
		}
		delta = (s.origCol + s.origLen) - (s.newCol + s.newLen)
	}
	return col + delta
}

// envError is an expansion problem at a position in the original text.
type envError struct {
	line, col int
	msg       string
}

// expand performs the substitutions on data. It never stops at the first
// problem: a reference that cannot be expanded is reported and left as
// written, so the rest of the file is still checked.
func expand(data []byte, lookupEnv func(string) (string, bool)) ([]byte, columnMap, []envError) {
	if !strings.Contains(string(data), "$") {
		return data, nil, nil
	}
	var (
		out    strings.Builder
		cols   = columnMap{}
		errs   []envError
		state  lineState
		lineNo = 0
	)
	out.Grow(len(data))
	for _, l := range yamlfile.SplitLines(string(data)) {
		lineNo++
		body, eol := l[0], l[1]
		// Expansion stops at a comment; what follows it is copied as is.
		code, comment := state.split(body)
		if !strings.Contains(code, "$") {
			out.WriteString(body)
			out.WriteString(eol)
			continue
		}
		var (
			origCol = 1 // rune column of code[i] in the original line
			newCol  = 1 // rune column of the same place in the output line
			subs    []subst
		)
		for i := 0; i < len(code); {
			c := code[i]
			if c != '$' || i+1 >= len(code) || (code[i+1] != '$' && code[i+1] != '{') {
				_, w := utf8.DecodeRuneInString(code[i:])
				out.WriteString(code[i : i+w])
				i += w
				origCol++
				newCol++
				continue
			}
			if code[i+1] == '$' {
				out.WriteByte('$')
				subs = append(subs, subst{origCol: origCol, origLen: 2, newCol: newCol, newLen: 1})
				i += 2
				origCol += 2
				newCol++
				continue
			}
			end := strings.IndexByte(code[i+2:], '}')
			if end < 0 {
				errs = append(errs, envError{lineNo, origCol, "unterminated ${: the closing } must be on the same line"})
				out.WriteString(code[i:]) // left as written, like every reference that fails
				i = len(code)
				continue
			}
			expr := code[i+2 : i+2+end]
			ref := end + 3 // ${ + expr + }
			value, msg := lookup(expr, lookupEnv)
			if msg != "" {
				// Keep the reference as written: the YAML around it stays
				// well-formed, so the rest of the file is still checked.
				errs = append(errs, envError{lineNo, origCol, msg})
				value = code[i : i+ref]
			}
			out.WriteString(value)
			origLen := utf8.RuneCountInString(code[i : i+ref])
			newLen := utf8.RuneCountInString(value)
			subs = append(subs, subst{origCol: origCol, origLen: origLen, newCol: newCol, newLen: newLen})
			i += ref
			origCol += origLen
			newCol += newLen
		}
		out.WriteString(comment)
		out.WriteString(eol)
		if len(subs) > 0 {
			cols[lineNo] = subs
		}
	}
	return []byte(out.String()), cols, errs
}

// lookup evaluates the inside of one ${...}. It returns the value, or a
// message when the reference is malformed or the variable is missing.
func lookup(expr string, lookupEnv func(string) (string, bool)) (value, msg string) {
	name, op, arg := expr, "", ""
	if i := strings.IndexByte(expr, ':'); i >= 0 {
		name, op, arg = expr[:i], expr[i:min(i+2, len(expr))], expr[min(i+2, len(expr)):]
	}
	if !validEnvName(name) {
		return "", "invalid variable reference ${" + expr + "}: use ${VAR}, ${VAR:-default} or ${VAR:?message} where VAR is letters, digits and _"
	}
	if strings.Contains(arg, "${") {
		return "", "nested ${...} inside ${" + name + op + "...} is not supported"
	}
	v, set := lookupEnv(name)
	switch op {
	case "":
		if !set {
			return "", "environment variable " + name + " is not set (use ${" + name + ":-default} to give a fallback)"
		}
	case ":-":
		if v == "" {
			v = arg
		}
	case ":?":
		if v == "" {
			if arg == "" {
				arg = "required"
			}
			return "", "environment variable " + name + " is unset or empty: " + arg
		}
	default:
		return "", "invalid variable reference ${" + expr + "}: use ${VAR}, ${VAR:-default} or ${VAR:?message}"
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", "environment variable " + name + " contains a line break, which would shift every line after it; put multi-line values in a file and use a *_file key"
	}
	return v, ""
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// lineState is the little of YAML's lexical structure that expand needs to
// find comments: whether a quoted scalar continues from an earlier line, and
// whether the lines are the content of a block scalar (| or >), where # is
// text. It is a heuristic, not a YAML parser; the parser proper runs later.
type lineState struct {
	quote       byte // ' or " while a quoted scalar spans lines; 0 otherwise
	inBlock     bool // the lines are a block scalar's content...
	blockIndent int  // ...as long as they are indented more than the line that opened it
}

// split returns the part of line (without its line end) where ${...} is
// expanded and the comment part that is copied as is.
func (s *lineState) split(line string) (code, comment string) {
	if s.inBlock {
		if strings.TrimLeft(line, " ") == "" || indentOf(line) > s.blockIndent {
			return line, ""
		}
		s.inBlock = false
	}
	last := byte(0) // last non-blank byte outside quotes, to tell a quote that opens a scalar from an apostrophe inside one
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch s.quote {
		case '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				s.quote = 0
				last = c
			}
			continue
		case '\'':
			if c == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
				} else {
					s.quote = 0
					last = c
				}
			}
			continue
		}
		switch {
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			s.checkBlock(line[:i])
			return line[:i], line[i:]
		case (c == '"' || c == '\'') && strings.IndexByte("\x00:-[{,?", last) >= 0:
			s.quote = c
		case c != ' ' && c != '\t' && c != '\r' && c != '\n':
			last = c
		}
	}
	if s.quote == 0 {
		s.checkBlock(line)
	}
	return line, ""
}

// checkBlock notes a block scalar indicator at the end of code (`key: |`,
// `- >-`): the following, more indented lines are its content.
func (s *lineState) checkBlock(code string) {
	t := strings.TrimRight(code, " \t\r\n")
	j := strings.LastIndexAny(t, "|>")
	if j < 0 {
		return
	}
	for _, c := range t[j+1:] {
		if !strings.ContainsRune("+-123456789", c) {
			return
		}
	}
	before := strings.TrimRight(t[:j], " \t")
	if before != "" && !strings.HasSuffix(before, ":") && !strings.HasSuffix(before, "-") && !strings.HasSuffix(before, "?") {
		return
	}
	if before != "" && j == len(before) { // `key:|` is a plain scalar, not an indicator
		return
	}
	s.inBlock = true
	s.blockIndent = indentOf(code)
}

func indentOf(line string) int {
	return len(line) - len(strings.TrimLeft(line, " "))
}
