package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/proxy"
)

// goodClient is a well-behaved client querying the proxy in a loop while
// a test misbehaves on other connections.
type goodClient struct {
	stop    chan struct{}
	done    chan struct{}
	queries atomic.Int64
	mu      sync.Mutex // protects err
	err     error
}

func startGoodClient(t *testing.T, e *env) *goodClient {
	t.Helper()
	c := e.connect(t)
	g := &goodClient{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			var got int
			err := c.QueryRow(ctx, `select $1::int + 1`, i).Scan(&got)
			cancel()
			if err == nil && got != i+1 {
				err = fmt.Errorf("select %d + 1 answered %d", i, got)
			}
			if err != nil {
				g.mu.Lock()
				g.err = err
				g.mu.Unlock()
				return
			}
			g.queries.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Its first answer, before the test starts misbehaving.
	deadline := time.Now().Add(20 * time.Second)
	for g.queries.Load() == 0 && g.failure() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

func (g *goodClient) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// check fails the test if the good client got a wrong answer or none at
// all since the last check.
func (g *goodClient) check(t *testing.T) {
	t.Helper()
	before := g.queries.Load()
	deadline := time.Now().Add(20 * time.Second)
	for g.queries.Load() == before && g.failure() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.failure(); err != nil {
		t.Fatalf("a well-behaved client on another connection: %v", err)
	}
	if g.queries.Load() == before {
		t.Fatal("a well-behaved client on another connection got no answer for 20s")
	}
}

func (g *goodClient) finish(t *testing.T) {
	t.Helper()
	g.check(t)
	close(g.stop)
	<-g.done
}

// settleGoroutines waits until the process runs at most want goroutines,
// and fails with every goroutine's stack if it does not within a few
// seconds.
func settleGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, want at most %d:\n%s", n, want, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionsSettle waits until the server counts want client sessions.
func sessionsSettle(t *testing.T, srv *proxy.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Clients() != want {
		if time.Now().After(deadline) {
			t.Fatalf("the server counts %d sessions, want %d", srv.Clients(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endsWithError checks that the proxy answered a bad client with at most
// an error among codes and closed its connection.
func endsWithError(t *testing.T, r *rawClient, codes ...string) {
	t.Helper()
	got := r.untilEnd()
	for _, m := range got {
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			ok := false
			for _, c := range codes {
				ok = ok || m.Code == c
			}
			if !ok || m.Severity != "FATAL" {
				t.Errorf("got %s %s %q, want FATAL with SQLSTATE in %v", m.Severity, m.Code, m.Message, codes)
			}
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			t.Errorf("got %s before the connection ended, want an ErrorResponse at most", describe(got))
			return
		}
	}
}

func startupBytes(version uint32, kv ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, version)
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestMalformedStartupPacketsEndOnlyThatConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := startGoodClient(t, e)
	before := runtime.NumGoroutine()

	noTerminator := startupBytes(pgproto3.ProtocolVersion30, "user", testenv.SuperUser, "database", e.Database)
	noTerminator = noTerminator[:len(noTerminator)-2] // drop both NULs of the last value and the list
	binary.BigEndian.PutUint32(noTerminator, uint32(len(noTerminator)))

	oversized := startupBytes(pgproto3.ProtocolVersion30, "user", testenv.SuperUser, "application_name", strings.Repeat("x", 12000))
	valueWithoutTerminator := startupBytes(pgproto3.ProtocolVersion30)
	valueWithoutTerminator = append(valueWithoutTerminator[:8], "user\x00post"...)
	binary.BigEndian.PutUint32(valueWithoutTerminator, uint32(len(valueWithoutTerminator)))

	cases := []struct {
		name  string
		bytes []byte
		codes []string
	}{
		{"length below 8", []byte{0, 0, 0, 4}, []string{"08P01"}},
		{"length zero", []byte{0, 0, 0, 0, 0, 3, 0, 0}, []string{"08P01"}},
		{"negative length", []byte{0x80, 0, 0, 0, 0, 3, 0, 0}, []string{"08P01", "54000"}},
		{"layout without terminator", noTerminator, []string{"08P01"}},
		{"value without terminator", valueWithoutTerminator, []string{"08P01"}},
		{"oversized", oversized, []string{"08P01", "54000"}},
		{"protocol 2", startupBytes(2<<16, "user", testenv.SuperUser), []string{"0A000", "08P01"}},
		{"protocol 4", startupBytes(4<<16, "user", testenv.SuperUser), []string{"0A000", "08P01"}},
		{"no user", startupBytes(pgproto3.ProtocolVersion30, "database", e.Database), []string{"28000"}},
		{"typed message first", []byte{'Q', 0, 0, 0, 13, 's', 'e', 'l', 'e', 'c', 't', ' ', '1', 0}, []string{"08P01", "0A000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, e.Addr)
			if err := r.write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			endsWithError(t, r, tc.codes...)
			good.check(t)
		})
	}
	t.Run("half a header then silence", func(t *testing.T) {
		r := dialRaw(t, e.Addr)
		if err := r.write([]byte{0, 0}); err != nil {
			t.Fatal(err)
		}
		_ = r.nc.(*net.TCPConn).CloseWrite()
		endsWithError(t, r, "08P01")
	})
	good.finish(t)
	settleGoroutines(t, before)
}

// authenticated dials the proxy, starts up and leaves the connection
// ready for raw bytes.
func authenticated(t *testing.T, e *env) *rawClient {
	t.Helper()
	return e.raw(t)
}

func TestHugeDeclaredLengthAfterAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := startGoodClient(t, e)
	before := runtime.NumGoroutine()
	for _, n := range []uint32{0x80000000, 0xffffffff, 0x7fffffff, 64<<20 + 1} {
		t.Run(fmt.Sprintf("%#x", n), func(t *testing.T) {
			r := authenticated(t, e)
			msg := binary.BigEndian.AppendUint32([]byte{'Q'}, n)
			if err := r.write(append(msg, "select 1"...)); err != nil {
				t.Fatal(err)
			}
			endsWithError(t, r, "54000", "08P01")
			good.check(t)
		})
	}
	t.Run("length below 4", func(t *testing.T) {
		r := authenticated(t, e)
		if err := r.write([]byte{'Q', 0, 0, 0, 3}); err != nil {
			t.Fatal(err)
		}
		endsWithError(t, r, "08P01")
	})
	good.finish(t)
	sessionsSettle(t, e.Server, 1)
	settleGoroutines(t, before)
}

func TestUnknownMessageType(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := startGoodClient(t, e)
	before := runtime.NumGoroutine()
	for _, typ := range []byte{'z', 0, 0xff, 'R', 'T'} {
		t.Run(fmt.Sprintf("%q", typ), func(t *testing.T) {
			r := authenticated(t, e)
			if err := r.write([]byte{typ, 0, 0, 0, 4}); err != nil {
				t.Fatal(err)
			}
			endsWithError(t, r, "08P01")
			good.check(t)
		})
	}
	good.finish(t)
	sessionsSettle(t, e.Server, 1)
	settleGoroutines(t, before)
}

func TestRandomBytesAfterAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := startGoodClient(t, e)
	before := runtime.NumGoroutine()
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			b := make([]byte, 1+rng.IntN(4096))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if seed%2 == 0 {
				// Start with a message type the proxy knows.
				b[0] = "QPBDESHCF"[rng.IntN(9)]
			}
			r := authenticated(t, e)
			if err := r.write(b); err != nil {
				t.Fatal(err)
			}
			// The bytes may end inside a message the proxy waits to
			// complete: say there is no more.
			_ = r.nc.(*net.TCPConn).CloseWrite()
			r.untilEnd()
			good.check(t)
		})
	}
	good.finish(t)
	sessionsSettle(t, e.Server, 1)
	settleGoroutines(t, before)
}

