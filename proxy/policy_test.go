package proxy_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/policy"
)

// Tests of the caching rules as a user of a dashboard sees them: which
// views run on the warehouse (pg_stat_statements) and what they answer.

// cachedRule is a rule that caches for ttl, with the test defaults.
func cachedRule(name string, ttl time.Duration, m policy.Match) policy.Rule {
	return policy.Rule{Name: name, Cache: true, TTL: ttl, Timeout: 30 * time.Second, MaxEntryBytes: 16 << 20, CacheTimeFunctions: true, Match: m}
}

// offRule is a rule that sends what it matches straight to the warehouse.
func offRule(name string, m policy.Match) policy.Rule {
	return policy.Rule{Name: name, Cache: false, Timeout: 30 * time.Second, MaxEntryBytes: 16 << 20, Match: m}
}

// dash matches the dashboard label.
func dash(pattern string) policy.Match { return policy.Match{Dashboard: policy.MustGlob(pattern)} }

// execModes are the ways pgx sends a query: the simple protocol, and the
// extended protocol with prepared statements (pgx's default).
var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"extended", pgx.QueryExecModeCacheStatement},
}

// viewInt runs sql, whose answer is one integer, on c in mode.
func viewInt(t testing.TB, c *pgx.Conn, mode pgx.QueryExecMode, sql string) int64 {
	t.Helper()
	var v int64
	if err := c.QueryRow(ctxT(t), sql, mode).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// connectDSN opens a pgx connection to dsn, closed when the test ends.
func connectDSN(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestPolicyDashboardsWithDifferentTTLs: two dashboards send the same
// query, labelled by sqlcommenter comments, under rules with different
// TTLs. Comments are not in the key, so they share one answer; each judges
// its freshness by its own TTL. The 1h dashboard keeps using the answer
// after the 1s dashboard's TTL has passed, and once the 1s dashboard has
// refreshed it, the 1h dashboard sees the new answer.
func TestPolicyDashboardsWithDifferentTTLs(t *testing.T) {
	rules := policy.New(
		cachedRule("A", time.Second, dash("A")),
		cachedRule("B", time.Hour, dash("B")),
		cachedRule("default", time.Minute, policy.Match{}),
	)
	e := newEnv(t, envOptions{cache: true, rules: rules})
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			table := "ttl_" + m.name
			e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s (v int); insert into %[1]s values (1)`, table))
			q := fmt.Sprintf(`select sum(v) from %s`, table)
			a, b := e.connect(t), e.connect(t)
			viewA := func() int64 { return viewInt(t, a, m.mode, q+` /*dashboard='A'*/`) }
			viewB := func() int64 { return viewInt(t, b, m.mode, q+` /*dashboard='B'*/`) }
			runs := func() int64 { return e.PG.Calls(t, e.Database, q+"%") }

			if v := viewA(); v != 1 {
				t.Fatalf("A's first view: got %d, want 1", v)
			}
			if v := viewB(); v != 1 || runs() != 1 {
				t.Fatalf("B's first view: got %d with %d warehouse runs, want 1 from A's entry (1 run)", v, runs())
			}
			// The warehouse changes behind the proxy's back: nothing is
			// invalidated, only TTLs say when the new value is seen.
			e.PG.Exec(t, e.Database, fmt.Sprintf(`update %s set v = 2`, table))
			time.Sleep(2 * time.Second) // past A's TTL, well within B's
			if v := viewB(); v != 1 || runs() != 1 {
				t.Errorf("B 2s later: got %d with %d warehouse runs, want the cached 1 (1 run: B's TTL is 1h)", v, runs())
			}
			if v := viewA(); v != 2 || runs() != 2 {
				t.Errorf("A 2s later: got %d with %d warehouse runs, want a refresh: 2 (2 runs)", v, runs())
			}
			if v := viewB(); v != 2 || runs() != 2 {
				t.Errorf("B after A's refresh: got %d with %d warehouse runs, want A's refreshed 2 (2 runs)", v, runs())
			}
		})
	}
}

// TestPolicyStaleWhileRevalidate: past its TTL but within its stale TTL,
// a slow dashboard query is answered at once with the old answer while
// one refresh runs in the background, however many viewers ask at the
// same time; the view after the refresh gets the new answer.
func TestPolicyStaleWhileRevalidate(t *testing.T) {
	rule := cachedRule("swr", time.Second, policy.Match{})
	rule.StaleTTL = time.Hour
	e := newEnv(t, envOptions{cache: true, rule: &rule})
	// pg_sleep is volatile, and volatile calls are never cached: a STABLE
	// function that sleeps makes the query slow and still cacheable. It
	// exists before the first client connects, when the proxy reads
	// volatility from the warehouse.
	const slow = 500 * time.Millisecond
	e.PG.Exec(t, e.Database, fmt.Sprintf(`create function slow_value(v int) returns int language plpgsql stable
		as $$ begin perform pg_sleep(%g); return v; end $$`, slow.Seconds()))
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			table := "swr_" + m.name
			e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s (v int); insert into %[1]s values (1)`, table))
			q := fmt.Sprintf(`select slow_value(v) from %s`, table)
			runs := func() int64 { return e.PG.Calls(t, e.Database, q+"%") }
			conns := make([]*pgx.Conn, 5)
			for i := range conns {
				conns[i] = e.connect(t)
			}
			// Every viewer opens the dashboard once: one run, then hits
			// (and, in the extended protocol, statements prepared).
			for i, c := range conns {
				if v := viewInt(t, c, m.mode, q); v != 1 {
					t.Fatalf("viewer %d: got %d, want 1", i, v)
				}
			}
			if n := runs(); n != 1 {
				t.Fatalf("5 first views ran %d times on the warehouse, want 1", n)
			}
			e.PG.Exec(t, e.Database, fmt.Sprintf(`update %s set v = 2`, table))
			time.Sleep(1500 * time.Millisecond) // past the TTL, within the stale TTL

			// Five viewers at once: all get the old answer at once.
			type view struct {
				v   int64
				d   time.Duration
				err error
			}
			views := make([]view, len(conns))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					t0 := time.Now()
					views[i].err = c.QueryRow(ctxT(t), q, m.mode).Scan(&views[i].v)
					views[i].d = time.Since(t0)
				}()
			}
			close(start)
			wg.Wait()
			for i, v := range views {
				if v.err != nil || v.v != 1 || v.d >= slow/2 {
					t.Errorf("stale view %d: got %d, %v in %v; want the old 1 at once (under %v)", i, v.v, v.err, v.d, slow/2)
				}
			}
			// One refresh runs in the background.
			deadline := time.Now().Add(30 * time.Second)
			for runs() < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := runs(); n != 2 {
				t.Fatalf("the stale views led to %d warehouse runs, want 2 (one background refresh)", n)
			}
			time.Sleep(100 * time.Millisecond) // the refresh's answer is stored
			if v := viewInt(t, conns[0], m.mode, q); v != 2 {
				t.Errorf("after the refresh: got %d, want the new 2", v)
			}
			time.Sleep(slow) // a second refresh, had one started, would have ended
			if n := runs(); n != 2 {
				t.Errorf("%d warehouse runs, want 2: one refresh for five stale views", n)
			}
		})
	}
}

