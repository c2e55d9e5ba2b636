package proxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/proxy"
)

// TestDisconnectInTransactionKeepsConnection: a client that leaves in the
// middle of a transaction has it rolled back, and its warehouse connection
// goes back to the pool (as pgbouncer does) rather than being closed.
func TestDisconnectInTransactionKeepsConnection(t *testing.T) {
	e := newEnv(t, envOptions{cache: true, maxConns: 1})
	e.PG.Exec(t, e.Database, "create table ledger (id int)")
	ctx := ctxT(t)
	a := e.connect(t)
	var pid int
	if _, err := a.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "insert into ledger values (1)"); err != nil {
		t.Fatal(err)
	}
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.connect(t)
	var pid2, n int
	if err := b.QueryRow(ctx, "select pg_backend_pid(), (select count(*) from ledger)").Scan(&pid2, &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the departed client's insert is visible: %d rows, want 0", n)
	}
	if pid2 != pid {
		t.Errorf("the next client runs on backend %d, want the departed client's %d, rolled back and reused", pid2, pid)
	}
}

// sessionEnv is a proxy in session pooling with the cache on.
func sessionEnv(t *testing.T) *env {
	return newEnv(t, envOptions{cache: true, mutate: func(c *proxy.Config) {
		c.SessionPooling = func(string, string) bool { return true }
	}})
}

// TestSessionPoolingCaches: in session pooling a client keeps its
// backend for its life (the pid it reads is the one its statements run
// on), and its repeated reads still run once on the warehouse, through
// the simple and the extended protocol.
func TestSessionPoolingCaches(t *testing.T) {
	e := sessionEnv(t)
	e.PG.Exec(t, e.Database, dashSchema)
	ctx := ctxT(t)
	c := e.connect(t)
	var pid int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := c.PgConn().PID(); got != uint32(pid) {
		t.Errorf("the session's process ID is %d, its backend's %d: pg_terminate_backend of it would miss", got, pid)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		q := "select region, sum(amount) from dash_sales where amount > $1 group by region order by region"
		if mode == pgx.QueryExecModeSimpleProtocol {
			q = "select region, sum(amount) from dash_sales where amount > $1 group by 1 order by 1"
		}
		for i := 0; i < 5; i++ {
			var region string
			var sum int64
			if err := c.QueryRow(ctx, q, mode, 100).Scan(&region, &sum); err != nil {
				t.Fatal(err)
			}
			if region != "r0" || sum != 2501450 {
				t.Fatalf("%v repeat %d: got %s %d", mode, i, region, sum)
			}
		}
	}
	if n := e.PG.Calls(t, e.Database, "%from dash_sales where amount > $1 group by region%"); n != 1 {
		t.Errorf("5 extended-protocol repeats ran %d times on the warehouse, want 1", n)
	}
	if n := e.PG.Calls(t, e.Database, "%from dash_sales where amount > % group by 1 order by 1"); n != 1 {
		t.Errorf("5 simple-protocol repeats ran %d times on the warehouse, want 1", n)
	}
	var pid2 int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid2 != pid {
		t.Errorf("the session moved from backend %d to %d", pid, pid2)
	}
}

// TestSessionPoolingKillsOwnBackend: a client terminating its own backend
// by pid ends its session, as on PostgreSQL. (In transaction pooling the
// pid is the backend of the statement only: README, Limits.)
func TestSessionPoolingKillsOwnBackend(t *testing.T) {
	e := sessionEnv(t)
	ctx := ctxT(t)
	for _, dsn := range []string{e.DirectDSN(), e.DSN()} {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, "select pg_terminate_backend(pg_backend_pid())")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57P01" {
			t.Errorf("%s: terminating the own backend gave %v, want 57P01", dsn, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.Ping(pctx); err == nil {
			t.Errorf("%s: the session lives on after its backend was terminated", dsn)
		}
		cancel()
		c.Close(ctx)
	}
}

// TestSessionPoolingStatementsKeepClientNames: in session pooling a
// client's prepared statements are prepared under its own names, as
// pg_prepared_statements shows on PostgreSQL, Close and DEALLOCATE remove
// them there, and the next session on the same warehouse connection finds
// none of them.
func TestSessionPoolingStatementsKeepClientNames(t *testing.T) {
	e := newEnv(t, envOptions{cache: true, maxConns: 1, mutate: func(c *proxy.Config) {
		c.SessionPooling = func(string, string) bool { return true }
	}})
	ctx := ctxT(t)
	names := func(pc *pgconn.PgConn) string {
		r := pc.ExecParams(ctx, "select coalesce(string_agg(name, ',' order by name), '') from pg_prepared_statements", nil, nil, nil, nil).Read()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return string(r.Rows[0][0])
	}
	for round, text := range []string{"select 1 as one", "select 2 as two"} {
		pc, err := pgconn.Connect(ctx, e.DSN())
		if err != nil {
			t.Fatal(err)
		}
		if got := names(pc); got != "" {
			t.Errorf("round %d: a new session finds statements %q", round, got)
		}
		if _, err := pc.Prepare(ctx, "mine", text, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Prepare(ctx, "other", "select 3", nil); err != nil {
			t.Fatal(err)
		}
		if got := names(pc); got != "mine,other" {
			t.Errorf("round %d: pg_prepared_statements has %q, want mine,other", round, got)
		}
		r := pc.ExecPrepared(ctx, "mine", nil, nil, nil).Read()
		if r.Err != nil || string(r.Rows[0][0]) != text[7:8] {
			t.Errorf("round %d: mine gave %v %q", round, r.Err, r.Rows)
		}
		if err := pc.Deallocate(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Exec(ctx, "deallocate mine").ReadAll(); err != nil {
			t.Fatal(err)
		}
		if got := names(pc); got != "" {
			t.Errorf("round %d: after Close and DEALLOCATE pg_prepared_statements has %q", round, got)
		}
		if _, err := pc.Prepare(ctx, "mine", text, nil); err != nil {
			t.Fatal(err)
		}
		pc.Close(ctx) // leaves "mine" prepared: the next session must not see it
	}
}
