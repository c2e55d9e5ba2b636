package servers_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// workDir returns a fresh directory that acct owns, removed when the test
// ends. (t.TempDir's parent is not reachable by another account.)
func workDir(t *testing.T, acct *servers.Account) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sqlcached-servers-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := acct.Chown(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func account(t *testing.T) *servers.Account {
	t.Helper()
	acct, err := servers.ServerAccount()
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

// startPostgres makes a data directory that trusts every client and
// starts a server on it, stopped when the test ends.
func startPostgres(t *testing.T, settings ...string) *servers.Postgres {
	t.Helper()
	ctx := context.Background()
	acct := account(t)
	data := filepath.Join(workDir(t, acct), "data")
	if err := servers.InitDB(ctx, servers.InitConfig{Dir: data, Account: acct}); err != nil {
		t.Fatal(err)
	}
	pg, err := servers.StartPostgres(ctx, servers.PostgresConfig{Dir: data, Account: acct, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	return pg
}

// query runs sql over TCP and returns the first column of its rows.
func query(ctx context.Context, dsn, sql string) ([]string, error) {
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	var col []string
	for _, row := range res.Rows {
		col = append(col, string(row[0]))
	}
	return col, res.Err
}

func TestPostgresKeepsPortAndDataAcrossStopKillAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, "max_connections=42")
	dsn := pg.DSN("postgres", "postgres")
	if got, err := query(ctx, dsn, "SHOW max_connections"); err != nil || got[0] != "42" {
		t.Fatalf("max_connections = %v, %v; want 42 (a -c setting)", got, err)
	}
	if _, err := query(ctx, dsn, "CREATE TABLE t AS SELECT 7 AS x"); err != nil {
		t.Fatal(err)
	}
	port := pg.Port
	steps := []struct {
		name string
		down func() error
	}{
		{"Stop", pg.Stop},
		{"Kill", pg.Kill},
	}
	for _, s := range steps {
		if err := s.down(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if pg.Running() {
			t.Fatalf("after %s, Running() = true", s.name)
		}
		if err := servers.PingPostgres(ctx, dsn); err == nil {
			t.Fatalf("after %s, the server still answers", s.name)
		}
		if err := pg.Start(ctx); err != nil {
			t.Fatalf("Start after %s: %v", s.name, err)
		}
		if got, err := query(ctx, dsn, "SELECT x FROM t"); err != nil || got[0] != "7" {
			t.Fatalf("after %s and Start: %v, %v; want the table's 7", s.name, got, err)
		}
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if pg.Port != port {
		t.Errorf("port %d after restarts, want %d", pg.Port, port)
	}
	if err := pg.Start(ctx); err == nil {
		t.Error("Start of a running server succeeded")
	}
}

func TestPostgresWithPasswordChecksItOverTCP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acct := account(t)
	data := filepath.Join(workDir(t, acct), "data")
	err := servers.InitDB(ctx, servers.InitConfig{
		Dir: data, Account: acct, SuperUser: "boss", Password: "s3cret",
		Conf: "\nmax_connections = 31\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := servers.StartPostgres(ctx, servers.PostgresConfig{Dir: data, Account: acct, SuperUser: "boss"})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	if err := servers.PingPostgres(ctx, pg.DSN("boss", "postgres")); err == nil {
		t.Error("connected over TCP without the password")
	}
	got, err := query(ctx, "postgres://boss:s3cret@"+pg.Addr()+"/postgres?sslmode=disable", "SHOW max_connections")
	if err != nil || got[0] != "31" {
		t.Errorf("with the password: max_connections = %v, %v; want 31 (from Conf)", got, err)
	}
}

func TestPostgresThatCannotStartQuotesItsLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acct := account(t)
	data := filepath.Join(workDir(t, acct), "data")
	if err := servers.InitDB(ctx, servers.InitConfig{Dir: data, Account: acct}); err != nil {
		t.Fatal(err)
	}
	_, err := servers.StartPostgres(ctx, servers.PostgresConfig{Dir: data, Account: acct, Settings: []string{"no_such_setting=1"}})
	if err == nil || !strings.Contains(err.Error(), `unrecognized configuration parameter "no_such_setting"`) {
		t.Fatalf("err = %v, want the log's complaint", err)
	}
}

func TestRedisKillPauseResumeAndStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acct := account(t)
	r, err := servers.StartRedis(ctx, servers.RedisConfig{Dir: workDir(t, acct), Account: acct, Conf: []string{"maxmemory 1gb"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, ReadTimeout: 500 * time.Millisecond, DisableIdentity: true})
	defer c.Close()
	if got, err := c.ConfigGet(ctx, "maxmemory").Result(); err != nil || got["maxmemory"] != "1073741824" {
		t.Fatalf("maxmemory = %v, %v; want 1gb (from Conf)", got, err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("a paused server answered PING")
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if r.Running() || r.Pause() == nil {
		t.Fatal("a killed server is running")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after a kill = %v, want nothing (no persistence)", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestPoolersInFrontOfPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acct := account(t)
	pg := startPostgres(t)
	work := workDir(t, acct)
	for _, d := range []string{"pgbouncer", "pgpool"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := acct.Chown(filepath.Join(work, d)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := servers.StartPgbouncer(ctx, servers.PgbouncerConfig{
		Dir: filepath.Join(work, "pgbouncer"), Backend: pg.Endpoint, Database: "postgres",
		PoolSize: 2, MaxClients: 10, Account: acct,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := servers.StartPgpool(ctx, servers.PgpoolConfig{
		Dir: filepath.Join(work, "pgpool"), Backend: pg.Endpoint, Database: "postgres",
		Children: 2, CacheSize: "16MB", Account: acct,
	})
	if err != nil {
		b.Stop()
		t.Fatal(err)
	}
	for name, e := range map[string]servers.Endpoint{"pgbouncer": b.Endpoint, "pgpool": p.Endpoint} {
		if err := servers.PingPostgres(ctx, e.DSN("postgres", "postgres")); err != nil {
			t.Errorf("through %s: %v", name, err)
		}
	}
	if err := b.Stop(); err != nil {
		t.Error(err)
	}
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

func TestRunKillsTheGroupWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The grandchild holds the output open: killing only the shell would
	// leave Run waiting for it.
	_, err := servers.Run(ctx, nil, "", "sh", "-c", "sleep 60 & echo started; wait")
	if err == nil {
		t.Fatal("Run of a command cut short succeeded")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Run returned after %v: the group was not killed", d)
	}
	if !strings.Contains(err.Error(), "started") {
		t.Errorf("err = %v, want it to quote the output", err)
	}
}

func TestRunAsAccount(t *testing.T) {
	t.Parallel()
	acct := account(t)
	out, err := servers.Run(context.Background(), acct, "", "id", "-un")
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres"
	if acct == nil {
		want = os.Getenv("USER")
	}
	if got := strings.TrimSpace(out); want != "" && got != want {
		t.Errorf("ran as %q, want %q", got, want)
	}
}
