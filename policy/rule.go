package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
)

// Rule says what happens to the statements it matches.
type Rule struct {
	// Name identifies the rule in logs, metrics and explanations; Index
	// is its place in the list.
	Name  string
	Index int
	// Cache says whether answers are cached at all.
	Cache bool
	// TTL is how long an answer is fresh.
	TTL time.Duration
	// StaleTTL is how long after TTL an answer is still served, at once,
	// while one refresh runs in the background.
	StaleTTL time.Duration
	// StaleIfError is the age up to which an answer is served, with a
	// notice, when the warehouse fails.
	StaleIfError time.Duration
	// Timeout bounds the warehouse's execution of a miss.
	Timeout time.Duration
	// Queue names the queue misses run on.
	Queue string
	// CancelAbandoned cancels a miss's run when every client waiting for
	// it has gone; otherwise it finishes and is cached.
	CancelAbandoned bool
	// RefreshAhead refreshes in the background an entry asked for within
	// this long before its TTL ends.
	RefreshAhead time.Duration
	// Shared gives one answer to every user; statements that depend on
	// the user are never shared, whatever the rule says.
	Shared bool
	// MaxEntryBytes bounds a cached answer; larger ones stream through
	// uncached.
	MaxEntryBytes int
	// CacheTimeFunctions lets statements that read the clock (now(),
	// current_date, ...) be cached: their answers are then as old as the
	// entry.
	CacheTimeFunctions bool
	// AllowHints lets comment hints lengthen the TTL; without it they may
	// only shorten it or turn caching off.
	AllowHints bool

	Match Match
}

// Match selects statements: every pattern given must fit. The zero Match
// matches everything.
type Match struct {
	Dashboard       Glob
	Chart           Glob
	User            Glob
	Database        Glob
	ApplicationName Glob
	Tool            Glob // the BI tool, as the comments name it
	Shape           Glob // the shape id, 16 hexadecimal digits
	// Tables: the statement reads a table matching any of them.
	Tables []Glob
	// TablesAll: every one matches a table the statement reads.
	TablesAll []Glob
	// SQL is a regular expression the statement's text must contain a
	// match of.
	SQL *regexp.Regexp
}

// sessionOnly reports whether the match looks at nothing but the session
// (user, database, application_name).
func (m *Match) sessionOnly() bool {
	return m.Dashboard.any() && m.Chart.any() && m.Tool.any() && m.Shape.any() &&
		len(m.Tables) == 0 && len(m.TablesAll) == 0 && m.SQL == nil
}

// session reports whether the session-level patterns fit.
func (m *Match) session(user, database, app string) bool {
	return m.User.Match(user) && m.Database.Match(database) && m.ApplicationName.Match(app)
}

// Glob is a shell pattern: * matches any run of characters (slashes
// included), ? one character, [a-z] and [!a-z] one of a class; \ quotes
// the next character. Matching is case-sensitive, as PostgreSQL's names
// are. The zero Glob, and "*", match everything.
type Glob struct {
	pattern string
	literal bool // pattern has no wildcard: compare it as it is
	re      *regexp.Regexp
}

