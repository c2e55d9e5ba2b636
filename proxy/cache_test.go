package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

// rawAnswer runs sql as a simple query on a connection opened with params
// and returns every byte the server answered, up to and including
// ReadyForQuery.
func rawAnswer(t *testing.T, dsn string, params map[string]string, sql string) []byte {
	t.Helper()
	var b pgwire.Builder
	b.Begin('Q')
	b.String(sql)
	b.Finish()
	return rawExchange(t, dsn, params, b.B)
}

// rawExtended runs sql through the extended protocol, unnamed, with one
// text parameter and every result column in format resultFormat, and
// returns every byte of the answer up to ReadyForQuery.
func rawExtended(t *testing.T, dsn string, params map[string]string, sql, param string, resultFormat int16) []byte {
	t.Helper()
	var b pgwire.Builder
	b.Begin('P')
	b.String("")
	b.String(sql)
	b.Int16(0)
	b.Finish()
	b.Begin('B')
	b.String("")
	b.String("")
	b.Int16(0)
	b.Int16(1)
	b.Int32(int32(len(param)))
	b.Bytes([]byte(param))
	b.Int16(1)
	b.Int16(resultFormat)
	b.Finish()
	b.Begin('D')
	b.Byte('P')
	b.String("")
	b.Finish()
	b.Begin('E')
	b.String("")
	b.Int32(0)
	b.Finish()
	b.Begin('S')
	b.Finish()
	return rawExchange(t, dsn, params, b.B)
}

// rawExchange sends request on a connection opened with params and
// returns every byte answered up to and including ReadyForQuery.
func rawExchange(t *testing.T, dsn string, params map[string]string, request []byte) []byte {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	ctx := ctxT(t)
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SyncConn(ctx); err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	if _, err := hc.Conn.Write(request); err != nil {
		t.Fatal(err)
	}
	r := pgwire.NewReader(hc.Conn, 8192, 1<<30)
	var out []byte
	for {
		typ, msg, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg...)
		if typ == 'Z' {
			return out
		}
	}
}

