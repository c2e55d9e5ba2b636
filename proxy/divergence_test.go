package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Answers that once differed from PostgreSQL's through the proxy with its
// cache on, each compared with PostgreSQL itself.

// TestDDLRefreshesTypeLookupsInEveryReplica: a driver loading a type by
// name (pgx's LoadType: `select $1::text::regtype::oid`, then pg_type)
// through one proxy after DROP TYPE and CREATE TYPE through another gets
// the new type, not the dropped one's rows.
func TestDDLRefreshesTypeLookupsInEveryReplica(t *testing.T) {
	a := newEnv(t, envOptions{cache: true})
	b := newEnv(t, envOptions{cache: true, database: a.Database})
	ctx := ctxT(t)
	a.PG.Exec(t, a.Database, `create type mood as enum ('sad', 'ok')`)
	direct, err := pgx.Connect(ctx, a.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	load := func(c *pgx.Conn) (uint32, string) {
		t.Helper()
		var oid uint32
		if err := c.QueryRow(ctx, `select $1::text::regtype::oid`, "mood").Scan(&oid); err != nil {
			t.Fatal(err)
		}
		dt, err := c.LoadType(ctx, "mood")
		if err != nil {
			t.Fatal(err)
		}
		var labels string
		if err := c.QueryRow(ctx, `select string_agg(enumlabel, ',' order by enumsortorder) from pg_enum where enumtypid = $1`, oid).Scan(&labels); err != nil {
			t.Fatal(err)
		}
		if dt.OID != oid {
			t.Errorf("LoadType gave OID %d, the regtype lookup %d", dt.OID, oid)
		}
		return oid, labels
	}
	before, _ := load(b.connect(t))
	if _, err := a.connect(t).Exec(ctx, `drop type mood; create type mood as enum ('happy', 'sad', 'ok')`); err != nil {
		t.Fatal(err)
	}
	wantOID, wantLabels := load(direct)
	if wantOID == before {
		t.Fatalf("control: the new type kept OID %d", before)
	}
	gotOID, gotLabels := load(b.connect(t))
	if gotOID != wantOID || gotLabels != wantLabels {
		t.Errorf("through the other proxy after DROP/CREATE TYPE: OID %d labels %q, want %d %q (the dropped type's OID was %d)",
			gotOID, gotLabels, wantOID, wantLabels, before)
	}
}

// TestChangedResultTypeOfPreparedStatement: after ALTER TABLE changes the
// columns of a statement a client prepared and described, its next use
// fails with PostgreSQL's 0A000 "cached plan must not change result type",
// through the proxy as directly, with the cache off and on, and whichever
// warehouse connection the proxy prepares it on again; a new Parse of the
// same text then works.
func TestChangedResultTypeOfPreparedStatement(t *testing.T) {
	forEachMode(t, func(t *testing.T, cached bool) {
		e := newEnv(t, envOptions{cache: cached, maxConns: 2})
		twin := e.twin(t)
		for _, db := range []string{e.Database, twin.Database} {
			e.PG.Exec(t, db, `create table shape (a int, b text, c numeric); insert into shape values (1, 'x', 2.5)`)
		}
		ctx := ctxT(t)
		for _, dsn := range []string{twin.DSN(), e.DSN()} {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			other, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Prepare(ctx, "s", "select * from shape"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Exec(ctx, "alter table shape drop column c"); err != nil {
				t.Fatal(err)
			}
			_, err = c.Exec(ctx, "s")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "0A000" || pe.Message != "cached plan must not change result type" {
				t.Errorf("%s: after ALTER TABLE the prepared statement gave %v, want 0A000 cached plan must not change result type", dsn, err)
			}
			if _, err := c.Exec(ctx, "select * from shape"); err != nil {
				t.Errorf("%s: a new statement of the same text: %v", dsn, err)
			}
			var n int
			if err := c.QueryRow(ctx, "select count(*) from shape").Scan(&n); err != nil || n != 1 {
				t.Errorf("%s: the connection after the error: %v %d", dsn, err, n)
			}
			c.Close(ctx)
			other.Close(ctx)
		}
	})
}

// copyLines is a text COPY source of max lines, with a bad value at line
// bad; n counts the lines read from it.
type copyLines struct {
	n, bad, max int
	buf         []byte
}

func (s *copyLines) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) && s.n < s.max {
		s.n++
		if s.n == s.bad {
			s.buf = append(s.buf, "not a number\tx\n"...)
		} else {
			s.buf = strconv.AppendInt(s.buf, int64(s.n), 10)
			s.buf = append(s.buf, "\trow\n"...)
		}
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	k := copy(p, s.buf)
	s.buf = s.buf[k:]
	return k, nil
}

// TestCopyFromFailingMidwayEndsAtOnce: when the warehouse fails a COPY FROM
// STDIN at a bad row, the client hears of it while still sending, as from
// PostgreSQL, and stops: it is not left to send the whole source first.
func TestCopyFromFailingMidwayEndsAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	ctx := ctxT(t)
	for _, dsn := range []string{e.DirectDSN(), e.DSN()} {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "create table if not exists cpfail (id int, v text)"); err != nil {
			t.Fatal(err)
		}
		src := &copyLines{bad: 1000, max: 20_000_000}
		_, err = c.PgConn().CopyFrom(ctx, src, "copy cpfail from stdin")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "22P02" {
			t.Errorf("%s: COPY gave %v, want 22P02", dsn, err)
		}
		if src.n >= src.max/2 {
			t.Errorf("%s: the client sent %d of %d lines after the warehouse failed the COPY at line %d", dsn, src.n, src.max, src.bad)
		}
		var n int
		if err := c.QueryRow(ctx, "select count(*) from cpfail").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: after the failed COPY: %v, %d rows", dsn, err, n)
		}
		t.Logf("%s: %d lines read from the source", dsn, src.n)
		c.Close(ctx)
	}
}

