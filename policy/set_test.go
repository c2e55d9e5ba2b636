package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/config"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "anything", true},
		{"*", "", true},
		{"finance-*", "finance-daily", true},
		{"finance-*", "finance-q3/board", true}, // * crosses slashes
		{"finance-*", "Finance-daily", false},   // case-sensitive
		{"finance", "finance", true},
		{"finance", "finance-daily", false},
		{"q?", "q3", true},
		{"q?", "q34", false},
		{"q[0-9]", "q7", true},
		{"q[!0-9]", "q7", false},
		{"q[!0-9]", "qx", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a.b", "axb", false}, // regexp metacharacters are literal
		{"Metabase*", "Metabase v0.50.3", true},
	} {
		g, err := CompileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := g.Match(tc.s); got != tc.want {
			t.Errorf("%q matching %q = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
	for _, bad := range []string{"fin[ance", `ends\`} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func rule(name string, m Match, cache bool, ttl time.Duration) Rule {
	return Rule{Name: name, Match: m, Cache: cache, TTL: ttl, Timeout: time.Minute, CacheTimeFunctions: true, MaxEntryBytes: 1 << 20}
}

// TestForSessionDecidesOnlyWhatTheSessionTells: a rule on the database
// decides every statement of its sessions before any parse; a rule that
// looks at the statement before it leaves the decision to each statement.
func TestForSessionDecidesOnlyWhatTheSessionTells(t *testing.T) {
	s := New(
		rule("oltp", Match{Database: MustGlob("oltp")}, false, 0),
		rule("finance", Match{Dashboard: MustGlob("finance-*")}, true, time.Minute),
		rule("ops", Match{User: MustGlob("ops")}, false, 0),
		rule("metabase", Match{ApplicationName: MustGlob("Metabase*")}, true, time.Hour),
		rule("default", Match{}, true, 10*time.Minute),
	)
	for _, tc := range []struct {
		user, db, app string
		rule          string
		decided       bool
	}{
		{"alice", "oltp", "", "oltp", true},
		{"ops", "oltp", "", "oltp", true},
		{"ops", "analytics", "", "finance", false}, // a finance dashboard could come first
		{"alice", "analytics", "", "finance", false},
	} {
		r, decided := s.ForSession(tc.user, tc.db, tc.app)
		if r == nil || r.Name != tc.rule || decided != tc.decided {
			t.Errorf("%s@%s (%s): got %v decided %v, want %s decided %v", tc.user, tc.db, tc.app, r, decided, tc.rule, tc.decided)
		}
	}
	// Without the dashboard rule, session rules decide alone.
	s = New(
		rule("ops", Match{User: MustGlob("ops")}, false, 0),
		rule("metabase", Match{ApplicationName: MustGlob("Metabase*")}, true, time.Hour),
		rule("default", Match{}, true, 10*time.Minute),
	)
	if r, decided := s.ForSession("bob", "analytics", "Metabase v0.50"); r.Name != "metabase" || !decided {
		t.Errorf("metabase session: %s %v", r.Name, decided)
	}
	if r, decided := s.ForSession("ops", "analytics", ""); r.Name != "ops" || !decided {
		t.Errorf("ops session: %s %v", r.Name, decided)
	}
	if r, decided := New(rule("ops", Match{User: MustGlob("ops")}, false, 0)).ForSession("bob", "x", ""); r != nil || !decided {
		t.Errorf("no rule can match: %v %v", r, decided)
	}
}

// TestDecide: the first matching rule decides; the analysis can veto;
// hints only shorten unless the rule allows them.
func TestDecide(t *testing.T) {
	s := New(
		rule("secret", Match{Tables: []Glob{MustGlob("secret_*")}}, false, 0),
		rule("both", Match{TablesAll: []Glob{MustGlob("orders"), MustGlob("customers")}}, true, 2*time.Hour),
		rule("point", Match{SQL: regexp.MustCompile(`(?i)\blimit 1\b`)}, false, 0),
		rule("short", Match{Dashboard: MustGlob("live-*")}, true, time.Second),
		Rule{Name: "hinted", Match: Match{Chart: MustGlob("7")}, Cache: true, TTL: time.Minute, AllowHints: true},
		Rule{Name: "clockless", Match: Match{Tool: MustGlob("looker")}, Cache: true, TTL: time.Minute},
		rule("default", Match{}, true, 10*time.Minute),
	)
	decide := func(sql string, labels Labels) Decision {
		a := fingerprint.Analyze(sql)
		if labels == (Labels{}) {
			labels = s.Labels(a, SessionLabels{})
		}
		return s.Decide(&Input{User: "u", Database: "d", Labels: labels, Analysis: a, SQL: sql})
	}
	for _, tc := range []struct {
		sql    string
		labels Labels
		rule   string
		cache  bool
		ttl    time.Duration
		reason string
	}{
		{"select * from secret_pay", Labels{}, "secret", false, 0, ReasonRuleOff},
		{"select * from public.secret_pay", Labels{}, "secret", false, 0, ReasonRuleOff},
		{"select * from orders join customers using (id)", Labels{}, "both", true, 2 * time.Hour, ""},
		{"select * from orders", Labels{}, "default", true, 10 * time.Minute, ""},
		{"select * from orders LIMIT 1", Labels{}, "point", false, 0, ReasonRuleOff},
		{"select * from orders", Labels{Dashboard: "live-sales"}, "short", true, time.Second, ""},
		{"select * from orders /* sqlcached:ttl=30s */", Labels{}, "default", true, 30 * time.Second, ""},
		{"select * from orders /* sqlcached:ttl=1h */", Labels{}, "default", true, 10 * time.Minute, ""},
		{"select * from orders /* sqlcached:ttl=1h */", Labels{Chart: "7"}, "hinted", true, time.Hour, ""},
		{"select * from orders /* sqlcached:nocache */", Labels{}, "default", false, 0, fingerprint.ReasonNoCacheHint},
		{"select random()", Labels{}, "default", false, 0, fingerprint.ReasonVolatile},
		{"select now()", Labels{}, "default", true, 10 * time.Minute, ""},
		{"select now()", Labels{Tool: "looker"}, "clockless", false, 0, ReasonTime},
		{"insert into orders values (1)", Labels{}, "default", false, 0, fingerprint.ReasonWrite},
	} {
		d := decide(tc.sql, tc.labels)
		if d.Rule == nil || d.Rule.Name != tc.rule || d.Cache != tc.cache || d.TTL != tc.ttl || !strings.HasPrefix(d.Reason, tc.reason) {
			name := "<nil>"
			if d.Rule != nil {
				name = d.Rule.Name
			}
			t.Errorf("%s %+v: rule %s cache %v ttl %v reason %q; want %s %v %v %q", tc.sql, tc.labels, name, d.Cache, d.TTL, d.Reason, tc.rule, tc.cache, tc.ttl, tc.reason)
		}
	}
}

// TestLabelsFollowTheConfiguredOrder: the dashboard label comes from the
// first source that has one, in the configured order.
func TestLabelsFollowTheConfiguredOrder(t *testing.T) {
	a := fingerprint.Analyze("select 1 /*dashboard='from-comment',chart='9'*/")
	sess := SessionLabels{SetDashboard: "from-set", StartupDashboard: "from-startup", ApplicationName: "app", SetChart: "3"}
	s := New()
	if l := s.Labels(a, sess); l.Dashboard != "from-comment" || l.DashboardSource != FromComment || l.Chart != "9" {
		t.Errorf("default order: %+v", l)
	}
	if l := s.Labels(fingerprint.Analyze("select 1"), sess); l.Dashboard != "from-set" || l.Chart != "3" {
		t.Errorf("no comment: %+v", l)
	}
	if l := s.Labels(fingerprint.Analyze("select 1"), SessionLabels{StartupDashboard: "s", ApplicationName: "app"}); l.Dashboard != "s" || l.DashboardSource != FromStartup {
		t.Errorf("startup: %+v", l)
	}
	if l := s.Labels(fingerprint.Analyze("select 1"), SessionLabels{ApplicationName: "app"}); l.Dashboard != "app" || l.DashboardSource != FromApplicationName {
		t.Errorf("application_name: %+v", l)
	}
	s.sources = []Source{FromStartup, FromComment}
	if l := s.Labels(a, sess); l.Dashboard != "from-startup" {
		t.Errorf("startup first: %+v", l)
	}
	if l := s.Labels(fingerprint.Analyze("select 1"), SessionLabels{ApplicationName: "app"}); l.Dashboard != "" {
		t.Errorf("application_name not listed, yet used: %+v", l)
	}
}

// TestCompileReportsTheLine: a pattern that does not compile is reported
// with the file's line and the key.
func TestCompileReportsTheLine(t *testing.T) {
	for _, tc := range []struct {
		yaml, key string
		line      int
	}{
		{"policies:\n  - name: a\n    match: {dashboard: \"fin[ance\"}\n    ttl: 1m\n  - name: all\n    ttl: 1m\n", "policies[0].match.dashboard", 3},
		{"policies:\n  - name: a\n    match:\n      sql: \"(unclosed\"\n    ttl: 1m\n  - name: all\n    ttl: 1m\n", "policies[0].match.sql", 4},
		{"policies:\n  - name: a\n    match:\n      tables: [ok, \"b[\"]\n    ttl: 1m\n  - name: all\n    ttl: 1m\n", "policies[0].match.tables[1]", 4},
	} {
		cfg, err := config.Parse([]byte("backends: [{name: w, dsn: \"postgres://h/db\"}]\n"+tc.yaml), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		_, err = Compile(cfg)
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != tc.key || ce.Line != tc.line+1 {
			t.Errorf("got %v, want key %s at line %d", err, tc.key, tc.line+1)
		}
	}
}
