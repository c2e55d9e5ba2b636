package fingerprint

import "strings"

// tokKind is the lexical class of a token.
type tokKind uint8

const (
	tIdent   tokKind = iota // unquoted identifier or keyword
	tQIdent                 // "quoted identifier" or U&"..."
	tString                 // '...', E'...', B'...', X'...', N'...', U&'...', $tag$...$tag$
	tNumber                 // 42, 4.2e1, .5, 0x2A, 1_000
	tParam                  // $1
	tOp                     // operators and punctuation
	tComment                // -- line or /* block */
)

// token is a span of the input. Spans never overlap and appear in input order.
type token struct {
	kind       tokKind
	start, end int32
}

// lexFlags reports what the lexer could not be sure about. Any of them
// makes normalisation fall back to the raw text, so that a guess can never
// make two different statements share a key.
type lexFlags uint8

const (
	flagUnterminated lexFlags = 1 << iota // string, identifier or comment runs to the end
	flagBackslash                         // a plain '...' string holds a backslash (standard_conforming_strings, or a dialect's escapes)
	flagNested                            // a block comment nests another: dialects disagree on where it ends
	flagJunk                              // a number or parameter runs straight into an identifier
)

// unsure is the set of flags that forbid normalising the text.
const unsure = flagUnterminated | flagBackslash | flagNested | flagJunk

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || isDigit(c) || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isOpChar reports the characters PostgreSQL builds operators from.
func isOpChar(c byte) bool {
	switch c {
	case '~', '!', '@', '#', '^', '&', '|', '`', '?', '+', '-', '*', '/', '%', '<', '>', '=':
		return true
	}
	return false
}

// lex splits sql into tokens following PostgreSQL's scanner (scan.l) with
// standard_conforming_strings on. It appends to dst and never fails: what it
// cannot lex with certainty is reported in the flags.
func lex(sql string, dst []token) ([]token, lexFlags) {
	var flags lexFlags
	n := len(sql)
	i := 0
	for i < n {
		c := sql[i]
		start := i
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' && sql[i] != '\r' {
				i++
			}
			dst = append(dst, token{tComment, int32(start), int32(i)})
			continue
		case c == '/' && i+1 < n && sql[i+1] == '*':
			var f lexFlags
			i, f = lexBlockComment(sql, i)
			flags |= f
			dst = append(dst, token{tComment, int32(start), int32(i)})
			continue
		case c == '\'':
			var f lexFlags
			i, f = lexQuoted(sql, i+1, '\'', false)
			flags |= f
			dst = append(dst, token{tString, int32(start), int32(i)})
			continue
		case c == '"':
			var f lexFlags
			i, f = lexQuoted(sql, i+1, '"', false)
			flags |= f &^ flagBackslash
			dst = append(dst, token{tQIdent, int32(start), int32(i)})
			continue
		case c == '$':
			var k tokKind
			var f lexFlags
			i, k, f = lexDollar(sql, i)
			flags |= f
			dst = append(dst, token{k, int32(start), int32(i)})
			continue
		case isDigit(c) || c == '.' && i+1 < n && isDigit(sql[i+1]):
			i = lexNumber(sql, i)
			if i < n && isIdentStart(sql[i]) {
				flags |= flagJunk
			}
			dst = append(dst, token{tNumber, int32(start), int32(i)})
			continue
		case isIdentStart(c):
			if k, end, f, ok := lexPrefixed(sql, i); ok {
				flags |= f
				dst = append(dst, token{k, int32(start), int32(end)})
				i = end
				continue
			}
			for i < n && isIdentCont(sql[i]) {
				i++
			}
			dst = append(dst, token{tIdent, int32(start), int32(i)})
			continue
		case isOpChar(c):
			i = lexOperator(sql, i)
		case c == ':' && i+1 < n && (sql[i+1] == ':' || sql[i+1] == '='):
			i += 2
		case c == '.' && i+1 < n && sql[i+1] == '.':
			i += 2
		default:
			i++
		}
		dst = append(dst, token{tOp, int32(start), int32(i)})
	}
	return dst, flags
}

// lexBlockComment reads a /* */ comment starting at i, nesting as
// PostgreSQL does, and returns the offset after it.
func lexBlockComment(sql string, i int) (int, lexFlags) {
	var flags lexFlags
	depth := 0
	n := len(sql)
	for i < n {
		switch {
		case sql[i] == '/' && i+1 < n && sql[i+1] == '*':
			depth++
			if depth > 1 {
				flags |= flagNested
			}
			i += 2
		case sql[i] == '*' && i+1 < n && sql[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, flags
			}
		default:
			i++
		}
	}
	return n, flags | flagUnterminated
}

