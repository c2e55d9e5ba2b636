package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

const likeSchema = `create table ct (id int primary key, v text);
insert into ct select g, 'v' || g from generate_series(1, 20) g;
create table w (x int);
create function f() returns int volatile language sql as 'insert into w values (1); select 1';
create schema s2;
create table public.t (v text); insert into public.t values ('public');
create table s2.t (v text); insert into s2.t values ('s2');`

func likeEnvs(t *testing.T) (*env, clientTarget) {
	return cachedTwins(t, likeSchema)
}

// comparable is an answer without what two databases of one server, or
// the proxy and the server, may tell apart without a user noticing: table
// OIDs in RowDescriptions, and the source file, line and function of the
// server's code in errors (the proxy's own errors carry PostgreSQL's
// SQLSTATE, severity and message, not its source location).
func comparable(ans []byte) []byte {
	ans = withoutTableOIDs(ans)
	var out []byte
	for i := 0; i+5 <= len(ans); {
		n := int(binary.BigEndian.Uint32(ans[i+1 : i+5]))
		msg := ans[i : i+1+n]
		if msg[0] == 'E' {
			var b pgwire.Builder
			b.Begin('E')
			body := msg[5:]
			for len(body) > 1 {
				k := 1
				for k < len(body) && body[k] != 0 {
					k++
				}
				if t := body[0]; t != 'F' && t != 'L' && t != 'R' {
					b.Byte(t)
					b.String(string(body[1:k]))
				}
				if k >= len(body) {
					break
				}
				body = body[k+1:]
			}
			b.Byte(0)
			b.Finish()
			msg = b.B
		}
		out = append(out, msg...)
		i += 1 + n
	}
	return out
}

// compareSessions runs a session of simple Queries directly and, twice
// (the cache cold, then warm), through the proxy, and compares every
// answer.
func compareSessions(t *testing.T, e *env, direct clientTarget, qs []string) {
	t.Helper()
	batches := make([][][]byte, len(qs))
	for i, q := range qs {
		batches[i] = [][]byte{mQ(q)}
	}
	compareBatches(t, e, direct, batches)
}

// compareBatches sends batches of messages, each up to a ReadyForQuery,
// directly and twice through the proxy, and compares every answer.
func compareBatches(t *testing.T, e *env, direct clientTarget, batches [][][]byte) {
	t.Helper()
	want := rawMsgs(t, direct.DSN(), batches)
	for round := 0; round < 2; round++ {
		got := rawMsgs(t, e.DSN(), batches)
		for i := range want {
			if g, w := comparable(got[i]), comparable(want[i]); string(g) != string(w) {
				t.Errorf("round %d, batch %d (%q...):\n got %q\nwant %q", round, i, clip(string(batches[i][0])), clip(string(g)), clip(string(w)))
			}
		}
	}
}

func TestSessionLikePostgreSQLReleaseThenRollbackTo(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN`, `savepoint a`, `declare c cursor for select id from ct order by id`,
		`release a`, `savepoint b`, `rollback to b`, `fetch 1 from c`, `ROLLBACK`,
	})
}

func TestSessionLikePostgreSQLFetchPastEndThenBackward(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN`, `declare c scroll cursor for select id from ct where id <= 3 order by id`,
		`fetch all from c`, `fetch backward 1 from c`, `ROLLBACK`,
	})
}

func TestSessionLikePostgreSQLPinnedThenOtherCursor(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN; declare a scroll cursor with hold for select id from ct where id <= 3 order by id; declare b cursor with hold for select id from ct where id <= 5 order by id; COMMIT`,
		`fetch 2 from a`, `fetch prior from a`, `fetch 1 from b`,
	})
}

func TestSessionLikePostgreSQLListenThenCursor(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`declare b cursor with hold for select id from ct where id <= 5 order by id`,
		`listen x`, `fetch 1 from b`,
	})
}

func TestSessionLikePostgreSQLImplicitTxSet(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`set search_path = s2`, `reset search_path`,
		`set search_path = s2; select * from nonexistent_tbl`,
		`select v from t`,
	})
}

func TestSessionLikePostgreSQLDuplicateCursorAgainstWarehouse(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN`, `declare c cursor for select id from ct order by id`,
		`declare c cursor for select random()`, `fetch 1 from c`, `ROLLBACK`,
	})
}

