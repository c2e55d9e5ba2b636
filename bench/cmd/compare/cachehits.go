package main

import (
	"context"

	"github.com/sqlcached/sqlcached/bench"
)

// cachehits compares cache hits on a dashboard mix: sqlcached with a
// catch-all caching policy (and, with -l2, a private redis-server as its
// L2) against pgpool-II with its in-memory query cache and direct
// PostgreSQL, on a fact table of orders and its dimensions. Every
// dashboard query's answers through each proxy are checked against
// PostgreSQL's, the caches filled, and pgbench runs the mix against each
// contender in turn, with SELECT 1 sent straight to PostgreSQL as the
// reference. The bare contender is the floor of a hit on the machine: a
// server in this process answering each query from a map of PostgreSQL's
// answers (simple protocol only).
func cachehits(ctx context.Context, args []string) int {
	c := newCommon("cachehits")
	fs := c.fs
	r := c.roundFlags("1,8,32", "direct,pgpool,sqlcached,bare",
		"direct, pgpool, sqlcached, bare (the floor: a server answering from a map of PostgreSQL's answers)")
	var (
		rows     = fs.Int("rows", 3_000_000, "rows of the orders fact table")
		ttl      = fs.String("ttl", "10m", "ttl of sqlcached's catch-all policy")
		l2       = fs.Bool("l2", false, "start a private redis-server and give it to sqlcached as cache.l2.redis.url")
		children = fs.Int("pgpool-children", 40, "pgpool-II's num_init_children (at least the largest -clients)")
		expire   = fs.Int("pgpool-expire", 0, "pgpool-II's memqcache_expire in seconds (0: never)")
	)
	if !c.parse(args) {
		return 2
	}
	rounds, ok := r.config(c)
	if !ok {
		return 2
	}
	if *rows < 1000 {
		c.errorf("-rows must be at least 1000")
		return 2
	}
	cfg := bench.CacheHitsConfig{
		RoundsConfig:   rounds,
		Rows:           *rows,
		TTL:            *ttl,
		L2:             *l2,
		RedisBin:       *c.redis,
		PoolSize:       *c.pool,
		PgpoolBin:      *c.pgpool,
		PgpoolChildren: *children,
		PgpoolExpire:   *expire,
		PostgresBin:    *c.pgBin,
		Pgbench:        *c.pgbench,
		Logf:           c.logf,
	}
	for _, n := range cfg.Clients {
		if n > cfg.PgpoolChildren {
			c.errorf("-pgpool-children %d is fewer than %d clients", cfg.PgpoolChildren, n)
			return 2
		}
	}
	isSqlcached := func(name string) bool { return name == bench.SqlCached }
	return c.runReport(ctx, cfg.Contenders, isSqlcached, *r.out, func(work, sqlcached string) (interface{ Markdown(string) string }, map[string]string, error) {
		cfg.WorkDir, cfg.Sqlcached = work, sqlcached
		res, err := bench.RunCacheHits(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return res, res.Versions, nil
	})
}
