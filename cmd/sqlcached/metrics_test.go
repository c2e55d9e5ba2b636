package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
)

// serveConfig runs sqlcached in this process with the configuration body
// (listen addresses are added), until the test ends; it returns the
// PostgreSQL and HTTP addresses.
func serveConfig(t *testing.T, body string) (string, string) {
	t.Helper()
	return serveConfigLog(t, body, slog.New(slog.DiscardHandler))
}

// serveConfigLog is serveConfig with the process log going to log.
func serveConfigLog(t *testing.T, body string, log *slog.Logger) (string, string) {
	t.Helper()
	return serveWarehouses(t, body, log, nil)
}

// serveWarehouses is serveConfigLog with backends' warehouses supplied
// by name (see serveExtras).
func serveWarehouses(t *testing.T, body string, log *slog.Logger, warehouses map[string]executor.Warehouse) (string, string) {
	t.Helper()
	pgAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg, err := config.Parse(fmt.Appendf(nil, "listen: {postgres: %q, http: %q}\nshutdown: {timeout: 5s}\n%s", pgAddr, httpAddr, body), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rules, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- runServer(ctx, cfg, rules, nil, &serveExtras{warehouses: warehouses, ready: func(*cache.Group, string, string) { close(ready) }}, log)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("runServer: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("runServer: %v", err)
		}
	})
	return pgAddr, httpAddr
}

// scrape reads /metrics and returns every sample by its name and labels
// as written ("sqlcached_requests_total{backend=\"w\",outcome=\"miss\",rule=\"r\"}").
func scrape(t *testing.T, httpAddr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the samples of name whose labels hold every one of match.
func sum(m map[string]float64, name string, match ...string) float64 {
	var total float64
	for k, v := range m {
		base, labels, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, want := range match {
			ok = ok && strings.Contains(labels, want)
		}
		if ok {
			total += v
		}
	}
	return total
}

// A scripted run of known hits, misses, collapses, relays and errors: the
// metrics say what the clients and pg_stat_statements saw.
func TestMetricsAgreeWithTheTruth(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, 100) i;
		create function slow_count(secs float) returns bigint language plpgsql stable as $$
		begin perform pg_sleep(secs); return (select count(*) from items); end $$`)
	pgAddr, httpAddr := serveConfig(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q, max_conns: 8}]
queues: {dash: {workers: 4, max_queued: 100}}
policies:
  - {name: dashboards, match: {tables: [items]}, ttl: 5m, queue: dash}
  - {name: other, cache: false}
`, pg.DSNUser("postgres", testenv.SuperPassword, db)))
	pg.ResetStatements(t)
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db)
	ctx := context.Background()
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	c := connect()
	exec := func(sql string) error {
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		return err
	}
	// 1 miss, then 2 hits.
	for range 3 {
		if err := exec("select count(*) from items where id < 50"); err != nil {
			t.Fatal(err)
		}
	}
	// 1 miss and 4 collapsed onto it: five viewers at once of a slow query.
	var wg sync.WaitGroup
	for range 5 {
		cc := connect()
		wg.Go(func() {
			if _, err := cc.Exec(ctx, "select slow_count(0.5), max(name) from items", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 2 relayed (the rule caches nothing), 1 error.
	for range 2 {
		if err := exec("select now()::text, 'uncached'"); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec("select * from items_that_are_not_there"); err == nil {
		t.Fatal("the missing table answered")
	}
	if got := sum(scrape(t, httpAddr), "sqlcached_cache_entries", `tier="l1"`); got != 2 {
		t.Errorf("L1 entries %v, want 2", got)
	}
	// 1 write, which invalidates both.
	if err := exec("update items set name = 'renamed' where id = 1"); err != nil {
		t.Fatal(err)
	}

	m := scrape(t, httpAddr)
	want := map[string]float64{"miss": 2, "hit_l1": 2, "collapsed": 4, "bypass": 3, "error": 1, "hit_l2": 0, "stale": 0}
	for out, n := range want {
		if got := sum(m, "sqlcached_requests_total", `outcome="`+out+`"`); got != n {
			t.Errorf("requests{outcome=%s} = %v, want %v", out, got, n)
		}
		if got := sum(m, "sqlcached_request_duration_seconds_count", `outcome="`+out+`"`); got != n {
			t.Errorf("request_duration_count{outcome=%s} = %v, want %v", out, got, n)
		}
	}
	cached := 0.0
	for _, out := range []string{"miss", "hit_l1", "collapsed"} {
		cached += sum(m, "sqlcached_requests_total", `rule="dashboards"`, `backend="wh"`, `outcome="`+out+`"`)
	}
	if cached != 8 {
		t.Errorf("cached requests of rule dashboards = %v, want 8", cached)
	}
	// The warehouse saw what the metrics say ran there.
	if n := pg.Calls(t, db, "select count(*) from items where id < $1"); n != 1 {
		t.Errorf("pg_stat_statements: the cached query ran %d times, want 1", n)
	}
	if n := pg.Calls(t, db, "select slow_count($1), max(name) from items"); n != 1 {
		t.Errorf("pg_stat_statements: the collapsed query ran %d times, want 1", n)
	}
	if n := pg.Calls(t, db, "select now()::text, $1"); n != 2 {
		t.Errorf("pg_stat_statements: the relayed query ran %d times, want 2", n)
	}
	if got := sum(m, "sqlcached_warehouse_duration_seconds_count", `queue="dash"`); got < 2 {
		t.Errorf("warehouse runs for the cache: %v, want at least the 2 misses", got)
	}
	// Four viewers were spared half a second each.
	if got := sum(m, "sqlcached_warehouse_time_saved_seconds_total"); got < 2.0 || got > 2.5 {
		t.Errorf("warehouse time saved %v s, want about 2 (4 x 0.5 s, and 2 fast hits)", got)
	}
	if got := sum(m, "sqlcached_invalidations_total", `reason="write"`); got != 1 {
		t.Errorf("invalidations{write} = %v, want 1", got)
	}
	if got := sum(m, "sqlcached_client_connections"); got != 6 {
		t.Errorf("client connections %v, want 6", got)
	}
	if got := sum(m, "sqlcached_cache_entries", `tier="l1"`); got != 0 {
		t.Errorf("L1 entries %v after the write, want 0", got)
	}
	if sum(m, "sqlcached_pool_max_connections", `backend="wh"`) != 8 || sum(m, "sqlcached_queue_workers", `queue="dash"`) != 4 {
		t.Errorf("pool and queue gauges missing: %v", m)
	}
	if sum(m, "sqlcached_build_info") != 1 {
		t.Error("no build info")
	}
}
