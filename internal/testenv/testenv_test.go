package testenv_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSharedPostgreSQLAnswersAndCounts(t *testing.T) {
	t.Parallel()
	pg := testenv.SharedPostgreSQL(t)
	if again := testenv.SharedPostgreSQL(t); again != pg {
		t.Fatalf("SharedPostgreSQL returned a second server")
	}
	db := pg.NewDatabase(t)
	pg.Exec(t, db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
	conn := pg.Connect(t, db)
	for i := 0; i < 3; i++ {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT sum(x) FROM t WHERE x > $1", 0).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("sum = %d, want 3", n)
		}
	}
	if got := pg.Calls(t, db, "SELECT sum(x) FROM t%"); got != 3 {
		t.Errorf("Calls = %d, want 3", got)
	}
}

func TestPasswordsAreChecked(t *testing.T) {
	t.Parallel()
	pg := testenv.SharedPostgreSQL(t)
	user := testenv.UniqueName(t)
	pg.Exec(t, "postgres", "CREATE ROLE "+user+" LOGIN PASSWORD 'secret'")
	t.Cleanup(func() { pg.Exec(t, "postgres", "DROP ROLE "+user) })
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSNUser(user, "secret", "postgres"))
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	conn.Close(ctx)
	if conn, err := pgx.Connect(ctx, pg.DSNUser(user, "wrong", "postgres")); err == nil {
		conn.Close(ctx)
		t.Fatal("wrong password accepted")
	}
}

func TestPostgreSQLRestartKeepsPortAndData(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgreSQL(t)
	pg.Exec(t, "postgres", "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	port := pg.Port
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, pg.DSN("postgres")); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a killed server")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if pg.Port != port {
		t.Errorf("port after restart = %d, want %d", pg.Port, port)
	}
	var x int
	if err := pg.Connect(t, "postgres").QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after crash recovery: x = %d, err = %v; want 42", x, err)
	}
	if _, err := os.Stat(pg.Dir); err != nil {
		t.Fatal(err)
	}
}

func TestRedisKillStartPause(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	opt, err := redis.ParseURL(r.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = c.Get(short, "k").Err()
	cancel()
	if err == nil {
		t.Fatal("GET answered while paused")
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}

	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		// The first command may land on a connection the kill broke.
		if err := c.Get(ctx, "k").Err(); err != redis.Nil {
			t.Fatalf("GET after restart: %v, want redis.Nil (no persistence)", err)
		}
	}
}

func TestSharedRedis(t *testing.T) {
	t.Parallel()
	r := testenv.SharedRedis(t)
	opt, err := redis.ParseURL(r.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUniqueName(t *testing.T) {
	a, b := testenv.UniqueName(t), testenv.UniqueName(t)
	if a == b || len(a) > 63 {
		t.Fatalf("UniqueName: %q, %q", a, b)
	}
}

func TestRedisClusterSpreadsSlotsOverThreeMasters(t *testing.T) {
	t.Parallel()
	c := testenv.NewRedisCluster(t)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(c.Nodes))
	}
	opt, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	cc := redis.NewClusterClient(opt)
	defer cc.Close()
	ctx := context.Background()
	const n = 100
	for i := range n {
		if err := cc.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, node := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: node.Addr})
		size, err := nc.DBSize(ctx).Result()
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			t.Errorf("node %s holds none of %d keys", node.Addr, n)
		}
		total += int(size)
	}
	if total != n {
		t.Errorf("nodes hold %d keys in all, want %d", total, n)
	}
}

func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	s := testenv.NewRedisSentinel(t, 3)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before, _, err := s.Master()
	if err != nil {
		t.Fatal(err)
	}
	if before != s.Servers[0] {
		t.Errorf("master before the failover is %s, want %s", before.Addr, s.Servers[0].Addr)
	}
	if err := s.Failover(); err != nil {
		t.Fatal(err)
	}
	after, _, err := s.Master()
	if err != nil {
		t.Fatal(err)
	}
	if after != s.Servers[1] {
		t.Errorf("master after the failover is %s, want %s", after.Addr, s.Servers[1].Addr)
	}
	// Written before the failover, replicated, and writable on the new master.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Set(ctx, "k2", "v2", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET through the failover client after the failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("GET k after the failover = %q, %v; want v", v, err)
	}
}