// TestPolicyLabelSources: a dashboard can be labelled by a comment
// (sqlcommenter, or Metabase's), by SET [LOCAL] sqlcached.dashboard, by a
// startup option or by its application_name; a rule matching the label
// decides for its queries (here: not cached, they run every time), while
// the same query from an unlabelled client is cached. The configuration's
// labels.dashboard says which source wins when several label a query.
func TestPolicyLabelSources(t *testing.T) {
	rules := policy.New(
		offRule("comment", dash("from-comment")),
		offRule("metabase", dash("from-metabase")),
		offRule("set", dash("from-set")),
		offRule("startup", dash("from-startup")),
		offRule("app", dash("from-app")),
		cachedRule("default", time.Hour, policy.Match{}),
	)
	e := newEnv(t, envOptions{cache: true, rules: rules})
	const metabase = `-- /* partner: "metabase", {"dashboard_id":"from-metabase","chart_id":7,"optional_user_id":1,"filter_values":{}} */ Metabase:: userID: 1 queryType: MBQL queryHash: x` + "\n"
	// table makes a table of its own for each query: pg_stat_statements
	// counts executions by statement structure, literals aside.
	table := func(name string) string {
		e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s (v int); insert into %[1]s select generate_series(1, 10)`, name))
		return name
	}
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			queries := map[string]string{}
			for _, src := range []string{"comment", "metabase", "set", "setlocal", "startup", "app"} {
				queries[src] = "select sum(v) from " + table("lbl_"+src+"_"+m.name)
			}
			// query is the query of a source, distinct per source and mode.
			query := func(src string) string { return queries[src] }
			runs := func(src string) int64 { return e.PG.Calls(t, e.Database, "%"+query(src)+"%") }
			view := func(c *pgx.Conn, sql string) {
				t.Helper()
				if v := viewInt(t, c, m.mode, sql); v != 55 {
					t.Fatalf("%s: got %d, want 55", sql, v)
				}
			}
			exec := func(c *pgx.Conn, sql string) {
				t.Helper()
				if _, err := c.Exec(ctxT(t), sql, pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			// unlabelled views the source's query twice: one more run, then
			// a hit.
			unlabelled := func(src string, labelled int64) {
				t.Helper()
				c := e.connect(t)
				view(c, query(src))
				view(c, query(src))
				if n := runs(src); n != labelled+1 {
					t.Errorf("%s: %d warehouse runs after two unlabelled views, want %d (cached)", src, n, labelled+1)
				}
			}
			labelledTwice := func(src string) {
				t.Helper()
				if n := runs(src); n != 2 {
					t.Errorf("%s: two labelled views ran %d times on the warehouse, want 2 (the rule says cache: false)", src, n)
				}
			}

			c := e.connect(t)
			view(c, query("comment")+` /*dashboard='from-comment'*/`)
			view(c, query("comment")+` /*dashboard='from-comment'*/`)
			labelledTwice("comment")
			unlabelled("comment", 2)

			view(c, metabase+query("metabase"))
			view(c, metabase+query("metabase"))
			labelledTwice("metabase")
			unlabelled("metabase", 2)

			c = e.connect(t)
			exec(c, `SET sqlcached.dashboard = 'from-set'`)
			view(c, query("set"))
			view(c, query("set"))
			labelledTwice("set")
			unlabelled("set", 2)
			exec(c, `RESET sqlcached.dashboard`)
			view(c, query("set")) // the label is gone: a hit
			if n := runs("set"); n != 3 {
				t.Errorf("set: %d warehouse runs after RESET, want 3 (a hit)", n)
			}

			c = e.connect(t)
			exec(c, `BEGIN`)
			exec(c, `SET LOCAL sqlcached.dashboard = 'from-set'`)
			view(c, query("setlocal"))
			view(c, query("setlocal"))
			exec(c, `COMMIT`)
			labelledTwice("setlocal")
			// Outside the transaction the label is gone: cached again.
			view(c, query("setlocal"))
			view(c, query("setlocal"))
			if n := runs("setlocal"); n != 3 {
				t.Errorf("setlocal: %d warehouse runs after COMMIT and two views, want 3 (SET LOCAL ended with the transaction)", n)
			}

			c = connectDSN(t, e.DSN()+"&options=-c%20sqlcached.dashboard%3Dfrom-startup")
			view(c, query("startup"))
			view(c, query("startup"))
			labelledTwice("startup")
			unlabelled("startup", 2)

			c = connectDSN(t, e.DSN()+"&application_name=from-app")
			view(c, query("app"))
			view(c, query("app"))
			labelledTwice("app")
			unlabelled("app", 2)
		})
	}

	// Order: with labels.dashboard [set, comment], a query labelled by
	// both is matched by its SET label; by default, by its comment.
	compile := func(yaml string) *policy.Set {
		t.Helper()
		cfg, err := config.Parse([]byte(`
backends:
  - name: wh
    dsn: postgres://127.0.0.1:5432/db
`+yaml+`
policies:
  - name: by-set
    match: {dashboard: by-set}
    ttl: 1h
  - name: by-comment
    match: {dashboard: by-comment}
    cache: false
  - name: default
    cache: false
`), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		s, err := policy.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name, labels string
		want         int64 // warehouse runs of two views
	}{
		{"set_first", "labels: {dashboard: [set, comment]}", 1}, // by-set: cached
		{"default_order", "", 2},                                // by-comment: not cached
	} {
		t.Run(c.name, func(t *testing.T) {
			e.Reads.SetPolicy(compile(c.labels))
			conn := e.connect(t)
			if _, err := conn.Exec(ctxT(t), `SET sqlcached.dashboard = 'by-set'`); err != nil {
				t.Fatal(err)
			}
			for _, m := range execModes {
				q := "select sum(v) from " + table("lbl_"+c.name+"_"+m.name)
				viewInt(t, conn, m.mode, q+` /*dashboard='by-comment'*/`)
				viewInt(t, conn, m.mode, q+` /*dashboard='by-comment'*/`)
				if n := e.PG.Calls(t, e.Database, q+"%"); n != c.want {
					t.Errorf("%s: two views labelled by SET and by comment ran %d times, want %d", m.name, n, c.want)
				}
			}
		})
	}
}

// TestPolicyHintsOnlyShorten: a /* sqlcached:ttl=... */ hint may shorten
// the rule's TTL, but lengthens it only where the rule says allow_hints;
// /* sqlcached:nocache */ is never cached.
func TestPolicyHintsOnlyShorten(t *testing.T) {
	tables := func(pattern string) policy.Match {
		return policy.Match{Tables: []policy.Glob{policy.MustGlob(pattern)}}
	}
	allow := cachedRule("allow", time.Second, tables("hint_allow_*"))
	allow.AllowHints = true
	rules := policy.New(
		cachedRule("long", time.Hour, tables("hint_long_*")),
		cachedRule("short", time.Second, tables("hint_short_*")),
		allow,
		cachedRule("default", time.Hour, policy.Match{}),
	)
	e := newEnv(t, envOptions{cache: true, rules: rules})
	cases := []struct {
		name, hint, table string
		want              int64 // warehouse runs of a view, then two views 1.5s later
	}{
		{"shortened", "/* sqlcached:ttl=1s */", "hint_long", 2},
		{"not lengthened without allow_hints", "/* sqlcached:ttl=1h */", "hint_short", 2},
		{"lengthened with allow_hints", "/* sqlcached:ttl=1h */", "hint_allow", 1},
		{"nocache", "/* sqlcached:nocache */", "hint_none", 3},
	}
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			body := func(i int) string { return "select sum(v) from " + cases[i].table + "_" + m.name }
			sql := func(i int) string { return cases[i].hint + " " + body(i) }
			for i := range cases {
				e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s_%s (v int); insert into %[1]s_%[2]s values (1)`, cases[i].table, m.name))
			}
			c := e.connect(t)
			for i := range cases {
				viewInt(t, c, m.mode, sql(i))
			}
			time.Sleep(1500 * time.Millisecond)
			for i := range cases {
				viewInt(t, c, m.mode, sql(i))
				viewInt(t, c, m.mode, sql(i))
			}
			for i, cs := range cases {
				if n := e.PG.Calls(t, e.Database, "%"+body(i)+"%"); n != cs.want {
					t.Errorf("%s (%s): %d warehouse runs, want %d", cs.name, sql(i), n, cs.want)
				}
			}
		})
	}
}

