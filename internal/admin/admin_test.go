package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/policy"
)

func TestParseReadsEveryCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Command
	}{
		{"SHOW STATS", Command{Op: ShowStats}},
		{"show stats;", Command{Op: ShowStats}},
		{"  Show\tQueries ;; ", Command{Op: ShowQueries}},
		{"show caches", Command{Op: ShowCaches}},
		{"show policies", Command{Op: ShowPolicies}},
		{"show queues", Command{Op: ShowQueues}},
		{"show pools", Command{Op: ShowPools}},
		{"show clients", Command{Op: ShowClients}},
		{"show errors", Command{Op: ShowErrors}},
		{"show help", Command{Op: ShowHelp}},
		{"reload;", Command{Op: Reload}},
		{"invalidate all", Command{Op: InvalidateAll}},
		{"INVALIDATE TABLE items", Command{Op: InvalidateTable, Arg: "items"}},
		{"invalidate table Items", Command{Op: InvalidateTable, Arg: "items"}},
		{`invalidate table "Items"`, Command{Op: InvalidateTable, Arg: "Items"}},
		{"invalidate table public.orders;", Command{Op: InvalidateTable, Arg: "orders"}},
		{`invalidate table "My Schema"."Odd ""name"""`, Command{Op: InvalidateTable, Arg: `Odd "name"`}},
		{"invalidate dashboard 'Sales overview'", Command{Op: InvalidateDashboard, Arg: "Sales overview"}},
		{"invalidate dashboard 'it''s'", Command{Op: InvalidateDashboard, Arg: "it's"}},
		{"invalidate dashboard sales", Command{Op: InvalidateDashboard, Arg: "sales"}},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRefusesWithTheListOfCommands(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", ";", "select 1", "show", "show stats please", "show stats; show pools", "show all",
		"invalidate", "invalidate table", "invalidate table 'items'", "invalidate dashboard ''",
		"invalidate everything", "invalidate table a b", "reload now", "invalidate dashboard 'open",
		`invalidate table "open`,
	} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeSyntaxError {
			t.Errorf("Parse(%q) = %v, want SQLSTATE %s", in, err, CodeSyntaxError)
			continue
		}
		if !strings.Contains(e.Hint, "SHOW STATS") || !strings.Contains(e.Hint, "INVALIDATE TABLE name") || !strings.Contains(e.Hint, "RELOAD") {
			t.Errorf("Parse(%q): hint %q does not list the commands", in, e.Hint)
		}
	}
}

// run parses and runs sql, failing the test on an error.
func run(t *testing.T, d *Deps, sql string) *Result {
	t.Helper()
	c, err := Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	r, err := Run(context.Background(), d, c)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return r
}

// column returns the text of row i's column name.
func column(t *testing.T, r *Result, i int, name string) string {
	t.Helper()
	for j, c := range r.Columns {
		if c.Name == name {
			v := r.Text()[i][j]
			if v == nil {
				return "NULL"
			}
			return *v
		}
	}
	t.Fatalf("no column %q in %v", name, r.Columns)
	return ""
}

