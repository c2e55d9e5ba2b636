package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// Endpoint is where a contender accepts PostgreSQL connections.
type Endpoint = servers.Endpoint

// PostgresBinDir returns the directory of the PostgreSQL binaries as
// servers.PostgresBinDir finds it, or "" if there is none.
func PostgresBinDir() string {
	dir, _ := servers.PostgresBinDir()
	return dir
}

// Postgres is the benchmark's private PostgreSQL on a free loopback port,
// with the client programs of its installation.
type Postgres struct {
	*servers.Postgres
	Bin string // directory of the PostgreSQL binaries, psql's among them
}

// PostgresSettings are the server settings of the benchmark's PostgreSQL.
var PostgresSettings = []string{
	"max_connections=200",
	"shared_buffers=128MB",
	"fsync=off",
	"synchronous_commit=off",
	"full_page_writes=off",
	"log_min_messages=warning",
}

// StartPostgres runs initdb in dir/data (dir must exist) and starts the
// server as acct on a free port of 127.0.0.1, with trust authentication,
// the superuser postgres, PostgresSettings and then settings.
func StartPostgres(ctx context.Context, bin, dir string, acct *servers.Account, settings ...string) (*Postgres, error) {
	if err := acct.Chown(dir); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := servers.InitDB(ctx, servers.InitConfig{Bin: bin, Dir: data, Account: acct}); err != nil {
		return nil, err
	}
	pg, err := servers.StartPostgres(ctx, servers.PostgresConfig{
		Bin: bin, Dir: data, Account: acct,
		Settings: append(PostgresSettings[:len(PostgresSettings):len(PostgresSettings)], settings...),
	})
	if err != nil {
		return nil, err
	}
	return &Postgres{Postgres: pg, Bin: bin}, nil
}

// Psql runs psql -c sql against database as postgres.
func (pg *Postgres) Psql(ctx context.Context, database, sql string) (string, error) {
	return Psql(ctx, pg.Bin, pg.Endpoint, database, sql)
}

// Psql runs psql -c sql against database at e as postgres.
func Psql(ctx context.Context, bin string, e Endpoint, database, sql string) (string, error) {
	return servers.Run(ctx, nil, "", filepath.Join(bin, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", e.Host, "-p", strconv.Itoa(e.Port), "-U", "postgres", "-d", database, "-c", sql)
}

// PsqlFile runs psql -f file against database as postgres, with vars
// (name=value) set by -v.
func (pg *Postgres) PsqlFile(ctx context.Context, database, file string, vars ...string) (string, error) {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", database, "-f", file}
	for _, v := range vars {
		args = append(args, "-v", v)
	}
	return servers.Run(ctx, nil, "", filepath.Join(pg.Bin, "psql"), args...)
}

// Sqlcached is a sqlcached proxy in front of one PostgreSQL.
type Sqlcached struct {
	Endpoint
	HTTP string // host:port of its HTTP listener
	proc *servers.Proc
}

// SqlcachedConfig is how the benchmark's sqlcached is set up.
type SqlcachedConfig struct {
	Binary   string // a built sqlcached
	Dir      string // for its configuration file and log; must exist
	Backend  Endpoint
	Database string
	MaxConns int // the backend's max_conns
	// TTL, if set, is the ttl of a catch-all policy: every cacheable read
	// is cached in L1. Without it there is no policy and nothing is cached.
	TTL string
	// RedisURL, if set, is cache.l2.redis.url: the answers go to Redis too.
	RedisURL string
	// Policies, if set, is the policies section, in YAML, instead of
	// the one TTL makes.
	Policies string
	// Name is the contender's name; default SqlCached.
	Name string
}

// Sqlcached contenders besides SqlCached (no policies: nothing cached).
const (
	// SqlCachedOffDB caches, but its rule for the benchmark's database
	// says cache: false, which the session decides before any parse.
	SqlCachedOffDB = "sqlcached-off-db"
	// SqlCachedOn caches every cacheable read for a minute.
	SqlCachedOn = "sqlcached-on"
)

// ContenderConfig returns the configuration of a sqlcached contender by
// name, or false for another name.
func ContenderConfig(name string) (SqlcachedConfig, bool) {
	switch name {
	case SqlCached:
		return SqlcachedConfig{Name: name}, true
	case SqlCachedOffDB:
		return SqlcachedConfig{Name: name, Policies: `
  - name: oltp
    match: {database: pgbench}
    cache: false
  - name: everything
    ttl: 1m
`}, true
	case SqlCachedOn:
		return SqlcachedConfig{Name: name, TTL: "1m"}, true
	}
	return SqlcachedConfig{}, false
}

// StartSqlcached writes a configuration (trust authentication, one
// postgres backend, log level warn, the cache as c says) and starts
// sqlcached on free ports of 127.0.0.1.
func StartSqlcached(ctx context.Context, c SqlcachedConfig) (*Sqlcached, error) {
	port, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Sqlcached{Endpoint: Endpoint{Host: "127.0.0.1", Port: port}, HTTP: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	cfg := fmt.Sprintf(`# Written by the benchmark runner.
listen:
  postgres: %s:%d
  http: %s
auth:
  method: trust
backends:
  - name: postgres
    kind: postgres
    dsn: %s
    max_conns: %d
shutdown:
  timeout: 1s
log:
  level: warn
`, s.Host, s.Port, s.HTTP, c.Backend.DSN("postgres", c.Database), c.MaxConns)
	if c.RedisURL != "" {
		cfg += fmt.Sprintf("cache:\n  l2:\n    redis:\n      url: %s\n", c.RedisURL)
	}
	switch {
	case c.Policies != "":
		cfg += "policies:" + c.Policies
	case c.TTL != "":
		cfg += fmt.Sprintf("policies:\n  - name: everything\n    ttl: %s\n    timeout: 120s\n", c.TTL)
	}
	cfgPath := filepath.Join(c.Dir, "sqlcached.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	proc, err := servers.Start(servers.Command{
		Name: "sqlcached", Path: c.Binary, Dir: c.Dir, Log: filepath.Join(c.Dir, "sqlcached.log"),
		Args: []string{"serve", "--config", cfgPath, "--listen", s.Addr(), "--http", s.HTTP},
	})
	if err != nil {
		return nil, err
	}
	s.proc = proc
	dsn := s.DSN("postgres", c.Database)
	if err := proc.WaitReady(ctx, 30*time.Second, func(ctx context.Context) error { return servers.PingPostgres(ctx, dsn) }); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop shuts sqlcached down (SIGTERM, then a kill after a few seconds).
func (s *Sqlcached) Stop() {
	_ = s.proc.Stop(syscall.SIGTERM, 10*time.Second)
}

// BuildSqlcached builds ./cmd/sqlcached of the module at src into out. If
// rev is not empty, src's git revision rev is exported to a fresh
// directory under work and built there instead of src's working tree.
func BuildSqlcached(ctx context.Context, src, rev, work, out string) error {
	if rev != "" {
		tree := filepath.Join(work, "src")
		if err := os.MkdirAll(tree, 0o755); err != nil {
			return err
		}
		archive := filepath.Join(work, "src.tar")
		if _, err := servers.Run(ctx, nil, src, "git", "archive", "--format=tar", "-o", archive, rev); err != nil {
			return err
		}
		if _, err := servers.Run(ctx, nil, tree, "tar", "-xf", archive); err != nil {
			return err
		}
		src = tree
	}
	_, err := servers.Run(ctx, nil, src, "go", "build", "-o", out, "./cmd/sqlcached")
	return err
}

// tail returns the last n bytes of s, marked as cut if it was longer.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
