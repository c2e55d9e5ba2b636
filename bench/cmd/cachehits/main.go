// Command cachehits compares cache hits on a dashboard mix: sqlcached with
// a catch-all caching policy against pgpool-II with its in-memory query
// cache and direct PostgreSQL, side by side on one machine, with pgbench.
//
//	go run ./bench/cmd/cachehits [-T 10] [-rounds 3] [-l2] [-out FILE]
//
// It starts a private PostgreSQL (initdb in a temporary directory, free
// loopback ports), builds a fact table of orders and its dimensions with
// generate_series, starts pgpool-II and a sqlcached built from this module
// in front of it (and, with -l2, a private redis-server as sqlcached's
// L2), checks every dashboard query's answers through each proxy against
// PostgreSQL's, fills the caches, and runs pgbench on the mix of dashboard
// queries against each contender in turn, round after round, with SELECT 1
// sent straight to PostgreSQL as the reference. The bare contender is the
// floor of a hit on the machine: a server in this process that answers
// each query from a map of PostgreSQL's answers (simple protocol only). It prints a Markdown table
// of medians and ratios. Everything it starts is stopped and the
// temporary directory removed when it ends (unless -keep). As root, the
// servers run as the postgres user.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sqlcached/sqlcached/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		seconds    = flag.Int("T", 10, "seconds of each pgbench run")
		rounds     = flag.Int("rounds", 3, "rounds; every round runs every cell against every contender")
		clients    = flag.String("clients", "1,8,32", "pgbench -c values")
		modes      = flag.String("modes", "simple,prepared", "pgbench -M values: simple, extended, prepared")
		contenders = flag.String("contenders", "direct,pgpool,sqlcached,bare", "contenders, in the order of the first round (bare: the floor, a server answering from a map of PostgreSQL's answers)")
		jobs       = flag.Int("j", 2, "pgbench -j")
		rows       = flag.Int("rows", 3_000_000, "rows of the orders fact table")
		ttl        = flag.String("ttl", "10m", "ttl of sqlcached's catch-all policy")
		l2         = flag.Bool("l2", false, "start a private redis-server and give it to sqlcached as cache.l2.redis.url")
		poolSize   = flag.Int("pool", 20, "sqlcached's max_conns")
		children   = flag.Int("pgpool-children", 40, "pgpool-II's num_init_children (at least the largest -clients)")
		expire     = flag.Int("pgpool-expire", 0, "pgpool-II's memqcache_expire in seconds (0: never)")
		out        = flag.String("out", "", "also write the Markdown report to this file")
		binary     = flag.String("sqlcached", "", "a built sqlcached binary (default: build ./cmd/sqlcached of -src)")
		src        = flag.String("src", ".", "the sqlcached module to build")
		rev        = flag.String("rev", "", "build this git revision of -src (exported with git archive) instead of its working tree")
		pgBin      = flag.String("pgbin", bench.PostgresBinDir(), "directory of PostgreSQL's initdb, postgres, psql and pg_isready")
		pgbenchBin = flag.String("pgbench", "", "pgbench binary (default: pgbench in -pgbin)")
		pgpool     = flag.String("pgpool", "/usr/sbin/pgpool", "pgpool-II binary")
		redis      = flag.String("redis", "redis-server", "redis-server binary, for -l2")
		keep       = flag.Bool("keep", false, "keep the temporary directory (servers' logs and configuration)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "cachehits: unexpected arguments:", flag.Args())
		return 2
	}
	cfg := bench.CacheHitsConfig{
		Modes:          bench.SplitList(*modes),
		Contenders:     bench.SplitList(*contenders),
		Jobs:           *jobs,
		Seconds:        *seconds,
		Rounds:         *rounds,
		Rows:           *rows,
		TTL:            *ttl,
		L2:             *l2,
		RedisBin:       *redis,
		PoolSize:       *poolSize,
		PgpoolBin:      *pgpool,
		PgpoolChildren: *children,
		PgpoolExpire:   *expire,
		PostgresBin:    *pgBin,
		Pgbench:        *pgbenchBin,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		},
	}
	var err error
	if cfg.Clients, err = bench.PositiveInts(*clients); err != nil {
		fmt.Fprintln(os.Stderr, "cachehits: -clients:", err)
		return 2
	}
	if cfg.PostgresBin == "" {
		fmt.Fprintln(os.Stderr, "cachehits: no PostgreSQL binaries found; give -pgbin")
		return 2
	}
	if *seconds < 1 || *rounds < 1 || *rows < 1000 {
		fmt.Fprintln(os.Stderr, "cachehits: -T and -rounds must be at least 1, -rows at least 1000")
		return 2
	}
	for _, c := range cfg.Clients {
		if c > cfg.PgpoolChildren {
			fmt.Fprintf(os.Stderr, "cachehits: -pgpool-children %d is fewer than %d clients\n", cfg.PgpoolChildren, c)
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "sqlcached-cachehits-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cachehits:", err)
		return 1
	}
	cfg.WorkDir = work
	if *keep {
		fmt.Fprintln(os.Stderr, "keeping", work)
	} else {
		defer os.RemoveAll(work)
	}

	var builtFrom string
	for _, c := range cfg.Contenders {
		if c == bench.SqlCached {
			if cfg.Sqlcached, builtFrom, err = bench.SqlcachedBinary(ctx, *binary, *src, *rev, work); err != nil {
				fmt.Fprintln(os.Stderr, "cachehits:", err)
				return 1
			}
		}
	}

	res, err := bench.RunCacheHits(ctx, cfg)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "cachehits: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "cachehits:", err)
		}
		return 1
	}
	if builtFrom != "" {
		res.Versions[bench.SqlCached] += ", built from " + builtFrom
	}
	report := res.Markdown(bench.CommandLine("go run ./bench/cmd/cachehits"))
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "cachehits:", err)
			return 1
		}
	}
	return 0
}
