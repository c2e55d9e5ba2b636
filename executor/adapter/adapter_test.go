//go:build cgo

package adapter_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/adapter"
	"github.com/sqlcached/sqlcached/executor/duckdb"
)

// counting counts the statements that reach the warehouse.
type counting struct {
	*duckdb.DB
	n atomic.Int64
}

func (c *counting) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	c.n.Add(1)
	return c.DB.Execute(ctx, req)
}

type env struct {
	dsn string
	wh  *counting
	srv *adapter.Server
}

// start serves a new in-memory DuckDB with a small table.
func start(t testing.TB) *env {
	t.Helper()
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Exec(context.Background(), `create table items (id integer, name varchar, price decimal(10,2));
		insert into items select i, 'item ' || i, i * 1.5 from range(1, 101) t(i)`); err != nil {
		t.Fatal(err)
	}
	wh := &counting{DB: db}
	srv, err := adapter.New(adapter.Config{Warehouse: wh, Name: "DuckDB"})
	if err != nil {
		t.Fatal(err)
	}
	ln, dsn, err := adapter.Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, adapter.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{dsn: dsn + " user=analyst dbname=shop", wh: wh, srv: srv}
}

func (e *env) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestQueriesBothProtocols(t *testing.T) {
	e := start(t)
	c := e.connect(t)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		var name string
		var n int64
		err := c.QueryRow(ctx, "select name, count(*) over () from items where id = $1", mode, 42).Scan(&name, &n)
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if name != "item 42" || n != 1 {
			t.Errorf("mode %v: got %q %d", mode, name, n)
		}
	}
	// The connection survives an error and a statement the warehouse lacks.
	if _, err := c.Exec(ctx, "select * from nowhere"); code(err) != "42P01" {
		t.Errorf("missing table: %v (SQLSTATE %s), want 42P01", err, code(err))
	}
	if _, err := c.Exec(ctx, "copy items to stdout"); code(err) != "0A000" || !strings.Contains(err.Error(), "DuckDB") {
		t.Errorf("COPY: %v, want 0A000 naming the warehouse", err)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after errors: %v", err)
	}
}

func TestSessionStatementsStayInTheSession(t *testing.T) {
	e := start(t)
	c := e.connect(t)
	ctx := context.Background()
	show := func(name string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, "show "+name, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatalf("show %s: %v", name, err)
		}
		return v
	}
	before := e.wh.n.Load()
	for _, sql := range []string{
		"set extra_float_digits = 3", "set application_name = 'Superset'", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
		"set role none", "reset extra_float_digits", "deallocate all",
	} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if got := c.PgConn().ParameterStatus("application_name"); got != "Superset" {
		t.Errorf("application_name reported %q, want Superset", got)
	}
	if got := show("default_transaction_isolation"); got != "read uncommitted" {
		t.Errorf("default_transaction_isolation %q", got)
	}
	if got := show("extra_float_digits"); got != "1" {
		t.Errorf("extra_float_digits after RESET %q, want 1", got)
	}
	if got := show("standard_conforming_strings"); got != "on" {
		t.Errorf("standard_conforming_strings %q", got)
	}
	if _, err := c.Exec(ctx, "show no_such_setting"); code(err) != "42704" {
		t.Errorf("unknown setting: %v", err)
	}

	// SET LOCAL ends with the block; SET inside a rolled-back block is undone.
	mustExec(t, c, "begin")
	mustExec(t, c, "set local timezone = 'Europe/Paris'")
	if got := show("timezone"); got != "Europe/Paris" {
		t.Errorf("in block: TimeZone %q", got)
	}
	if got := c.PgConn().ParameterStatus("TimeZone"); got != "Europe/Paris" {
		t.Errorf("in block: reported TimeZone %q", got)
	}
	mustExec(t, c, "set datestyle = 'ISO, DMY'")
	mustExec(t, c, "rollback")
	if got := show("timezone"); got != "UTC" {
		t.Errorf("after rollback: TimeZone %q", got)
	}
	if got := show("datestyle"); got != "ISO, MDY" {
		t.Errorf("after rollback: DateStyle %q", got)
	}
	if got := c.PgConn().ParameterStatus("TimeZone"); got != "UTC" {
		t.Errorf("after rollback: reported TimeZone %q", got)
	}
	if n := e.wh.n.Load() - before; n != 0 {
		t.Errorf("%d session statements reached the warehouse, want 0", n)
	}
}

