package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
)

// slowSchema makes slow_value(v, secs): a STABLE function (so that its
// answers are cached) that sleeps secs, then returns v.
const slowSchema = `create function slow_value(v int, secs float8) returns int stable language plpgsql as
	$$ begin perform pg_sleep(secs); return v; end $$`

// TestQueueFloodAnswers53000AtOnce: 30 dashboard misses at once on a
// queue of 2 workers and 10 places: 12 are answered, 18 get SQLSTATE 53000
// naming the queue at once, and when it is over no goroutine is left.
func TestQueueFloodAnswers53000AtOnce(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	queues := executor.NewQueues([]string{"pg"}, map[string]executor.QueueConfig{
		"reports": {Workers: 2, MaxQueued: 10, MaxWait: time.Minute},
	})
	rules := policy.New(policy.Rule{Name: "reports", Cache: true, TTL: time.Hour, Timeout: time.Minute, Queue: "reports", MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules, queues: queues, maxConns: 20})
	ctx := ctxT(t)
	conns := make([]*pgx.Conn, 30)
	for i := range conns {
		conns[i] = e.connect(t)
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	type outcome struct {
		err  error
		took time.Duration
	}
	out := make([]outcome, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			start := time.Now()
			var v int
			err := c.QueryRow(ctx, fmt.Sprintf("select slow_value(%d, 0.3)", i), pgx.QueryExecModeSimpleProtocol).Scan(&v)
			if err == nil && v != i {
				err = fmt.Errorf("got %d, want %d", v, i)
			}
			out[i] = outcome{err, time.Since(start)}
		})
	}
	wg.Wait()
	answered, refused := 0, 0
	for i, o := range out {
		var pe *pgconn.PgError
		switch {
		case o.err == nil:
			answered++
		case errors.As(o.err, &pe) && pe.Code == "53000":
			refused++
			if !strings.Contains(pe.Message, `"reports"`) {
				t.Errorf("query %d: the refusal does not name the queue: %s", i, pe.Message)
			}
			if o.took > 250*time.Millisecond {
				t.Errorf("query %d: refused after %v, not at once", i, o.took)
			}
		default:
			t.Errorf("query %d: %v", i, o.err)
		}
	}
	if answered != 12 || refused != 18 {
		t.Fatalf("%d answered and %d refused, want 12 and 18", answered, refused)
	}
	// Every connection still works.
	for _, c := range conns {
		var n int
		if err := c.QueryRow(ctx, "select 1", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the flood:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuleTimeoutCancelsOnTheWarehouse: a miss that outlasts its rule's
// timeout of 1s is answered with 57014 naming the rule after about a
// second, the statement is gone from the warehouse's pg_stat_activity,
// and nothing was cached: the next view runs again.
func TestRuleTimeoutCancelsOnTheWarehouse(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	rules := policy.New(policy.Rule{Name: "dashboards", Cache: true, TTL: time.Hour, Timeout: time.Second, MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules})
	ctx := ctxT(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := e.connect(t)
		fillErrors := e.Cache.Stats().FillErrors
		start := time.Now()
		var v int
		err := c.QueryRow(ctx, "select slow_value(7, 10)", mode).Scan(&v)
		took := time.Since(start)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" || !strings.Contains(pe.Message, `"dashboards"`) || !strings.Contains(pe.Message, "1s") {
			t.Fatalf("%v: got %v, want 57014 naming the rule and its limit", mode, err)
		}
		if took < 900*time.Millisecond || took > 3*time.Second {
			t.Errorf("%v: answered after %v, want about 1s", mode, took)
		}
		// The warehouse stopped it.
		waitGone(t, pg, db, "select slow_value(7, 10)%", 3*time.Second)
		// The session goes on, and the timed-out run was not cached.
		if err := c.QueryRow(ctx, "select 1", mode).Scan(&v); err != nil || v != 1 {
			t.Fatalf("%v: the session after the timeout: %v", mode, err)
		}
		if n := e.Cache.Stats().FillErrors - fillErrors; n != 1 {
			t.Errorf("%v: %d failed fills, want the timed-out one (failed fills are never stored)", mode, n)
		}
	}
}

// TestRefreshAheadKeepsABusyDashboardHit: a query asked every 100 ms for
// 10 s under a 2 s TTL with refresh_ahead 500ms sees one miss, the first:
// every later view is answered from the cache while background refreshes
// keep the entry fresh, and each view is fast.
func TestRefreshAheadKeepsABusyDashboardHit(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	rules := policy.New(policy.Rule{Name: "busy", Cache: true, TTL: 2 * time.Second, RefreshAhead: 500 * time.Millisecond,
		Timeout: time.Minute, MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules})
	c := e.connect(t)
	ctx := ctxT(t)
	misses := e.Cache.Stats().Misses
	var slowest time.Duration
	for i := 0; i < 100; i++ {
		start := time.Now()
		var v int
		if err := c.QueryRow(ctx, "select slow_value(5, 0.2)", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 5 {
			t.Fatalf("view %d: %d %v", i, v, err)
		}
		if took := time.Since(start); i > 0 && took > slowest {
			slowest = took
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := e.Cache.Stats().Misses - misses; n != 1 {
		t.Errorf("%d views missed, want only the first", n)
	}
	if slowest >= 200*time.Millisecond {
		t.Errorf("the slowest view after the first took %v: it waited for the warehouse", slowest)
	}
	if runs := pg.Calls(t, db, "select slow_value(%"); runs < 4 {
		t.Errorf("%d warehouse runs in 10 s of a 2 s TTL: the entry was not refreshed", runs)
	}
}

// TestDisconnectedClientsRunIsCached: a client that goes away while its
// miss runs stops waiting; the run finishes and its answer serves the
// next viewer with no new execution on the warehouse.
func TestDisconnectedClientsRunIsCached(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true})
	ctx := ctxT(t)
	gone, err := pgx.Connect(ctx, e.DSN())
	if err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	var v int
	if err := gone.QueryRow(qctx, "select slow_value(3, 1)", pgx.QueryExecModeSimpleProtocol).Scan(&v); err == nil {
		t.Fatal("the query did not outlast the client's patience")
	}
	gone.Close(ctx)
	time.Sleep(1500 * time.Millisecond) // the run finishes
	c := e.connect(t)
	start := time.Now()
	if err := c.QueryRow(ctx, "select slow_value(3, 1)", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 3 {
		t.Fatalf("next viewer: %d %v", v, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("the next viewer waited %v: the abandoned run was not cached", took)
	}
	if runs := pg.Calls(t, db, "select slow_value(%"); runs != 1 {
		t.Errorf("%d warehouse runs, want 1", runs)
	}
}

// TestCancelAbandonedStopsTheRun: under a rule with cancel_abandoned, a
// client that gives up on a miss has its run cancelled on the warehouse:
// it leaves pg_stat_activity, and the next viewer runs it anew.
func TestCancelAbandonedStopsTheRun(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	rules := policy.New(policy.Rule{Name: "adhoc", Cache: true, TTL: time.Hour, Timeout: time.Minute, CancelAbandoned: true, MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules})
	ctx := ctxT(t)
	c := e.connect(t)
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var v int
	if err := c.QueryRow(qctx, "select slow_value(4, 30)", pgx.QueryExecModeSimpleProtocol).Scan(&v); err == nil {
		t.Fatal("the query did not outlast the client's patience")
	}
	waitGone(t, pg, db, "select slow_value(4, 30)%", 5*time.Second)
}

// TestRuleTimeoutOfRelayedStatements: `SELECT pg_sleep(10)` (volatile:
// never cached, relayed) under a rule with a 1s timeout is cancelled on
// the warehouse after about a second, in the simple and the extended
// protocol, from a session that caches and from one whose rule caches
// nothing (relayed unparsed); the client gets 57014 naming the rule, and
// the session goes on.
func TestRuleTimeoutOfRelayedStatements(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	for _, tc := range []struct {
		name  string
		rules *policy.Set
	}{
		{"cached session", policy.New(policy.Rule{Name: "dashboards", Cache: true, TTL: time.Hour, Timeout: time.Second, MaxEntryBytes: 1 << 20})},
		{"session not cached", policy.New(
			policy.Rule{Name: "oltp", Match: policy.Match{Database: policy.MustGlob(db)}, Timeout: time.Second},
			policy.Rule{Name: "rest", Cache: true, TTL: time.Hour, Timeout: time.Minute, MaxEntryBytes: 1 << 20})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: tc.rules})
			ctx := ctxT(t)
			rule := tc.rules.Rules()[0].Name
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				c := e.connect(t)
				sleepCutAfterASecond(t, c, mode, rule)
				var n int
				if err := c.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(10)' and state = 'active'", mode).Scan(&n); err != nil || n != 0 {
					t.Fatalf("%v: after the timeout: %d still running, %v", mode, n, err)
				}
				// The session's timer serves its next statements: each
				// gets the whole second again, and the limit still holds.
				for i := 0; i < 3; i++ {
					if _, err := c.Exec(ctx, "select pg_sleep(0.6)", mode); err != nil {
						t.Fatalf("%v: a statement within the limit, #%d after a timeout: %v", mode, i+1, err)
					}
				}
				sleepCutAfterASecond(t, c, mode, rule) // the second long statement
			}
		})
	}
}