func TestCachedAnswersAreByteIdentical(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table typed (i int, n numeric, f float8, r real, t text, ts timestamptz, d date,
		iv interval, a int[], j json, jb jsonb, b bytea, u uuid)`)
	e.PG.Exec(t, e.Database, `insert into typed values
		(1, 12345.678901, 0.1, 1.1, 'héllo', '2026-03-01 12:34:56.789+02', '2026-03-01', '1 day 02:03:04', '{1,2,NULL}',
		 '{"a": [1, 2]}', '{"b": {"c": null}}', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
		(NULL, NULL, 'NaN', '-Infinity', '', NULL, NULL, NULL, '{}', NULL, NULL, '', NULL)`)
	queries := []string{
		`select * from typed order by i nulls last`,
		`select f, r, f * 3 from typed order by i nulls last`,
		`select 1 where false`,
		`select from typed`,
		`select count(*) from typed`,
	}
	settings := []map[string]string{
		{},
		{"extra_float_digits": "0", "TimeZone": "Asia/Kolkata", "DateStyle": "SQL, DMY"},
		{"extra_float_digits": "3", "TimeZone": "America/New_York", "DateStyle": "German", "bytea_output": "escape", "IntervalStyle": "iso_8601"},
	}
	for i, params := range settings {
		for _, q := range queries {
			want := rawAnswer(t, e.DirectDSN(), params, q)
			miss := rawAnswer(t, e.DSN(), params, q)
			hit := rawAnswer(t, e.DSN(), params, q)
			if !bytes.Equal(miss, want) || !bytes.Equal(hit, want) {
				t.Errorf("settings %d, %s:\n direct %q\n miss   %q\n hit    %q", i, q, want, miss, hit)
			}
		}
	}
	for _, format := range []int16{0, 1} {
		for i, params := range settings {
			q := `select * from typed where coalesce(i, 0) < $1::int order by i nulls last`
			want := rawExtended(t, e.DirectDSN(), params, q, "5", format)
			miss := rawExtended(t, e.DSN(), params, q, "5", format)
			hit := rawExtended(t, e.DSN(), params, q, "5", format)
			if !bytes.Equal(miss, want) || !bytes.Equal(hit, want) {
				t.Errorf("extended, format %d, settings %d:\n direct %q\n miss   %q\n hit    %q", format, i, want, miss, hit)
			}
		}
	}
	// Once directly and once through the proxy (the miss) per settings.
	if n := e.PG.Calls(t, e.Database, "select * from typed order%"); n != int64(2*len(settings)) {
		t.Errorf("warehouse ran the query %d times, want %d", n, 2*len(settings))
	}
	if n := e.PG.Calls(t, e.Database, "select * from typed where%"); n != int64(2*2*len(settings)) {
		t.Errorf("warehouse ran the extended query %d times, want %d", n, 2*2*len(settings))
	}
}

// TestBinaryAnswersComeFromCachedText: a statement answered in text and
// then asked for binary results (as the JDBC driver does once it has
// prepared it) runs once: the binary answer is converted from the cached
// text one, byte for byte what PostgreSQL sends. Where a column's binary
// form cannot be read off its text (a date in DateStyle SQL, floats
// without extra_float_digits), the warehouse answers. A write through the
// proxy in between is seen.
func TestBinaryAnswersComeFromCachedText(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table conv (i int, big bigint, n numeric, f float8, t text, ts timestamptz, d date,
		b bytea, u uuid, jb jsonb, ok bool)`)
	e.PG.Exec(t, e.Database, `insert into conv values
		(1, 9007199254740993, 12345.678901, 0.1, 'héllo', '2026-03-01 12:34:56.789+02', '2026-03-01', '\x00ff10',
		 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": {"c": null}}', true),
		(NULL, -1, 'NaN', '-Infinity', '', '-infinity', '1999-12-31', '', NULL, '[]', false)`)
	q := `select * from conv where coalesce(i, 0) < $1::int order by i nulls last`
	cases := []struct {
		params  map[string]string
		derived bool
	}{
		{map[string]string{"extra_float_digits": "3", "TimeZone": "Asia/Kolkata", "DateStyle": "ISO, DMY"}, true},
		{map[string]string{"extra_float_digits": "2", "TimeZone": "America/St_Johns"}, true},
		{map[string]string{"extra_float_digits": "3", "DateStyle": "SQL, DMY"}, false},
		{map[string]string{"extra_float_digits": "0"}, false},
		{map[string]string{}, false},
	}
	for i, c := range cases {
		param := fmt.Sprint(5 + i)
		before := e.PG.Calls(t, e.Database, "select * from conv where%")
		text := rawExtended(t, e.DSN(), c.params, q, param, 0)
		got := rawExtended(t, e.DSN(), c.params, q, param, 1)
		want := rawExtended(t, e.DirectDSN(), c.params, q, param, 1)
		if !bytes.Equal(got, want) {
			t.Errorf("settings %v: binary answer through the proxy differs:\n proxy  %q\n direct %q", c.params, got, want)
		}
		if wantText := rawExtended(t, e.DirectDSN(), c.params, q, param, 0); !bytes.Equal(text, wantText) {
			t.Errorf("settings %v: text answer through the proxy differs", c.params)
		}
		runs := e.PG.Calls(t, e.Database, "select * from conv where%") - before - 2 // less the direct ones
		if want := map[bool]int64{true: 1, false: 2}[c.derived]; runs != want {
			t.Errorf("settings %v: text then binary ran %d times on the warehouse, want %d", c.params, runs, want)
		}
	}
	// extra_float_digits as PostgreSQL reads the session's SET, comment
	// and all: at 0, text floats are rounded and no binary answer may be
	// converted from them.
	for _, set := range []string{"SET extra_float_digits = 0 -- was 3", "set extra_float_digits to 3", "SET extra_float_digits TO DEFAULT"} {
		pc, direct := e.connect(t), e.PG.Connect(t, e.Database)
		ctx := ctxT(t)
		sql := "select 0.1::float8 + 0.2, $1::int from conv limit 1"
		var got, want [][]byte
		for _, c := range []*pgx.Conn{pc, direct} {
			if _, err := c.Exec(ctx, set); err != nil {
				t.Fatal(err)
			}
			for _, f := range []int16{0, 1} {
				r := c.PgConn().ExecParams(ctx, sql, [][]byte{[]byte("7")}, []uint32{23}, nil, []int16{f}).Read()
				if r.Err != nil || len(r.Rows) != 1 {
					t.Fatalf("%s, format %d: %v", set, f, r.Err)
				}
				if c == pc {
					got = append(got, r.Rows[0][0])
				} else {
					want = append(want, r.Rows[0][0])
				}
			}
		}
		if !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
			t.Errorf("after %q: proxy answered %q then %x, PostgreSQL %q then %x", set, got[0], got[1], want[0], want[1])
		}
	}

	// A write through the proxy invalidates the text answer: the binary
	// one that follows is not converted from the old text.
	params := cases[0].params
	rawExtended(t, e.DSN(), params, q, "50", 0)
	pc := e.connect(t)
	if _, err := pc.Exec(ctxT(t), "update conv set big = 42 where i = 1"); err != nil {
		t.Fatal(err)
	}
	got, want := rawExtended(t, e.DSN(), params, q, "50", 1), rawExtended(t, e.DirectDSN(), params, q, "50", 1)
	if !bytes.Equal(got, want) || !bytes.Contains(got, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42}) {
		t.Errorf("after an update through the proxy:\n proxy  %q\n direct %q", got, want)
	}
}