// lexQuoted reads the body of a quoted string or identifier from i (just
// after the opening quote) and returns the offset after the closing quote.
// A doubled quote is an escaped quote. With escapes, a backslash escapes the
// next byte (E'...' strings).
func lexQuoted(sql string, i int, q byte, escapes bool) (int, lexFlags) {
	var flags lexFlags
	n := len(sql)
	for i < n {
		c := sql[i]
		switch {
		case c == '\\' && escapes:
			i += 2
			continue
		case c == '\\':
			flags |= flagBackslash
		case c == q && i+1 < n && sql[i+1] == q:
			i += 2
			continue
		case c == q:
			return i + 1, flags
		}
		i++
	}
	return n, flags | flagUnterminated
}

// lexDollar reads a parameter ($1) or a dollar-quoted string ($$...$$,
// $tag$...$tag$) at i. A lone $ is an operator-like token.
func lexDollar(sql string, i int) (int, tokKind, lexFlags) {
	n := len(sql)
	j := i + 1
	if j < n && isDigit(sql[j]) {
		for j < n && isDigit(sql[j]) {
			j++
		}
		if j < n && isIdentCont(sql[j]) {
			return j, tParam, flagJunk
		}
		return j, tParam, 0
	}
	if j < n && isIdentStart(sql[j]) {
		for j < n && isIdentCont(sql[j]) && sql[j] != '$' {
			j++
		}
	}
	if j >= n || sql[j] != '$' {
		return i + 1, tOp, 0
	}
	delim := sql[i : j+1]
	end := strings.Index(sql[j+1:], delim)
	if end < 0 {
		return n, tString, flagUnterminated
	}
	return j + 1 + end + len(delim), tString, 0
}

// lexNumber reads a numeric literal at i: decimal with optional fraction
// and exponent, or 0x/0o/0b integers, with _ between digits.
func lexNumber(sql string, i int) int {
	n := len(sql)
	if sql[i] == '0' && i+2 < n {
		switch sql[i+1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			if isHexDigit(sql[i+2]) {
				j := i + 2
				for j < n && (isHexDigit(sql[j]) || sql[j] == '_' && j+1 < n && isHexDigit(sql[j+1])) {
					j++
				}
				return j
			}
		}
	}
	digits := func(j int) int {
		for j < n && (isDigit(sql[j]) || sql[j] == '_' && j+1 < n && isDigit(sql[j+1]) && j > 0 && isDigit(sql[j-1])) {
			j++
		}
		return j
	}
	i = digits(i)
	if i < n && sql[i] == '.' && !(i+1 < n && sql[i+1] == '.') {
		i = digits(i + 1)
	}
	if i < n && (sql[i] == 'e' || sql[i] == 'E') {
		j := i + 1
		if j < n && (sql[j] == '+' || sql[j] == '-') {
			j++
		}
		if j < n && isDigit(sql[j]) {
			i = digits(j)
		}
	}
	return i
}

// lexPrefixed reads the strings and identifiers that start with a letter:
// E'...', B'...', X'...', N'...', U&'...' and U&"...".
func lexPrefixed(sql string, i int) (tokKind, int, lexFlags, bool) {
	n := len(sql)
	c := sql[i] | 0x20
	switch {
	case (c == 'b' || c == 'x') && i+1 < n && sql[i+1] == '\'':
		// Bit strings have no escapes: the next quote ends them.
		end := strings.IndexByte(sql[i+2:], '\'')
		if end < 0 {
			return tString, n, flagUnterminated, true
		}
		return tString, i + 2 + end + 1, 0, true
	case (c == 'e' || c == 'n') && i+1 < n && sql[i+1] == '\'':
		end, f := lexQuoted(sql, i+2, '\'', c == 'e')
		return tString, end, f, true
	case c == 'u' && i+2 < n && sql[i+1] == '&' && (sql[i+2] == '\'' || sql[i+2] == '"'):
		q := sql[i+2]
		end, f := lexQuoted(sql, i+3, q, false)
		if q == '"' {
			return tQIdent, end, f &^ flagBackslash, true
		}
		// U&'...' strings use backslash for Unicode escapes: that is
		// their syntax, not a dialect's, and does not end the string.
		return tString, end, f &^ flagBackslash, true
	}
	return 0, 0, 0, false
}

