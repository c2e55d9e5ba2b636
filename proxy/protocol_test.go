package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// rawClient speaks the protocol message by message, for what drivers do
// not let a test do or see.
type rawClient struct {
	t        testing.TB
	nc       net.Conn
	fe       *pgproto3.Frontend
	greeting []pgproto3.BackendMessage // what the startup was answered with
}

// readTimeout bounds every read of a raw client: a proxy that hangs fails
// the test instead of blocking it.
const readTimeout = 15 * time.Second

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
}

// raw connects a raw client to the proxy as the superuser and reads the
// startup's answers up to ReadyForQuery.
func (e *env) raw(t testing.TB, params ...string) *rawClient {
	t.Helper()
	r := dialRaw(t, e.Addr)
	p := map[string]string{"user": testenv.SuperUser, "database": e.Database}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: p})
	r.greeting = r.untilReady()
	if _, ok := r.greeting[0].(*pgproto3.AuthenticationOk); !ok {
		t.Fatalf("startup answered with %s, want AuthenticationOk first", describe(r.greeting))
	}
	return r
}

func (r *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	r.t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatalf("sending %T: %v", msgs[0], err)
	}
}

func (r *rawClient) write(b []byte) error {
	_ = r.nc.SetWriteDeadline(time.Now().Add(readTimeout))
	_, err := r.nc.Write(b)
	return err
}

// receive reads one message, a copy the caller may keep.
func (r *rawClient) receive() (pgproto3.BackendMessage, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(readTimeout))
	m, err := r.fe.Receive()
	if err != nil {
		return nil, err
	}
	return clone(m), nil
}

// untilReady reads up to and including the next ReadyForQuery.
func (r *rawClient) untilReady() []pgproto3.BackendMessage {
	r.t.Helper()
	var got []pgproto3.BackendMessage
	for {
		m, err := r.receive()
		if err != nil {
			r.t.Fatalf("after %s: %v", describe(got), err)
		}
		got = append(got, m)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return got
		}
	}
}

// untilEnd reads until the proxy closes the connection and returns what it
// sent. A proxy that keeps the connection open past readTimeout fails the
// test.
func (r *rawClient) untilEnd() []pgproto3.BackendMessage {
	r.t.Helper()
	var got []pgproto3.BackendMessage
	for {
		m, err := r.receive()
		if err != nil {
			if isTimeoutErr(err) {
				r.t.Fatalf("the connection was still open after %v; got %s", readTimeout, describe(got))
			}
			return got
		}
		got = append(got, m)
	}
}

// query runs one simple Query and returns its answers.
func (r *rawClient) query(sql string) []pgproto3.BackendMessage {
	r.t.Helper()
	r.send(&pgproto3.Query{String: sql})
	return r.untilReady()
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clone copies a message out of the Frontend's buffers.
func clone(m pgproto3.BackendMessage) pgproto3.BackendMessage {
	b, err := m.Encode(nil)
	if err != nil {
		panic(err)
	}
	n := reflect.New(reflect.TypeOf(m).Elem()).Interface().(pgproto3.BackendMessage)
	if err := n.Decode(b[5:]); err != nil {
		panic(fmt.Sprintf("decoding a copy of %T: %v", m, err))
	}
	return n
}

// describe renders messages for failure messages.
func describe(msgs []pgproto3.BackendMessage) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			parts[i] = fmt.Sprintf("%T", m)
			continue
		}
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// kinds names the messages' types: "ParseComplete", "ErrorResponse", ...
func kinds(msgs []pgproto3.BackendMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = reflect.TypeOf(m).Elem().Name()
	}
	return out
}

func find[M pgproto3.BackendMessage](msgs []pgproto3.BackendMessage) (M, bool) {
	for _, m := range msgs {
		if v, ok := m.(M); ok {
			return v, true
		}
	}
	var zero M
	return zero, false
}

func lastStatus(t testing.TB, msgs []pgproto3.BackendMessage) byte {
	t.Helper()
	z, ok := msgs[len(msgs)-1].(*pgproto3.ReadyForQuery)
	if !ok {
		t.Fatalf("got %s, want ReadyForQuery last", describe(msgs))
	}
	return z.TxStatus
}

// errorCode returns the SQLSTATE of the first ErrorResponse, "" if none.
func errorCode(msgs []pgproto3.BackendMessage) string {
	if e, ok := find[*pgproto3.ErrorResponse](msgs); ok {
		return e.Code
	}
	return ""
}

func TestStartupParameterStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	direct, err := pgx.Connect(ctx, e.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	r := e.raw(t, "application_name", "dashboards")
	params := map[string]string{}
	for _, m := range r.greeting {
		if ps, ok := m.(*pgproto3.ParameterStatus); ok {
			params[ps.Name] = ps.Value
		}
	}
	for _, name := range []string{"server_version", "client_encoding", "DateStyle", "TimeZone", "integer_datetimes", "standard_conforming_strings", "application_name", "is_superuser"} {
		if _, ok := params[name]; !ok {
			t.Errorf("no ParameterStatus for %s at startup; got %v", name, params)
		}
	}
	if got, want := params["server_version"], direct.PgConn().ParameterStatus("server_version"); got != want {
		t.Errorf("server_version %q, want the warehouse's %q", got, want)
	}
	if got := params["application_name"]; got != "dashboards" {
		t.Errorf("application_name %q, want the client's %q", got, "dashboards")
	}
	if got := params["client_encoding"]; got != "UTF8" {
		t.Errorf("client_encoding %q, want UTF8", got)
	}
	if _, ok := find[*pgproto3.BackendKeyData](r.greeting); !ok {
		t.Errorf("no BackendKeyData at startup: %s", describe(r.greeting))
	}
	if got := lastStatus(t, r.greeting); got != 'I' {
		t.Errorf("ReadyForQuery status %q after startup, want 'I'", got)
	}
}

func TestNewerProtocolAndUnknownOptionsAreNegotiated(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		name    string
		version uint32
		extra   map[string]string
		unknown []string
	}{
		{"3.1", 3<<16 | 1, nil, nil},
		{"3.2", pgproto3.ProtocolVersion32, nil, nil},
		{"_pq_ option", pgproto3.ProtocolVersion30, map[string]string{"_pq_.foo": "on"}, []string{"_pq_.foo"}},
		{"3.1 with options", 3<<16 | 1, map[string]string{"_pq_.foo": "on", "_pq_.bar": "1"}, []string{"_pq_.bar", "_pq_.foo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, e.Addr)
			p := map[string]string{"user": testenv.SuperUser, "database": e.Database}
			for k, v := range tc.extra {
				p[k] = v
			}
			r.send(&pgproto3.StartupMessage{ProtocolVersion: tc.version, Parameters: p})
			got := r.untilReady()
			nv, ok := got[0].(*pgproto3.NegotiateProtocolVersion)
			if !ok {
				t.Fatalf("startup answered with %s, want NegotiateProtocolVersion first", describe(got))
			}
			if nv.NewestMinorProtocol != 0 {
				t.Errorf("newest minor version %d, want 0", nv.NewestMinorProtocol)
			}
			unknown := slices.Clone(nv.UnrecognizedOptions)
			slices.Sort(unknown)
			if !slices.Equal(unknown, tc.unknown) {
				t.Errorf("unrecognised options %q, want %q", unknown, tc.unknown)
			}
			if _, ok := got[1].(*pgproto3.AuthenticationOk); !ok {
				t.Fatalf("got %s, want AuthenticationOk after NegotiateProtocolVersion", describe(got))
			}
			ans := r.query("select 41 + 1")
			if row, ok := find[*pgproto3.DataRow](ans); !ok || string(row.Values[0]) != "42" {
				t.Fatalf("select after negotiation: %s", describe(ans))
			}
		})
	}
	t.Run("pgx asking for 3.2", func(t *testing.T) {
		ctx := ctxT(t)
		c, err := pgx.Connect(ctx, e.DSN()+"&max_protocol_version=3.2")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "select 42").Scan(&n); err != nil || n != 42 {
			t.Fatalf("got %d, %v, want 42", n, err)
		}
	})
}

func TestTransactionStatusSimpleProtocol(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	steps := []struct {
		sql    string
		status byte
		code   string
	}{
		{"begin", 'T', ""},
		{"select 1", 'T', ""},
		{"select 1/0", 'E', "22012"},
		{"select 1", 'E', "25P02"},
		{"rollback", 'I', ""},
		{"select 1", 'I', ""},
		{"begin; select 1/0", 'E', "22012"},
		{"commit", 'I', ""},
		{"select 1/0", 'I', "22012"},
	}
	for _, s := range steps {
		got := r.query(s.sql)
		if st := lastStatus(t, got); st != s.status {
			t.Errorf("%q: ReadyForQuery %q, want %q (%s)", s.sql, st, s.status, describe(got))
		}
		if code := errorCode(got); code != s.code {
			t.Errorf("%q: SQLSTATE %q, want %q", s.sql, code, s.code)
		}
	}
}