func TestRepeatsRunOnceOnWarehouse(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table sales (region text, amount int); insert into sales select 'r' || (g % 4), g from generate_series(1, 1000) g`)
	c := e.connect(t)
	ctx := ctxT(t)
	for i := 0; i < 100; i++ {
		var total int64
		if err := c.QueryRow(ctx, `select sum(amount) from sales where region = 'r1'`, pgx.QueryExecModeSimpleProtocol).Scan(&total); err != nil {
			t.Fatal(err)
		}
		if total != 124750 {
			t.Fatalf("repeat %d: got %d", i, total)
		}
	}
	if n := e.PG.Calls(t, e.Database, "select sum(amount) from sales%"); n != 1 {
		t.Fatalf("100 repeats ran %d times on the warehouse, want 1", n)
	}
}

func TestConcurrentColdQueriesCollapse(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table big (g int); insert into big select generate_series(1, 200000)`)
	ctx := ctxT(t)
	conns := make([]*pgx.Conn, 500)
	for i := range conns {
		conns[i] = e.connect(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	start := make(chan struct{})
	for _, c := range conns {
		wg.Add(1)
		go func(c *pgx.Conn) {
			defer wg.Done()
			<-start
			var n int64
			if err := c.QueryRow(ctx, `select count(*) from big b1 where g % 7 = 3`, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
				errs <- err
			} else if n != 28572 {
				errs <- fmt.Errorf("got %d", n)
			}
		}(c)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.PG.Calls(t, e.Database, "select count(*) from big b1%"); n != 1 {
		t.Fatalf("500 concurrent cold queries ran %d times, want 1", n)
	}
}

func TestWriteThroughProxyInvalidates(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table prices (id int primary key, price int); insert into prices values (1, 10)`)
	c := e.connect(t)
	ctx := ctxT(t)
	read := func() int {
		var p int
		if err := c.QueryRow(ctx, `select price from prices where id = 1`, pgx.QueryExecModeSimpleProtocol).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read(); p != 10 {
		t.Fatalf("got %d", p)
	}
	if _, err := c.Exec(ctx, `update public.prices set price = 20 where id = 1`); err != nil {
		t.Fatal(err)
	}
	if p := read(); p != 20 {
		t.Fatalf("after UPDATE: got %d, want 20", p)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `update prices set price = 30 where id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p := read(); p != 30 {
		t.Fatalf("after a committed transaction: got %d, want 30", p)
	}
	if _, err := c.Exec(ctx, `truncate prices`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(ctx, `select count(*) from prices`, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after TRUNCATE: %d rows, %v", n, err)
	}
}

func TestAnswersAreNotSharedAcrossUsers(t *testing.T) {
	e := newEnv(t, envOptions{cache: true, mutate: func(c *proxy.Config) {
		c.Users["alice"] = "alice"
		c.Users["bob"] = "bob"
	}})
	e.PG.Exec(t, e.Database, `
		create table docs (owner text, body text);
		insert into docs values ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
		alter table docs enable row level security;
		create policy own on docs using (owner = current_user);
		do $$ begin
			if not exists (select from pg_roles where rolname = 'alice') then create role alice login password 'alice'; end if;
			if not exists (select from pg_roles where rolname = 'bob') then create role bob login password 'bob'; end if;
		end $$;
		grant select on docs to alice, bob;`)
	ctx := ctxT(t)
	dsn := func(user string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, user, e.Addr, e.Database)
	}
	for round := 0; round < 3; round++ {
		for _, tc := range []struct{ user, want string }{{"alice", "a1,a2"}, {"bob", "b1"}} {
			c, err := pgx.Connect(ctx, dsn(tc.user))
			if err != nil {
				t.Fatal(err)
			}
			var got string
			err = c.QueryRow(ctx, `select string_agg(body, ',' order by body) from docs`, pgx.QueryExecModeSimpleProtocol).Scan(&got)
			c.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("round %d, %s saw %q, want %q", round, tc.user, got, tc.want)
			}
		}
	}
	if n := e.PG.Calls(t, e.Database, "select string_agg(body%"); n != 2 {
		t.Fatalf("warehouse ran the query %d times, want once per user (2)", n)
	}
}

var _ = testenv.SuperUser

func TestReadOnlyTransactionsAreAnsweredFromCache(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table kpi (v int); insert into kpi values (7)`)
	c := e.connect(t)
	ctx := ctxT(t)
	simple := pgx.QueryExecModeSimpleProtocol
	for i := 0; i < 20; i++ {
		// psycopg2 with autocommit off: BEGIN, the dashboard query, ROLLBACK or COMMIT.
		if _, err := c.Exec(ctx, `BEGIN`, simple); err != nil {
			t.Fatal(err)
		}
		if st := c.PgConn().TxStatus(); st != 'T' {
			t.Fatalf("status after BEGIN %q, want T", st)
		}
		var v int
		if err := c.QueryRow(ctx, `select v from kpi`, simple).Scan(&v); err != nil || v != 7 {
			t.Fatalf("got %d %v", v, err)
		}
		end := "COMMIT"
		if i%2 == 1 {
			end = "ROLLBACK"
		}
		if _, err := c.Exec(ctx, end, simple); err != nil {
			t.Fatal(err)
		}
		if st := c.PgConn().TxStatus(); st != 'I' {
			t.Fatalf("status after %s %q, want I", end, st)
		}
	}
	if n := e.PG.Calls(t, e.Database, "select v from kpi%"); n != 1 {
		t.Fatalf("20 read-only transactions ran the query %d times, want 1", n)
	}
	// A transaction that writes sees its own write, not the cached answer.
	if _, err := c.Exec(ctx, `BEGIN`, simple); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `update kpi set v = 8`, simple); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := c.QueryRow(ctx, `select v from kpi`, simple).Scan(&v); err != nil || v != 8 {
		t.Fatalf("inside the writing transaction: got %d %v, want 8", v, err)
	}
	if _, err := c.Exec(ctx, `ROLLBACK`, simple); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `select v from kpi`, simple).Scan(&v); err != nil || v != 7 {
		t.Fatalf("after ROLLBACK: got %d %v, want 7", v, err)
	}
	// REPEATABLE READ goes to the warehouse.
	before := e.PG.Calls(t, e.Database, "select v from kpi%")
	if _, err := c.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ`, simple); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `select v from kpi`, simple).Scan(&v); err != nil || v != 7 {
		t.Fatalf("repeatable read: got %d %v", v, err)
	}
	if _, err := c.Exec(ctx, `COMMIT`, simple); err != nil {
		t.Fatal(err)
	}
	if n := e.PG.Calls(t, e.Database, "select v from kpi%"); n != before+1 {
		t.Fatalf("a REPEATABLE READ transaction was answered from the cache (%d executions, want %d)", n, before+1)
	}
}

