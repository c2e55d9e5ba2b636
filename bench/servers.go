package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Endpoint is where a contender accepts PostgreSQL connections.
type Endpoint struct {
	Host string
	Port int
}

// DSN is a libpq URL for user and database at the endpoint.
func (e Endpoint) DSN(user, database string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", user, e.Host, e.Port, database)
}

// PostgresBinDir returns the newest /usr/lib/postgresql/*/bin holding
// initdb, or "" if there is none.
func PostgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[j]))))
		return vi < vj
	})
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

// Postgres is a private PostgreSQL server on a free loopback port.
type Postgres struct {
	Endpoint
	Bin  string // directory of the PostgreSQL binaries
	Dir  string // holds the data directory, the socket and postgres.log
	acct *Account
	proc *Proc
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

// StartPostgres runs initdb in dir (which must exist) and starts the server
// as acct on a free port of 127.0.0.1, with trust authentication, the
// superuser postgres, PostgresSettings and then settings.
func StartPostgres(ctx context.Context, bin, dir string, acct *Account, settings ...string) (*Postgres, error) {
	if err := acct.Chown(dir); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := run(ctx, acct, dir, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"}
	for _, s := range append(PostgresSettings[:len(PostgresSettings):len(PostgresSettings)], settings...) {
		args = append(args, "-c", s)
	}
	logPath := filepath.Join(dir, "postgres.log")
	proc, err := StartProc("postgres", acct, dir, logPath, filepath.Join(bin, "postgres"), args...)
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Endpoint: Endpoint{"127.0.0.1", port}, Bin: bin, Dir: dir, acct: acct, proc: proc}
	err = waitFor(ctx, proc, 60*time.Second, logPath, func(ctx context.Context) error {
		_, err := run(ctx, nil, dir, filepath.Join(bin, "pg_isready"), "-q", "-h", pg.Host, "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres")
		return err
	})
	if err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// Psql runs psql -c sql against database as postgres.
func (pg *Postgres) Psql(ctx context.Context, database, sql string) (string, error) {
	return Psql(ctx, pg.Bin, pg.Endpoint, database, sql)
}

// Psql runs psql -c sql against database at e as postgres.
func Psql(ctx context.Context, bin string, e Endpoint, database, sql string) (string, error) {
	return run(ctx, nil, "", filepath.Join(bin, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", e.Host, "-p", strconv.Itoa(e.Port), "-U", "postgres", "-d", database, "-c", sql)
}

// PsqlFile runs psql -f file against database as postgres, with vars
// (name=value) set by -v.
func (pg *Postgres) PsqlFile(ctx context.Context, database, file string, vars ...string) (string, error) {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", database, "-f", file}
	for _, v := range vars {
		args = append(args, "-v", v)
	}
	return run(ctx, nil, "", filepath.Join(pg.Bin, "psql"), args...)
}

// Stop shuts the server down (fast mode) and kills what is left.
func (pg *Postgres) Stop() {
	if pg.proc != nil {
		pg.proc.Stop(syscall.SIGINT, 30*time.Second)
	}
}

// Pgbouncer is a pgbouncer in transaction pooling mode in front of one
// PostgreSQL database.
type Pgbouncer struct {
	Endpoint
	proc *Proc
}

// PgbouncerConfig is how the benchmark's pgbouncer is set up.
type PgbouncerConfig struct {
	Path        string // the pgbouncer binary
	Dir         string // for its configuration, user list and log; must exist
	Backend     Endpoint
	Database    string
	PoolSize    int // default_pool_size
	MaxClients  int // max_client_conn
	Account     *Account
	ExtraConfig []string // more "key = value" lines for [pgbouncer]
}

// StartPgbouncer writes pgbouncer.ini and starts pgbouncer on a free port
// of 127.0.0.1, with trust authentication, no unix socket and
// pool_mode=transaction.
func StartPgbouncer(ctx context.Context, c PgbouncerConfig, psqlBin string) (*Pgbouncer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	userlist := filepath.Join(c.Dir, "userlist.txt")
	if err := os.WriteFile(userlist, []byte("\"postgres\" \"\"\n"), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.Dir, "pgbouncer.log")
	ini := []string{
		"[databases]",
		fmt.Sprintf("%s = host=%s port=%d dbname=%s", c.Database, c.Backend.Host, c.Backend.Port, c.Database),
		"",
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + userlist,
		"pool_mode = transaction",
		fmt.Sprintf("default_pool_size = %d", c.PoolSize),
		fmt.Sprintf("max_client_conn = %d", c.MaxClients),
		"ignore_startup_parameters = extra_float_digits",
		"log_connections = 0",
		"log_disconnections = 0",
		"logfile = " + logPath,
	}
	ini = append(ini, c.ExtraConfig...)
	iniPath := filepath.Join(c.Dir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(strings.Join(ini, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	for _, p := range []string{c.Dir, logPath} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return nil, err
			}
		}
		if err := c.Account.Chown(p); err != nil {
			return nil, err
		}
	}
	proc, err := StartProc("pgbouncer", c.Account, c.Dir, filepath.Join(c.Dir, "pgbouncer.out"), c.Path, iniPath)
	if err != nil {
		return nil, err
	}
	b := &Pgbouncer{Endpoint: Endpoint{"127.0.0.1", port}, proc: proc}
	err = waitFor(ctx, proc, 30*time.Second, logPath, func(ctx context.Context) error {
		_, err := Psql(ctx, psqlBin, b.Endpoint, c.Database, "select 1")
		return err
	})
	if err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

// Stop shuts pgbouncer down at once (SIGTERM) and kills what is left.
func (b *Pgbouncer) Stop() {
	if b.proc != nil {
		b.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
}

// Sqlcached is a sqlcached proxy in front of one PostgreSQL.
type Sqlcached struct {
	Endpoint
	HTTP string // host:port of its HTTP listener
	proc *Proc
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
func StartSqlcached(ctx context.Context, c SqlcachedConfig, psqlBin string) (*Sqlcached, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Sqlcached{Endpoint: Endpoint{"127.0.0.1", port}, HTTP: fmt.Sprintf("127.0.0.1:%d", httpPort)}
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
	logPath := filepath.Join(c.Dir, "sqlcached.log")
	proc, err := StartProc("sqlcached", nil, c.Dir, logPath, c.Binary, "serve", "--config", cfgPath,
		"--listen", fmt.Sprintf("%s:%d", s.Host, s.Port), "--http", s.HTTP)
	if err != nil {
		return nil, err
	}
	s.proc = proc
	err = waitFor(ctx, proc, 30*time.Second, logPath, func(ctx context.Context) error {
		_, err := Psql(ctx, psqlBin, s.Endpoint, c.Database, "select 1")
		return err
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop shuts sqlcached down (SIGTERM, then a kill after a few seconds).
func (s *Sqlcached) Stop() {
	if s.proc != nil {
		s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
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
		if _, err := run(ctx, nil, src, "git", "archive", "--format=tar", "-o", archive, rev); err != nil {
			return err
		}
		if _, err := run(ctx, nil, tree, "tar", "-xf", archive); err != nil {
			return err
		}
		src = tree
	}
	_, err := run(ctx, nil, src, "go", "build", "-o", out, "./cmd/sqlcached")
	return err
}
