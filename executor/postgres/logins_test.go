package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// TestIdleConnectionsOfSeveralLogins: each login gets its own idle
// connections back, however lookups of logins alternate, and a full pool
// makes room for a login by closing the connection idle longest.
func TestIdleConnectionsOfSeveralLogins(t *testing.T) {
	p, login, pg := newPoolOf(t, 2)
	a := postgres.Login(login)
	b := a
	b.Database = pg.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acquire := func(l postgres.Login) *postgres.Conn {
		t.Helper()
		c, err := p.Acquire(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if c.Login != l {
			t.Fatalf("asked for %s, got a connection of %s", l.Database, c.Login.Database)
		}
		return c
	}
	gone := func(pid uint32) {
		t.Helper()
		pg.Exec(t, "postgres", fmt.Sprintf(`do $$ begin
			for i in 1..1000 loop
				exit when not exists (select 1 from pg_stat_activity where pid = %d);
				perform pg_sleep(0.01);
			end loop;
			if exists (select 1 from pg_stat_activity where pid = %d) then
				raise 'backend %d still there';
			end if; end $$`, pid, pid, pid))
	}

	a1 := acquire(a)
	p.Release(a1)
	b1 := acquire(b)
	p.Release(b1)
	for range 3 {
		if c := p.TryAcquire(a); c == nil || c.PID != a1.PID {
			t.Fatalf("TryAcquire(a) = %v, want a's idle connection", c)
		} else {
			p.Release(c)
		}
		if c := p.TryAcquire(b); c == nil || c.PID != b1.PID {
			t.Fatalf("TryAcquire(b) = %v, want b's idle connection", c)
		} else {
			p.Release(c)
		}
	}

	// Full: a second connection of a takes b's idle slot.
	x := acquire(a)
	y := acquire(a)
	if x.PID != a1.PID || y.PID == b1.PID || y.PID == a1.PID {
		t.Fatalf("a's connections %d and %d; a had %d, b %d", x.PID, y.PID, a1.PID, b1.PID)
	}
	gone(b1.PID)
	if c := p.TryAcquire(b); c != nil {
		t.Fatalf("b still has an idle connection (%d)", c.PID)
	}

	// Both idle, x longer: b's connection takes x's slot.
	p.Release(x)
	time.Sleep(5 * time.Millisecond)
	p.Release(y)
	b2 := acquire(b)
	gone(x.PID)
	if c := p.TryAcquire(a); c == nil || c.PID != y.PID {
		t.Fatalf("a's idle connection is %v, want %d", c, y.PID)
	} else {
		p.Release(c)
	}
	p.Release(b2)
	if s := p.Stats(); s.Open != 2 || s.Idle != 2 {
		t.Fatalf("stats %+v, want 2 open, 2 idle", s)
	}
}

// TestLoginsLeaveNothingBehind: a login that never gets a connection (a
// database that does not exist) leaves nothing in the pool, and the idle
// list of one whose connections the idle timeout closed goes with them:
// the pool keeps track of the logins in use, not of every login a client
// ever tried.
func TestLoginsLeaveNothingBehind(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	p, err := postgres.NewPool(postgres.Config{DSN: fmt.Sprintf("postgres://%s/%s?sslmode=disable", pg.Addr(), db), MaxConns: 2, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := postgres.Login{User: testenv.SuperUser, Password: testenv.SuperPassword, Database: db}
	for i := range 20 {
		bogus := good
		bogus.Database = fmt.Sprintf("nosuch_%d", i)
		if c, err := p.Acquire(ctx, bogus); err == nil {
			p.Release(c)
			t.Fatalf("a connection to database %s, which does not exist", bogus.Database)
		}
	}
	if n := postgres.IdleLogins(p); n != 0 {
		t.Fatalf("after 20 failed logins the pool keeps %d, want 0", n)
	}
	use := func() {
		t.Helper()
		c, err := p.Acquire(ctx, good)
		if err != nil {
			t.Fatal(err)
		}
		p.Release(c)
	}
	use()
	if n := postgres.IdleLogins(p); n != 1 {
		t.Fatalf("after a connection of one login came back the pool keeps %d logins, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for postgres.IdleLogins(p) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the login's list is still kept after its connection idled out: %+v", p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := p.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("after the idle timeout: %+v, want nothing open", st)
	}
	use() // and the login is served as before
	if st := p.Stats(); st.Open != 1 || st.Idle != 1 {
		t.Fatalf("after using the login again: %+v, want one idle connection", st)
	}
}
