//go:build cgo

package duckdb

import "strings"

// A token of a SQL text, as the recognition of tools' catalog queries
// sees it: keywords and unquoted identifiers lower-cased, quoted
// identifiers with their quotes, literals by value.
type token struct {
	text string
	lit  bool // a string or number literal; text is its value
}

// lex splits sql into tokens, dropping comments and a final semicolon. It
// reports false for text it cannot be sure of (an unterminated quote or
// comment, a backslash escape string).
func lex(sql string) ([]token, bool) {
	var toks []token
	s := sql
	for len(s) > 0 {
		c := s[0]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			s = s[1:]
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				i = len(s)
			}
			s = s[i:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return nil, false
			}
			s = s[i+2:]
		case c == '\'':
			v, rest, ok := quoted(s, '\'')
			if !ok {
				return nil, false
			}
			toks, s = append(toks, token{text: v, lit: true}), rest
		case c == '"':
			v, rest, ok := quoted(s, '"')
			if !ok {
				return nil, false
			}
			toks, s = append(toks, token{text: `"` + strings.ReplaceAll(v, `"`, `""`) + `"`}), rest
		case c >= '0' && c <= '9' || c == '.' && len(s) > 1 && s[1] >= '0' && s[1] <= '9':
			i := 0
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
				i++
			}
			toks, s = append(toks, token{text: s[:i], lit: true}), s[i:]
		case isIdent(c):
			i := 0
			for i < len(s) && (isIdent(s[i]) || s[i] >= '0' && s[i] <= '9' || s[i] == '$') {
				i++
			}
			w := strings.ToLower(s[:i])
			if w == "e" && i < len(s) && s[i] == '\'' {
				v, rest, ok := escaped(s[i:])
				if !ok {
					return nil, false
				}
				toks, s = append(toks, token{text: v, lit: true}), rest
				continue
			}
			if (w == "u" || w == "b" || w == "x") && i < len(s) && (s[i] == '\'' || s[i] == '&') {
				return nil, false // Unicode and bit strings: not ours
			}
			toks, s = append(toks, token{text: w}), s[i:]
		case strings.ContainsRune("+-*/<>=~!@#%^&|`?:", rune(c)):
			i := 0
			for i < len(s) && strings.ContainsRune("+-*/<>=~!@#%^&|`?:", rune(s[i])) {
				i++
			}
			toks, s = append(toks, token{text: s[:i]}), s[i:]
		default:
			toks, s = append(toks, token{text: s[:1]}), s[1:]
		}
	}
	for len(toks) > 0 && toks[len(toks)-1].text == ";" && !toks[len(toks)-1].lit {
		toks = toks[:len(toks)-1]
	}
	return toks, true
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// quoted reads the quoted text at the start of s, doubled quotes escaping.
func quoted(s string, q byte) (string, string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

// escaped reads the E'...' string at the start of s (past the E), with
// its backslash escapes: the common ones are decoded, others kept as
// written.
func escaped(s string) (string, string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'':
				b.WriteByte(s[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// shapeOf is toks with every literal replaced by ?, and every
// parenthesised list of literals by one ?s: the queries a tool builds from
// one template, whatever names and OIDs they carry, share a shape.
func shapeOf(toks []token) string {
	var b strings.Builder
	for i := 0; i < len(toks); i++ {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if toks[i].text == "(" && !toks[i].lit {
			if j, ok := literalList(toks, i); ok {
				b.WriteString("( ?s )")
				i = j
				continue
			}
		}
		if toks[i].lit {
			b.WriteByte('?')
			continue
		}
		b.WriteString(toks[i].text)
	}
	return b.String()
}

// literalList reports whether toks[i] opens a list of two or more
// literals, and the index of its closing parenthesis.
func literalList(toks []token, i int) (int, bool) {
	n := 0
	for j := i + 1; j < len(toks); j += 2 {
		if !toks[j].lit {
			return 0, false
		}
		n++
		if j+1 < len(toks) && !toks[j+1].lit {
			switch toks[j+1].text {
			case ",":
				continue
			case ")":
				return j + 1, n > 1
			}
		}
		return 0, false
	}
	return 0, false
}

// find is the index just past the first run of toks that reads as frag, or
// -1.
func find(toks []token, frag string) int {
	return findFrom(toks, frag, 0)
}

// findFrom is find in toks[from:].
func findFrom(toks []token, frag string, from int) int {
	f, _ := lex(frag)
	for i := from; i+len(f) <= len(toks); i++ {
		match := true
		for k := range f {
			if toks[i+k].lit || toks[i+k].text != f[k].text {
				match = false
				break
			}
		}
		if match {
			return i + len(f)
		}
	}
	return -1
}

// litAfter is the literal right after the first run of toks that reads as
// frag and is followed by one.
func litAfter(toks []token, frag string) (string, bool) {
	for i := find(toks, frag); i >= 0 && i <= len(toks); i = findFrom(toks, frag, i) {
		if i < len(toks) && toks[i].lit {
			return toks[i].text, true
		}
	}
	return "", false
}

// litsAfter is the literals of the list that follows frag, up to the
// closing parenthesis.
func litsAfter(toks []token, frag string) []string {
	var out []string
	for i := find(toks, frag); i >= 0 && i < len(toks); i++ {
		switch {
		case toks[i].lit:
			out = append(out, toks[i].text)
		case toks[i].text == ",":
		default:
			return out
		}
	}
	return out
}
