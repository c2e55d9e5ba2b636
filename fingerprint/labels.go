package fingerprint

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Labels are the annotations BI tools and applications put in comments.
// They describe who sent a statement, never what it asks: they stay out of
// cache keys, so the same SQL from two dashboards is one cache entry.
type Labels struct {
	Dashboard string // dashboard id or name (sqlcommenter dashboard, Metabase dashboard_id)
	Chart     string // chart, card or question id
	User      string // the tool's user id (Metabase userID, Looker user_id)
	QueryHash string // the tool's own hash of the query (Metabase queryHash)
	Source    string // the tool: "metabase", "looker", or sqlcommenter's application/framework

	// All holds every label found, under the name the tool gave it (for
	// example "userID", "queryType", "dashboard_id", "history_slug",
	// "route"). Hints appear as "sqlcached:ttl", "sqlcached:nocache".
	// Shared with every user of the analysis: do not modify.
	All map[string]string
}

// Hints are directives for sqlcached written in the statement's comments:
// /* sqlcached:nocache */, /* sqlcached:ttl=30s */, or both separated by a
// comma: /* sqlcached:nocache,ttl=30s */.
type Hints struct {
	NoCache bool          // never serve this text from the cache
	TTL     time.Duration // requested freshness; 0 when not given or not valid
}

// well-known label names, as the tools spell them, in order of preference.
var (
	dashboardKeys = []string{"dashboard", "dashboard_id", "dashboardId", "dashboardID"}
	chartKeys     = []string{"chart", "chart_id", "chartId", "card_id", "cardId", "cardID", "slice_id", "question", "query_id"}
	userKeys      = []string{"user", "user_id", "userId", "userID", "optional_user_id"}
	hashKeys      = []string{"query_hash", "queryHash", "queryhash"}
	sourceKeys    = []string{"source", "tool", "client", "application", "framework", "partner"}
)

// parseLabels reads every comment token of sql.
func parseLabels(sql string, toks []token) (Labels, Hints) {
	var l Labels
	var h Hints
	for _, t := range toks {
		if t.kind != tComment {
			continue
		}
		text := sql[t.start:t.end]
		if strings.HasPrefix(text, "--") {
			parseLineComment(strings.TrimSpace(text[2:]), &l, &h)
		} else {
			body := strings.TrimPrefix(text, "/*")
			body = strings.TrimSuffix(body, "*/")
			parseBlockComment(strings.TrimSpace(body), &l, &h)
		}
	}
	if l.All != nil {
		l.Dashboard = first(l.All, dashboardKeys)
		l.Chart = first(l.All, chartKeys)
		l.User = first(l.All, userKeys)
		l.QueryHash = first(l.All, hashKeys)
		if l.Source == "" {
			l.Source = strings.ToLower(first(l.All, sourceKeys))
		}
	}
	return l, h
}

func first(m map[string]string, keys []string) string {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != "" {
			return v
		}
	}
	return ""
}

func (l *Labels) set(k, v string) {
	if k == "" {
		return
	}
	if l.All == nil {
		l.All = make(map[string]string)
	}
	if _, ok := l.All[k]; !ok {
		l.All[k] = v
	}
}

func parseBlockComment(body string, l *Labels, h *Hints) {
	switch {
	case strings.HasPrefix(body, "sqlcached:"):
		parseHints(body[len("sqlcached:"):], l, h)
	case strings.HasPrefix(body, "partner:"):
		parsePartner(body, l)
	case isRedash(body):
		parseRedash(body, l)
	default:
		parseSQLCommenter(body, l)
	}
}

// isRedash reports whether a block comment is Redash's annotation:
// "Username: alice@example.com, query_id: 42, Queue: queries, ...".
func isRedash(body string) bool {
	return strings.HasPrefix(body, "Username: ") || strings.HasPrefix(body, "query_id: ") ||
		strings.HasPrefix(body, "Query ID: ") || strings.HasPrefix(body, "Job ID: ")
}

// parseRedash reads Redash's "Key: value, Key: value" annotation
// (query_runner.annotate_query). Its query id is the chart; a query
// "adhoc" run from the editor has none.
func parseRedash(body string, l *Labels) {
	l.Source = "redash"
	for _, item := range strings.Split(body, ", ") {
		k, v, ok := strings.Cut(item, ": ")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		switch k {
		case "query_id", "Query ID":
			if v != "adhoc" && v != "None" {
				l.set("query_id", v)
			}
		case "Username":
			l.set("user", v)
		default:
			l.set(k, v)
		}
	}
}

