package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sqlcached/sqlcached/bench"
)

// passthrough compares sqlcached relaying without its cache with direct
// PostgreSQL and pgbouncer in transaction mode: every workload × clients ×
// protocol cell against each contender, pgbench -i data.
func passthrough(ctx context.Context, args []string) int {
	c := newCommon("passthrough")
	fs := c.fs
	r := c.roundFlags("8,64", "direct,pgbouncer,sqlcached",
		"direct, pgbouncer, sqlcached (no policies), "+bench.SqlCachedOffDB+" (a cache: false rule for the database), "+bench.SqlCachedOn+" (every read cached)")
	var (
		workloads = fs.String("workloads", "select-only,select1", "workloads: select-only (pgbench -S), select1 (a script of SELECT 1)")
		scale     = fs.Int("scale", 10, "pgbench -i -s")
		warmup    = fs.Int("warmup", 3, "seconds of pgbench -S against each contender before the first round (0: none)")
		pprofOut  = fs.String("pprof", "", "write a CPU profile of sqlcached during one extra run of -pprof-cell to this file (from its /debug/pprof/profile)")
		pprofCell = fs.String("pprof-cell", "select1/8/simple", "the cell to profile: workload/clients/mode")
	)
	if !c.parse(args) {
		return 2
	}
	rounds, ok := r.config(c)
	if !ok {
		return 2
	}
	if len(bench.SplitList(*workloads)) == 0 {
		c.errorf("-workloads names nothing")
		return 2
	}
	cfg := bench.PassthroughConfig{
		RoundsConfig: rounds,
		Workloads:    bench.SplitList(*workloads),
		Warmup:       *warmup,
		Scale:        *scale,
		PoolSize:     *c.pool,
		PostgresBin:  *c.pgBin,
		Pgbench:      *c.pgbench,
		PgbouncerBin: *c.pgbouncer,
		Profile:      *pprofOut,
		Logf:         c.logf,
	}
	var err error
	if cfg.Profile != "" {
		if cfg.ProfileCell, err = parseCell(*pprofCell); err != nil {
			c.errorf("-pprof-cell: %v", err)
			return 2
		}
		if cfg.Profile, err = filepath.Abs(cfg.Profile); err != nil {
			c.errorf("%v", err)
			return 2
		}
	}
	isSqlcached := func(name string) bool { _, ok := bench.ContenderConfig(name); return ok }
	code := c.runReport(ctx, cfg.Contenders, isSqlcached, *r.out, func(work, sqlcached string) (interface{ Markdown(string) string }, map[string]string, error) {
		cfg.WorkDir, cfg.Sqlcached = work, sqlcached
		res, err := bench.RunPassthrough(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return res, res.Versions, nil
	})
	if cfg.Profile != "" {
		c.logf("CPU profile: go tool pprof -top %s", cfg.Profile)
	}
	return code
}

func parseCell(s string) (bench.Cell, error) {
	f := strings.Split(s, "/")
	if len(f) != 3 {
		return bench.Cell{}, fmt.Errorf("%q is not workload/clients/mode", s)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return bench.Cell{}, fmt.Errorf("%q is not workload/clients/mode", s)
	}
	return bench.Cell{Workload: f[0], Clients: n, Mode: f[2]}, nil
}