// activeQueries counts the warehouse backends running query.
func activeQueries(t *testing.T, direct *pgx.Conn, query string) int {
	t.Helper()
	var n int
	err := direct.QueryRow(context.Background(), `select count(*) from pg_stat_activity where query = $1 and state = 'active'`, query).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClientVanishingMidQueryEndsWarehouseQuery(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := startGoodClient(t, e)
	direct := e.PG.Connect(t, e.Database)
	openBefore := e.Pool.Stats().Open
	before := runtime.NumGoroutine()
	for _, mode := range []string{"simple", "extended"} {
		t.Run(mode, func(t *testing.T) {
			const query = `select pg_sleep(60) /* vanishing client */`
			r := authenticated(t, e)
			if mode == "simple" {
				r.send(&pgproto3.Query{String: query})
			} else {
				r.send(&pgproto3.Parse{Query: query}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			}
			waitFor(t, 10*time.Second, "the query starting on the warehouse", func() bool { return activeQueries(t, direct, query) == 1 })
			_ = r.nc.Close()
			start := time.Now()
			waitFor(t, 5*time.Second, "the warehouse query ending after its client vanished", func() bool { return activeQueries(t, direct, query) == 0 })
			t.Logf("warehouse query ended %v after the client vanished", time.Since(start))
			waitFor(t, 5*time.Second, "the pool's open connections returning", func() bool { return e.Pool.Stats().Open <= openBefore })
			good.check(t)
		})
	}
	good.finish(t)
	sessionsSettle(t, e.Server, 1)
	settleGoroutines(t, before)
}

func TestClientVanishingMidTransactionReleasesLocks(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.PG.Exec(t, e.Database, `create table accounts (id int primary key, balance int); insert into accounts values (1, 100)`)
	good := startGoodClient(t, e)
	before := runtime.NumGoroutine()
	ctx := ctxT(t)

	r := authenticated(t, e)
	got := r.query(`begin; update accounts set balance = balance - 1 where id = 1`)
	if errorCode(got) != "" || lastStatus(t, got) != 'T' {
		t.Fatalf("taking the lock: %s", describe(got))
	}
	other := e.connect(t)
	_, err := other.Exec(ctx, `select * from accounts where id = 1 for update nowait`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Fatalf("while the lock is held: got %v, want lock_not_available", err)
	}
	_ = r.nc.Close()

	start := time.Now()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `set local lock_timeout = '10s'`); err != nil {
		t.Fatal(err)
	}
	var balance int
	if err := tx.QueryRow(ctx, `select balance from accounts where id = 1 for update`).Scan(&balance); err != nil {
		t.Fatalf("taking the row lock the vanished client held: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the lock was released %v after the client vanished, want within 5s", d)
	}
	if balance != 100 {
		t.Errorf("balance %d, want 100: the vanished client's update must be rolled back", balance)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	other.Close(ctx)
	good.finish(t)
	sessionsSettle(t, e.Server, 1)
	settleGoroutines(t, before)
}

func TestWarehouseRestartMidRun(t *testing.T) {
	pg := testenv.NewPostgreSQL(t)
	e := newEnv(t, envOptions{pg: pg, maxConns: 6, maxWait: 10 * time.Second})
	ctx := ctxT(t)

	const clients = 8
	var restarted atomic.Bool
	stop := make(chan struct{})
	type result struct {
		ok, failed  int
		lastFailure error
		okAfter     atomic.Int64 // successes after the restart finished
		unexpected  []error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		c := e.connect(t)
		wg.Add(1)
		go func(i int, c *pgx.Conn) {
			defer wg.Done()
			res := &results[i]
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				var got int
				err := c.QueryRow(qctx, `select $1::int * 2`, j).Scan(&got)
				cancel()
				switch {
				case err == nil && got == 2*j:
					res.ok++
					if restarted.Load() {
						res.okAfter.Add(1)
					}
				case err == nil:
					res.unexpected = append(res.unexpected, fmt.Errorf("select %d * 2 answered %d", j, got))
				default:
					res.failed++
					res.lastFailure = err
					var pe *pgconn.PgError
					if !errors.As(err, &pe) || pe.Code != "08006" {
						res.unexpected = append(res.unexpected, err)
					}
					if c.IsClosed() {
						res.unexpected = append(res.unexpected, fmt.Errorf("the session was closed after %v", err))
						return
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}(i, c)
	}
	time.Sleep(300 * time.Millisecond)
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted.Store(true)
	// Every client must succeed again soon after.
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for i := range results {
			all = all && results[i].okAfter.Load() >= 5
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	failed := 0
	for i := range results {
		res := &results[i]
		failed += res.failed
		if n := res.okAfter.Load(); n < 5 {
			t.Errorf("client %d: %d successes after the restart, want at least 5 (last failure: %v)", i, n, res.lastFailure)
		}
		for _, err := range res.unexpected {
			t.Errorf("client %d: %v, want SQLSTATE 08006 or an answer", i, err)
		}
	}
	t.Logf("%d queries failed with 08006 during the restart", failed)
}

func TestMaxClientsExceeded(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) { c.MaxClients = 2 }})
	ctx := ctxT(t)
	a := e.connect(t)
	e.connect(t)
	_, err := pgx.Connect(ctx, e.DSN())
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || pe.Severity != "FATAL" {
		t.Fatalf("third client: got %v, want FATAL 53300", err)
	}
	var n int
	if err := a.QueryRow(ctx, `select 1`).Scan(&n); err != nil {
		t.Fatalf("a client within the limit: %v", err)
	}
	a.Close(ctx)
	sessionsSettle(t, e.Server, 1)
	c, err := pgx.Connect(ctx, e.DSN())
	if err != nil {
		t.Fatalf("a client after one left: %v", err)
	}
	c.Close(ctx)
}