// extended runs sql with Parse, Bind, Execute and Sync.
func (r *rawClient) extended(sql string) []pgproto3.BackendMessage {
	r.t.Helper()
	r.send(&pgproto3.Parse{Query: sql}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	return r.untilReady()
}

func TestTransactionStatusExtendedProtocol(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	steps := []struct {
		sql    string
		status byte
		code   string
	}{
		{"begin", 'T', ""},
		{"select 1", 'T', ""},
		{"select 1/0", 'E', "22012"},
		{"select 1", 'E', "25P02"},
		{"rollback", 'I', ""},
		{"select 1", 'I', ""},
		{"start transaction", 'T', ""},
		{"commit", 'I', ""},
		{"select 1/0", 'I', "22012"},
	}
	for _, s := range steps {
		got := r.extended(s.sql)
		if st := lastStatus(t, got); st != s.status {
			t.Errorf("%q: ReadyForQuery %q, want %q (%s)", s.sql, st, s.status, describe(got))
		}
		if code := errorCode(got); code != s.code {
			t.Errorf("%q: SQLSTATE %q, want %q", s.sql, code, s.code)
		}
	}
}

func TestNoticeIsRelayed(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	got := r.query(`do $$ begin raise notice 'hi from the warehouse'; end $$`)
	n, ok := find[*pgproto3.NoticeResponse](got)
	if !ok {
		t.Fatalf("got %s, want a NoticeResponse", describe(got))
	}
	if n.Message != "hi from the warehouse" || n.Severity != "NOTICE" {
		t.Errorf("notice %q %q, want NOTICE %q", n.Severity, n.Message, "hi from the warehouse")
	}
	if want := []string{"NoticeResponse", "CommandComplete", "ReadyForQuery"}; !slices.Equal(kinds(got), want) {
		t.Errorf("got %v, want %v", kinds(got), want)
	}
}

func TestParameterStatusAfterSet(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	got := r.query(`set application_name = 'renamed'`)
	ps, ok := find[*pgproto3.ParameterStatus](got)
	if !ok || ps.Name != "application_name" || ps.Value != "renamed" {
		t.Fatalf("got %s, want ParameterStatus application_name=renamed", describe(got))
	}
	got = r.query(`show application_name`)
	if row, ok := find[*pgproto3.DataRow](got); !ok || string(row.Values[0]) != "renamed" {
		t.Fatalf("show application_name: %s", describe(got))
	}
}

func TestListenReceivesNotifications(t *testing.T) {
	e := newEnv(t, envOptions{maxConns: 3})
	ctx := ctxT(t)
	listener := e.connect(t)
	if _, err := listener.Exec(ctx, `listen dashboards`); err != nil {
		t.Fatal(err)
	}
	// Other sessions take connections in between; the listener's must
	// stay its own.
	for i := 0; i < 3; i++ {
		o := e.connect(t)
		if _, err := o.Exec(ctx, `select 1`); err != nil {
			t.Fatal(err)
		}
	}
	notifier := e.connect(t)
	if _, err := notifier.Exec(ctx, `notify dashboards, 'refresh'`); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("waiting on an idle session for a notification: %v", err)
	}
	if n.Channel != "dashboards" || n.Payload != "refresh" {
		t.Errorf("got notification %q %q, want dashboards refresh", n.Channel, n.Payload)
	}
	// And one that arrives while the session is busy.
	if _, err := notifier.Exec(ctx, `notify dashboards, 'again'`); err != nil {
		t.Fatal(err)
	}
	if _, err := listener.Exec(ctx, `select pg_sleep(0.1)`); err != nil {
		t.Fatal(err)
	}
	wctx2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	n, err = listener.WaitForNotification(wctx2)
	if err != nil || n.Payload != "again" {
		t.Fatalf("second notification: %v %v", n, err)
	}
}