func TestSessionLikePostgreSQLDuplicateCursorAttachedTx(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`select id from ct order by id`, // warm
		`BEGIN`, `select txid_current() > 0`, `declare c cursor for select id from ct order by id`,
		`declare c cursor for select id from ct order by id`, `select 2`, `COMMIT`,
	})
}

func TestSessionLikePostgreSQLExplainAnalyzeWriter(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`select count(*) from w`,
		`BEGIN`, `declare d cursor for select f()`, `fetch 1 from d`, `select count(*) from w`, `ROLLBACK`,
	})
}

func TestSessionLikePostgreSQLSessionCharacteristicsOrder(t *testing.T) {
	e, _ := likeEnvs(t)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		c, err := pgx.Connect(ctx, e.DSN())
		if err != nil {
			t.Fatal(err)
		}
		c.Exec(ctx, `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY`)
		c.Exec(ctx, `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED`)
		for j := 0; j < 5; j++ {
			var s string
			if err := c.QueryRow(ctx, `select current_setting('default_transaction_isolation') || ' ' || pg_backend_pid()`, pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, "read committed") {
				t.Errorf("session %d query %d: %s, want read committed", i, j, s)
			}
		}
		c.Close(ctx)
	}
}

func TestSessionLikePostgreSQLHeldFillSettings(t *testing.T) {
	e, d := likeEnvs(t)
	run := func(dsn string) []string {
		ctx := ctxT(t)
		pc, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close(ctx)
		var out []string
		if _, err := pc.Exec(ctx, `set search_path = s2`).ReadAll(); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Exec(ctx, `reset search_path`).ReadAll(); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Exec(ctx, `begin`).ReadAll(); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Exec(ctx, `set search_path = s2`).ReadAll(); err != nil {
			t.Fatal(err)
		}
		r := pc.ExecParams(ctx, `select v from t`, nil, nil, nil, nil).Read()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		for _, row := range r.Rows {
			out = append(out, string(row[0]))
		}
		pc.Exec(ctx, `commit`).ReadAll()
		r = pc.ExecParams(ctx, `select v from t`, nil, nil, nil, nil).Read()
		for _, row := range r.Rows {
			out = append(out, string(row[0]))
		}
		return out
	}
	want := run(d.DSN())
	for round := 0; round < 2; round++ {
		got := run(e.DSN())
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: got %v want %v", round, got, want)
		}
	}
}

func TestSessionLikePostgreSQLPgxCursorExtendedFetch(t *testing.T) {
	e, d := likeEnvs(t)
	run := func(dsn string) string {
		ctx := ctxT(t)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `declare c cursor for select id from ct order by id`); err != nil {
			return "declare: " + err.Error()
		}
		rows, err := tx.Query(ctx, `fetch 3 from c`)
		if err != nil {
			return "query: " + err.Error()
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return "fetch: " + err.Error()
		}
		return fmt.Sprint(ids)
	}
	want := run(d.DSN())
	for round := 0; round < 2; round++ {
		if got := run(e.DSN()); got != want {
			t.Errorf("round %d: got %s want %s", round, got, want)
		}
	}
}

func TestSessionLikePostgreSQLWarehouseCursorThenProxyCursor(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`select id from ct order by id`,
		`BEGIN`, `declare c cursor for select random()`, `declare c cursor for select id from ct order by id`,
		`fetch 1 from c`, `ROLLBACK`,
	})
}

func TestSessionLikePostgreSQLImplicitTxHoldCursor(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`select id from ct order by id`,
		`declare c cursor with hold for select id from ct order by id; select * from nonexistent_tbl`,
		`fetch 1 from c`,
	})
}

