package proxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// psqlODBC (Tableau's and Excel's ODBC path) through pyodbc, and
// node-postgres as Cube and Evidence drive it, run by the scripts in
// testdata/bitools directly and through the proxy with its cache on,
// counting the warehouse's executions with pg_stat_statements.
//
// What the clients send, as a PostgreSQL 15 with log_statement=all saw it
// (Debian's psqlODBC 13.02 "PostgreSQL Unicode" driver, pyodbc 4.0.34; pg
// 8.23, pg-cursor 2.22). Q is a simple Query message; P/B/D/E/H/C/S are
// Parse/Bind/Describe/Execute/Flush/Close/Sync.
//
// psqlODBC, connect:
//
//	Q SET DateStyle = 'ISO';SET extra_float_digits = 2;show transaction_isolation
//	Q select oid, typbasetype from pg_type where typname = 'lo'
//
// psqlODBC with its default settings, autocommit off (pyodbc's default),
// cursor.execute of a statement without parameters, fetchall, commit: the
// driver sends the statement in the same Query as the BEGIN it needs, not
// through the extended protocol.
//
//	Q BEGIN;<query>
//	Q select n.nspname, c.relname, a.attname, ... where c.oid = <table oid> ...
//	  (only the connection's first statement: the driver's lookup of the
//	  columns of the RowDescription's table, for SQLDescribeCol)
//	Q COMMIT
//
// psqlODBC with UseDeclareFetch=1;Fetch=100 reads through a WITH HOLD
// cursor named after the statement handle's address, a new name for every
// statement; it stops fetching when a FETCH returns fewer than 100 rows:
//
//	Q BEGIN;declare "SQL_CUR0x27baeb20" cursor with hold for <query>;fetch 100 in "SQL_CUR0x27baeb20"
//	Q select n.nspname, ... (first statement only, as above)
//	Q SAVEPOINT _EXEC_SVP_0x27ba1770;fetch 100 in "SQL_CUR0x27baeb20"
//	Q fetch 100 in "SQL_CUR0x27baeb20"   (twice: 100, then the last 50)
//	Q close "SQL_CUR0x27baeb20"
//	Q COMMIT
//
// pg_stat_statements counts the DECLARE (a utility statement, under its
// full text, so one entry per cursor name) and every FETCH; the SELECT
// inside the DECLARE is not counted on its own.
//
// node-postgres as Cube uses it: on every pool checkout
//
//	Q SET TIME ZONE 'UTC'
//	Q SET statement_timeout TO 600000
//	Q SELECT oid, CASE WHEN typcategory = 'E' ... (the driver's first use only)
//	P("", <query with $1, $2>) B("", "", 2 text values) D(P) E("", 0) S
//
// node-postgres as Evidence uses it, a new pool (so a new connection) per
// run:
//
//	Q WITH root as (<query>) SELECT COUNT(*) as rows FROM root
//	P("", <query>) B("C_1", "") D(P, "C_1") H
//	E("C_1", 100) H   (four times: 100, 100, 100, then 50 and CommandComplete)
//	C(P, "C_1") S
//	Terminate
//
// pg_stat_statements counts the portal's query once, however many
// Executes read it.

// biOrdersSchema is the warehouse table every pattern reads: 4000 orders
// over 7 regions and 350 days, with a text, a numeric and a date column.
const biOrdersSchema = `create table bi_orders (id int primary key, region text not null, amount numeric(12,2) not null, day date not null);
insert into bi_orders
select g, 'region-' || (g % 7), round(((g * 7919) % 100000) / 100.0, 2), date '2024-01-01' + (g * 13 % 350)
from generate_series(1, 4000) g;
analyze bi_orders`

const biRepeats = 5

// biTargets is an env with the cache on and its direct twin, both holding
// bi_orders.
func biTargets(t *testing.T) (*env, clientTarget) {
	t.Helper()
	return cachedTwins(t, biOrdersSchema)
}

// runODBC runs testdata/bitools/odbc.py in one mode against a target.
func runODBC(t *testing.T, tg clientTarget, mode string) string {
	t.Helper()
	script, err := filepath.Abs("testdata/bitools/odbc.py")
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, tg, t.TempDir(), nil, 3*time.Minute, python, script, mode, strconv.Itoa(biRepeats))
	if r.Code != 0 {
		t.Fatalf("odbc.py %s on %s (psqlODBC through pyodbc: Debian packages odbc-postgresql, unixodbc, python3-pyodbc):\n%s", mode, tg.Name, r)
	}
	return r.Stdout
}