func parseLineComment(body string, l *Labels, h *Hints) {
	switch {
	case strings.HasPrefix(body, "sqlcached:"):
		parseHints(body[len("sqlcached:"):], l, h)
	case strings.HasPrefix(body, "Looker Query Context"):
		parseLooker(body[len("Looker Query Context"):], l)
	case strings.HasPrefix(body, "/*"):
		// Metabase on Redshift: -- /* partner: "metabase", {...} */ Metabase:: ...
		end := strings.Index(body, "*/")
		if end < 0 {
			return
		}
		parseBlockComment(strings.TrimSpace(body[2:end]), l, h)
		parseLineComment(strings.TrimSpace(body[end+2:]), l, h)
	case strings.HasPrefix(body, "Metabase"):
		parseMetabase(body[len("Metabase"):], l)
	}
}

// parseHints reads "nocache", "ttl=30s" items separated by commas or spaces.
func parseHints(s string, l *Labels, h *Hints) {
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		name, value, _ := strings.Cut(item, "=")
		name = strings.ToLower(name)
		l.set("sqlcached:"+name, value)
		switch name {
		case "nocache":
			h.NoCache = true
		case "ttl":
			h.TTL = parseTTL(value)
		}
	}
}

// parseTTL accepts a Go duration ("30s", "5m") or whole seconds ("30").
func parseTTL(v string) time.Duration {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return 0
}

// parseSQLCommenter reads key='value' pairs separated by commas, keys and
// values URL-encoded, quotes in values escaped with a backslash
// (https://google.github.io/sqlcommenter/spec/). A comment that does not
// follow the format yields nothing.
func parseSQLCommenter(body string, l *Labels) {
	type kv struct{ k, v string }
	var pairs []kv
	s := body
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '\'' {
			return
		}
		key := strings.TrimSpace(s[:eq])
		if strings.ContainsAny(key, " '\t\n") {
			return
		}
		val, rest, ok := cutQuoted(s[eq+2:])
		if !ok {
			return
		}
		pairs = append(pairs, kv{unescapeURL(key), unescapeURL(val)})
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return
			}
			rest = strings.TrimSpace(rest[1:])
		}
		s = rest
	}
	for _, p := range pairs {
		l.set(p.k, p.v)
	}
}

// cutQuoted reads up to the closing quote, undoing \' escapes.
func cutQuoted(s string) (val, rest string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '\'':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

func unescapeURL(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// parseMetabase reads Metabase's remark after "Metabase":
// ":: userID: 5 queryType: MBQL queryHash: 9f2c...".
func parseMetabase(s string, l *Labels) {
	if l.Source == "" {
		l.Source = "metabase"
	}
	s = strings.TrimPrefix(s, "::")
	fields := strings.Fields(s)
	for i := 0; i+1 < len(fields); i++ {
		if k, ok := strings.CutSuffix(fields[i], ":"); ok && k != "" {
			l.set(k, fields[i+1])
			i++
		}
	}
}

// parsePartner reads the JSON part Metabase sends to Redshift:
// partner: "metabase", {"dashboard_id":5678,"chart_id":1234,...}.
func parsePartner(body string, l *Labels) {
	brace := strings.IndexByte(body, '{')
	if brace < 0 {
		return
	}
	name := strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(body[len("partner:"):brace]), ",")), `"`)
	if name != "" {
		l.set("partner", name)
		l.Source = strings.ToLower(name)
	}
	setJSON(body[brace:], l)
}

// parseLooker reads Looker's context: '{"user_id":1,"history_slug":"..."}'.
func parseLooker(s string, l *Labels) {
	l.Source = "looker"
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "'")
	s = strings.TrimSuffix(s, "'")
	setJSON(s, l)
}

// setJSON adds the members of a JSON object as labels; nested values are
// kept as compact JSON text.
func setJSON(s string, l *Labels) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil {
		return
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			l.set(k, v)
		case json.Number:
			l.set(k, v.String())
		case nil:
			l.set(k, "")
		default:
			var b bytes.Buffer
			e := json.NewEncoder(&b)
			e.SetEscapeHTML(false)
			if e.Encode(v) == nil {
				l.set(k, strings.TrimSpace(b.String()))
			}
		}
	}
}
