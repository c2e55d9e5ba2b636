package proxy_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// Metabase, driven the way it drives the PostgreSQL JDBC driver
// (testdata/bitools/Metabase.java: per question, isValid at checkout,
// SET SESSION CHARACTERISTICS ... READ UNCOMMITTED, SET ROLE NONE, read-only
// with autocommit off so that the driver sends BEGIN READ ONLY, a
// PreparedStatement with the Metabase remark, one bound parameter and fetch
// size 500 over 1201 rows, commit, then the pool's reset to READ
// COMMITTED), directly and through the proxy with its cache on, counting
// executions on the warehouse.

// metabaseSchema is a table of 1500 orders with the column types Metabase
// questions read; 1201 of them match the question's filter, more than two
// fetches of 500.
const metabaseSchema = `create table mb_orders (
	id int primary key,
	total numeric(12,2),
	product text,
	created_at timestamp,
	paid boolean,
	quantity int);
insert into mb_orders
select g,
	case when g % 50 = 0 then null else round((g * 7.31) % 1000 + (g % 100) / 100.0, 2) end,
	case when g % 97 = 0 then null when g % 11 = 0 then 'Gadget ü "' || g || E'"\ttab' else 'Widget ' || (g % 13) end,
	timestamp '2024-01-01' + g * interval '1 hour' + (g % 1000) * interval '1 millisecond',
	case when g % 31 = 0 then null else g % 3 = 0 end,
	g % 17
from generate_series(1, 1500) g`

// metabaseQuestion matches the question's text as pg_stat_statements
// keeps it.
const metabaseQuestion = `%FROM "public"."mb_orders" WHERE%`

// compileMetabase compiles Metabase.java and returns its class directory.
func compileMetabase(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("testdata/bitools/Metabase.java")
	if err != nil {
		t.Fatal(err)
	}
	classes := t.TempDir()
	if r := runTool(t, clientTarget{Name: "javac"}, classes, nil, 3*time.Minute, "javac", "-cp", jdbcDriver, "-d", classes, src); r.Code != 0 {
		t.Fatalf("javac:\n%s", r)
	}
	return classes
}

// metabase runs Metabase.java against a target, pooled (one connection for
// every repeat) or fresh (a new connection per repeat, with Metabase's
// ApplicationName), and returns its lines.
func metabase(t *testing.T, classes string, tg clientTarget, mode string, repeats int) string {
	t.Helper()
	url := fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s&password=%s&sslmode=disable",
		tg.Host, tg.Port, tg.Database, testenv.SuperUser, testenv.SuperPassword)
	if mode == "fresh" {
		url += "&ApplicationName=Metabase"
	}
	r := runTool(t, tg, classes, nil, 3*time.Minute, "java", "-cp", classes+":"+jdbcDriver, "Metabase", url, mode, strconv.Itoa(repeats))
	if r.Code != 0 {
		t.Fatalf("Metabase %s on %s:\n%s", mode, tg.Name, r)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if len(lines) != repeats {
		t.Fatalf("Metabase %s on %s printed %d lines, want %d:\n%s", mode, tg.Name, len(lines), repeats, r)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, strconv.Itoa(i)+" rows=1201 ") {
			t.Fatalf("Metabase %s on %s, repeat %d: %q, want 1201 rows\n%s", mode, tg.Name, i, l, r)
		}
	}
	return r.Stdout
}

// testMetabasePattern runs the question repeats times directly and through
// the proxy: the same answers, computed repeats times directly and once
// through the proxy.
func testMetabasePattern(t *testing.T, mode string, repeats int) {
	classes := compileMetabase(t)
	e, direct := cachedTwins(t, metabaseSchema)
	want := metabase(t, classes, direct, mode, repeats)
	got := metabase(t, classes, e.viaProxy(), mode, repeats)
	if got != want {
		t.Errorf("the proxy's answers differ from PostgreSQL's (direct -, proxy +):\n%s", lineDiff(want, got))
	}
	if n := e.PG.Calls(t, direct.Database, metabaseQuestion); n != int64(repeats) {
		t.Fatalf("control: directly, %d repeats ran the question %d times, want %d", repeats, n, repeats)
	}
	if n := e.PG.Calls(t, e.Database, metabaseQuestion); n != 1 {
		t.Errorf("through the proxy, %d repeats ran the question %d times on the warehouse, want 1", repeats, n)
	}
}

// TestMetabasePatternRunsOnce: one pooled connection asks the same question
// ten times; past prepareThreshold the driver names the statement and asks
// for binary results. The warehouse runs it once.
func TestMetabasePatternRunsOnce(t *testing.T) { testMetabasePattern(t, "pooled", 10) }

// TestMetabaseFreshConnectionsRunOnce: eight checkouts of new connections
// (ApplicationName=Metabase) ask the same question, each as an unnamed
// statement with text results. The warehouse runs it once.
func TestMetabaseFreshConnectionsRunOnce(t *testing.T) { testMetabasePattern(t, "fresh", 8) }
