package proxy_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Superset, driven through its own code paths (testdata/bitools/superset.py:
// SQLAlchemy 1.4 and psycopg2, a new NullPool engine per request, the
// search_path prequery inside the transaction, SQL Lab's pg_backend_pid),
// directly and through the proxy, counting executions on the warehouse.

// superset runs superset.py against a target and returns its lines.
func superset(t *testing.T, tg clientTarget, mode, schemas string, repeats int) string {
	t.Helper()
	script, err := filepath.Abs("testdata/bitools/superset.py")
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, tg, t.TempDir(), nil, 4*time.Minute, python, script, tg.DSN(), mode, schemas, strconv.Itoa(repeats))
	if r.Code != 0 {
		t.Fatalf("superset.py %s on %s:\n%s", mode, tg.Name, r)
	}
	if n := strings.Count(r.Stdout, "\n"); n != repeats {
		t.Fatalf("superset.py %s on %s printed %d lines, want %d:\n%s", mode, tg.Name, n, repeats, r)
	}
	return r.Stdout
}

// supersetBoth runs superset.py directly and through the proxy, checks
// that the answers are the same, and returns the proxy's lines.
func supersetBoth(t *testing.T, e *env, direct clientTarget, mode, schemas string, repeats int) string {
	t.Helper()
	want := superset(t, direct, mode, schemas, repeats)
	got := superset(t, e.viaProxy(), mode, schemas, repeats)
	if got != want {
		t.Errorf("the proxy's answers differ from PostgreSQL's (direct -, proxy +):\n%s", lineDiff(want, got))
	}
	return got
}

const supersetSchema = `create table dash_sales (region text, amount int);
insert into dash_sales select 'r' || (g % 5), g from generate_series(1, 5000) g`

// TestSupersetChartRequestsRunOnce: five requests of one chart, each on a
// new connection with SQLAlchemy's first-connect probes and the
// search_path prequery inside the transaction, run the chart's SQL once on
// the warehouse; the probes and the SET reach it at most once too.
func TestSupersetChartRequestsRunOnce(t *testing.T) {
	e, direct := cachedTwins(t, supersetSchema)
	supersetBoth(t, e, direct, "chart", "public", 5)
	if n := e.PG.Calls(t, direct.Database, "%FROM dash_sales%GROUP BY%"); n != 5 {
		t.Fatalf("control: direct ran the chart %d times, want 5", n)
	}
	if n := e.PG.Calls(t, e.Database, "%FROM dash_sales%GROUP BY%"); n != 1 {
		t.Errorf("5 chart requests ran the chart's SQL %d times on the warehouse, want 1", n)
	}
	for _, probe := range []string{"select pg_catalog.version()", "select current_schema()", "show transaction isolation level",
		"show standard_conforming_strings", "set search_path = %", "%typname = $1%"} {
		if n := e.PG.Calls(t, e.Database, probe); n > 1 {
			t.Errorf("%q ran %d times on the warehouse, want at most once", probe, n)
		}
	}
}

// TestSupersetSearchPathKeepsSchemasApart: two datasets of the same table
// name in two schemas, chosen by the prequery's search_path inside the
// transaction, get their own answers, each computed once.
func TestSupersetSearchPathKeepsSchemasApart(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	direct := e.twin(t)
	const schemas = `create schema s1; create schema s2;
create table s1.dash_sales (region text, amount int);
create table s2.dash_sales (region text, amount int);
insert into s1.dash_sales select 'a' || (g % 3), g from generate_series(1, 3000) g;
insert into s2.dash_sales select 'b' || (g % 4), 2 * g from generate_series(1, 4000) g`
	for _, db := range []string{e.Database, direct.Database} {
		e.PG.Exec(t, db, schemas)
	}
	got := supersetBoth(t, e, direct, "chart", "s1,s2", 6)
	if !strings.Contains(got, "1 s2 b") || !strings.Contains(got, "0 s1 a") {
		t.Errorf("the schemas' answers are not their own:\n%s", got)
	}
	if n := e.PG.Calls(t, e.Database, "%FROM dash_sales%GROUP BY%"); n != 2 {
		t.Errorf("6 requests over 2 schemas ran the chart's SQL %d times on the warehouse, want 2", n)
	}
}

// TestSupersetSQLLabRepeatsRunOnce: SQL Lab asks the backend's pid, which
// is never answered from the cache and is the backend of the transaction,
// then runs the query: its repeats run once on the warehouse.
func TestSupersetSQLLabRepeatsRunOnce(t *testing.T) {
	e, direct := cachedTwins(t, supersetSchema)
	got := supersetBoth(t, e, direct, "sqllab", "public", 5)
	if !strings.Contains(got, "pid-stable=True rows=51") {
		t.Errorf("SQL Lab's answers through the proxy:\n%s", got)
	}
	if n := e.PG.Calls(t, e.Database, "%amount % $1 = $2%"); n != 1 {
		t.Errorf("5 SQL Lab runs ran the query %d times on the warehouse, want 1", n)
	}
	if n := e.PG.Calls(t, e.Database, "SELECT pg_backend_pid()"); n != 10 {
		t.Errorf("pg_backend_pid() ran %d times on the warehouse, want all 10", n)
	}
}

// TestSupersetSQLLabStop: SQL Lab's Stop terminates, by the pid the client
// got, the backend that runs its query, through the proxy as on
// PostgreSQL: with the search_path prequery and without it (then the pid
// is the transaction's first statement), twice each, so that a pid
// answered from the cache would show.
func TestSupersetSQLLabStop(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	direct := e.twin(t)
	for _, tg := range []clientTarget{direct, e.viaProxy()} {
		for _, schema := range []string{"public", ""} {
			got := superset(t, tg, "stop", schema+","+schema, 2)
			for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				want := strconv.Itoa(i) + " " + schema + " terminated=True ended by OperationalError fast=True"
				if line != want {
					t.Errorf("on %s: got %q, want %q", tg.Name, line, want)
				}
			}
		}
	}
}