func TestExtendedProtocolRepeatsRunOnce(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table m (k int, v numeric, ts timestamptz); insert into m select g, g * 1.5, timestamptz '2026-01-01' + g * interval '1 hour' from generate_series(1, 100) g`)
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := e.connect(t)
			direct := e.PG.Connect(t, e.Database)
			ctx := ctxT(t)
			q := fmt.Sprintf(`select k, v, ts from m where k > $1 and k < %d order by k`, 50+int(mode))
			var want [][]any
			rows, err := direct.Query(ctx, q, mode, 40)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				v, _ := rows.Values()
				want = append(want, v)
			}
			rows.Close()
			before := e.PG.Calls(t, e.Database, q[:30]+"%")
			for i := 0; i < 30; i++ {
				rows, err := c.Query(ctx, q, mode, 40)
				if err != nil {
					t.Fatal(err)
				}
				var got [][]any
				for rows.Next() {
					v, _ := rows.Values()
					got = append(got, v)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 9+int(mode) {
					t.Fatalf("repeat %d: got %v, want %v", i, got, want)
				}
			}
			if n := e.PG.Calls(t, e.Database, q[:30]+"%") - before; n != 1 {
				t.Fatalf("30 repeats ran %d times on the warehouse, want 1", n)
			}
			// Other parameter values are other answers.
			var k int
			if err := c.QueryRow(ctx, q, mode, 48).Scan(&k, new(any), new(any)); err != nil || k != 49 {
				t.Fatalf("another parameter: got %d %v, want 49", k, err)
			}
		})
	}
}

func TestDDLThroughProxyRefreshesCatalogAnswers(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	c := e.connect(t)
	ctx := ctxT(t)
	tables := func() int {
		var n int
		if err := c.QueryRow(ctx, `select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'`, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := tables()
	if _, err := c.Exec(ctx, `create table fresh (id int)`); err != nil {
		t.Fatal(err)
	}
	if got := tables(); got != before+1 {
		t.Fatalf("after CREATE TABLE: %d tables, want %d", got, before+1)
	}
	// A function created through the proxy is known to be volatile at once.
	if _, err := c.Exec(ctx, `create function roll() returns float8 volatile language sql as 'select random()'`); err != nil {
		t.Fatal(err)
	}
	var a, b float64
	if err := c.QueryRow(ctx, `select roll()`, pgx.QueryExecModeSimpleProtocol).Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `select roll()`, pgx.QueryExecModeSimpleProtocol).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("a volatile function's answer was cached: %v twice", a)
	}
}