// TestShorterTimeoutAfterALongerOne: the session's one timer, set for a
// statement under a rule with a long timeout, is brought forward for the
// next statement's shorter one: `SELECT pg_sleep(10)` under a 1s rule is
// cancelled after about a second, though the statement before it armed
// the timer for a minute.
func TestShorterTimeoutAfterALongerOne(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	rules := policy.New(
		policy.Rule{Name: "exports", Match: policy.Match{SQL: regexp.MustCompile(`/\* export \*/`)}, Timeout: time.Minute},
		policy.Rule{Name: "interactive", Cache: true, TTL: time.Hour, Timeout: time.Second, MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules})
	ctx := ctxT(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := e.connect(t)
		if _, err := c.Exec(ctx, "select pg_sleep(0.05) /* export */", mode); err != nil {
			t.Fatalf("%v: the export: %v", mode, err)
		}
		sleepCutAfterASecond(t, c, mode, "interactive")
	}
}

// sleepCutAfterASecond runs `SELECT pg_sleep(10)` on c and expects it cut
// after about a second by the 1s timeout of rule, with 57014 naming it.
func sleepCutAfterASecond(t *testing.T, c *pgx.Conn, mode pgx.QueryExecMode, rule string) {
	t.Helper()
	start := time.Now()
	_, err := c.Exec(ctxT(t), "select pg_sleep(10)", mode)
	took := time.Since(start)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" || !strings.Contains(pe.Message, `"`+rule+`"`) {
		t.Fatalf("%v: got %v after %v, want 57014 naming rule %s", mode, err, took, rule)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("%v: answered after %v, want about 1s", mode, took)
	}
}