// TestDeallocateLikePostgreSQL: DEALLOCATE of a statement the client
// prepared with Parse succeeds as on
// PostgreSQL, on whichever warehouse connection the session runs, and the
// name can be prepared again; DEALLOCATE of an unknown name gives
// PostgreSQL's 26000.
func TestDeallocateLikePostgreSQL(t *testing.T) {
	forEachMode(t, func(t *testing.T, cached bool) {
		e := newEnv(t, envOptions{cache: cached, maxConns: 3})
		ctx := ctxT(t)
		for _, dsn := range []string{e.DirectDSN(), e.DSN()} {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			pc := c.PgConn()
			for i := 0; i < 3; i++ {
				if _, err := pc.Prepare(ctx, "s", "select $1::int + 1", nil); err != nil {
					t.Fatalf("%s: prepare %d: %v", dsn, i, err)
				}
				res := pc.ExecPrepared(ctx, "s", [][]byte{[]byte("41")}, nil, nil).Read()
				if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "42" {
					t.Fatalf("%s: run %d: %v %q", dsn, i, res.Err, res.Rows)
				}
				sql := []string{"deallocate s", "DEALLOCATE PREPARE s", "deallocate \"s\""}[i]
				if _, err := pc.Exec(ctx, sql).ReadAll(); err != nil {
					t.Errorf("%s: %s: %v", dsn, sql, err)
				}
			}
			_, err = c.Exec(ctx, "deallocate nosuch")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "26000" {
				t.Errorf("%s: DEALLOCATE of an unknown name gave %v, want 26000", dsn, err)
			}
			c.Close(ctx)
		}
	})
}