func TestTempTableSurvivesTransactions(t *testing.T) {
	e := newEnv(t, envOptions{maxConns: 2})
	ctx := ctxT(t)
	c := e.connect(t)
	if _, err := c.Exec(ctx, `create temp table scratch (x int)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Exec(ctx, `insert into scratch values ($1)`, i); err != nil {
			t.Fatal(err)
		}
		// Another session's transaction in between.
		o := e.connect(t)
		tx, err := o.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `select 1`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		o.Close(ctx)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `insert into scratch values (3)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(ctx, `select count(*) from scratch`).Scan(&n); err != nil {
		t.Fatalf("temp table after several transactions: %v", err)
	}
	if n != 4 {
		t.Fatalf("temp table holds %d rows, want 4", n)
	}
}

func TestDuplicateStatementNameSkipsToSync(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	r.send(&pgproto3.Parse{Name: "s1", Query: "select 1"}, &pgproto3.Sync{})
	if got := r.untilReady(); !slices.Equal(kinds(got), []string{"ParseComplete", "ReadyForQuery"}) {
		t.Fatalf("first Parse: %s", describe(got))
	}
	r.send(&pgproto3.Parse{Name: "s1", Query: "select 2"}, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got := r.untilReady()
	if want := []string{"ErrorResponse", "ReadyForQuery"}; !slices.Equal(kinds(got), want) {
		t.Fatalf("duplicate Parse in a later batch: got %s, want %v", describe(got), want)
	}
	if code := errorCode(got); code != "42P05" {
		t.Errorf("SQLSTATE %q, want 42P05", code)
	}
	if st := lastStatus(t, got); st != 'I' {
		t.Errorf("status %q, want 'I'", st)
	}

	// Within one batch: the first Parse is done, the rest skipped.
	r.send(&pgproto3.Parse{Name: "s2", Query: "select 2"}, &pgproto3.Parse{Name: "s2", Query: "select 3"},
		&pgproto3.Bind{PreparedStatement: "s2"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got = r.untilReady()
	if want := []string{"ParseComplete", "ErrorResponse", "ReadyForQuery"}; !slices.Equal(kinds(got), want) {
		t.Fatalf("duplicate Parse in one batch: got %s, want %v", describe(got), want)
	}
	if code := errorCode(got); code != "42P05" {
		t.Errorf("SQLSTATE %q, want 42P05", code)
	}

	// Both statements keep their first text.
	for name, want := range map[string]string{"s1": "1", "s2": "2"} {
		r.send(&pgproto3.Bind{PreparedStatement: name}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got = r.untilReady()
		if row, ok := find[*pgproto3.DataRow](got); !ok || string(row.Values[0]) != want {
			t.Errorf("statement %s: got %s, want a row %q", name, describe(got), want)
		}
	}

	// Inside a transaction the error fails it, as on PostgreSQL.
	r.query("begin")
	r.send(&pgproto3.Parse{Name: "s1", Query: "select 4"}, &pgproto3.Sync{})
	got = r.untilReady()
	if errorCode(got) != "42P05" || lastStatus(t, got) != 'E' {
		t.Errorf("duplicate Parse in a transaction: got %s, want 42P05 then status 'E'", describe(got))
	}
	r.query("rollback")
}

func TestBindOfUnknownStatement(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	for _, name := range []string{"nope", ""} {
		r.send(&pgproto3.Bind{PreparedStatement: name}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got := r.untilReady()
		if want := []string{"ErrorResponse", "ReadyForQuery"}; !slices.Equal(kinds(got), want) {
			t.Fatalf("Bind of unknown %q: got %s, want %v", name, describe(got), want)
		}
		if code := errorCode(got); code != "26000" {
			t.Errorf("Bind of unknown %q: SQLSTATE %q, want 26000", name, code)
		}
	}
	r.send(&pgproto3.Describe{ObjectType: 'S', Name: "nope"}, &pgproto3.Sync{})
	if got := r.untilReady(); errorCode(got) != "26000" {
		t.Errorf("Describe of unknown statement: got %s, want 26000", describe(got))
	}
	if got := r.query("select 1"); errorCode(got) != "" {
		t.Fatalf("after the errors: %s", describe(got))
	}
}

// TestPgxSeesWarehouseErrors checks that a warehouse error reaches pgx
// whole: code, message, detail, position.
func TestPgxSeesWarehouseErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.PG.Exec(t, e.Database, `create table u (id int primary key)`)
	c := e.connect(t)
	ctx := ctxT(t)
	if _, err := c.Exec(ctx, `insert into u values (1)`); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, `insert into u values (1)`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" || pe.ConstraintName != "u_pkey" || pe.Detail == "" {
		t.Fatalf("got %#v, want unique_violation on u_pkey with a detail", err)
	}
	_, err = c.Exec(ctx, `select nosuchcolumn from u`)
	if !errors.As(err, &pe) || pe.Code != "42703" || pe.Position == 0 {
		t.Fatalf("got %#v, want undefined_column with a position", err)
	}
}

func TestPinnedSessionHearsItsConnectionEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	listener := e.connect(t)
	if _, err := listener.Exec(ctx, `listen dashboards /* to be terminated */`); err != nil {
		t.Fatal(err)
	}
	direct := e.PG.Connect(t, e.Database)
	var n int
	if err := direct.QueryRow(ctx, `select count(pg_terminate_backend(pid)) from pg_stat_activity where query = 'listen dashboards /* to be terminated */'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the session's warehouse connection: %d %v", n, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := listener.WaitForNotification(wctx)
	t.Logf("the session heard its connection end after %v", time.Since(start))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || pe.Severity != "FATAL" {
		t.Fatalf("a pinned session whose warehouse connection ended: got %v, want FATAL 08006 at once", err)
	}
	// Others are served.
	if err := e.connect(t).QueryRow(ctx, `select 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
}

// TestErrorAfterFlushSkipsToSync checks a batch that the warehouse fails
// after the client flushed it: what the client sends before its Sync is
// ignored, as PostgreSQL ignores it, and the Sync is answered.
func TestErrorAfterFlushSkipsToSync(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.raw(t)
	for _, inTx := range []bool{false, true} {
		want := byte('I')
		if inTx {
			r.query("begin")
			want = 'E'
		}
		r.send(&pgproto3.Execute{Portal: "nope"}, &pgproto3.Flush{})
		m, err := r.receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "34000" {
			t.Fatalf("Execute of an unknown portal, flushed: %v %v, want 34000", describe([]pgproto3.BackendMessage{m}), err)
		}
		r.send(&pgproto3.Parse{Name: "ignored", Query: "select 1"}, &pgproto3.Bind{PreparedStatement: "ignored"}, &pgproto3.Execute{},
			&pgproto3.Close{ObjectType: 'P'}, &pgproto3.Sync{})
		got := r.untilReady()
		if len(got) != 1 || lastStatus(t, got) != want {
			t.Fatalf("messages after the error, then Sync (in a transaction: %v): got %s, want ReadyForQuery %q alone", inTx, describe(got), want)
		}
		if inTx {
			r.query("rollback")
		}
		// The ignored Parse did not create the statement.
		r.send(&pgproto3.Bind{PreparedStatement: "ignored"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := r.untilReady(); errorCode(got) != "26000" {
			t.Fatalf("the statement of an ignored Parse: got %s, want 26000", describe(got))
		}
	}
	if got := r.query("select 1"); errorCode(got) != "" {
		t.Fatalf("after the errors: %s", describe(got))
	}
}

// TestPipelinedBatchAnsweredWhole: a client that writes a long batch of
// statements at once, more than the proxy reads at a time, and reads the
// answers as they come gets every answer in order, relayed or cached: the
// proxy reads on past each answer without waiting for the client to send
// more.
func TestPipelinedBatchAnsweredWhole(t *testing.T) {
	for _, caching := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", caching), func(t *testing.T) {
			e := newEnv(t, envOptions{cache: caching})
			r := e.raw(t)
			const n = 400
			// Each statement takes 256 bytes, simple (a Query) or
			// extended (Parse, Bind, Execute, Sync), so that the
			// proxy's reads of 16 KiB end where one does.
			sqlOf := func(i, length int) string {
				sql := fmt.Sprintf("SELECT %d AS v, '' AS pad", i%7)
				return sql[:len(sql)-8] + strings.Repeat("x", length-len(sql)) + "' AS pad"
			}
			var batch []byte
			for i := range n {
				var msgs []pgproto3.FrontendMessage
				if i%2 == 0 {
					msgs = append(msgs, &pgproto3.Query{String: sqlOf(i, 250)})
				} else {
					msgs = append(msgs, &pgproto3.Parse{Query: sqlOf(i, 219)}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
				}
				for _, m := range msgs {
					var err error
					if batch, err = m.Encode(batch); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(batch) != 256*n {
				t.Fatalf("batch of %d bytes, want %d", len(batch), 256*n)
			}
			wrote := make(chan error, 1)
			go func() { wrote <- r.write(batch) }()
			for i := range n {
				got := r.untilReady()
				row, ok := find[*pgproto3.DataRow](got)
				if !ok || string(row.Values[0]) != fmt.Sprint(i%7) {
					t.Fatalf("answer %d of %d: %s, want a row of %d", i+1, n, describe(got), i%7)
				}
			}
			if err := <-wrote; err != nil {
				t.Fatalf("writing the batch: %v", err)
			}
		})
	}
}
