package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/sqlcached/sqlcached/bench"
)

// demoPolicies are the demo's rules for its tables (cmd/sqlcached/demo.go).
const demoPolicies = `
  - name: dashboards
    match: { tables: [orders, customers, products, regions] }
    ttl: 10m
    stale_ttl: 1h
    timeout: 60s
  - name: default
    ttl: 1m
    timeout: 60s
`

// dashboards loads the demo's tables into a private PostgreSQL with
// pg_stat_statements, starts pgbouncer (transaction pooling), pgpool-II
// (raw mode, in-memory query cache) and sqlcached (the demo's caching
// rules) in front of it, then runs the built binary's `sqlcached bench`
// with a --target for each and the PostgreSQL as --warehouse-dsn: the
// report and charts are that command's.
func dashboards(ctx context.Context, args []string) int {
	c := newCommon("dashboards")
	fs := c.fs
	var (
		workload = fs.String("workload", "deploy/bench/dashboards.yaml", "the dashboard workload")
		data     = fs.String("data", "deploy/bench/demo-postgres.sql", "psql script that loads the workload's tables")
		orders   = fs.Int("orders", 300000, "rows of orders (the script's :orders)")
		duration = fs.String("duration", "", "sqlcached bench --duration (default: the workload's)")
		round    = fs.String("round", "", "sqlcached bench --round (default: the workload's)")
		out      = fs.String("out", "bench-report", "sqlcached bench --out: the directory of the report and charts")
		targets  = fs.String("targets", "direct,pgbouncer,pgpool,sqlcached", "the targets, in the order of the first round")
		children = fs.Int("pgpool-children", 40, "pgpool-II's num_init_children (at least the workload's viewers)")
	)
	if !c.parse(args) {
		return 2
	}
	names := bench.SplitList(*targets)
	if len(names) == 0 {
		c.errorf("-targets names nothing")
		return 2
	}
	for _, t := range names {
		if !slices.Contains([]string{bench.Direct, bench.PgBouncer, bench.PgPool, bench.SqlCached}, t) {
			c.errorf("unknown target %q (direct, pgbouncer, pgpool, sqlcached)", t)
			return 2
		}
	}
	dataPath, err := filepath.Abs(*data)
	if err != nil {
		return c.fail(err)
	}
	// sqlcached bench runs from the built binary even without a sqlcached
	// target.
	cleanup, err := c.setUp(ctx, true)
	defer cleanup()
	if err != nil {
		return c.fail(err)
	}
	const db = "demo"
	h, err := bench.StartHarness(ctx, bench.HarnessConfig{
		WorkDir: c.work, PostgresBin: *c.pgBin, Database: db, Logf: c.logf,
		PostgresSettings: []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top", "timezone=UTC"},
	})
	if err != nil {
		return c.fail(err)
	}
	defer h.Close()
	c.logf("loading %s (%d orders)", *data, *orders)
	if _, err := h.Postgres.PsqlFile(ctx, db, dataPath, fmt.Sprintf("orders=%d", *orders)); err != nil {
		return c.fail(err)
	}
	if _, err := h.Psql(ctx, bench.Direct, "create extension pg_stat_statements"); err != nil {
		return c.fail(err)
	}
	benchArgs := []string{"bench", "--workload", *workload, "--out", *out}
	for _, t := range names {
		metrics := ""
		switch t {
		case bench.PgBouncer:
			err = h.StartPgbouncer(ctx, *c.pgbouncer, *c.pool)
		case bench.PgPool:
			err = h.StartPgpool(ctx, bench.PgpoolConfig{Path: *c.pgpool, Children: *children})
		case bench.SqlCached:
			var sc *bench.Sqlcached
			sc, err = h.StartSqlcached(ctx, bench.SqlcachedConfig{Binary: c.sqlcached, MaxConns: *c.pool, Policies: demoPolicies})
			if err == nil {
				metrics = ",metrics=http://" + sc.HTTP + "/metrics"
			}
		}
		if err != nil {
			return c.fail(err)
		}
		benchArgs = append(benchArgs, "--target", t+"="+h.Endpoints[t].DSN("postgres", db)+metrics)
	}
	for k, v := range h.Versions {
		c.logf("%s: %s", k, v)
	}
	benchArgs = append(benchArgs, "--warehouse-dsn", h.Endpoints[bench.Direct].DSN("postgres", db))
	if *duration != "" {
		benchArgs = append(benchArgs, "--duration", *duration)
	}
	if *round != "" {
		benchArgs = append(benchArgs, "--round", *round)
	}
	c.logf("sqlcached %v", benchArgs)
	cmd := exec.CommandContext(ctx, c.sqlcached, benchArgs...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Interrupted, sqlcached bench writes the report of what it measured
	// so far: ask it to stop rather than kill it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return c.fail(fmt.Errorf("sqlcached bench: %w", err))
	}
	return 0
}
