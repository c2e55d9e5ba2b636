package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

// TestSessionRuleOffParsesNothing: a database whose rule says cache:
// false is relayed as pgbouncer would: none of its statements is
// analysed, in the simple protocol or the extended one, inside
// transactions or not, and its answers are PostgreSQL's.
func TestSessionRuleOffParsesNothing(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	rules := policy.New(
		policy.Rule{Name: "oltp", Match: policy.Match{Database: policy.MustGlob(db)}},
		policy.Rule{Name: "everything", Cache: true, TTL: time.Hour, Timeout: time.Minute, MaxEntryBytes: 1 << 20},
	)
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules})
	pg.Exec(t, db, "create table acc (id int primary key, v int); insert into acc select g, g * 2 from generate_series(1, 500) g")
	c := e.connect(t)
	ctx := ctxT(t)
	before := e.Reads.Analyzer().Stats()
	for id := 1; id <= 200; id++ {
		var v int
		mode := pgx.QueryExecModeSimpleProtocol
		if id%2 == 0 {
			mode = pgx.QueryExecModeCacheStatement
		}
		if err := c.QueryRow(ctx, fmt.Sprintf("select v from acc where id = %d", id), mode).Scan(&v); err != nil || v != 2*id {
			t.Fatalf("id %d: %d %v", id, v, err)
		}
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "select count(*) from acc").Scan(&n); err != nil || n != 500 {
		t.Fatalf("count in a transaction: %d %v", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	after := e.Reads.Analyzer().Stats()
	if after.Calls != before.Calls {
		t.Errorf("%d statements of a database whose rule caches nothing were analysed (%d parsed)", after.Calls-before.Calls, after.Parses-before.Parses)
	}
	// The same statement twice runs twice: nothing of it is cached.
	pg.ResetStatements(t)
	for range 2 {
		if err := c.QueryRow(ctx, "select count(*) from acc where v > 10", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if got := pg.Calls(t, db, "select count(*) from acc where v > %"); got != 2 {
		t.Errorf("a repeat under cache: false ran %d times on the warehouse, want 2", got)
	}
}

// TestSessionRuleOffStillInvalidates: a user whose rule caches nothing
// has his statements relayed unanalysed, except those that may write:
// his UPDATE still drops the answers other users have cached of that
// table, so that they never read a stale one.
func TestSessionRuleOffStillInvalidates(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	writer := db + "_w"
	pg.Exec(t, db, fmt.Sprintf("create role %s login superuser password 'writer'", writer))
	t.Cleanup(func() { pg.Exec(t, "postgres", "drop role if exists "+writer) })
	rules := policy.New(
		policy.Rule{Name: "writer", Match: policy.Match{User: policy.MustGlob(writer)}},
		policy.Rule{Name: "everything", Cache: true, TTL: time.Hour, Timeout: time.Minute, MaxEntryBytes: 1 << 20},
	)
	e := newEnv(t, envOptions{pg: pg, database: db, cache: true, rules: rules,
		mutate: func(c *proxy.Config) { c.Users[writer] = "writer" }})
	pg.Exec(t, db, "create table t (v int); insert into t values (1)")
	reader := e.connect(t)
	ctx := ctxT(t)
	read := func() int {
		t.Helper()
		var v int
		if err := reader.QueryRow(ctx, "select v from t", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for range 2 { // a miss, then a hit
		if v := read(); v != 1 {
			t.Fatalf("first reads: %d", v)
		}
	}
	wdsn := fmt.Sprintf("postgres://%s:writer@%s/%s?sslmode=disable", writer, e.Addr, db)
	w, err := pgx.Connect(ctx, wdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	before := e.Reads.Analyzer().Stats()
	if _, err := w.Exec(ctx, "select v from t where v > 0", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got := e.Reads.Analyzer().Stats().Calls - before.Calls; got != 0 {
		t.Errorf("the writer's read was analysed (%d calls)", got)
	}
	if _, err := w.Exec(ctx, "update t set v = 2", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 2 {
		t.Errorf("after an UPDATE by a user whose rule caches nothing, a cached reader read %d, want 2", v)
	}
	// A write before a savepoint the transaction rolls back to (JDBC's
	// autosave, psqlODBC's statement rollback) still invalidates at
	// COMMIT.
	for _, sql := range []string{"begin", "update t set v = 3", "savepoint s", "select 1/0", "rollback to savepoint s", "commit"} {
		_, _ = w.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	}
	if v := read(); v != 3 {
		t.Errorf("after a transaction that rolled back to a savepoint after its UPDATE, a cached reader read %d, want 3", v)
	}
	// set_config of a setting the key depends on ties the writer's
	// session to its connection: no other session runs under it.
	pg.Exec(t, db, "create schema other; create table other.t (v int); insert into other.t values (99)")
	if _, err := w.Exec(ctx, "select set_config('search_path', 'other', false)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := w.QueryRow(ctx, "select v from t", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 99 {
		t.Fatalf("the writer after set_config: %d %v, want 99", v, err)
	}
	// Another session of the same user (whose idle connections it may
	// get) reads public.t.
	w2, err := pgx.Connect(ctx, wdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close(ctx)
	for range 5 {
		if err := w2.QueryRow(ctx, "select v from t", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 3 {
			t.Fatalf("another session after the writer's set_config read %d %v, want 3 (public.t)", v, err)
		}
	}
}

// TestUnadmittedShapesAreNotParsed: once admission keeps a shape of
// never-repeated simple-protocol lookups (pgbench -S -M simple: a new
// literal each time) out of the cache, its new texts are relayed without
// being parsed, and answered right.
func TestUnadmittedShapesAreNotParsed(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, "create table acc (id int primary key, v int); insert into acc select g, g * 2 from generate_series(1, 1200) g")
	c := e.connect(t)
	ctx := ctxT(t)
	lookup := func(id int) {
		t.Helper()
		var v int
		if err := c.QueryRow(ctx, fmt.Sprintf("SELECT v FROM acc WHERE id = %d", id), pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 2*id {
			t.Fatalf("id %d: got %d, %v; want %d", id, v, err, 2*id)
		}
	}
	for id := 1; id <= 1000; id++ {
		lookup(id)
	}
	before := e.Reads.Analyzer().Stats()
	fills := e.Cache.Stats().Fills
	for id := 1001; id <= 1200; id++ {
		lookup(id)
	}
	after := e.Reads.Analyzer().Stats()
	if n := after.Parses - before.Parses; n != 0 {
		t.Errorf("%d new lookups of a shape kept out of the cache were parsed", n)
	}
	if n := e.Cache.Stats().Fills - fills; n != 0 {
		t.Errorf("%d fills for a shape kept out of the cache", n)
	}
	// Another shape is still cached.
	var n int
	for range 3 {
		if err := c.QueryRow(ctx, "select count(*) from acc", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 1200 {
			t.Fatalf("count: %d %v", n, err)
		}
	}
	if got := e.PG.Calls(t, e.Database, "select count(*) from acc"); got != 1 {
		t.Errorf("a repeated aggregate ran %d times, want 1", got)
	}
}

// TestSettingsAtTheirReportedValueShareAnswers: a session that sets
// client_encoding to what the warehouse's connections have (psql and JDBC
// send client_encoding=UTF8) shares its answers with one that sets
// nothing (pgx, the HTTP API); so does DateStyle, and another DateStyle
// does not.
func TestSettingsAtTheirReportedValueShareAnswers(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, "create table enc (v text); insert into enc values ('é')")
	ctx := ctxT(t)
	read := func(dsnSuffix string) string {
		t.Helper()
		c, err := pgx.Connect(ctx, e.DSN()+dsnSuffix)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var v string
		if err := c.QueryRow(ctx, "select v from enc", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if read("") != "é" || read("&client_encoding=UTF8") != "é" || read("&client_encoding=utf-8") != "é" {
		t.Fatal("answers")
	}
	if runs := e.PG.Calls(t, e.Database, "select v from enc"); runs != 1 {
		t.Errorf("sessions with and without client_encoding=UTF8 ran the query %d times, want 1", runs)
	}
	// DateStyle as the warehouse reports it shares; another does not.
	e.PG.ResetStatements(t)
	_ = read("&DateStyle=ISO,%20MDY")
	if runs := e.PG.Calls(t, e.Database, "select v from enc"); runs != 0 {
		t.Errorf("a session with the reported DateStyle ran the query %d times, want 0", runs)
	}
	_ = read("&DateStyle=SQL,%20DMY")
	if runs := e.PG.Calls(t, e.Database, "select v from enc"); runs != 1 {
		t.Errorf("a session with another DateStyle ran the query %d times, want its own run", runs)
	}
}
