// Command dashboards sets up direct PostgreSQL, pgbouncer, pgpool-II's
// query cache and sqlcached side by side on one machine and runs
// `sqlcached bench` on a dashboard workload against all four.
//
//	go run ./bench/cmd/dashboards [-workload deploy/bench/dashboards.yaml] [-duration 45s] [-orders 300000] [-out DIR]
//
// It starts a private PostgreSQL (initdb in a temporary directory, free
// loopback ports, pg_stat_statements loaded), loads the demo's tables with
// deploy/bench/demo-postgres.sql, starts pgbouncer (transaction pooling),
// pgpool-II (raw mode, in-memory query cache) and a sqlcached built from
// this module (the demo's caching rules) in front of it, then runs the
// built binary's `sqlcached bench` with a --target for each and the
// PostgreSQL as --warehouse-dsn: the report and charts are that command's.
// Everything it starts is stopped and the temporary directory removed
// when it ends (unless -keep). As root, the servers run as the postgres
// user.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sqlcached/sqlcached/bench"
)

// policies are the demo's rules for its tables (cmd/sqlcached/demo.go).
const policies = `
  - name: dashboards
    match: { tables: [orders, customers, products, regions] }
    ttl: 10m
    stale_ttl: 1h
    timeout: 60s
  - name: default
    ttl: 1m
    timeout: 60s
`

func main() {
	os.Exit(run())
}

func run() int {
	var (
		workload  = flag.String("workload", "deploy/bench/dashboards.yaml", "the dashboard workload")
		data      = flag.String("data", "deploy/bench/demo-postgres.sql", "psql script that loads the workload's tables")
		orders    = flag.Int("orders", 300000, "rows of orders (the script's :orders)")
		duration  = flag.String("duration", "", "sqlcached bench --duration (default: the workload's)")
		round     = flag.String("round", "", "sqlcached bench --round (default: the workload's)")
		out       = flag.String("out", "bench-report", "sqlcached bench --out")
		targets   = flag.String("targets", "direct,pgbouncer,pgpool,sqlcached", "the targets, in the order of the first round")
		poolSize  = flag.Int("pool", 20, "pgbouncer's default_pool_size and sqlcached's max_conns")
		children  = flag.Int("pgpool-children", 40, "pgpool-II's num_init_children (at least the workload's viewers)")
		binary    = flag.String("sqlcached", "", "a built sqlcached binary (default: build ./cmd/sqlcached of -src)")
		src       = flag.String("src", ".", "the sqlcached module to build")
		rev       = flag.String("rev", "", "build this git revision of -src instead of its working tree")
		pgBin     = flag.String("pgbin", bench.PostgresBinDir(), "directory of PostgreSQL's initdb, postgres, psql and pg_isready")
		pgbouncer = flag.String("pgbouncer", "/usr/sbin/pgbouncer", "pgbouncer binary")
		pgpool    = flag.String("pgpool", "/usr/sbin/pgpool", "pgpool-II binary")
		keep      = flag.Bool("keep", false, "keep the temporary directory (servers' logs and configuration)")
	)
	flag.Parse()
	if flag.NArg() > 0 || *pgBin == "" {
		fmt.Fprintln(os.Stderr, "dashboards: unexpected arguments, or no PostgreSQL binaries found (give -pgbin)")
		return 2
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "sqlcached-dashboards-")
	if err != nil {
		logf("dashboards: %v", err)
		return 1
	}
	if *keep {
		logf("keeping %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	bin, _, err := bench.SqlcachedBinary(ctx, *binary, *src, *rev, work)
	if err != nil {
		logf("dashboards: %v", err)
		return 1
	}
	args, cleanup, err := setUp(ctx, setup{
		work: work, pgBin: *pgBin, data: *data, orders: *orders, targets: bench.SplitList(*targets),
		pool: *poolSize, children: *children, sqlcached: bin, pgbouncer: *pgbouncer, pgpool: *pgpool, logf: logf,
	})
	defer cleanup()
	if err != nil {
		logf("dashboards: %v", err)
		return 1
	}
	args = append([]string{"bench", "--workload", *workload, "--out", *out}, args...)
	if *duration != "" {
		args = append(args, "--duration", *duration)
	}
	if *round != "" {
		args = append(args, "--round", *round)
	}
	logf("sqlcached %v", args)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		logf("dashboards: sqlcached bench: %v", err)
		return 1
	}
	return 0
}

type setup struct {
	work, pgBin, data string
	orders            int
	targets           []string
	pool, children    int
	sqlcached         string
	pgbouncer, pgpool string
	logf              func(string, ...any)
}

// setUp starts the servers and returns sqlcached bench's --target and
// --warehouse-dsn arguments, and a function that stops the servers.
func setUp(ctx context.Context, s setup) ([]string, func(), error) {
	const db = "demo"
	h, err := bench.StartHarness(ctx, bench.HarnessConfig{
		WorkDir: s.work, PostgresBin: s.pgBin, Database: db, Logf: s.logf,
		PostgresSettings: []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top", "timezone=UTC"},
	})
	if err != nil {
		return nil, func() {}, err
	}
	data, err := filepath.Abs(s.data)
	if err != nil {
		return nil, h.Close, err
	}
	s.logf("loading %s (%d orders)", s.data, s.orders)
	if _, err := h.Postgres.PsqlFile(ctx, db, data, fmt.Sprintf("orders=%d", s.orders)); err != nil {
		return nil, h.Close, err
	}
	if _, err := h.Psql(ctx, bench.Direct, "create extension pg_stat_statements"); err != nil {
		return nil, h.Close, err
	}
	var args []string
	metrics := map[string]string{}
	for _, t := range s.targets {
		switch t {
		case bench.Direct:
		case bench.PgBouncer:
			err = h.StartPgbouncer(ctx, s.pgbouncer, s.pool)
		case bench.PgPool:
			err = h.StartPgpool(ctx, bench.PgpoolConfig{Path: s.pgpool, Children: s.children})
		case bench.SqlCached:
			var sc *bench.Sqlcached
			sc, err = h.StartSqlcached(ctx, bench.SqlcachedConfig{Binary: s.sqlcached, MaxConns: s.pool, Policies: policies})
			if err == nil {
				metrics[t] = ",metrics=http://" + sc.HTTP + "/metrics"
			}
		default:
			err = fmt.Errorf("unknown target %q (direct, pgbouncer, pgpool, sqlcached)", t)
		}
		if err != nil {
			return nil, h.Close, err
		}
		args = append(args, "--target", t+"="+h.Endpoints[t].DSN("postgres", db)+metrics[t])
	}
	for k, v := range h.Versions {
		s.logf("%s: %s", k, v)
	}
	return append(args, "--warehouse-dsn", h.Endpoints[bench.Direct].DSN("postgres", db)), h.Close, nil
}
