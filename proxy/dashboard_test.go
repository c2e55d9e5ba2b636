package proxy_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

const dashSchema = `create table dash_sales (region text, amount int);
insert into dash_sales select 'r' || (g % 5), g from generate_series(1, 5000) g`

// TestSupersetStackRepeatsRunOnce: SQLAlchemy over psycopg2 with
// autocommit off repeats a dashboard query; the warehouse runs it once.
func TestSupersetStackRepeatsRunOnce(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, dashSchema)
	tg := e.viaProxy()
	dsn := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, tg.Host, tg.Port, tg.Database)
	script, err := filepath.Abs("testdata/dashboard/repeat.py")
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, tg, t.TempDir(), nil, 2*time.Minute, "/usr/bin/python3", script, dsn, "20")
	if r.Code != 0 {
		t.Fatalf("repeat.py:\n%s", r)
	}
	checkRepeats(t, r.Stdout, 20)
	if n := e.PG.Calls(t, e.Database, "%from dash_sales group by region%"); n != 1 {
		t.Fatalf("20 repeats ran %d times on the warehouse, want 1", n)
	}
}

// TestJDBCAutocommitOffRepeatsAreCached: the JDBC driver with autocommit
// off (BEGIN sent in front of each transaction's first query) repeats a
// dashboard query; the warehouse runs it once. Past prepareThreshold the
// driver describes the statement and then asks for binary results for the
// integer column: that answer is converted from the cached text one.
func TestJDBCAutocommitOffRepeatsAreCached(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, dashSchema)
	tg := e.viaProxy()
	src, err := filepath.Abs("testdata/dashboard/Repeat.java")
	if err != nil {
		t.Fatal(err)
	}
	classes := t.TempDir()
	if r := runTool(t, tg, classes, nil, 3*time.Minute, "javac", "-cp", jdbcDriver, "-d", classes, src); r.Code != 0 {
		t.Fatalf("javac:\n%s", r)
	}
	url := fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s&password=%s&sslmode=disable", tg.Host, tg.Port, tg.Database, testenv.SuperUser, testenv.SuperPassword)
	r := runTool(t, tg, classes, nil, 3*time.Minute, "java", "-cp", classes+":"+jdbcDriver, "Repeat", url, "20")
	if r.Code != 0 {
		t.Fatalf("Repeat:\n%s", r)
	}
	checkRepeats(t, r.Stdout, 20)
	if n := e.PG.Calls(t, e.Database, "%from dash_sales where amount > $1 group by region%"); n != 1 {
		t.Fatalf("20 repeats ran %d times on the warehouse, want 1", n)
	}
}

// checkRepeats checks that every repeat printed the same, right answer.
func checkRepeats(t *testing.T, out string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, out)
	}
	want := "r0=2502500;r1=2498500;r2=2499500;r3=2500500;r4=2501500"
	for i, l := range lines {
		_, got, _ := strings.Cut(l, " ")
		if strings.TrimSuffix(got, ";") != want {
			t.Fatalf("repeat %d: got %q, want %q", i, got, want)
		}
	}
}
