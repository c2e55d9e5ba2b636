package proxy_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/proxy"
)

// servedEnv is a second proxy over an env's pool whose Serve the test
// watches.
type servedEnv struct {
	*env
	srv    *proxy.Server
	served chan error // what Serve returned
}

func newServedEnv(t *testing.T) *servedEnv {
	t.Helper()
	e := newEnv(t, envOptions{})
	srv, err := proxy.NewServer(proxy.Config{
		Users: map[string]string{testenv.SuperUser: testenv.SuperPassword},
		Route: func(database string) *proxy.Backend {
			if database != e.Database {
				return nil
			}
			return &proxy.Backend{Name: "pg", Pool: e.Pool}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &servedEnv{srv: srv, served: make(chan error, 1)}
	go func() { s.served <- srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	copied := *e
	copied.Server = srv
	copied.Addr = l.Addr().String()
	copied.Port = l.Addr().(*net.TCPAddr).Port
	s.env = &copied
	return s
}

// shutdown runs Server.Shutdown in the background.
func (s *servedEnv) shutdown(timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- s.srv.Shutdown(ctx)
	}()
	return done
}

func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
		panic("unreachable")
	}
}

// expectAdminShutdown reads the next message, which must be FATAL 57P01,
// and then the end of the connection.
func expectAdminShutdown(t *testing.T, r *rawClient) {
	t.Helper()
	got := r.untilEnd()
	if len(got) != 1 || errorCode(got) != "57P01" {
		t.Fatalf("got %s, want one FATAL 57P01 and the end of the connection", describe(got))
	}
	if e := got[0].(*pgproto3.ErrorResponse); e.Severity != "FATAL" {
		t.Errorf("severity %s, want FATAL", e.Severity)
	}
}

func (s *servedEnv) checkServeReturned(t *testing.T) {
	t.Helper()
	if err := within(t, s.served, 5*time.Second, "Serve returning"); !errors.Is(err, proxy.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
}

func TestShutdownEndsIdleSessionsAtOnce(t *testing.T) {
	s := newServedEnv(t)
	clients := []*rawClient{s.raw(t), s.raw(t), s.raw(t)}
	clients[1].query("select 1")
	start := time.Now()
	done := s.shutdown(30 * time.Second)
	for _, r := range clients {
		expectAdminShutdown(t, r)
	}
	if err := within(t, done, 5*time.Second, "Shutdown returning"); err != nil {
		t.Errorf("Shutdown returned %v, want nil", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle sessions took %v to end, want at once", d)
	}
	s.checkServeReturned(t)
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Error("a new connection was accepted after Shutdown")
	}
}

func TestShutdownLetsRunningStatementFinish(t *testing.T) {
	s := newServedEnv(t)
	direct := s.PG.Connect(t, s.Database)
	idle := s.raw(t)
	busy := s.raw(t)
	const query = `select pg_sleep(1) /* shutdown */`
	busy.send(&pgproto3.Query{String: query})
	waitFor(t, 10*time.Second, "the query starting", func() bool { return activeQueries(t, direct, query) == 1 })
	done := s.shutdown(30 * time.Second)

	expectAdminShutdown(t, idle)
	got := busy.untilReady()
	if errorCode(got) != "" {
		t.Fatalf("the running statement: %s, want its result", describe(got))
	}
	if _, ok := find[*pgproto3.DataRow](got); !ok {
		t.Fatalf("the running statement: %s, want its row", describe(got))
	}
	expectAdminShutdown(t, busy)
	if err := within(t, done, 10*time.Second, "Shutdown returning"); err != nil {
		t.Errorf("Shutdown returned %v, want nil", err)
	}
	s.checkServeReturned(t)
}

func TestShutdownWaitsForTransactionToEnd(t *testing.T) {
	s := newServedEnv(t)
	r := s.raw(t)
	r.query("begin")
	done := s.shutdown(30 * time.Second)
	s.checkServeReturned(t)
	time.Sleep(100 * time.Millisecond)
	if got := r.query("select 42"); errorCode(got) != "" || lastStatus(t, got) != 'T' {
		t.Fatalf("a statement inside the transaction during Shutdown: %s", describe(got))
	}
	if got := r.query("commit"); errorCode(got) != "" || lastStatus(t, got) != 'I' {
		t.Fatalf("commit during Shutdown: %s", describe(got))
	}
	expectAdminShutdown(t, r)
	if err := within(t, done, 10*time.Second, "Shutdown returning"); err != nil {
		t.Errorf("Shutdown returned %v, want nil", err)
	}
}

func TestShutdownCutsTransactionAtDeadline(t *testing.T) {
	s := newServedEnv(t)
	r := s.raw(t)
	r.query("begin")
	start := time.Now()
	done := s.shutdown(500 * time.Millisecond)
	s.checkServeReturned(t)
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		// An accepted connection must at least not be served.
		r2 := &rawClient{t: t, nc: c, fe: pgproto3.NewFrontend(c, c)}
		r2.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": testenv.SuperUser, "database": s.Database}})
		if got := r2.untilEnd(); errorCode(got) == "" {
			t.Errorf("a client connecting during Shutdown got %s, want a refusal", describe(got))
		}
	}
	err := within(t, done, 10*time.Second, "Shutdown returning")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown returned %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 500ms deadline", d)
	}
	got := r.untilEnd()
	for _, m := range got {
		if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Severity != "FATAL" {
			t.Errorf("the cut session got %s, want at most a FATAL before the end", describe(got))
		}
	}
	waitFor(t, 5*time.Second, "the transaction's warehouse connection closing", func() bool { return s.Pool.Stats().Open == 0 })
}

func TestShutdownDoesNotWaitForSilentConnections(t *testing.T) {
	s := newServedEnv(t)
	// Connected, but never a startup packet.
	silent, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Half a startup packet.
	half, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte{0, 0, 0, 40, 0, 3, 0, 0}); err != nil {
		t.Fatal(err)
	}
	idle := s.raw(t)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	done := s.shutdown(time.Second)
	expectAdminShutdown(t, idle)
	err = within(t, done, 10*time.Second, "Shutdown returning")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 1s deadline and nothing running", d)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown returned %v", err)
	}
	for _, c := range []net.Conn{silent, half} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 256)); isTimeoutErr(err) {
			t.Error("a connection in its startup phase was left open after Shutdown")
		}
	}
}
