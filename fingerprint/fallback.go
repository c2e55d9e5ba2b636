package fingerprint

import "strings"

// The dialect fallback: PostgreSQL's parser rejected the text (Snowflake's
// QUALIFY, FLATTEN and : paths, DuckDB's extensions), so the lexer alone
// classifies it. It fails safe: a statement is cacheable only when it is
// the only one, plainly starts with SELECT or WITH, holds no word that
// could make it write or lock, and calls no function known to be volatile.

// firstWordKinds classifies a statement by its first word.
var firstWordKinds = map[string]Kind{
	"select": KindRead, "with": KindRead, "values": KindRead, "table": KindRead, "from": KindRead,
	"show": KindUtility, "describe": KindUtility, "desc": KindUtility, "list": KindUtility,
	"ls": KindUtility, "explain": KindUtility, "summarize": KindUtility,
	"insert": KindWrite, "update": KindWrite, "delete": KindWrite, "merge": KindWrite,
	"copy": KindWrite, "put": KindWrite, "get": KindWrite, "remove": KindWrite, "rm": KindWrite,
	"unload": KindWrite, "truncate": KindWrite, "call": KindWrite, "execute": KindUnknown,
	"create": KindDDL, "alter": KindDDL, "drop": KindDDL, "grant": KindDDL, "revoke": KindDDL,
	"comment": KindDDL, "undrop": KindDDL, "rename": KindDDL,
	"begin": KindTransaction, "start": KindTransaction, "commit": KindTransaction,
	"rollback": KindTransaction, "end": KindTransaction, "abort": KindTransaction,
	"savepoint": KindTransaction, "release": KindTransaction,
	"set": KindSession, "unset": KindSession, "use": KindSession, "reset": KindSession,
	"pragma": KindSession, "attach": KindSession, "detach": KindSession, "load": KindSession,
	"install": KindSession,
}

// mayWrite are words that, anywhere in a statement, may make it write,
// lock or create something.
var mayWrite = setOf(`insert update delete merge into truncate copy call create drop alter
grant revoke lock execute`)

// fromStop ends a FROM list.
var fromStop = setOf(`where group order having limit qualify window union intersect except minus
join inner left right full cross natural on using lateral pivot unpivot sample tablesample
match_recognize connect start fetch offset for returning set values as of at before changes`)

// notFunctions are words that a parenthesis may follow without making a
// call.
var notFunctions = setOf(`over filter within in exists any all some values as using on and or not
when then else case select from where join lateral table array row is between like ilike
rlike union intersect except minus into by with recursive partition qualify having group order
limit distinct match_recognize pivot unpivot define pattern measures exclude sample tablesample
seed repeatable at before changes`)

// implicitTime and implicitSession are the words that call a function
// without parentheses.
var (
	implicitTime    = setOf(`current_date current_time current_timestamp localtime localtimestamp sysdate`)
	implicitSession = setOf(`current_user session_user current_role current_schema`)
)

// analyzeFallback classifies the statements of a text the parser rejected.
func analyzeFallback(sql string, toks []token, vol VolatilityMap, sure bool) []Statement {
	var stmts []Statement
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && !isSemicolon(sql, toks[i]) {
			continue
		}
		if s, ok := fallbackStatement(sql, toks[start:i], vol, sure); ok {
			stmts = append(stmts, s)
		}
		start = i + 1
	}
	if len(stmts) > 1 {
		for i := range stmts {
			if stmts[i].Cacheable {
				stmts[i].Cacheable, stmts[i].Reason = false, ReasonMulti
			}
		}
	}
	return stmts
}