func mustExec(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestFailedBlockUntilRollback(t *testing.T) {
	e := start(t)
	c := e.connect(t)
	ctx := context.Background()
	mustExec(t, c, "begin")
	mustExec(t, c, "savepoint a")
	if _, err := c.Exec(ctx, "select 1/0::integer + nosuchcolumn from items"); err == nil {
		t.Fatal("bad statement ran")
	}
	if c.PgConn().TxStatus() != 'E' {
		t.Errorf("status %c, want E", c.PgConn().TxStatus())
	}
	if _, err := c.Exec(ctx, "select 1"); code(err) != "25P02" {
		t.Errorf("in failed block: %v, want 25P02", err)
	}
	mustExec(t, c, "rollback to savepoint a")
	if c.PgConn().TxStatus() != 'T' {
		t.Errorf("after ROLLBACK TO: status %c, want T", c.PgConn().TxStatus())
	}
	mustExec(t, c, "select 1")
	if _, err := c.Exec(ctx, "release savepoint nosuch"); code(err) != "3B001" {
		t.Errorf("unknown savepoint: %v", err)
	}
	tag, err := c.PgConn().Exec(ctx, "commit").ReadAll()
	if err != nil || tag[0].CommandTag.String() != "ROLLBACK" {
		t.Errorf("COMMIT of a failed block: %v %v, want the tag ROLLBACK", tag, err)
	}
	if c.PgConn().TxStatus() != 'I' {
		t.Errorf("status %c, want I", c.PgConn().TxStatus())
	}
}

func TestCursors(t *testing.T) {
	e := start(t)
	c := e.connect(t)
	ctx := context.Background()
	before := e.wh.n.Load()
	mustExec(t, c, "begin")
	mustExec(t, c, "declare c1 no scroll cursor for select id from items order by id")
	ids := func(sql string) []int {
		t.Helper()
		rows, err := c.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		v, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}
	if got := ids("fetch 3 from c1"); !equal(got, []int{1, 2, 3}) {
		t.Errorf("fetch 3: %v", got)
	}
	if got := ids("fetch forward 2 in c1"); !equal(got, []int{4, 5}) {
		t.Errorf("fetch forward 2: %v", got)
	}
	mustExec(t, c, "move 90 in c1")
	if got := ids("fetch all from c1"); !equal(got, []int{96, 97, 98, 99, 100}) {
		t.Errorf("fetch all: %v", got)
	}
	if got := ids("fetch backward 2 from c1"); !equal(got, []int{100, 99}) {
		t.Errorf("fetch backward: %v", got)
	}
	if got := ids("fetch absolute 7 from c1"); !equal(got, []int{7}) {
		t.Errorf("fetch absolute: %v", got)
	}
	mustExec(t, c, "close c1")
	if _, err := c.Exec(ctx, "fetch 1 from c1"); code(err) != "34000" {
		t.Errorf("closed cursor: %v", err)
	}
	mustExec(t, c, "rollback")
	if _, err := c.Exec(ctx, "declare c2 cursor for select 1"); code(err) != "25P01" {
		t.Errorf("DECLARE outside a block: %v", err)
	}
	mustExec(t, c, "declare c3 cursor with hold for select id from items where id < 3 order by id")
	if got := ids("fetch 10 from c3"); !equal(got, []int{1, 2}) {
		t.Errorf("WITH HOLD cursor: %v", got)
	}
	if n := e.wh.n.Load() - before; n != 2 {
		t.Errorf("%d runs on the warehouse, want 2 (one per cursor)", n)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A portal read a few rows at a time, as JDBC does with a fetch size.
func TestPortalInPortions(t *testing.T) {
	e := start(t)
	nc, err := net.Dial("unix", strings.Fields(e.dsn)[0][len("host="):]+"/.s.PGSQL.5432")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "jdbc", "database": "shop"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	until := func(stop func(pgproto3.BackendMessage) bool) []pgproto3.BackendMessage {
		t.Helper()
		var got []pgproto3.BackendMessage
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *pgproto3.ErrorResponse:
				t.Fatalf("error: %s %s", m.Code, m.Message)
			case *pgproto3.DataRow:
				m = &pgproto3.DataRow{Values: append([][]byte{}, m.Values...)}
				got = append(got, m)
				continue
			}
			got = append(got, m)
			if stop(m) {
				return got
			}
		}
	}
	isReady := func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.ReadyForQuery); return ok }
	until(isReady)

	fe.Send(&pgproto3.Parse{Query: "select id from items where id <= $1 order by id", ParameterOIDs: []uint32{23}})
	fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte("5")}})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	first := until(func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.PortalSuspended); return ok })
	rows := 0
	for _, m := range first {
		if _, ok := m.(*pgproto3.DataRow); ok {
			rows++
		}
	}
	if rows != 2 {
		t.Fatalf("first portion: %d rows, want 2 (%v)", rows, first)
	}
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	rest := until(isReady)
	var vals []string
	var tags []string
	for _, m := range rest {
		switch m := m.(type) {
		case *pgproto3.DataRow:
			vals = append(vals, string(m.Values[0]))
		case *pgproto3.CommandComplete:
			tags = append(tags, string(m.CommandTag))
		}
	}
	if strings.Join(vals, ",") != "3,4,5" || len(tags) != 1 || tags[0] != "SELECT 1" {
		t.Errorf("later portions: rows %v, tags %v; want 3,4,5 and one SELECT 1", vals, tags)
	}
	if n := e.wh.n.Load(); n != 1 {
		t.Errorf("%d runs on the warehouse, want 1", n)
	}
}

