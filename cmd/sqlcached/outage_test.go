package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// Redis killed for 30 s under 32 clients: they keep getting answers, the
// log says so in a handful of lines, and the metrics show the outage.
func TestRedisOutageUnderLoad(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, "create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, 100) i")
	rd := testenv.NewRedis(t)
	var logs testenv.LogBuffer
	pgAddr, httpAddr := serveConfigLog(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q, max_conns: 16}]
cache:
  l2: {redis: {url: %q}, timeout: 250ms}
policies:
  - {name: default, ttl: 5m}
`, pg.DSNUser("postgres", testenv.SuperPassword, db), rd.URL(0)), slog.New(slog.NewTextHandler(&logs, nil)))
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db)

	var answers, failures atomic.Int64
	var lastErr atomic.Value
	stop := load(t, dsn, 32, func(i, n int) string {
		if n%50 == 49 {
			return fmt.Sprintf("update items set name = 'item %d' where id = %d", n, i%20+1) // invalidates
		}
		return fmt.Sprintf("select name from items where id = %d", (i*7+n)%20+1)
	}, func(err error) {
		if err != nil {
			failures.Add(1)
			lastErr.Store(err.Error())
		} else {
			answers.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
	})
	time.Sleep(2 * time.Second)
	before := answers.Load()
	if err := rd.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Second)
	mid := scrape(t, httpAddr)
	time.Sleep(15 * time.Second)
	during := answers.Load() - before
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis takes calls again once the breaker's probe gets through.
	end := scrape(t, httpAddr)
	for deadline := time.Now().Add(30 * time.Second); sum(end, "sqlcached_l2_breaker_open") != 0 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		end = scrape(t, httpAddr)
	}
	time.Sleep(2 * time.Second)
	stop()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d statements failed (last: %v); without Redis the proxy answers from L1 and the warehouse", n, lastErr.Load())
	}
	if during < 1000 {
		t.Errorf("only %d answers during the outage", during)
	}
	if sum(mid, "sqlcached_l2_breaker_open") != 1 {
		t.Errorf("mid-outage the breaker gauge is %v, want 1", sum(mid, "sqlcached_l2_breaker_open"))
	}
	if sum(end, "sqlcached_l2_breaker_open") != 0 {
		t.Errorf("after the outage the breaker gauge is %v, want 0", sum(end, "sqlcached_l2_breaker_open"))
	}
	if sum(end, "sqlcached_l2_errors_total") == 0 || sum(end, "sqlcached_l2_duration_seconds_count", `op="get"`) == 0 {
		t.Errorf("the metrics do not show the outage: l2 errors %v", sum(end, "sqlcached_l2_errors_total"))
	}
	var redisLines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(strings.ToLower(l), "redis") {
			redisLines = append(redisLines, l)
		}
	}
	t.Logf("%d answers during the outage; the log about Redis:\n%s", during, strings.Join(redisLines, "\n"))
	if len(redisLines) == 0 || len(redisLines) > 5 {
		t.Errorf("%d log lines about Redis, want a handful", len(redisLines))
	}
	if !strings.Contains(logs.String(), "recovered") {
		t.Error("no line says Redis recovered")
	}
}

// The warehouse stopped for a few seconds under 16 clients: the log says
// so in a handful of lines, not one per session or request, and clients
// are answered again once it is back.
func TestWarehouseOutageUnderLoad(t *testing.T) {
	pg := testenv.NewPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, "create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, 100) i")
	var logs testenv.LogBuffer
	pgAddr, _ := serveConfigLog(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: sales, dsn: %q, max_conns: 8}]
pool: {max_wait: 1s}
policies:
  - {name: default, cache: false}
`, pg.DSNUser("postgres", testenv.SuperPassword, db)), slog.New(slog.NewTextHandler(&logs, nil)))
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db)
	var failures, afterwards atomic.Int64
	var back atomic.Bool
	stop := load(t, dsn, 16, func(i, n int) string {
		return fmt.Sprintf("select name from items where id = %d", (i+n)%100+1)
	}, func(err error) {
		switch {
		case err != nil:
			failures.Add(1)
			time.Sleep(20 * time.Millisecond)
		case back.Load():
			afterwards.Add(1)
		}
	})
	time.Sleep(time.Second)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	back.Store(true)
	time.Sleep(2 * time.Second)
	stop()

	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "warehouse") {
			lines = append(lines, l)
		}
	}
	t.Logf("%d statements failed during the outage; the log about the warehouse:\n%s", failures.Load(), strings.Join(lines, "\n"))
	if failures.Load() < 16 {
		t.Errorf("only %d failures: the outage was not felt", failures.Load())
	}
	if afterwards.Load() == 0 {
		t.Error("no answers after the warehouse came back")
	}
	if len(lines) == 0 || len(lines) > 6 {
		t.Errorf("%d log lines about the warehouse, want a handful", len(lines))
	}
	if !strings.Contains(logs.String(), "recovered") {
		t.Error("no line says the warehouse recovered")
	}
}

// load keeps clients sessions of dsn busy, session i sending stmt(i, n)
// for its n-th statement and passing its error to done, until the
// function returned is called; that function waits for them.
func load(t *testing.T, dsn string, clients int, stmt func(i, n int) string, done func(error)) func() {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range clients {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				_, err := c.Exec(context.Background(), stmt(i, n), pgx.QueryExecModeSimpleProtocol)
				done(err)
			}
		})
	}
	return func() {
		stop()
		wg.Wait()
	}
}