// TestStatementTimeoutBetweenParseAndDescribe: PostgreSQL's
// statement_timeout runs from a batch's first message, so a client that
// sends Parse, waits past the timeout, then Describe and Sync, gets
// ParseComplete, 57014, ReadyForQuery. Through the proxy the same, whether
// the proxy sends the Parse on or answers it itself (the statement was
// prepared on the connection by an earlier Parse of the same text).
func TestStatementTimeoutBetweenParseAndDescribe(t *testing.T) {
	forEachMode(t, func(t *testing.T, cached bool) {
		e := newEnv(t, envOptions{cache: cached, maxConns: 1})
		ctx := ctxT(t)
		for _, dsn := range []string{e.DirectDSN(), e.DSN()} {
			pc, err := pgconn.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			// A first statement of the same text: prepared on the
			// warehouse connection under the proxy's own name.
			if _, err := pc.Prepare(ctx, "first", "select 42", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := pc.Exec(ctx, "set statement_timeout = '300ms'").ReadAll(); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"second", "third"} {
				fe := pc.Frontend()
				text := "select 42"
				if name == "third" {
					text = "select 43" // not prepared on the connection yet
				}
				fe.Send(&pgproto3.Parse{Name: name, Query: text})
				fe.Send(&pgproto3.Flush{})
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: name})
				fe.Send(&pgproto3.Sync{})
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
				var got []string
				for {
					m, err := fe.Receive()
					if err != nil {
						t.Fatal(err)
					}
					switch m := m.(type) {
					case *pgproto3.ErrorResponse:
						got = append(got, "E "+m.Code)
					case *pgproto3.ReadyForQuery:
						got = append(got, "Z "+string(m.TxStatus))
					default:
						got = append(got, fmt.Sprintf("%T", m))
					}
					if _, ok := m.(*pgproto3.ReadyForQuery); ok {
						break
					}
				}
				want := "*pgproto3.ParseComplete, E 57014, Z I"
				if s := strings.Join(got, ", "); s != want {
					t.Errorf("%s, statement %s: got %s, want %s", dsn, name, s, want)
				}
			}
			pc.Close(ctx)
		}
	})
}

// TestStatementStaleAfterWarehouseDDLIsPreparedAgain: DDL sent straight to
// the warehouse changes a table under a statement the proxy prepared on a
// connection; a client parsing the same text again may get PostgreSQL's
// 0A000 once (README, Limits), and then the new shape, never the error
// for good.
func TestStatementStaleAfterWarehouseDDLIsPreparedAgain(t *testing.T) {
	e := newEnv(t, envOptions{cache: false, maxConns: 1})
	e.PG.Exec(t, e.Database, `create table drift (a int, b text); insert into drift values (1, 'x')`)
	ctx := ctxT(t)
	c := e.connect(t)
	if _, err := c.Exec(ctx, "select * from drift where a > $1", pgx.QueryExecModeCacheStatement, 0); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	e.PG.Exec(t, e.Database, `alter table drift add column c int`)
	errs := 0
	for i := 0; i < 3; i++ {
		c := e.connect(t)
		var a, cc *int
		var b string
		err := c.QueryRow(ctx, "select * from drift where a > $1", pgx.QueryExecModeCacheStatement, 0).Scan(&a, &b, &cc)
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "0A000":
			errs++
		case err != nil:
			t.Fatalf("run %d: %v", i, err)
		case *a != 1 || b != "x" || cc != nil:
			t.Fatalf("run %d: %v %q %v", i, *a, b, cc)
		}
		c.Close(ctx)
	}
	if errs > 1 {
		t.Errorf("%d of 3 new Parses of the text got 0A000, want at most 1", errs)
	}
}