// TestCollapsedRequestsTakeNoPlace: thirty clients asking for the same
// answer at once on a queue of one worker and no waiting place all get
// it, from one warehouse run: they wait for that run, not in the queue.
func TestCollapsedRequestsTakeNoPlace(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, slowSchema)
	queues := executor.NewQueues([]string{"pg"}, map[string]executor.QueueConfig{"narrow": {Workers: 1, MaxQueued: 0, MaxWait: time.Minute}})
	rules := policy.New(policy.Rule{Name: "narrow", Cache: true, TTL: time.Hour, Timeout: time.Minute, Queue: "narrow", MaxEntryBytes: 1 << 20})
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules, queues: queues})
	ctx := ctxT(t)
	conns := make([]*pgx.Conn, 30)
	for i := range conns {
		conns[i] = e.connect(t)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			var v int
			if err := c.QueryRow(ctx, "select slow_value(8, 0.5)", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 8 {
				t.Errorf("got %d, %v", v, err)
			}
		})
	}
	wg.Wait()
	if runs := pg.Calls(t, db, "select slow_value(%"); runs != 1 {
		t.Errorf("%d warehouse runs, want 1", runs)
	}
}

// waitGone waits until no statement like like is active on the
// warehouse, failing after within.
func waitGone(t *testing.T, pg *testenv.PG, db, like string, within time.Duration) {
	t.Helper()
	direct := pg.Connect(t, db)
	deadline := time.Now().Add(within)
	for {
		var n int
		if err := direct.QueryRow(ctxT(t), "select count(*) from pg_stat_activity where query like $1 and state = 'active'", like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs on the warehouse", like)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