func TestShowStatsAndQueriesReportWhatWasRecorded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := observe.New(observe.Config{Statements: true, Now: func() time.Time { return now }})
	ev := func(o observe.Outcome, d, saved time.Duration) *observe.Event {
		return &observe.Event{Start: now, Duration: d, User: "ana", Database: "shop", Backend: "wh", Rule: "dash",
			Dashboard: "Sales", Shape: 0xabc, SQL: "select count(*) from items", Outcome: o, Saved: saved}
	}
	obs.Record(ev(observe.Miss, 40*time.Millisecond, 0))
	obs.Record(ev(observe.HitL1, time.Millisecond, 40*time.Millisecond))
	obs.Record(ev(observe.HitL1, time.Millisecond, 40*time.Millisecond))
	obs.Record(&observe.Event{Outcome: observe.Bypass, Duration: time.Millisecond})
	obs.Record(&observe.Event{Outcome: observe.Error, User: "bo", Database: "shop", SQLState: "42P01", Message: "no such table", Shape: 7})
	obs.Timeout("dash", "wh")
	d := &Deps{Observer: obs, Started: now.Add(-time.Hour)}

	st := run(t, d, "show stats")
	if st.Tag != "SHOW" || len(st.Rows) != 1 {
		t.Fatalf("SHOW STATS: tag %q, %d rows", st.Tag, len(st.Rows))
	}
	for name, want := range map[string]string{
		"requests": "5", "hit_l1": "2", "miss": "1", "bypass": "1", "error": "1", "hits": "2",
		"hit_ratio": "0.6667", "saved_s": "0.08", "timeouts": "1", "fills": "NULL", "since": "2026-03-01 11:00:00+00",
	} {
		if got := column(t, st, 0, name); got != want {
			t.Errorf("SHOW STATS %s = %q, want %q", name, got, want)
		}
	}

	q := run(t, d, "show queries")
	if len(q.Rows) != 2 {
		t.Fatalf("SHOW QUERIES: %d rows, want 2 shapes", len(q.Rows))
	}
	for name, want := range map[string]string{
		"shape": "0000000000000abc", "dashboard": "Sales", "rule": "dash", "requests": "3", "hits": "2",
		"hit_ratio": "0.6667", "runs": "1", "mean_ms": "14", "p95_ms": "50", "saved_s": "0.08",
		"last_error": "NULL", "sql": "select count(*) from items",
	} {
		if got := column(t, q, 0, name); got != want {
			t.Errorf("SHOW QUERIES %s = %q, want %q", name, got, want)
		}
	}
	if got := column(t, q, 1, "last_error"); got != "42P01 no such table" {
		t.Errorf("the failing shape's last_error = %q", got)
	}

	errs := run(t, d, "show errors")
	if len(errs.Rows) != 1 || column(t, errs, 0, "sqlstate") != "42P01" || column(t, errs, 0, "shape") != "0000000000000007" {
		t.Errorf("SHOW ERRORS: %v", rows(errs))
	}
}

// rows returns r's text, NULL spelled out.
func rows(r *Result) [][]string {
	var out [][]string
	for _, row := range r.Text() {
		var o []string
		for _, v := range row {
			if v == nil {
				o = append(o, "NULL")
			} else {
				o = append(o, *v)
			}
		}
		out = append(out, o)
	}
	return out
}