// nodeModules is the node_modules holding pg and pg-cursor: the
// directory SQLCACHED_NODE_MODULES names, else the cache scripts/test.sh
// installs them into.
func nodeModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SQLCACHED_NODE_MODULES")
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatalf("node-postgres is required by this test: SQLCACHED_NODE_MODULES is not set and there is no home directory: %v", err)
			}
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "sqlcached-test", "node", "node_modules")
	}
	for _, m := range []string{"pg", "pg-cursor"} {
		if _, err := os.Stat(filepath.Join(dir, m, "package.json")); err != nil {
			t.Fatalf("node-postgres is required by this test: %s has no %s (%v); scripts/test.sh installs it "+
				"(npm install --prefix DIR pg@8 pg-cursor@2), or set SQLCACHED_NODE_MODULES to a node_modules that has it", dir, m, err)
		}
	}
	return dir
}

// runNode runs testdata/bitools/node.js in one mode against a target.
func runNode(t *testing.T, tg clientTarget, mode string) string {
	t.Helper()
	mods := nodeModules(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js is required by this test: %v", err)
	}
	script, err := filepath.Abs("testdata/bitools/node.js")
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, tg, t.TempDir(), nil, 3*time.Minute, "env", "NODE_PATH="+mods, node, script, mode, strconv.Itoa(biRepeats))
	if r.Code != 0 {
		t.Fatalf("node.js %s on %s:\n%s", mode, tg.Name, r)
	}
	return r.Stdout
}

// checkBIRun checks a script's output on PostgreSQL itself: a line per
// repeat, each the same answer, which contains want; so that two equally
// wrong runs cannot pass the comparison with the proxy's.
func checkBIRun(t *testing.T, what, out, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != biRepeats {
		t.Fatalf("%s printed %d lines, want %d:\n%s", what, len(lines), biRepeats, out)
	}
	_, first, _ := strings.Cut(lines[0], " ")
	if !strings.Contains(first, want) {
		t.Fatalf("%s: %q does not contain %q", what, first, want)
	}
	for i, l := range lines {
		if n, answer, _ := strings.Cut(l, " "); n != strconv.Itoa(i) || answer != first {
			t.Fatalf("%s: repeat %d printed %q, want %d %s", what, i, l, i, first)
		}
	}
}

// compareBI checks that the proxy's output is PostgreSQL's.
func compareBI(t *testing.T, what, want, got string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: the proxy's answers differ from PostgreSQL's (direct -, proxy +):\n%s", what, lineDiff(want, got))
	}
}

// TestODBCDefaultPatternRunsOnce: Tableau's and Excel's psqlODBC with its
// default settings and autocommit off runs a dashboard query five times,
// each time committing, on one connection and on a new connection per
// repeat: the warehouse runs it once, and the answers are PostgreSQL's.
func TestODBCDefaultPatternRunsOnce(t *testing.T) {
	for _, mode := range []string{"default", "reconnect"} {
		t.Run(mode, func(t *testing.T) {
			e, direct := biTargets(t)
			want := runODBC(t, direct, mode)
			checkBIRun(t, "odbc.py "+mode+" on direct", want, "str,date,Decimal,int rows=84 ")
			got := runODBC(t, e.viaProxy(), mode)
			compareBI(t, "odbc.py "+mode, want, got)
			const query = `%"sum:amount:ok"%`
			if n := e.PG.Calls(t, direct.Database, query); n != biRepeats {
				t.Fatalf("control: directly the dashboard query ran %d times, want %d", n, biRepeats)
			}
			if n := e.PG.Calls(t, e.Database, query); n != 1 {
				t.Errorf("%d repeats (BEGIN;<query> in one Query message, then COMMIT) ran the dashboard query %d times on the warehouse, want 1", biRepeats, n)
			}
			t.Logf("through the proxy the warehouse ran the driver's column lookup %d times, BEGIN %d times, COMMIT %d times",
				e.PG.Calls(t, e.Database, "select n.nspname, c.relname, a.attname%"), e.PG.Calls(t, e.Database, "BEGIN"), e.PG.Calls(t, e.Database, "COMMIT"))
		})
	}
}