func TestSessionLikePostgreSQLCommitAndChainPortal(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN`, `select txid_current() > 0`, `declare c cursor for select id from ct order by id`,
		`commit and chain`, `fetch 1 from c`, `ROLLBACK`,
	})
}

func rawMsgs(t *testing.T, dsn string, batches [][][]byte) [][]byte {
	t.Helper()
	ctx := ctxT(t)
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	r := pgwire.NewReader(hc.Conn, 8192, 1<<30)
	var out [][]byte
	for _, batch := range batches {
		for _, m := range batch {
			if _, err := hc.Conn.Write(m); err != nil {
				t.Fatal(err)
			}
		}
		var ans []byte
		for {
			typ, msg, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			ans = append(ans, msg...)
			if typ == 'Z' {
				break
			}
		}
		out = append(out, ans)
	}
	return out
}

func mQ(sql string) []byte { var b pgwire.Builder; b.Begin('Q'); b.String(sql); b.Finish(); return b.B }
func mP(name, sql string) []byte {
	var b pgwire.Builder
	b.Begin('P')
	b.String(name)
	b.String(sql)
	b.Int16(0)
	b.Finish()
	return b.B
}
func mB(portal, name string) []byte {
	var b pgwire.Builder
	b.Begin('B')
	b.String(portal)
	b.String(name)
	b.Int16(0)
	b.Int16(0)
	b.Int16(0)
	b.Finish()
	return b.B
}
func mE(portal string, n int32) []byte {
	var b pgwire.Builder
	b.Begin('E')
	b.String(portal)
	b.Int32(n)
	b.Finish()
	return b.B
}
func mS() []byte { return []byte{'S', 0, 0, 0, 4} }

func TestSessionLikePostgreSQLCachedPortalAbortedTx(t *testing.T) {
	e, d := likeEnvs(t)
	batches := [][][]byte{
		{mQ(`select id from ct order by id`)},
		{mQ(`BEGIN`)},
		{mP("", `select id from ct order by id`), mB("p1", ""), mE("p1", 2), mS()},
		{mQ(`select * from nonexistent_tbl`)},
		{mE("p1", 2), mS()},
		{mQ(`ROLLBACK`)},
	}
	compareBatches(t, e, d, batches)
}

func TestSessionLikePostgreSQLServerParamsRace(t *testing.T) {
	e := newEnv(t, envOptions{cache: true, maxConns: 1})
	ctx := context.Background()
	a, err := pgx.Connect(ctx, e.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := pgx.Connect(ctx, e.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			if _, err := a.Exec(ctx, fmt.Sprintf("SET application_name = 'a%d'", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 300; i++ {
		if _, err := b.Exec(ctx, "SET statement_timeout = 100000"); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

func TestSessionLikePostgreSQLHoldCursorMaterializedInTx(t *testing.T) {
	e, d := likeEnvs(t)
	compareSessions(t, e, d, []string{
		`BEGIN; declare c scroll cursor with hold for select id from ct where id <= 5 order by id; COMMIT`,
		`fetch 2 from c`,
		`BEGIN`, `fetch prior from c`, `ROLLBACK`,
		`fetch 1 from c`,
	})
}

func TestSessionLikePostgreSQLCachedPortalRollbackTo(t *testing.T) {
	e, d := likeEnvs(t)
	batches := [][][]byte{
		{mQ(`select id from ct order by id`)},
		{mQ(`BEGIN`)},
		{mQ(`SAVEPOINT a`)},
		{mP("", `select id from ct order by id`), mB("p1", ""), mE("p1", 2), mS()},
		{mQ(`ROLLBACK TO a`)},
		{mE("p1", 2), mS()},
		{mQ(`ROLLBACK`)},
	}
	compareBatches(t, e, d, batches)
}

// TestSessionLikePostgreSQLScrollCursor: a SCROLL cursor of a cacheable
// query, read in every direction, gives PostgreSQL's rows, tags and
// positions, from the cache.
func TestSessionLikePostgreSQLScrollCursor(t *testing.T) {
	e, d := likeEnvs(t)
	moves := []string{"next", "prior", "prior", "first", "last", "next", "absolute 3", "absolute -2", "absolute 0",
		"absolute 9", "absolute -9", "relative 2", "relative -1", "relative 0", "forward 0", "backward 0",
		"backward all", "forward 2", "forward -2", "backward -1", "all", "prior", "relative 9", "relative -9", "last", "forward all"}
	qs := []string{`BEGIN`, `declare s scroll cursor for select id, v from ct where id <= 5 order by id`}
	for _, m := range moves {
		qs = append(qs, "fetch "+m+" from s", "move "+m+" in s", "fetch relative 0 from s")
	}
	qs = append(qs, `COMMIT`)
	compareSessions(t, e, d, qs)
	if n := e.PG.Calls(t, e.Database, "%fetch%"); n != 0 {
		t.Errorf("%d FETCHes reached the warehouse, want 0", n)
	}
}