// TestQueryOfSeveralStatementsLikePostgreSQL: a Query message of several
// statements runs in one implicit transaction: a SET in it is undone when
// a later statement fails, whatever the proxy answered itself, and the
// answers, errors and statuses are PostgreSQL's.
func TestQueryOfSeveralStatementsLikePostgreSQL(t *testing.T) {
	e, direct := cachedTwins(t, `create table few (n int); insert into few values (1), (2)`)
	script := []string{
		`set search_path = 'pg_catalog'`, // the warehouse accepts it: the proxy may keep the next one
		`reset search_path`,
		`select current_schema()`,
		`set search_path = 'pg_catalog'; select 1/0`,
		`select current_schema()`,
		`select sum(n) from few; select count(*) from few; select 1/0; select 3`,
		`BEGIN; select sum(n) from few; set search_path = 'pg_catalog'; select current_schema(); COMMIT`,
		`select current_schema(); reset search_path; select current_schema()`,
		`BEGIN; select sum(n) from few; select nosuch from few; select 1`,
		`select 1`,
		`ROLLBACK`,
		`BEGIN; set local search_path = 'pg_catalog'; select current_schema(); COMMIT; select current_schema()`,
		// Rows before an error reach the client, then the error.
		`select n from generate_series(0, 5) n where 100 / (5 - n) > 0`,
		`select n from generate_series(0, 5) n where 100 / (5 - n) > 0; select 1`,
		`BEGIN`,
		`select n from generate_series(0, 5) n where 100 / (5 - n) > 0`,
		`select 1`,
		`ROLLBACK`,
	}
	compareSessions(t, e, direct, script)
}