// TestPolicyRulesByTablesAndSQL: rules chosen by the tables a query reads
// and by its text: queries on secret tables and LIMIT 1 probes run on the
// warehouse every time, everything else is cached.
func TestPolicyRulesByTablesAndSQL(t *testing.T) {
	rules := policy.New(
		offRule("secret", policy.Match{Tables: []policy.Glob{policy.MustGlob("secret*")}}),
		offRule("probe", policy.Match{SQL: regexp.MustCompile(`(?i)\blimit 1\b`)}),
		cachedRule("default", time.Hour, policy.Match{}),
	)
	e := newEnv(t, envOptions{cache: true, rules: rules})
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			c := e.connect(t)
			for _, cs := range []struct {
				table, sql string // sql reads table (suffixed with the mode)
				runs       int64  // warehouse runs of three views
			}{
				{"secret_x", `select sum(v) from secret_x`, 3},
				{"secret_q", `select sum(v) from public.secret_q`, 3},
				{"public_y", `select sum(v) from public_y`, 1},
				{"public_probe", `select v::int8 from public_probe LIMIT 1`, 3},
				{"public_ten", `select v::int8 from public_ten limit 10`, 1},
			} {
				table := cs.table + "_" + m.name
				sql := strings.Replace(cs.sql, cs.table, table, 1)
				e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s (v int); insert into %[1]s values (4)`, table))
				for i := 0; i < 3; i++ {
					if v := viewInt(t, c, m.mode, sql); v != 4 {
						t.Fatalf("%s: got %d, want 4", sql, v)
					}
				}
				if n := e.PG.Calls(t, e.Database, "%from %"+table+"%"); n != cs.runs {
					t.Errorf("%s: three views ran %d times on the warehouse, want %d", sql, n, cs.runs)
				}
			}
		})
	}
}

// TestPolicySwapUnderLoad: rules put in force while clients run queries
// (a reload) cost no client an error or a wrong answer, and a swap from
// caching for an hour to not caching is seen at once: each later view
// runs on the warehouse.
func TestPolicySwapUnderLoad(t *testing.T) {
	cached := policy.New(cachedRule("hour", time.Hour, policy.Match{}))
	off := policy.New(offRule("off", policy.Match{}))
	short := policy.New(cachedRule("short", 50*time.Millisecond, policy.Match{}), cachedRule("default", time.Hour, policy.Match{}))
	e := newEnv(t, envOptions{cache: true, rules: cached})
	e.PG.Exec(t, e.Database, `create table swap_t (k int, v int); insert into swap_t select g % 4, g from generate_series(1, 100) g`)
	want := map[int]int64{}
	for k := 0; k < 4; k++ {
		for g := 1; g <= 100; g++ {
			if g%4 == k {
				want[k] += int64(g)
			}
		}
	}

	var (
		wg      sync.WaitGroup
		views   atomic.Int64
		errs    = make(chan error, 64)
		stop    = make(chan struct{})
		clients = 8
	)
	for i := 0; i < clients; i++ {
		c := e.connect(t)
		mode := execModes[i%2].mode
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i + n) % 4
				var v int64
				var err error
				if mode == pgx.QueryExecModeSimpleProtocol {
					err = c.QueryRow(ctxT(t), fmt.Sprintf(`select sum(v) from swap_t where k = %d`, k), mode).Scan(&v)
				} else {
					err = c.QueryRow(ctxT(t), `select sum(v) from swap_t where k = $1`, mode, k).Scan(&v)
				}
				switch {
				case err != nil:
					errs <- fmt.Errorf("client %d: %v", i, err)
					return
				case v != want[k]:
					errs <- fmt.Errorf("client %d: k=%d: got %d, want %d", i, k, v, want[k])
					return
				}
				views.Add(1)
			}
		}()
	}
	sets := []*policy.Set{off, short, cached}
	for end, n := time.Now().Add(2*time.Second), 0; time.Now().Before(end); n++ {
		e.Reads.SetPolicy(sets[n%len(sets)])
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if views.Load() < int64(clients) {
		t.Errorf("only %d views in 2s", views.Load())
	}

	// From an hour's caching to none: the next views run on the
	// warehouse, each of them.
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			table := "swap_" + m.name
			e.PG.Exec(t, e.Database, fmt.Sprintf(`create table %s (v int); insert into %[1]s values (6)`, table))
			c := e.connect(t)
			q := "select sum(v) from " + table
			runs := func() int64 { return e.PG.Calls(t, e.Database, q+"%") }
			e.Reads.SetPolicy(cached)
			viewInt(t, c, m.mode, q)
			viewInt(t, c, m.mode, q)
			if n := runs(); n != 1 {
				t.Fatalf("under the 1h rule two views ran %d times, want 1", n)
			}
			e.Reads.SetPolicy(off)
			deadline := time.Now().Add(time.Second)
			for viewInt(t, c, m.mode, q); runs() == 1; viewInt(t, c, m.mode, q) {
				if time.Now().After(deadline) {
					t.Fatalf("a second after the swap to cache: false, views are still answered from the cache")
				}
			}
			for i := int64(1); i <= 3; i++ {
				before := runs()
				if v := viewInt(t, c, m.mode, q); v != 6 {
					t.Fatalf("got %d, want 6", v)
				}
				if n := runs(); n != before+1 {
					t.Errorf("view %d after the swap: %d warehouse runs, want %d", i, n, before+1)
				}
			}
		})
	}
}