// metric returns the text of the observer's metrics line starting with prefix.
func metric(t *testing.T, obs *observe.Observer, prefix string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	obs.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// fill stores an answer reading tables under dashboard, reporting
// whether the cache had to fill it.
func fill(t *testing.T, g *cache.Group, key byte, dashboard string, tables ...string) bool {
	t.Helper()
	filled := false
	req := cache.Request{Key: cache.Key{key}, TTL: time.Minute, Tables: tables, Labels: []cache.Label{{Name: "dashboard", Value: dashboard}}}
	_, err := g.Get(context.Background(), req, cache.FillFunc(func(context.Context) (*cache.Entry, error) {
		filled = true
		return &cache.Entry{Payload: []byte("answer"), Rows: 1}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return filled
}

func TestInvalidateDropsWhatItNames(t *testing.T) {
	t.Parallel()
	g, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	obs := observe.New(observe.Config{})
	d := &Deps{Observer: obs, Cache: g}
	fill(t, g, 1, "sales", "items")
	fill(t, g, 2, "sales", "orders")
	fill(t, g, 3, "ops", "regions")
	if fill(t, g, 1, "sales", "items") {
		t.Fatal("the answer was not cached")
	}

	if r := run(t, d, "INVALIDATE TABLE public.items;"); r.Tag != "INVALIDATE" || r.Columns != nil || r.Notice != "" {
		t.Errorf("INVALIDATE: %+v", r)
	}
	if !fill(t, g, 1, "sales", "items") || fill(t, g, 2, "sales", "orders") {
		t.Error("INVALIDATE TABLE items: want items refilled and orders still cached")
	}
	run(t, d, "invalidate dashboard 'sales'")
	if !fill(t, g, 1, "sales", "items") || !fill(t, g, 2, "sales", "orders") || fill(t, g, 3, "ops", "regions") {
		t.Error("INVALIDATE DASHBOARD sales: want both sales answers refilled, ops still cached")
	}
	run(t, d, "invalidate all")
	if !fill(t, g, 3, "ops", "regions") {
		t.Error("INVALIDATE ALL left an answer")
	}
	if got := metric(t, obs, `sqlcached_invalidations_total{reason="admin"}`); !strings.HasSuffix(got, " 3") {
		t.Errorf("invalidations: %q, want 3 for admin", got)
	}

	caches := run(t, d, "show caches")
	// 3 hits; 7 misses, every one of which led a fill.
	if len(caches.Rows) != 2 || column(t, caches, 0, "state") != "on" || column(t, caches, 0, "hits") != "3" || column(t, caches, 0, "misses") != "7" ||
		column(t, caches, 1, "tier") != "l2" || column(t, caches, 1, "state") != "off" || column(t, caches, 1, "hits") != "NULL" {
		t.Errorf("SHOW CACHES: %v", rows(caches))
	}
	if n := column(t, caches, 0, "entries"); n == "0" || n == "NULL" {
		t.Errorf("SHOW CACHES l1 entries %s", n)
	}
}

func TestWhatTheConfigurationLacksIsRefused(t *testing.T) {
	t.Parallel()
	d := &Deps{Observer: observe.New(observe.Config{})}
	for _, sql := range []string{"invalidate all", "invalidate table items", "reload"} {
		c, _ := Parse(sql)
		_, err := Run(context.Background(), d, c)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeNotInPrerequisite {
			t.Errorf("%s without a cache or a file: %v, want SQLSTATE %s", sql, err, CodeNotInPrerequisite)
		}
	}
	d.Reload = func() error { return errors.New("sqlcached.yaml:3: policies[0].ttl: not a duration") }
	_, err := Run(context.Background(), d, Command{Op: Reload})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeConfigFileError || !strings.Contains(e.Message, "policies[0].ttl") {
		t.Errorf("a bad file: %v", err)
	}
	reloaded := false
	d.Reload = func() error { reloaded = true; return nil }
	if r := run(t, d, "RELOAD"); r.Tag != "RELOAD" || !reloaded {
		t.Errorf("RELOAD: %+v, reloaded %v", r, reloaded)
	}
	// Without a cache, the tiers say so and the policies are none.
	if r := run(t, d, "show caches"); column(t, r, 0, "state") != "off" || column(t, r, 0, "entries") != "NULL" {
		t.Errorf("SHOW CACHES without a cache: %v", rows(r))
	}
	if r := run(t, d, "show policies"); len(r.Rows) != 0 || len(r.Columns) == 0 {
		t.Errorf("SHOW POLICIES without policies: %+v", r)
	}
}

func mustGlob(t *testing.T, p string) policy.Glob {
	g, err := policy.CompileGlob(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestShowPoliciesListsTheRulesInOrder(t *testing.T) {
	t.Parallel()
	rules := policy.New(
		policy.Rule{Name: "dashboards", Cache: true, TTL: 5 * time.Minute, StaleTTL: 90 * time.Second, Timeout: 30 * time.Second, Queue: "dash", Shared: true,
			Match: policy.Match{Dashboard: mustGlob(t, "sales*"), Tables: []policy.Glob{mustGlob(t, "orders"), mustGlob(t, "items")}, SQL: regexp.MustCompile(`^select`)}},
		policy.Rule{Name: "rest", TTL: 1500 * time.Millisecond},
	)
	r := run(t, &Deps{Observer: observe.New(observe.Config{}), Policy: rules}, "show policies")
	want := [][]string{
		{"1", "dashboards", "dashboard=sales* tables=[orders,items] sql=/^select/", "t", "00:05:00", "00:01:30", "00:00:30", "dash", "t"},
		{"2", "rest", "*", "f", "00:00:01.5", "00:00:00", "NULL", "NULL", "f"},
	}
	if len(r.Rows) != len(want) {
		t.Fatalf("SHOW POLICIES: %d rows, want %d", len(r.Rows), len(want))
	}
	for i, row := range r.Text() {
		for j, v := range row {
			got := "NULL"
			if v != nil {
				got = *v
			}
			if got != want[i][j] {
				t.Errorf("rule %d %s = %q, want %q", i+1, r.Columns[j].Name, got, want[i][j])
			}
		}
	}
	if r.Columns[4].Type.OID() != 1186 || r.Columns[3].Type.OID() != 16 || r.Columns[0].Type.OID() != 20 {
		t.Errorf("column types %v", r.Columns)
	}
}

type pool postgres.Stats

func (p pool) Stats() postgres.Stats { return postgres.Stats(p) }

func TestShowQueuesPoolsClients(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 3, 1, 9, 30, 0, 250e6, time.UTC)
	d := &Deps{
		Observer: observe.New(observe.Config{}),
		Queues:   executor.NewQueues([]string{"wh"}, map[string]executor.QueueConfig{"dash": {Workers: 4, MaxQueued: 10}}),
		Pools:    map[string]Pool{"wh": pool{Open: 5, Idle: 2, Waiting: 1, Max: 8}, "archive": pool{Max: 2}},
		Clients: func() []Client {
			return []Client{
				{PID: 9, User: "ops", Database: "sqlcached", State: "console", Addr: "127.0.0.1:5000", Since: since.Add(time.Minute)},
				{PID: 4, User: "ana", Database: "shop", ApplicationName: "Superset", State: "idle", Addr: "10.0.0.2:4000", Since: since},
			}
		},
	}
	q := run(t, d, "show queues")
	if len(q.Rows) != 1 || column(t, q, 0, "queue") != "dash" || column(t, q, 0, "workers") != "4" || column(t, q, 0, "busy") != "0" {
		t.Errorf("SHOW QUEUES: %v", rows(q))
	}
	p := run(t, d, "show pools")
	if len(p.Rows) != 2 || column(t, p, 0, "backend") != "archive" || column(t, p, 1, "busy") != "3" ||
		column(t, p, 1, "idle") != "2" || column(t, p, 1, "waiting") != "1" || column(t, p, 1, "max") != "8" {
		t.Errorf("SHOW POOLS: %v", rows(p))
	}
	c := run(t, d, "show clients")
	if len(c.Rows) != 2 || column(t, c, 0, "user") != "ana" || column(t, c, 0, "application_name") != "Superset" ||
		column(t, c, 0, "connected_since") != "2026-03-01 09:30:00.25+00" || column(t, c, 1, "application_name") != "NULL" {
		t.Errorf("SHOW CLIENTS: %v", rows(c))
	}
	b, err := json.Marshal(c.Objects())
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"pid":4,"user":"ana","database":"shop","application_name":"Superset","client_addr":"10.0.0.2:4000","state":"idle","connected_since":"2026-03-01T09:30:00.25Z"},` +
		`{"pid":9,"user":"ops","database":"sqlcached","application_name":null,"client_addr":"127.0.0.1:5000","state":"console","connected_since":"2026-03-01T09:31:00.25Z"}]`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
}

func TestTextFormsAreThoseOfPostgreSQL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{int64(-3), "-3"}, {0.5, "0.5"}, {1234567.0, "1234567"}, {1e15, "1e+15"}, {true, "t"}, {false, "f"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02 03:04:05+00"},
		{time.Date(2026, 1, 2, 3, 4, 5, 120e3, time.FixedZone("", 5*3600+1800)), "2026-01-02 03:04:05.00012+05:30"},
		{90 * time.Minute, "01:30:00"}, {50 * time.Hour, "50:00:00"}, {1500 * time.Microsecond, "00:00:00.0015"}, {0 * time.Second, "00:00:00"},
	} {
		if got := text(tc.v); got != tc.want {
			t.Errorf("text(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestShowHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	r := run(t, &Deps{Observer: observe.New(observe.Config{})}, "SHOW HELP")
	if len(r.Rows) != len(commands) {
		t.Fatalf("SHOW HELP: %d rows for %d commands", len(r.Rows), len(commands))
	}
	for _, c := range commands {
		if c.op >= InvalidateTable {
			continue
		}
		if got, err := Parse(c.syntax); err != nil || got.Op != c.op {
			t.Errorf("the help's %q parses as %+v, %v", c.syntax, got, err)
		}
	}
}
