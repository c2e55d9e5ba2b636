package admin

import (
	"fmt"
	"strings"
)

// Op is what a command does.
type Op uint8

// Commands.
const (
	ShowStats Op = iota + 1
	ShowQueries
	ShowCaches
	ShowPolicies
	ShowQueues
	ShowPools
	ShowClients
	ShowErrors
	ShowHelp
	InvalidateTable
	InvalidateDashboard
	InvalidateAll
	Reload
)

// Command is one admin command.
type Command struct {
	Op Op
	// Arg is the table (without its schema) or the dashboard label an
	// INVALIDATE names.
	Arg string
	// By orders SHOW QUERIES: observe.ByRequests (the default),
	// ByRuns or BySaved. Limit bounds its rows; 0 means 50.
	By    string
	Limit int
}

// commands are the syntax and meaning of each command, in the order SHOW
// HELP lists them.
var commands = []struct {
	op           Op
	syntax, help string
}{
	{ShowStats, "SHOW STATS", "requests by outcome, hit ratio, warehouse time saved, timeouts, cache fills, since the start"},
	{ShowQueries, "SHOW QUERIES", "the statement shapes with the most requests: hits, runs, latency, time saved, last error"},
	{ShowCaches, "SHOW CACHES", "each cache tier: state, entries, bytes, hits, misses, evictions, errors"},
	{ShowPolicies, "SHOW POLICIES", "the rules in force, in the order they are tried"},
	{ShowQueues, "SHOW QUEUES", "each backend's queues: workers, busy, waiting"},
	{ShowPools, "SHOW POOLS", "each backend's warehouse connections: busy, idle, waiting clients, max"},
	{ShowClients, "SHOW CLIENTS", "the client sessions: pid, user, database, application_name, address, state, connected since"},
	{ShowErrors, "SHOW ERRORS", "the last errors clients got, newest first"},
	{ShowHelp, "SHOW HELP", "this list"},
	{InvalidateTable, "INVALIDATE TABLE name", "drop the cached answers that read the table, here and in every replica sharing Redis"},
	{InvalidateDashboard, "INVALIDATE DASHBOARD 'label'", "drop the cached answers of a dashboard"},
	{InvalidateAll, "INVALIDATE ALL", "drop every cached answer"},
	{Reload, "RELOAD", "read the configuration file again and put its policies in force"},
}

// showNames maps the word after SHOW to its command.
var showNames = map[string]Op{
	"STATS": ShowStats, "QUERIES": ShowQueries, "CACHES": ShowCaches, "POLICIES": ShowPolicies,
	"QUEUES": ShowQueues, "POOLS": ShowPools, "CLIENTS": ShowClients, "ERRORS": ShowErrors, "HELP": ShowHelp,
}

// Parse reads one command: keywords in any case, an optional trailing
// semicolon. A table name is an identifier as in SQL (folded to lower
// case unless double-quoted, schema-qualified or not); a dashboard label
// is a string literal ('it”s') or a bare word, taken as written.
func Parse(sql string) (Command, error) {
	toks, err := lex(strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n"))
	if err != nil {
		return Command{}, err
	}
	if len(toks) == 0 {
		return Command{}, syntaxError("an empty command")
	}
	switch toks[0].keyword() {
	case "SHOW":
		if len(toks) == 2 {
			if op, ok := showNames[toks[1].keyword()]; ok {
				return Command{Op: op}, nil
			}
		}
	case "INVALIDATE":
		return parseInvalidate(toks[1:])
	case "RELOAD":
		if len(toks) == 1 {
			return Command{Op: Reload}, nil
		}
	}
	return Command{}, syntaxError(fmt.Sprintf("unknown admin command %q", sql))
}

func parseInvalidate(toks []token) (Command, error) {
	if len(toks) == 1 && toks[0].keyword() == "ALL" {
		return Command{Op: InvalidateAll}, nil
	}
	if len(toks) != 2 {
		return Command{}, syntaxError("INVALIDATE takes TABLE name, DASHBOARD 'label' or ALL")
	}
	switch toks[0].keyword() {
	case "TABLE":
		if toks[1].kind == '\'' {
			return Command{}, syntaxError("INVALIDATE TABLE takes a table name, not a string")
		}
		return Command{Op: InvalidateTable, Arg: toks[1].bare}, nil
	case "DASHBOARD":
		if toks[1].text == "" {
			return Command{}, syntaxError("INVALIDATE DASHBOARD needs a label")
		}
		return Command{Op: InvalidateDashboard, Arg: toks[1].text}, nil
	}
	return Command{}, syntaxError("INVALIDATE takes TABLE name, DASHBOARD 'label' or ALL")
}

// token is a word, a (possibly qualified, possibly quoted) identifier or
// a string literal.
type token struct {
	kind byte   // 0 for a word or identifier, '\'' for a string literal
	text string // as written, quotes removed
	bare string // for an identifier: its last part, folded unless quoted
	word bool   // a single unquoted word, which may be a keyword
}

func (t token) keyword() string {
	if !t.word {
		return ""
	}
	return strings.ToUpper(t.text)
}

// lex splits s into tokens separated by white space.
func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '\'':
			lit, n, ok := quoted(s[i:], '\'')
			if !ok {
				return nil, syntaxError("unterminated string literal")
			}
			out = append(out, token{kind: '\'', text: lit})
			i += n
		default:
			t, n, err := lexIdent(s[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			i += n
		}
	}
	return out, nil
}

// lexIdent reads a word or an identifier of parts joined by dots, each
// bare or double-quoted.
func lexIdent(s string) (token, int, error) {
	t := token{word: true}
	i := 0
	for {
		var part string
		if i < len(s) && s[i] == '"' {
			p, n, ok := quoted(s[i:], '"')
			if !ok || p == "" {
				return token{}, 0, syntaxError("unterminated or empty quoted identifier")
			}
			part, t.word = p, false
			i += n
		} else {
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n.\"'", rune(s[j])) {
				j++
			}
			if j == i {
				return token{}, 0, syntaxError(fmt.Sprintf("unexpected %q", s[i:]))
			}
			part = s[i:j]
			i = j
			t.bare = strings.ToLower(part)
			t.text += part
			if i < len(s) && s[i] == '.' {
				t.text += "."
				t.word = false
				i++
				continue
			}
			return t, i, nil
		}
		t.bare = part
		t.text += part
		if i < len(s) && s[i] == '.' {
			t.text += "."
			i++
			continue
		}
		return t, i, nil
	}
}

// quoted reads a literal opening s and closed by q, a doubled q standing
// for itself; it returns the text and the bytes read.
func quoted(s string, q byte) (string, int, bool) {
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
		return b.String(), i + 1, true
	}
	return "", 0, false
}