// fallbackStatement classifies one statement's tokens; ok is false when
// there are only comments.
func fallbackStatement(sql string, toks []token, vol VolatilityMap, sure bool) (Statement, bool) {
	code := make([]token, 0, len(toks))
	for _, t := range toks {
		if t.kind != tComment {
			code = append(code, t)
		}
	}
	if len(code) == 0 {
		return Statement{}, false
	}
	s := Statement{Text: strings.TrimSpace(sql[code[0].start:code[len(code)-1].end])}
	if sure {
		s.Normalized = string(normalize(sql, code, nil))
	} else {
		s.Normalized = rawNormalized(s.Text)
	}
	first := ""
	if code[0].kind == tIdent {
		first = tokenWord(sql, code[0])
	}
	kind, ok := firstWordKinds[first]
	if !ok {
		kind = KindUnknown
	}
	if first == "alter" && len(code) > 1 && tokenWord(sql, code[1]) == "session" {
		kind = KindSession
	}
	s.Kind = kind
	s.Command = strings.ToUpper(first)
	f := fallbackScan{sql: sql, toks: code, vol: vol, s: &s, reads: map[string]bool{}, writes: map[string]bool{}, funcs: map[string]bool{}, unqual: map[string]bool{}}
	f.scan()
	s.ReadTables = setKeys(f.reads)
	s.WriteTables = setKeys(f.writes)
	s.Functions = setKeys(f.funcs)
	s.unqualified = setKeys(f.unqual)
	switch {
	case kind != KindRead:
		s.Reason = kindReason(kind)
	case first != "select" && first != "with":
		s.Reason = ReasonDialect
	case f.reason != "":
		s.Reason = f.reason
	default:
		s.Cacheable = true
	}
	return s, true
}

type fallbackScan struct {
	sql    string
	toks   []token
	vol    VolatilityMap
	s      *Statement
	reads  map[string]bool
	writes map[string]bool
	funcs  map[string]bool
	unqual map[string]bool
	ctes   map[string]bool
	reason string
}

func (f *fallbackScan) deny(r string) {
	if f.reason == "" {
		f.reason = r
	}
}

func (f *fallbackScan) word(i int) string {
	if i < 0 || i >= len(f.toks) || f.toks[i].kind != tIdent {
		return ""
	}
	return tokenWord(f.sql, f.toks[i])
}

func (f *fallbackScan) op(i int) string {
	if i < 0 || i >= len(f.toks) || f.toks[i].kind != tOp {
		return ""
	}
	return f.sql[f.toks[i].start:f.toks[i].end]
}

// scan walks the tokens once: functions, tables, and words that forbid
// caching.
func (f *fallbackScan) scan() {
	f.ctes = map[string]bool{}
	for i := range f.toks {
		if f.word(i) != "" && f.word(i+1) == "as" && f.op(i+2) == "(" {
			f.ctes[f.word(i)] = true
		}
	}
	for i := 0; i < len(f.toks); i++ {
		w := f.word(i)
		if w == "" {
			continue
		}
		if mayWrite[w] {
			f.deny(ReasonDialect)
		}
		if w == "temp" || w == "temporary" {
			f.deny(ReasonTemp)
			if f.word(0) == "create" {
				f.s.Pin = "temporary table"
			}
		}
		if w == "nextval" && f.op(i-1) == "." {
			f.deny(ReasonVolatile + " " + w)
		}
		if (w == "sample" || w == "tablesample") && !f.seeded() {
			f.deny(ReasonSample)
		}
		if (w == "at" || w == "before") && f.op(i+1) == "(" {
			f.s.UsesTime = true // time travel, often relative to now
		}
		if f.op(i+1) == "(" && !notFunctions[w] {
			f.call(i)
			continue
		}
		if implicitTime[w] {
			f.s.UsesTime = true
		}
		if implicitSession[w] {
			f.s.PerUser = true
		}
		switch w {
		case "from", "join":
			into := f.reads
			if f.word(i-1) == "delete" {
				into = f.writes
			}
			i = f.tables(i+1, into, w == "from")
		case "into", "update", "table":
			if f.s.Kind == KindWrite || f.s.Kind == KindDDL {
				i = f.tables(i+1, f.writes, false)
			}
		}
	}
}

// seeded reports whether a SAMPLE clause is repeatable.
func (f *fallbackScan) seeded() bool {
	for i := range f.toks {
		if w := f.word(i); w == "seed" || w == "repeatable" {
			return true
		}
	}
	return false
}