func TestExtendedReadOnlyTransactionsAreAnsweredFromCache(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table kpi2 (v int); insert into kpi2 values (5)`)
	c := e.connect(t)
	ctx := ctxT(t)
	for i := 0; i < 10; i++ {
		// As JDBC with autocommit off sends it: BEGIN in front of the
		// query in one batch, COMMIT alone later.
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("select v from kpi2 where v > $1", 0)
		br := c.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := br.QueryRow().Scan(&v); err != nil || v != 5 {
			t.Fatalf("got %d %v", v, err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if st := c.PgConn().TxStatus(); st != 'T' {
			t.Fatalf("status %q, want T", st)
		}
		if _, err := c.Exec(ctx, "COMMIT", pgx.QueryExecModeExec); err != nil {
			t.Fatal(err)
		}
		if st := c.PgConn().TxStatus(); st != 'I' {
			t.Fatalf("status after COMMIT %q, want I", st)
		}
	}
	if n := e.PG.Calls(t, e.Database, "select v from kpi2%"); n != 1 {
		t.Fatalf("10 transactions ran the query %d times, want 1", n)
	}
}

func TestTwoProxiesShareOneRedis(t *testing.T) {
	a := newEnv(t, envOptions{cache: true})
	b := newEnv(t, envOptions{cache: true, database: a.Database})
	a.PG.Exec(t, a.Database, `create table shared (v int); insert into shared values (3)`)
	ctx := ctxT(t)
	query := func(e *env) int {
		c := e.connect(t)
		var v int
		if err := c.QueryRow(ctx, `select v * 2 from shared`, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := query(a); v != 6 {
		t.Fatalf("got %d", v)
	}
	// The second proxy's L1 is empty: its answer comes from Redis.
	for i := 0; i < 3; i++ {
		deadline := time.Now().Add(5 * time.Second)
		for a.PG.Calls(t, a.Database, "select v * $1 from shared%") > 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if v := query(b); v != 6 {
			t.Fatalf("got %d", v)
		}
	}
	if n := a.PG.Calls(t, a.Database, "select v * $1 from shared%"); n != 1 {
		t.Fatalf("two proxies ran the query %d times, want 1", n)
	}
	// A write through one proxy is seen through the other at once.
	cw := a.connect(t)
	if _, err := cw.Exec(ctx, `update shared set v = 4`); err != nil {
		t.Fatal(err)
	}
	if v := query(b); v != 8 {
		t.Fatalf("after an UPDATE through the other proxy: got %d, want 8", v)
	}
}

// TestHitsSurviveRedisDeath: Redis SIGKILLed while eight clients run a
// mix of cached and uncached reads through two proxies sharing it: no
// client sees an error, answers stay right; once Redis is back, it is
// used again: an answer cached by one proxy after the restart is a hit on
// the other, whose L1 never held it.
func TestHitsSurviveRedisDeath(t *testing.T) {
	redis := testenv.NewRedis(t)
	a := newEnv(t, envOptions{cache: true, redis: redis})
	b := newEnv(t, envOptions{cache: true, redis: redis, pg: a.PG, database: a.Database})
	a.PG.Exec(t, a.Database, `create table r (k int, v int); insert into r select g, g * 3 from generate_series(1, 500) g`)
	ctx := ctxT(t)
	var (
		stop    atomic.Bool
		queries atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	for w := range 8 {
		e := a
		if w%2 == 1 {
			e = b
		}
		c := e.connect(t)
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				// Half the reads repeat (hits), half are new (misses
				// that look in Redis first).
				k := 1 + i%20
				if i%2 == 1 {
					k = 1 + (w*1000+i)%500
				}
				var v int
				if err := c.QueryRow(ctx, "select v from r where k = $1", k).Scan(&v); err != nil || v != 3*k {
					errs <- fmt.Errorf("client %d, k %d: got %d, %v", w, k, v, err)
					return
				}
				queries.Add(1)
			}
		})
	}
	waitFor := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for start := queries.Load(); queries.Load() < start+n; {
			if time.Now().After(deadline) {
				t.Fatalf("the clients made no progress")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(300)
	if err := redis.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(1000)
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(300)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Redis is used again (once the breaker lets calls through): an
	// answer filled through A is a hit on B.
	ca, cb := a.connect(t), b.connect(t)
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; ; n++ {
		sql := fmt.Sprintf("select sum(v) + %d from r", n)
		before := a.PG.Calls(t, a.Database, "select sum(v) + % from r")
		var x, y int
		if err := ca.QueryRow(ctx, sql).Scan(&x); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the write to Redis leaves A's path
		if err := cb.QueryRow(ctx, sql).Scan(&y); err != nil || y != x {
			t.Fatalf("B: %d, %v; want %d", y, err, x)
		}
		if a.PG.Calls(t, a.Database, "select sum(v) + % from r")-before == 1 {
			t.Logf("shared through Redis again after %d tries", n+1)
			break // B's answer came from Redis
		}
		if time.Now().After(deadline) {
			t.Fatal("after Redis returned, the proxies never shared an answer through it")
		}
	}
}

func TestStaleIfErrorWhileWarehouseIsDown(t *testing.T) {
	pg := testenv.NewPostgreSQL(t)
	rule := policy.Rule{Name: "dash", Cache: true, TTL: 100 * time.Millisecond, StaleIfError: time.Hour, Timeout: 10 * time.Second, MaxEntryBytes: 1 << 20}
	e := newEnv(t, envOptions{pg: pg, cache: true, rule: &rule})
	pg.Exec(t, e.Database, `create table d (v int); insert into d values (9)`)
	ctx := ctxT(t)
	c := e.connect(t)
	var v int
	if err := c.QueryRow(ctx, `select v from d`, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 9 {
		t.Fatalf("got %d %v", v, err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * rule.TTL) // past the TTL: the next read tries the warehouse
	var notices []string
	cfg, err := pgx.ParseConfig(e.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code+" "+n.Message) }
	// A client connecting while the warehouse is down still gets in.
	late, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting while the warehouse is down: %v", err)
	}
	defer late.Close(ctx)
	for _, conn := range []*pgx.Conn{c, late} {
		if err := conn.QueryRow(ctx, `select v from d`, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 9 {
			t.Fatalf("cached dashboard query with the warehouse down: %d %v", v, err)
		}
	}
	if len(notices) != 1 || notices[0][:5] != "01000" {
		t.Fatalf("notices %q, want one 01000 saying the answer is old", notices)
	}
	start := time.Now()
	_, err = late.Exec(ctx, `select v + 1 from d`, pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" {
		t.Fatalf("uncached query with the warehouse down: %v, want 08006", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the error took %v", d)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if err := late.QueryRow(ctx, `select v + 1 from d`, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 10 {
		t.Fatalf("after the warehouse returned: %d %v", v, err)
	}
}

func TestLargeAnswerStreamsThroughUncached(t *testing.T) {
	rule := policy.Rule{Name: "small", Cache: true, TTL: time.Minute, Timeout: time.Minute, MaxEntryBytes: 4 << 20}
	e := newEnv(t, envOptions{cache: true, rule: &rule})
	c := e.connect(t)
	ctx := ctxT(t)
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	const rows, width = 120000, 1000 // about 120 MB on the wire, 30 times the entry bound
	for round := 0; round < 2; round++ {
		r, err := c.Query(ctx, fmt.Sprintf(`select g, repeat('x', %d) from generate_series(1, %d) g`, width, rows), pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		var n, sum int64
		for r.Next() {
			// Raw values: the client allocates nothing per row, so the
			// heap measures what the proxy holds.
			v := r.RawValues()
			g, err := strconv.ParseInt(string(v[0]), 10, 64)
			if err != nil || len(v[1]) != width {
				t.Fatalf("row %q: %d bytes, %v", v[0], len(v[1]), err)
			}
			n++
			sum += g
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if n != rows || sum != int64(rows)*(rows+1)/2 {
			t.Fatalf("round %d: %d rows, sum %d", round, n, sum)
		}
	}
	close(stop)
	<-sampled
	if peak > 64<<20 {
		t.Fatalf("heap in use peaked at %d MiB streaming a 120 MB answer, want under 64 MiB", peak>>20)
	}
}

func TestCancelledWaiterLeavesTheFillRunning(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	c := e.connect(t)
	ctx := ctxT(t)
	const q = `select count(*) from generate_series(1, 8000000) g where g % 3 = 0`
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = c.PgConn().CancelRequest(ctx)
	}()
	start := time.Now()
	_, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("cancelled wait: got %v, want 57014", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the cancel took %v", d)
	}
	// The execution went on: its answer lands in the cache.
	var n int64
	deadline := time.Now().Add(60 * time.Second)
	for e.PG.Calls(t, e.Database, "select count(*) from generate_series%") < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 2666666 {
		t.Fatalf("after the cancel: %d %v", n, err)
	}
	if calls := e.PG.Calls(t, e.Database, "select count(*) from generate_series%"); calls != 1 {
		t.Fatalf("the query ran %d times, want 1", calls)
	}
}
