package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newPool(t *testing.T) (*postgres.Pool, executor.Login) {
	t.Helper()
	p, login, _ := newPoolOf(t, 2)
	return p, login
}

// newPoolOf returns a pool of at most maxConns connections to a fresh
// database of the shared server, a login to it, and the server.
func newPoolOf(t *testing.T, maxConns int) (*postgres.Pool, executor.Login, *testenv.PG) {
	t.Helper()
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	p, err := postgres.NewPool(postgres.Config{DSN: fmt.Sprintf("postgres://%s/%s?sslmode=disable", pg.Addr(), db), MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, executor.Login{User: testenv.SuperUser, Password: testenv.SuperPassword, Database: db}, pg
}

// decode splits a wire answer into its messages.
func decode(t *testing.T, wire []byte) []pgproto3.BackendMessage {
	t.Helper()
	var out []pgproto3.BackendMessage
	for len(wire) > 0 {
		typ := wire[0]
		n := int(uint32(wire[1])<<24|uint32(wire[2])<<16|uint32(wire[3])<<8|uint32(wire[4])) + 1
		body := wire[5:n]
		var m pgproto3.BackendMessage
		switch typ {
		case 'T':
			m = &pgproto3.RowDescription{}
		case 'D':
			m = &pgproto3.DataRow{}
		case 'C':
			m = &pgproto3.CommandComplete{}
		default:
			t.Fatalf("unexpected message %q in an answer", typ)
		}
		if err := m.Decode(body); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		wire = wire[n:]
	}
	return out
}

func TestExecuteSimpleAnswerIsWireForm(t *testing.T) {
	p, login := newPool(t)
	res, err := p.Execute(context.Background(), &executor.Request{Login: login, SQL: "select g, 'x' || g from generate_series(1, 3) g"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, res.Wire)
	if len(msgs) != 5 || res.Rows != 3 || res.Tag != "SELECT 3" {
		t.Fatalf("got %d messages, %d rows, tag %q", len(msgs), res.Rows, res.Tag)
	}
	if rd := msgs[0].(*pgproto3.RowDescription); len(rd.Fields) != 2 {
		t.Fatalf("row description %+v", rd)
	}
	if got := string(msgs[3].(*pgproto3.DataRow).Values[1]); got != "x3" {
		t.Fatalf("third row: got %q, want x3", got)
	}
}

func TestExecuteExtendedWithParamsAndBinaryResults(t *testing.T) {
	p, login := newPool(t)
	res, err := p.Execute(context.Background(), &executor.Request{
		Login:         login,
		SQL:           "select $1::int4 + 1, $2::text",
		ParamOIDs:     []uint32{23, 25},
		Params:        [][]byte{[]byte("41"), nil},
		ResultFormats: []int16{1, 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, res.Wire)
	row := msgs[1].(*pgproto3.DataRow)
	if want := []byte{0, 0, 0, 42}; string(row.Values[0]) != string(want) || row.Values[1] != nil {
		t.Fatalf("got %v, want binary 42 and NULL", row.Values)
	}
}

func TestExecuteAppliesSettings(t *testing.T) {
	p, login := newPool(t)
	run := func(tz string) string {
		res, err := p.Execute(context.Background(), &executor.Request{
			Login: login, SQL: "select timestamptz '2026-01-01 00:00:00+00'::text",
			Settings: map[string]string{"timezone": "SET timezone = '" + tz + "'"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(decode(t, res.Wire)[1].(*pgproto3.DataRow).Values[0])
	}
	if got := run("Asia/Tokyo"); got != "2026-01-01 09:00:00+09" {
		t.Fatalf("Tokyo: %q", got)
	}
	if got := run("UTC"); got != "2026-01-01 00:00:00+00" {
		t.Fatalf("UTC: %q", got)
	}
}

func TestExecuteErrorsCarrySQLSTATE(t *testing.T) {
	p, login := newPool(t)
	_, err := p.Execute(context.Background(), &executor.Request{Login: login, SQL: "select 1/0"})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22012" {
		t.Fatalf("got %v, want 22012", err)
	}
	res, err := p.Execute(context.Background(), &executor.Request{Login: login, SQL: "select 1"})
	if err != nil || res.Rows != 1 {
		t.Fatalf("after an error: %v %v", res, err)
	}
}

func TestExecuteTooLarge(t *testing.T) {
	p, login := newPool(t)
	_, err := p.Execute(context.Background(), &executor.Request{Login: login, SQL: "select repeat('x', 1000) from generate_series(1, 100)", MaxBytes: 10000})
	if !errors.Is(err, executor.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func TestExecuteTimeoutCancelsOnWarehouse(t *testing.T) {
	p, login := newPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Execute(ctx, &executor.Request{Login: login, SQL: "select pg_sleep(20)"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: the statement was not cancelled", d)
	}
	if _, err := p.Execute(context.Background(), &executor.Request{Login: login, SQL: "select 1"}); err != nil {
		t.Fatalf("pool unusable after a cancel: %v", err)
	}
}

func TestVolatilityFromCatalog(t *testing.T) {
	p, login := newPool(t)
	m, err := p.Volatility(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]byte{"random": 'v', "now": 's', "lower": 'i', "pg_catalog.nextval": 'v', "date_trunc": 's'} {
		if got := m[name]; got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}

// TestNamedStatementsAreParsedOncePerConnection: requests naming their
// statement bind the statement prepared by the first of them; after DDL
// changes what it returns, the next request still gets the new answer.
func TestNamedStatementsAreParsedOncePerConnection(t *testing.T) {
	p, login, pg := newPoolOf(t, 1)
	db := login.Database
	pg.Exec(t, db, "create table named (a int); insert into named values (1), (2), (3)")
	ctx := context.Background()
	req := func(param string) *executor.Request {
		return &executor.Request{
			Login: login, SQL: "select * from named where a >= $1::int order by a", Statement: "sqlcached_test_named",
			ParamOIDs: []uint32{23}, Params: [][]byte{[]byte(param)},
		}
	}
	rows := func(res *executor.Result) [][][]byte {
		var out [][][]byte
		for _, m := range decode(t, res.Wire) {
			if d, ok := m.(*pgproto3.DataRow); ok {
				out = append(out, d.Values)
			}
		}
		return out
	}
	for _, param := range []string{"2", "1", "3"} {
		res, err := p.Execute(ctx, req(param))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(rows(res)), 4-int(param[0]-'0'); got != want {
			t.Fatalf("a >= %s: %d rows, want %d", param, got, want)
		}
	}
	// The one connection holds the statement once.
	res, err := p.Execute(ctx, &executor.Request{Login: login, SQL: "select name, statement from pg_prepared_statements"})
	if err != nil {
		t.Fatal(err)
	}
	got := rows(res)
	if len(got) != 1 || string(got[0][0]) != "sqlcached_test_named" {
		t.Fatalf("prepared on the connection: %q, want the one named statement", got)
	}
	// DDL changes the statement's result type: the next request answers
	// with the new column instead of failing.
	pg.Exec(t, db, "alter table named add column b text default 'x'")
	res, err = p.Execute(ctx, req("3"))
	if err != nil {
		t.Fatalf("after DDL: %v", err)
	}
	if r := rows(res); len(r) != 1 || len(r[0]) != 2 || string(r[0][1]) != "x" {
		t.Fatalf("after DDL: rows %q, want one row of two columns", r)
	}
	// A failing statement is not taken for prepared.
	_, err = p.Execute(ctx, &executor.Request{Login: login, SQL: "select nope from named where a = $1::int", Statement: "sqlcached_test_bad",
		ParamOIDs: []uint32{23}, Params: [][]byte{[]byte("1")}})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42703" {
		t.Fatalf("a bad statement: %v, want 42703", err)
	}
	if _, err := p.Execute(ctx, req("1")); err != nil {
		t.Fatalf("after a failed parse, the connection serves on: %v", err)
	}
}

// TestSettingsReplayIsRobust: session settings whose SQL ends in a
// comment are all applied; a setting the warehouse refuses fails that
// request alone, and the next request on the pool gets its own answer.
func TestSettingsReplayIsRobust(t *testing.T) {
	p, login, _ := newPoolOf(t, 1)
	ctx := context.Background()
	value := func(req *executor.Request) string {
		t.Helper()
		res, err := p.Execute(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", req.SQL, err)
		}
		for _, m := range decode(t, res.Wire) {
			if d, ok := m.(*pgproto3.DataRow); ok {
				return string(d.Values[0])
			}
		}
		t.Fatalf("%s: no row", req.SQL)
		return ""
	}
	settings := map[string]string{
		"timezone":  "SET TimeZone = 'Asia/Tokyo' -- the office",
		"datestyle": "set datestyle to 'SQL, DMY' -- the users",
	}
	for range 3 { // map order varies
		got := value(&executor.Request{Login: login, SQL: "select current_setting('TimeZone') || ' ' || current_setting('DateStyle')", Settings: settings})
		if got != "Asia/Tokyo SQL, DMY" {
			t.Fatalf("settings applied: %q", got)
		}
		value(&executor.Request{Login: login, SQL: "select 0"}) // back to the defaults
	}
	_, err := p.Execute(ctx, &executor.Request{Login: login, SQL: "select 'first'", Settings: map[string]string{"nosuch": "SET nosuch_setting_at_all = 1"}})
	if err == nil {
		t.Fatal("a refused setting did not fail the request")
	}
	if got := value(&executor.Request{Login: login, SQL: "select 'second'"}); got != "second" {
		t.Fatalf("the next request got %q, want its own answer", got)
	}
}

// TestIdleConnectionEndedByWarehouseIsNotHandedOut: a connection the
// warehouse ended while it sat idle in the pool (pg_terminate_backend, as
// a tool's "stop" does) is dropped at the next Acquire, which gets a
// working one instead of a dead one.
func TestIdleConnectionEndedByWarehouseIsNotHandedOut(t *testing.T) {
	p, login, pg := newPoolOf(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := p.Acquire(ctx, postgres.Login(login))
	if err != nil {
		t.Fatal(err)
	}
	pid := c.PID
	p.Release(c)
	pg.Exec(t, "postgres", fmt.Sprintf("select pg_terminate_backend(%d)", pid))
	// pg_terminate_backend returns before the backend has gone: wait
	// for it, as a later Acquire would come later.
	pg.Exec(t, "postgres", fmt.Sprintf(`do $$ begin
		for i in 1..1000 loop
			exit when not exists (select 1 from pg_stat_activity where pid = %d);
			perform pg_sleep(0.01);
		end loop; end $$`, pid))
	res, err := p.Execute(ctx, &executor.Request{Login: login, SQL: "select pg_backend_pid()"})
	if err != nil {
		t.Fatalf("the next statement after the idle connection was ended: %v", err)
	}
	if res.Rows != 1 {
		t.Fatalf("got %d rows", res.Rows)
	}
}