func TestCancel(t *testing.T) {
	e := start(t)
	c := e.connect(t)
	slow := "select count(*) from range(100000000) a, range(100000) b where a.range + b.range = -1"

	// A context that ends sends a CancelRequest.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := c.Exec(ctx, slow)
	if err == nil {
		t.Fatal("the slow query finished")
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("canceled after %v", d)
	}
	// pgx closes a connection whose context ended; a new one works.
	c = e.connect(t)

	// pg_cancel_backend from another session.
	var pid uint32
	if err := c.QueryRow(context.Background(), "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if pid != c.PgConn().PID() {
		t.Errorf("pg_backend_pid %d, BackendKeyData %d", pid, c.PgConn().PID())
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Exec(context.Background(), slow); errc <- err }()
	other := e.connect(t)
	time.Sleep(200 * time.Millisecond)
	var ok bool
	if err := other.QueryRow(context.Background(), "select pg_cancel_backend($1)", int(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_cancel_backend: %v %v", ok, err)
	}
	select {
	case err := <-errc:
		if code(err) != "57014" {
			t.Errorf("canceled query: %v, want 57014", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pg_cancel_backend did not stop the query")
	}
	var one int
	if err := c.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
		t.Errorf("after cancel: %v", err)
	}
}

func TestPsql(t *testing.T) {
	e := start(t)
	out, err := exec.Command("psql", e.dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-c", "select name, price from items where id in (1, 2) order by id",
		"-c", "begin", "-c", "select count(*) from items", "-c", "commit").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	want := "item 1|1.50\nitem 2|3.00\nBEGIN\n100\nCOMMIT\n"
	if string(out) != want {
		t.Errorf("psql printed %q, want %q", out, want)
	}
}

func TestCloseEndsSessionsAndGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := adapter.New(adapter.Config{Warehouse: db})
	ln, dsn, err := adapter.Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	var conns []*pgx.Conn
	for range 3 {
		c, err := pgx.Connect(context.Background(), dsn+" user=a")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := srv.Sessions(); n != 3 {
		t.Errorf("%d sessions, want 3", n)
	}
	srv.Close()
	for _, c := range conns {
		if err := c.Ping(context.Background()); err == nil {
			t.Error("a session outlived Close")
		}
		c.Close(context.Background())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}
