// Command passthrough compares sqlcached relaying without its cache with
// direct PostgreSQL and pgbouncer in transaction mode, side by side on one
// machine, with pgbench.
//
//	go run ./bench/cmd/passthrough [-T 10] [-rounds 3] [-out FILE] [-pprof FILE]
//
// It starts a private PostgreSQL (initdb in a temporary directory, free
// loopback ports, pgbench -i), pgbouncer and a sqlcached built from this
// module in front of it, runs every workload × clients × protocol cell
// against each contender in turn, round after round, and prints a Markdown
// table of medians and ratios. Everything it starts is stopped and the
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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
		workloads  = flag.String("workloads", "select-only,select1", "workloads: select-only (pgbench -S), select1 (a script of SELECT 1)")
		clients    = flag.String("clients", "8,64", "pgbench -c values")
		modes      = flag.String("modes", "simple,prepared", "pgbench -M values: simple, extended, prepared")
		contenders = flag.String("contenders", "direct,pgbouncer,sqlcached", "contenders, in the order of a round")
		jobs       = flag.Int("j", 2, "pgbench -j")
		scale      = flag.Int("scale", 10, "pgbench -i -s")
		poolSize   = flag.Int("pool", 20, "server connections: pgbouncer's default_pool_size and sqlcached's max_conns")
		warmup     = flag.Int("warmup", 3, "seconds of pgbench -S against each contender before the first round (0: none)")
		out        = flag.String("out", "", "also write the Markdown report to this file")
		pprofOut   = flag.String("pprof", "", "write a CPU profile of sqlcached during one extra run of -pprof-cell to this file (from its /debug/pprof/profile)")
		pprofCell  = flag.String("pprof-cell", "select1/8/simple", "the cell to profile: workload/clients/mode")
		binary     = flag.String("sqlcached", "", "a built sqlcached binary (default: build ./cmd/sqlcached of -src)")
		src        = flag.String("src", ".", "the sqlcached module to build")
		rev        = flag.String("rev", "", "build this git revision of -src (exported with git archive) instead of its working tree")
		pgBin      = flag.String("pgbin", bench.PostgresBinDir(), "directory of PostgreSQL's initdb, postgres, psql and pg_isready")
		pgbenchBin = flag.String("pgbench", "", "pgbench binary (default: pgbench in -pgbin)")
		pgbouncer  = flag.String("pgbouncer", "/usr/sbin/pgbouncer", "pgbouncer binary")
		keep       = flag.Bool("keep", false, "keep the temporary directory (servers' logs and configuration)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "passthrough: unexpected arguments:", flag.Args())
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
		PoolSize:     *poolSize,
		PostgresBin:  *pgBin,
		Pgbench:      *pgbenchBin,
		PgbouncerBin: *pgbouncer,
		Profile:      *pprofOut,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		},
	}
	var err error
	if cfg.Clients, err = bench.PositiveInts(*clients); err != nil {
		fmt.Fprintln(os.Stderr, "passthrough: -clients:", err)
		return 2
	}
	if cfg.Profile != "" {
		if cfg.ProfileCell, err = parseCell(*pprofCell); err != nil {
			fmt.Fprintln(os.Stderr, "passthrough: -pprof-cell:", err)
			return 2
		}
		if cfg.Profile, err = filepath.Abs(cfg.Profile); err != nil {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
			return 2
		}
	}
	if cfg.PostgresBin == "" {
		fmt.Fprintln(os.Stderr, "passthrough: no PostgreSQL binaries found; give -pgbin")
		return 2
	}
	if *seconds < 1 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "passthrough: -T and -rounds must be at least 1")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "sqlcached-passthrough-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "passthrough:", err)
		return 1
	}
	cfg.WorkDir = work
	if *keep {
		fmt.Fprintln(os.Stderr, "keeping", work)
	} else {
		defer os.RemoveAll(work)
	}

	var builtFrom string
	if slices.ContainsFunc(cfg.Contenders, func(c string) bool { _, ok := bench.ContenderConfig(c); return ok }) {
		if cfg.Sqlcached, builtFrom, err = bench.SqlcachedBinary(ctx, *binary, *src, *rev, work); err != nil {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
			return 1
		}
	}

	res, err := bench.RunPassthrough(ctx, cfg)
	if err == nil && builtFrom != "" {
		for _, c := range cfg.Contenders {
			if _, ok := bench.ContenderConfig(c); ok {
				res.Versions[c] += ", built from " + builtFrom
			}
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "passthrough: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
		}
		return 1
	}
	report := res.Markdown(bench.CommandLine("go run ./bench/cmd/passthrough"))
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
			return 1
		}
	}
	if cfg.Profile != "" {
		fmt.Fprintf(os.Stderr, "CPU profile: go tool pprof -top %s\n", cfg.Profile)
	}
	return 0
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