// call judges the function call whose name is token i.
func (f *fallbackScan) call(i int) {
	name := f.word(i)
	schema := ""
	if f.op(i-1) == "." && i >= 2 && f.toks[i-2].kind == tIdent {
		schema = f.word(i - 2)
	}
	full := qualify(schema, name)
	f.funcs[full] = true
	if (schema == "" || schema == "pg_catalog") && connectionBound(name) {
		f.deny(ReasonConnection + " " + full + "()")
	} else if v, ok := f.vol.lookup(schema, name); ok && v == Volatile {
		f.deny(ReasonVolatile + " " + full + "()")
	}
	if strings.HasPrefix(name, "system$") {
		f.deny(ReasonVolatile + " " + full + "()")
	}
	if timeFuncs[name] {
		f.s.UsesTime = true
	}
	if catalogFunc(name) {
		f.s.ReadsCatalog = true
	}
	if sessionFuncs[name] {
		f.s.PerUser = true
	}
	if name == "current_setting" {
		f.deny(ReasonSetting)
	}
}

// tables reads a comma-separated list of relation names from token i (or
// one name when list is false) and returns the index of the last token
// consumed.
func (f *fallbackScan) tables(i int, into map[string]bool, list bool) int {
	for i < len(f.toks) {
		for f.word(i) == "if" || f.word(i) == "not" || f.word(i) == "exists" || f.word(i) == "only" {
			i++
		}
		name, parts, next := f.qualifiedName(i)
		if name == "" || f.op(next) == "(" {
			return i - 1
		}
		if !(parts == 1 && f.ctes[name]) {
			into[name] = true
			if parts == 1 {
				f.unqual[name] = true
			}
		}
		i = next
		if !list {
			return i - 1
		}
		for i < len(f.toks) && f.op(i) != "," {
			if f.op(i) != "" || fromStop[f.word(i)] && f.word(i) != "as" {
				return i - 1
			}
			i++
		}
		i++
	}
	return i
}

// qualifiedName reads a.b.c at token i.
func (f *fallbackScan) qualifiedName(i int) (string, int, int) {
	var parts []string
	for i < len(f.toks) {
		t := f.toks[i]
		switch {
		case t.kind == tIdent && !(len(parts) == 0 && fromStop[f.word(i)]):
			parts = append(parts, f.word(i))
		case t.kind == tQIdent:
			parts = append(parts, unquoteIdent(f.sql[t.start:t.end]))
		default:
			return qualify(parts...), len(parts), i
		}
		i++
		if f.op(i) != "." {
			break
		}
		i++
	}
	return qualify(parts...), len(parts), i
}

// unquoteIdent returns the name inside "...", which may be unterminated.
func unquoteIdent(q string) string {
	q = strings.TrimPrefix(q, `"`)
	if strings.HasSuffix(q, `"`) && !strings.HasSuffix(q, `""`) || strings.HasSuffix(q, `"""`) {
		q = q[:len(q)-1]
	}
	return strings.ReplaceAll(q, `""`, `"`)
}

// shapeText renders tokens with every literal replaced by ?, and lists of
// literals collapsed, for the fallback's shape id.
func shapeText(sql string, toks []token) []byte {
	var buf []byte
	lastLit := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tComment:
			continue
		case tString, tNumber, tParam:
			if lastLit {
				continue
			}
			lastLit = true
			buf = append(buf, " ?"...)
			continue
		case tOp:
			if lastLit && sql[t.start:t.end] == "," && i+1 < len(toks) && isLiteral(toks[i+1].kind) {
				continue
			}
		}
		lastLit = false
		buf = append(buf, ' ')
		if t.kind == tIdent {
			buf = appendLowerASCII(buf, sql[t.start:t.end])
		} else {
			buf = append(buf, sql[t.start:t.end]...)
		}
	}
	return buf
}

func isLiteral(k tokKind) bool { return k == tString || k == tNumber || k == tParam }
