package proxy

import "strings"

// Relaying a statement needs its analysis only when it can change session
// state the proxy follows (SET, RESET, DISCARD) or pin the session to its
// connection (LISTEN, PREPARE, DECLARE ... WITH HOLD, temporary tables,
// advisory locks). mayChangeSession is a lexical screen that lets every
// other statement skip the parser: it looks for the words those statements
// cannot do without, and errs towards yes.

// mayChangeSession reports whether sql contains one of the words that
// statements changing session state need.
func mayChangeSession(sql string) bool { return anyWord(sql, sessionWord) }

// mayWrite reports whether sql may write, so that a session relaying it
// unanalysed (see caching) would miss a write to invalidate cached
// answers by: it holds a word that starts or marks a write (INSERT,
// CREATE, SELECT ... INTO, CALL, EXECUTE, ...). Like mayChangeSession it
// errs towards yes: a word in a string literal or a comment counts too.
func mayWrite(sql string) bool { return anyWord(sql, writeWord) }

// mayChangeSessionOrWrite is mayChangeSession(sql) || mayWrite(sql) in
// one pass over sql.
func mayChangeSessionOrWrite(sql string) bool { return anyWord(sql, sessionWord|writeWord) }

// The kinds of word the screens look for.
const (
	sessionWord = 1 << iota
	writeWord
)

// anyWord reports whether one of sql's words (runs of letters, digits, _
// and non-ASCII bytes) is of a kind in kinds.
func anyWord(sql string, kinds uint8) bool {
	for i := 0; i < len(sql); {
		c := sql[i]
		if !isWordByte(c) {
			i++
			continue
		}
		j := i
		for j < len(sql) && isWordByte(sql[j]) {
			j++
		}
		if wordKinds(sql[i:j])&kinds != 0 {
			return true
		}
		i = j
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

var sessionWords = []string{"set", "reset", "discard", "listen", "prepare", "declare", "temp", "temporary", "deallocate", "load", "hold",
	"set_config", "savepoint", "rollback", "release"}

var writeWords = []string{"insert", "update", "delete", "merge", "truncate", "copy", "create", "alter",
	"drop", "grant", "revoke", "comment", "refresh", "cluster", "reindex", "vacuum", "call", "do",
	"execute", "into", "import", "security", "analyze", "analyse", "lock", "nextval", "setval"}

// maxScreened is the length of the longest word of sessionWords and
// writeWords.
const maxScreened = 10

// screened holds the kinds of the screens' words, by length and first
// letter, so that a word is compared with at most a few.
var screened = func() (t [maxScreened + 1][26][]kindOfWord) {
	add := func(words []string, kind uint8) {
		for _, w := range words {
			b := &t[len(w)][w[0]-'a']
			i := 0
			for i < len(*b) && (*b)[i].word != w {
				i++
			}
			if i == len(*b) {
				*b = append(*b, kindOfWord{word: w})
			}
			(*b)[i].kinds |= kind
		}
	}
	add(sessionWords, sessionWord)
	add(writeWords, writeWord)
	return t
}()

type kindOfWord struct {
	word  string
	kinds uint8
}

// wordKinds returns the kinds of w, ignoring ASCII case.
func wordKinds(w string) uint8 {
	if len(w) > maxScreened {
		if len(w) > 11 && (hasPrefixFold(w, "pg_advisory") || hasPrefixFold(w, "pg_try_advisory")) {
			return sessionWord
		}
		return 0
	}
	c := w[0] | 0x20 // lower case of a letter, and no letter from any other word byte
	if c < 'a' || c > 'z' {
		return 0
	}
	for _, s := range screened[len(w)][c-'a'] {
		if hasPrefixFold(w, s.word) {
			return s.kinds
		}
	}
	return 0
}

// hasPrefixFold reports whether w starts with the lower-case ASCII prefix p,
// ignoring ASCII case.
func hasPrefixFold(w, p string) bool {
	if len(w) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// wordIn reports whether w is one of words (lower-case), ignoring ASCII
// case.
func wordIn(w string, words []string) bool {
	for _, s := range words {
		if len(w) == len(s) && hasPrefixFold(w, s) {
			return true
		}
	}
	return false
}

// plannedText reports whether sql, by its first word, is a statement
// PostgreSQL plans (SELECT, VALUES, TABLE, WITH, INSERT, UPDATE, DELETE,
// MERGE), whose prepared form keeps its result type.
func plannedText(sql string) bool {
	return wordIn(firstWord(stripLeading(sql)), plannedWords)
}

// firstWord returns the word sql starts with, or "".
func firstWord(sql string) string {
	i := 0
	for i < len(sql) && isWordByte(sql[i]) {
		i++
	}
	return sql[:i]
}

var plannedWords = []string{"select", "values", "table", "with", "insert", "update", "delete", "merge"}

// stripLeading drops the whitespace (PostgreSQL's: form and vertical
// feeds too), comments, opening parentheses and empty statements in front
// of a statement's first word.
func stripLeading(sql string) string {
	for {
		switch {
		case sql == "":
			return sql
		case sql[0] == ' ' || sql[0] == '\t' || sql[0] == '\n' || sql[0] == '\r' || sql[0] == '\f' || sql[0] == '\v' || sql[0] == '(' || sql[0] == ';':
			sql = sql[1:]
		case strings.HasPrefix(sql, "--"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		case strings.HasPrefix(sql, "/*"):
			i := strings.Index(sql, "*/")
			if i < 0 {
				return ""
			}
			sql = sql[i+2:]
		default:
			return sql
		}
	}
}