// CompileGlob compiles a pattern; "" matches everything.
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" || pattern == "*" {
		return Glob{pattern: pattern}, nil
	}
	var b strings.Builder
	b.WriteString(`\A(?s:`)
	literal := true
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			b.WriteString(".*")
			literal = false
		case '?':
			b.WriteString(".")
			literal = false
		case '\\':
			if i+1 == len(pattern) {
				return Glob{}, fmt.Errorf("invalid pattern %q: ends with \\", pattern)
			}
			i++
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end == 0 && i+2 < len(pattern) {
				// "[]...]": a class whose first member is ]
				end = 1 + strings.IndexByte(pattern[i+2:], ']')
			}
			if end < 0 || (end == 0) {
				return Glob{}, fmt.Errorf("invalid pattern %q: [ without a closing ]", pattern)
			}
			class := pattern[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += 1 + end
			literal = false
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString(`)\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Glob{}, fmt.Errorf("invalid pattern %q: %v", pattern, err)
	}
	if literal {
		return Glob{pattern: unquoteGlob(pattern), literal: true}, nil
	}
	return Glob{pattern: pattern, re: re}, nil
}

func unquoteGlob(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// MustGlob is CompileGlob for patterns known to be valid.
func MustGlob(pattern string) Glob {
	g, err := CompileGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

func (g Glob) any() bool { return !g.literal && g.re == nil }

// Match reports whether s fits the pattern.
func (g Glob) Match(s string) bool {
	switch {
	case g.literal:
		return s == g.pattern
	case g.re != nil:
		return g.re.MatchString(s)
	}
	return true
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// ShapeString formats a shape id as rules match it: 16 hexadecimal digits.
func ShapeString(id uint64) string { return fmt.Sprintf("%016x", id) }

// statement reports whether the statement-level patterns fit.
func (m *Match) statement(in *Input) bool {
	if !m.Dashboard.Match(in.Labels.Dashboard) || !m.Chart.Match(in.Labels.Chart) || !m.Tool.Match(in.Labels.Tool) {
		return false
	}
	a := in.Analysis
	if !m.Shape.any() && (a == nil || !m.Shape.Match(ShapeString(a.ShapeID))) {
		return false
	}
	if len(m.Tables) > 0 || len(m.TablesAll) > 0 {
		var tables []string
		if a != nil {
			tables = a.ReadTables
		}
		if len(m.Tables) > 0 && !anyTable(m.Tables, tables) {
			return false
		}
		for _, g := range m.TablesAll {
			if !anyTable([]Glob{g}, tables) {
				return false
			}
		}
	}
	if m.SQL != nil && !m.SQL.MatchString(in.SQL) {
		return false
	}
	return true
}

// anyTable reports whether a table fits one of globs, by the name as the
// statement wrote it (schema.table) or by its bare name.
func anyTable(globs []Glob, tables []string) bool {
	for _, t := range tables {
		bare := t
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			bare = t[i+1:]
		}
		bare = strings.Trim(bare, `"`)
		for _, g := range globs {
			if g.Match(t) || g.Match(bare) {
				return true
			}
		}
	}
	return false
}

// Input is what a rule matches on.
type Input struct {
	User            string
	Database        string // the database the client asked for
	ApplicationName string
	Labels          Labels
	// Analysis is the statement's; nil when only the session is known.
	Analysis *fingerprint.Analysis
	SQL      string
}

// Describe returns the rule's name, place and match, as explanations show
// it: `finance (policies[0]) match dashboard="finance-*"`.
func (r *Rule) Describe() string {
	var parts []string
	add := func(name string, g Glob) {
		if !g.any() {
			parts = append(parts, fmt.Sprintf("%s=%q", name, g.String()))
		}
	}
	m := &r.Match
	add("dashboard", m.Dashboard)
	add("chart", m.Chart)
	add("user", m.User)
	add("database", m.Database)
	add("application_name", m.ApplicationName)
	add("tool", m.Tool)
	add("shape", m.Shape)
	for _, list := range []struct {
		name  string
		globs []Glob
	}{{"tables", m.Tables}, {"tables_all", m.TablesAll}} {
		if len(list.globs) > 0 {
			var pats []string
			for _, g := range list.globs {
				pats = append(pats, fmt.Sprintf("%q", g.String()))
			}
			parts = append(parts, fmt.Sprintf("%s=[%s]", list.name, strings.Join(pats, ", ")))
		}
	}
	if m.SQL != nil {
		parts = append(parts, fmt.Sprintf("sql=/%s/", m.SQL))
	}
	match := "matches everything"
	if len(parts) > 0 {
		match = "match " + strings.Join(parts, " ")
	}
	return fmt.Sprintf("%s (policies[%d]) %s", r.Name, r.Index, match)
}
