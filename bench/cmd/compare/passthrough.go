package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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
	var (
		seconds    = fs.Int("T", 10, "seconds of each pgbench run")
		rounds     = fs.Int("rounds", 3, "rounds; every round runs every cell against every contender")
		workloads  = fs.String("workloads", "select-only,select1", "workloads: select-only (pgbench -S), select1 (a script of SELECT 1)")
		clients    = fs.String("clients", "8,64", "pgbench -c values")
		modes      = fs.String("modes", "simple,prepared", "pgbench -M values: simple, extended, prepared")
		contenders = fs.String("contenders", "direct,pgbouncer,sqlcached", "contenders, in the order of the first round: direct, pgbouncer, sqlcached (no policies), "+bench.SqlCachedOffDB+", "+bench.SqlCachedOn)
		jobs       = fs.Int("j", 2, "pgbench -j")
		scale      = fs.Int("scale", 10, "pgbench -i -s")
		warmup     = fs.Int("warmup", 3, "seconds of pgbench -S against each contender before the first round (0: none)")
		out        = fs.String("out", "", "also write the Markdown report to this file")
		pprofOut   = fs.String("pprof", "", "write a CPU profile of sqlcached during one extra run of -pprof-cell to this file (from its /debug/pprof/profile)")
		pprofCell  = fs.String("pprof-cell", "select1/8/simple", "the cell to profile: workload/clients/mode")
	)
	if !c.parse(args) {
		return 2
	}
	cfg := bench.PassthroughConfig{
		Workloads:    bench.SplitList(*workloads),
		Modes:        bench.SplitList(*modes),
		Contenders:   bench.SplitList(*contenders),
		Jobs:         *jobs,
		Seconds:      *seconds,
		Rounds:       *rounds,
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
	if cfg.Clients, err = bench.PositiveInts(*clients); err != nil {
		c.errorf("-clients: %v", err)
		return 2
	}
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
	if *seconds < 1 || *rounds < 1 {
		c.errorf("-T and -rounds must be at least 1")
		return 2
	}
	isSqlcached := func(name string) bool { _, ok := bench.ContenderConfig(name); return ok }
	cleanup, err := c.setUp(ctx, slices.ContainsFunc(cfg.Contenders, isSqlcached))
	defer cleanup()
	if err != nil {
		return c.fail(err)
	}
	cfg.WorkDir, cfg.Sqlcached = c.work, c.sqlcached
	res, err := bench.RunPassthrough(ctx, cfg)
	if err != nil {
		return c.fail(err)
	}
	if c.builtFrom != "" {
		for _, name := range cfg.Contenders {
			if isSqlcached(name) {
				res.Versions[name] += ", built from " + c.builtFrom
			}
		}
	}
	code := c.report(res.Markdown(c.commandLine()), *out)
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
