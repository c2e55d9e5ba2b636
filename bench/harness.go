package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// Harness is what every comparison runs on: a private PostgreSQL with one
// database, the contenders started in front of it, and pgbench to drive
// them. Close stops everything it started, last started first.
type Harness struct {
	WorkDir     string
	Account     *servers.Account // the servers' account; nil: the current user
	PostgresBin string
	Pgbench     string
	Jobs        int // pgbench -j
	Database    string
	Postgres    *Postgres
	// Endpoints are where each contender accepts connections; Direct is
	// the PostgreSQL itself.
	Endpoints map[string]Endpoint
	Versions  map[string]string // contender (and pgbench) versions

	logf  func(format string, args ...any)
	stops []func()
	runN  int
}

// HarnessConfig says how to set up a Harness.
type HarnessConfig struct {
	WorkDir     string // an empty directory for servers and logs
	PostgresBin string // directory of initdb, postgres, psql, pg_isready
	Pgbench     string // default PostgresBin/pgbench
	Jobs        int
	Database    string
	// PostgresSettings are added to PostgresSettings for this server.
	PostgresSettings []string
	Logf             func(format string, args ...any) // progress; nil: none
}

// StartHarness starts the private PostgreSQL and creates the database.
func StartHarness(ctx context.Context, c HarnessConfig) (*Harness, error) {
	h := &Harness{
		WorkDir: c.WorkDir, PostgresBin: c.PostgresBin, Pgbench: c.Pgbench, Jobs: c.Jobs,
		Database: c.Database, Endpoints: map[string]Endpoint{}, Versions: map[string]string{},
		logf: c.Logf,
	}
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	}
	if h.Pgbench == "" {
		h.Pgbench = filepath.Join(c.PostgresBin, "pgbench")
	}
	acct, err := servers.ServerAccount()
	if err != nil {
		return nil, err
	}
	h.Account = acct
	for _, d := range []string{"postgres", "runs"} {
		if err := os.MkdirAll(filepath.Join(c.WorkDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Everything under WorkDir must be reachable by the server account.
	if err := os.Chmod(c.WorkDir, 0o755); err != nil {
		return nil, err
	}
	h.logf("starting PostgreSQL")
	pg, err := StartPostgres(ctx, c.PostgresBin, filepath.Join(c.WorkDir, "postgres"), acct, c.PostgresSettings...)
	if err != nil {
		return nil, err
	}
	h.Postgres = pg
	h.stopOnClose("PostgreSQL", pg.Stop)
	h.Endpoints[Direct] = pg.Endpoint
	if _, err := pg.Psql(ctx, "postgres", "create database "+c.Database); err != nil {
		h.Close()
		return nil, err
	}
	h.Versions["postgres"] = firstLine(pg.Psql(ctx, c.Database, "show server_version"))
	h.Versions["pgbench"] = firstLine(servers.Run(ctx, nil, "", h.Pgbench, "--version"))
	return h, nil
}

func (h *Harness) onClose(f func()) { h.stops = append(h.stops, f) }

// stopOnClose has Close call stop, and log its error.
func (h *Harness) stopOnClose(what string, stop func() error) {
	h.onClose(func() {
		if err := stop(); err != nil {
			h.logf("stopping %s: %v", what, err)
		}
	})
}

// Close stops every server the harness started, in reverse order.
func (h *Harness) Close() {
	for i := len(h.stops) - 1; i >= 0; i-- {
		h.stops[i]()
	}
	h.stops = nil
}

// Dir makes (if needed) and returns a directory of the work directory
// that the server account owns.
func (h *Harness) Dir(name string) (string, error) {
	d := filepath.Join(h.WorkDir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return d, h.Account.Chown(d)
}

// Psql runs sql against the harness's database at contender's endpoint.
func (h *Harness) Psql(ctx context.Context, contender, sql string) (string, error) {
	return Psql(ctx, h.PostgresBin, h.Endpoints[contender], h.Database, sql)
}

// StartPgbouncer starts pgbouncer in transaction mode as the contender
// PgBouncer.
func (h *Harness) StartPgbouncer(ctx context.Context, path string, poolSize int) error {
	h.logf("starting pgbouncer")
	dir, err := h.Dir("pgbouncer")
	if err != nil {
		return err
	}
	b, err := servers.StartPgbouncer(ctx, servers.PgbouncerConfig{
		Path: path, Dir: dir, Backend: h.Postgres.Endpoint, Database: h.Database,
		PoolSize: poolSize, MaxClients: 500, Account: h.Account,
	})
	if err != nil {
		return err
	}
	h.stopOnClose("pgbouncer", b.Stop)
	h.Endpoints[PgBouncer] = b.Endpoint
	h.Versions[PgBouncer] = firstLine(servers.Run(ctx, nil, "", path, "--version"))
	return nil
}

// StartSqlcached starts sqlcached as the contender c.Name (default
// SqlCached); c's Dir, Backend and Database are filled in.
func (h *Harness) StartSqlcached(ctx context.Context, c SqlcachedConfig) (*Sqlcached, error) {
	if c.Name == "" {
		c.Name = SqlCached
	}
	h.logf("starting %s", c.Name)
	dir, err := h.Dir(c.Name)
	if err != nil {
		return nil, err
	}
	c.Dir, c.Backend, c.Database = dir, h.Postgres.Endpoint, h.Database
	s, err := StartSqlcached(ctx, c)
	if err != nil {
		return nil, err
	}
	h.onClose(s.Stop)
	h.Endpoints[c.Name] = s.Endpoint
	h.Versions[c.Name] = firstLine(servers.Run(ctx, nil, "", c.Binary, "version"))
	return s, nil
}

// PgpoolConfig is how the benchmark's pgpool-II is set up.
type PgpoolConfig = servers.PgpoolConfig

// StartPgpool starts pgpool-II as the contender PgPool; c's Dir, Backend,
// Database and Account are filled in.
func (h *Harness) StartPgpool(ctx context.Context, c PgpoolConfig) error {
	h.logf("starting pgpool-II")
	dir, err := h.Dir("pgpool")
	if err != nil {
		return err
	}
	c.Dir, c.Backend, c.Database, c.Account = dir, h.Postgres.Endpoint, h.Database, h.Account
	p, err := servers.StartPgpool(ctx, c)
	if err != nil {
		return err
	}
	h.stopOnClose("pgpool-II", p.Stop)
	h.Endpoints[PgPool] = p.Endpoint
	h.Versions[PgPool] = firstLine(servers.Run(ctx, nil, "", c.Path, "--version"))
	return nil
}

// StartRedis starts a private redis-server (no persistence, at most 1GB,
// least recently used keys evicted first) and returns its URL.
func (h *Harness) StartRedis(ctx context.Context, path string) (string, error) {
	h.logf("starting redis-server")
	dir, err := h.Dir("redis")
	if err != nil {
		return "", err
	}
	r, err := servers.StartRedis(ctx, servers.RedisConfig{
		Path: path, Dir: dir, Account: h.Account,
		Conf: []string{"protected-mode yes", "maxmemory 1gb", "maxmemory-policy allkeys-lru"},
	})
	if err != nil {
		return "", err
	}
	h.stopOnClose("redis-server", r.Stop)
	h.Versions["redis"] = firstLine(servers.Run(ctx, nil, "", path, "--version"))
	return r.URL(0), nil
}

// Run is one pgbench run of a workload against a contender.
type Run struct {
	Contender    string
	Workload     Workload
	Clients      int
	Mode         string
	Seconds      int
	Transactions int // if positive, -t instead of -T
}

// Bench runs pgbench. The run's directory is removed after a clean run
// and kept, with pgbench's output, after a failed one.
func (h *Harness) Bench(ctx context.Context, r Run) (Result, error) {
	h.runN++
	ep, ok := h.Endpoints[r.Contender]
	if !ok {
		return Result{}, fmt.Errorf("no contender %q", r.Contender)
	}
	p := Pgbench{
		Path: h.Pgbench, Endpoint: ep, Database: h.Database,
		Workload: r.Workload, Clients: r.Clients, Jobs: min(h.Jobs, r.Clients),
		Mode: r.Mode, Seconds: r.Seconds, Transactions: r.Transactions,
		Dir: filepath.Join(h.WorkDir, "runs", fmt.Sprintf("%03d-%s", h.runN, r.Contender)),
	}
	res, err := p.Run(ctx)
	if err == nil && res.Err == nil {
		os.RemoveAll(p.Dir)
	} else {
		// Kept for a look at what went wrong.
		_ = os.WriteFile(filepath.Join(p.Dir, "pgbench.out"), []byte(res.Output), 0o644)
	}
	return res, err
}

// waitIdle waits until no other client backend of the PostgreSQL is
// running a statement, so that what one run left behind (statements of
// clients pgbench dropped at the end of its run) does not load the next.
func (h *Harness) waitIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := h.Postgres.Psql(ctx, "postgres", `select count(*) from pg_stat_activity
			where backend_type = 'client backend' and state = 'active' and pid <> pg_backend_pid()`)
		if err != nil {
			return err
		}
		if firstLine(out, nil) == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL still busy after %s: %s statements running", timeout, firstLine(out, nil))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