// lexOperator reads an operator at i with PostgreSQL's rules: the longest
// run of operator characters, cut before any comment start, and without
// trailing + or - unless it holds a character outside SQL's operators.
func lexOperator(sql string, i int) int {
	n := len(sql)
	j := i
	for j < n && isOpChar(sql[j]) {
		if j > i && (sql[j] == '-' && sql[j-1] == '-' || sql[j] == '*' && sql[j-1] == '/') {
			j--
			break
		}
		j++
	}
	op := sql[i:j]
	if len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
		if !strings.ContainsAny(op[:len(op)-1], "~!@#^&|`?%") {
			for len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
				op = op[:len(op)-1]
			}
		}
	}
	return i + len(op)
}

// lowerASCII lower-cases ASCII letters only, as PostgreSQL folds
// unquoted identifiers in UTF-8 databases.
func appendLowerASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// normalize renders toks[from:to] of sql as the text that enters cache keys:
// comments dropped, one space between tokens, unquoted words lower-cased,
// literals and quoted identifiers byte for byte. Two string constants that
// PostgreSQL would concatenate (separated by a newline) keep a newline.
//
// Words in a semi-structured path keep their case: in Snowflake's
// v:Customer.Name the keys after the colon are case-sensitive, so that
// v:customer and v:Customer are different statements. A path runs from a
// single ':' through words, '.', '[', ']' and literals.
func normalize(sql string, toks []token, buf []byte) []byte {
	prev := -1
	var path pathState
	for i, t := range toks {
		if t.kind == tComment {
			continue
		}
		if prev >= 0 {
			sep := byte(' ')
			if continues(sql, toks[prev], t) {
				sep = '\n'
			}
			buf = append(buf, sep)
		}
		text := sql[t.start:t.end]
		if inPath := path.word(t, text); t.kind == tIdent && !inPath {
			buf = appendLowerASCII(buf, text)
		} else {
			buf = append(buf, text...)
		}
		prev = i
	}
	return buf
}

// pathState follows a semi-structured path (v:a.b[0].c) through the
// tokens of a statement.
type pathState struct {
	in, expect bool // inside a path; an element comes next
}

// word reports whether t (whose text is text), the next token that is not
// a comment, is an element of a path, whose case matters.
func (p *pathState) word(t token, text string) bool {
	elem := false
	if p.in {
		switch {
		case t.kind == tOp && (text == "." || text == "["):
			p.expect = true
		case t.kind == tOp && text == "]":
			p.expect = false
		case p.expect && t.kind != tOp:
			elem, p.expect = true, false
		default:
			p.in = false
		}
	}
	if t.kind == tOp && text == ":" {
		p.in, p.expect = true, true
	}
	return elem
}

// continues reports whether PostgreSQL reads string constant b as the
// continuation of a: a plain '...' after a quoted (not dollar-quoted)
// string, separated by whitespace holding a newline.
func continues(sql string, a, b token) bool {
	return a.kind == tString && b.kind == tString && sql[a.end-1] == '\'' && sql[b.start] == '\'' &&
		isContinuation(sql[a.end:b.start])
}

// isContinuation reports whether the gap between two string constants
// makes PostgreSQL join them into one: horizontal space, a newline, then
// any mix of space and line comments ending in newlines (scan.l's
// whitespace_with_newline).
func isContinuation(gap string) bool {
	i := 0
	for i < len(gap) && (gap[i] == ' ' || gap[i] == '\t' || gap[i] == '\f' || gap[i] == '\v') {
		i++
	}
	if i == len(gap) || gap[i] != '\n' && gap[i] != '\r' {
		return false
	}
	for i < len(gap) {
		switch {
		case isSpace(gap[i]):
			i++
		case strings.HasPrefix(gap[i:], "--"):
			nl := strings.IndexAny(gap[i:], "\n\r")
			if nl < 0 {
				return false
			}
			i += nl + 1
		default:
			return false
		}
	}
	return true
}

// rawNormalized is the key text used when the lexer is unsure: the input
// itself, only trimmed, so that it cannot merge two different statements.
func rawNormalized(sql string) string {
	return strings.TrimFunc(sql, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
}

// tokenText returns the token's text, lower-cased if it is a plain word.
func tokenWord(sql string, t token) string {
	s := sql[t.start:t.end]
	if t.kind != tIdent {
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
