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
	"os/exec"
	"os/signal"
	"path/filepath"
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
		Workloads:    split(*workloads),
		Modes:        split(*modes),
		Contenders:   split(*contenders),
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
	if cfg.Clients, err = ints(*clients); err != nil {
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

	if contains(cfg.Contenders, bench.SqlCached) {
		cfg.Sqlcached = *binary
		if cfg.Sqlcached == "" {
			cfg.Sqlcached = filepath.Join(work, "bin", "sqlcached")
			what := "working tree"
			if *rev != "" {
				what = "revision " + *rev
			}
			fmt.Fprintf(os.Stderr, "building sqlcached (%s of %s)\n", what, *src)
			if err := bench.BuildSqlcached(ctx, *src, *rev, work, cfg.Sqlcached); err != nil {
				fmt.Fprintln(os.Stderr, "passthrough:", err)
				return 1
			}
		}
	}

	res, err := bench.RunPassthrough(ctx, cfg)
	if err == nil && *binary == "" && contains(cfg.Contenders, bench.SqlCached) {
		res.Versions[bench.SqlCached] += ", built from " + describeSource(*src, *rev)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "passthrough: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
		}
		return 1
	}
	report := res.Markdown(commandLine())
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

func commandLine() string {
	args := make([]string, 0, len(os.Args))
	args = append(args, "go run ./bench/cmd/passthrough")
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// describeSource names the commit sqlcached was built from.
func describeSource(src, rev string) string {
	what := rev
	if what == "" {
		what = "HEAD"
	}
	out, err := exec.Command("git", "-C", src, "rev-parse", "--short", what).Output()
	if err != nil {
		return src
	}
	id := strings.TrimSpace(string(out))
	if rev == "" {
		if st, err := exec.Command("git", "-C", src, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			return "the working tree of " + id + " (with uncommitted changes)"
		}
		return "the working tree of " + id
	}
	return "commit " + id
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range split(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
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

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
