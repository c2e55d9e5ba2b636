package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor/postgres"
)

var syncMessage = []byte{'S', 0, 0, 0, 4}

// TestFlushBeforeRead: a request flushed with FlushBeforeRead reaches
// PostgreSQL when the read of its answer begins, and the answer comes; a
// connection released while such a request is still unsent is closed,
// never handed to the next user with a stray answer ahead of its own.
func TestFlushBeforeRead(t *testing.T) {
	p, login, _ := newPoolOf(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := p.Acquire(ctx, postgres.Login(login))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c.W.Write(syncMessage)
		if err := c.FlushBeforeRead(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, _, err := c.R.Next()
		if err != nil || typ != 'Z' {
			t.Fatalf("answer to a Sync: %q, %v; want ReadyForQuery", typ, err)
		}
	}
	pid := c.PID
	c.W.Write(syncMessage)
	if err := c.FlushBeforeRead(); err != nil {
		t.Fatal(err)
	}
	p.Release(c) // the Sync never went
	c2, err := p.Acquire(ctx, postgres.Login(login))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c2)
	if c2.PID == pid {
		t.Fatal("a connection with an unsent request was handed out again")
	}
	q := []byte("Qselect 1\x00")
	c2.W.Write([]byte{'Q', 0, 0, 0, byte(4 + len(q) - 1)})
	c2.W.Write(q[1:])
	if err := c2.FlushBeforeRead(); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	for {
		typ, _, err := c2.R.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, typ)
		if typ == 'Z' {
			break
		}
	}
	if string(got) != "TDCZ" {
		t.Fatalf("answer to select 1: %q, want TDCZ", got)
	}
}