// TestConnectionFunctionsFromCatalogAreNeverCached: every function in the
// warehouse's pg_proc whose answer depends on the connection or its
// transaction (by the marks in its name: backend, client and server
// addresses, transaction ids and snapshots, temporary schemas, listening
// channels, statistics) is never answered from the cache, whatever
// volatility pg_proc gives it.
func TestConnectionFunctionsFromCatalogAreNeverCached(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	ctx := ctxT(t)
	c := e.connect(t)
	rows, err := c.Query(ctx, `select distinct proname from pg_proc
		where provolatile <> 'v' and pronargs = 0 and prorettype <> 'trigger'::regtype and proretset = false
		and proname ~ '(backend|inet_client|inet_server|xact_id|txid_current|current_snapshot|temp_schema|trigger_depth|listening|conf_load|^pg_stat_get_)'
		order by 1`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("control: only %d such functions in pg_proc: %v", len(names), names)
	}
	for _, name := range names {
		sql := "select " + name + "()"
		for i := 0; i < 2; i++ {
			var v any
			if err := c.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if n := e.PG.Calls(t, e.Database, sql); n != 2 {
			t.Errorf("%s ran %d times on the warehouse for two asks, want 2: never from the cache", sql, n)
		}
	}
	t.Logf("%d functions checked: %v", len(names), names)
}

// TestCopyFromWithNoticePerRow: a trigger raising a notice for every row
// of a COPY FROM STDIN: the client gets every notice while it sends, as
// from PostgreSQL, and the COPY ends (neither side left blocked on a full
// socket).
func TestCopyFromWithNoticePerRow(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	ctx := ctxT(t)
	e.PG.Exec(t, e.Database, `create table noisy (t text);
create function shout() returns trigger language plpgsql as $$begin raise notice 'row %: %', length(new.t), repeat('n', 200); return new; end$$;
create trigger shout before insert on noisy for each row execute function shout()`)
	for _, dsn := range []string{e.DirectDSN(), e.DSN()} {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		notices := 0
		cfg.OnNotice = func(*pgconn.PgConn, *pgconn.Notice) { notices++ }
		pc, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Repeat(strings.Repeat("x", 2000)+"\n", 3000)
		tag, err := pc.CopyFrom(ctx, strings.NewReader(src), "copy noisy from stdin")
		if err != nil || tag.RowsAffected() != 3000 || notices != 3000 {
			t.Errorf("%s: COPY gave %v, %s, %d notices; want 3000 rows and notices", dsn, err, tag, notices)
		}
		pc.Close(ctx)
	}
}

// TestPreparedFetchOfLaterCursor: a FETCH prepared before its cursor
// exists (pgx's cursor tests), run after a DECLARE the proxy answered from
// the cache, alone or in one pipeline with the DECLARE, reads the cursor
// as on PostgreSQL.
func TestPreparedFetchOfLaterCursor(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	ctx := ctxT(t)
	run := func(dsn string, pipeline bool) string {
		pc, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close(ctx)
		if _, err := pc.Prepare(ctx, "ps", `fetch all in "c"`, nil); err != nil {
			return "prepare: " + err.Error()
		}
		if _, err := pc.Exec(ctx, "begin").ReadAll(); err != nil {
			return "begin: " + err.Error()
		}
		declare := `declare "c" cursor for select n, n::text from generate_series(1, 3) n`
		var res *pgconn.ResultReader
		if pipeline {
			p := pc.StartPipeline(ctx)
			p.SendQueryParams(declare, nil, nil, nil, nil)
			p.SendQueryPrepared("ps", nil, nil, nil)
			if err := p.Sync(); err != nil {
				return "sync: " + err.Error()
			}
			var out []string
			for {
				r, err := p.GetResults()
				if err != nil {
					out = append(out, "error: "+err.Error())
					break
				}
				if rr, ok := r.(*pgconn.ResultReader); ok {
					rows := rr.Read()
					out = append(out, fmt.Sprint(rows.Err, rows.Rows))
				}
				if _, ok := r.(*pgconn.PipelineSync); ok {
					break
				}
			}
			p.Close()
			return strings.Join(out, "; ")
		}
		if _, err := pc.Exec(ctx, declare).ReadAll(); err != nil {
			return "declare: " + err.Error()
		}
		res = pc.ExecPrepared(ctx, "ps", nil, nil, nil)
		r := res.Read()
		return fmt.Sprint(r.Err, r.Rows)
	}
	for _, pipeline := range []bool{false, true} {
		want := run(e.DirectDSN(), pipeline)
		for round := 0; round < 2; round++ {
			if got := run(e.DSN(), pipeline); got != want {
				t.Errorf("pipeline %v, round %d: got %s, want %s", pipeline, round, got, want)
			}
		}
	}
}

// TestSessionPoolingPreparesAgainAfterDDL: in session pooling, after DDL
// through the proxy changes a table, the client's old statement gets
// PostgreSQL's 0A000 and a new one of the same text the table's new shape
// and parameter types, as on PostgreSQL.
func TestSessionPoolingPreparesAgainAfterDDL(t *testing.T) {
	e := sessionEnv(t)
	twin := e.twin(t)
	for _, db := range []string{e.Database, twin.Database} {
		e.PG.Exec(t, db, `create table ddlt (id int, f1 int, flag int); insert into ddlt values (1, 2, 1)`)
	}
	ctx := ctxT(t)
	run := func(dsn string) string {
		pc, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close(ctx)
		var out []string
		step := func(what string, err error, more ...any) {
			out = append(out, fmt.Sprint(what, " ", err, more))
		}
		sd, err := pc.Prepare(ctx, "s1", "select * from ddlt where id = $1", nil)
		step("prepare s1", err, len(sd.Fields))
		r := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("1")}, nil, nil).Read()
		step("exec s1", r.Err, r.Rows)
		_, err = pc.Exec(ctx, "alter table ddlt drop column f1; alter table ddlt alter column flag type bool using flag = 1").ReadAll()
		step("alter", err)
		r = pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("1")}, nil, nil).Read()
		step("exec s1 again", r.Err)
		step("deallocate", pc.Deallocate(ctx, "s1"))
		sd, err = pc.Prepare(ctx, "s2", "select * from ddlt where id = $1", nil)
		step("prepare s2", err, len(sd.Fields))
		sd, err = pc.Prepare(ctx, "s3", "select * from ddlt where flag = $1", nil)
		step("prepare s3", err, sd.ParamOIDs)
		r = pc.ExecPrepared(ctx, "s2", [][]byte{[]byte("1")}, nil, nil).Read()
		step("exec s2", r.Err, r.Rows)
		return strings.Join(out, "\n")
	}
	want := run(twin.DSN())
	if got := run(e.DSN()); got != want {
		t.Errorf("through the proxy (direct -, proxy +):\n%s", lineDiff(want, got))
	}
}