// TestODBCDeclareFetchAnswersRight: psqlODBC with UseDeclareFetch=1 and
// Fetch=100 reads a 350-row query five times through WITH HOLD cursors,
// four FETCHes each, committing after each: the answers through the proxy
// are PostgreSQL's, the query runs once on the warehouse, and no
// DECLARE or FETCH reaches it: the proxy answers the cursors from the
// cache.
func TestODBCDeclareFetchAnswersRight(t *testing.T) {
	e, direct := biTargets(t)
	want := runODBC(t, direct, "declare")
	checkBIRun(t, "odbc.py declare on direct", want, "date,int,Decimal rows=350 ")
	got := runODBC(t, e.viaProxy(), "declare")
	compareBI(t, "odbc.py declare", want, got)
	// The DECLAREs, and any plain SELECT of the same text the proxy may
	// run in their place.
	const query, fetches = `%"odbc_orders"%`, `fetch % in "SQL_CUR%`
	if n := e.PG.Calls(t, direct.Database, query); n != biRepeats {
		t.Fatalf("control: directly the cursor's query ran %d times, want %d", n, biRepeats)
	}
	if n := e.PG.Calls(t, direct.Database, fetches); n != 4*biRepeats {
		t.Fatalf("control: directly %d FETCHes ran, want %d", n, 4*biRepeats)
	}
	if n := e.PG.Calls(t, e.Database, query); n != 1 {
		t.Errorf("%d repeats ran the cursor's query %d times on the warehouse, want 1", biRepeats, n)
	}
	if n := e.PG.Calls(t, e.Database, fetches); n != 0 {
		t.Errorf("%d FETCHes reached the warehouse, want 0: the proxy answers them", n)
	}
}

// TestNodePostgresCubePatternRunsOnce: Cube's node-postgres pool sets the
// time zone and statement_timeout on every checkout, then runs its query
// as an unnamed extended statement with the two values of a date range:
// five repeats run the query once on the warehouse, and the answers are
// PostgreSQL's.
func TestNodePostgresCubePatternRunsOnce(t *testing.T) {
	e, direct := biTargets(t)
	want := runNode(t, direct, "cube")
	checkBIRun(t, "node.js cube on direct", want, "types=25,1114,1700,20 rows=49 ")
	got := runNode(t, e.viaProxy(), "cube")
	compareBI(t, "node.js cube", want, got)
	const query = `%"orders__revenue"%`
	if n := e.PG.Calls(t, direct.Database, query); n != biRepeats {
		t.Fatalf("control: directly Cube's query ran %d times, want %d", n, biRepeats)
	}
	if n := e.PG.Calls(t, e.Database, query); n != 1 {
		t.Errorf("%d repeats (SET TIME ZONE, SET statement_timeout, then Parse/Bind/Describe/Execute/Sync with 2 values) ran Cube's query %d times on the warehouse, want 1", biRepeats, n)
	}
}

// TestNodePostgresEvidencePattern: Evidence builds a new pool per run,
// counts the rows with `WITH root as (<query>) SELECT COUNT(*) ...` and
// reads the query through pg-cursor 100 rows at a time (Execute with a
// row limit and Flush, Close and Sync at the end): the answers are
// PostgreSQL's, and the count and the cursor's query each run once on the
// warehouse.
func TestNodePostgresEvidencePattern(t *testing.T) {
	e, direct := biTargets(t)
	want := runNode(t, direct, "evidence")
	checkBIRun(t, "node.js evidence on direct", want, "expected=350 batches=100+100+100+50 types=1082,20,1700,20 rows=350 ")
	got := runNode(t, e.viaProxy(), "evidence")
	compareBI(t, "node.js evidence", want, got)
	const count, query = `WITH root as (%evidence_orders%) SELECT COUNT(*) as rows FROM root`, `select day, count(*) as evidence_orders%`
	for _, q := range []string{count, query} {
		if n := e.PG.Calls(t, direct.Database, q); n != biRepeats {
			t.Fatalf("control: directly %q ran %d times, want %d", q, n, biRepeats)
		}
	}
	for _, q := range []string{count, query} {
		if n := e.PG.Calls(t, e.Database, q); n != 1 {
			t.Errorf("%d runs ran %q %d times on the warehouse, want 1", biRepeats, q, n)
		}
	}
}
