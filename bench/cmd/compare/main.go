// Command compare runs sqlcached side by side with direct PostgreSQL and
// the poolers users weigh it against, on one machine, and prints (or
// writes) the report.
//
//	go run ./bench/cmd/compare passthrough [flags]  # relaying without the cache: direct, pgbouncer, sqlcached (pgbench)
//	go run ./bench/cmd/compare cachehits [flags]    # a dashboard mix from the cache: direct, pgpool-II's query cache, sqlcached (pgbench)
//	go run ./bench/cmd/compare dashboards [flags]   # `sqlcached bench` on a dashboard workload: direct, pgbouncer, pgpool-II, sqlcached
//	go run ./bench/cmd/compare COMPARISON -h        # its flags
//
// Every comparison starts its servers the same way (a private PostgreSQL
// by initdb in a temporary directory on free loopback ports, then each
// contender in front of it, with internal/servers, which the tests use
// too), builds sqlcached from this module (its working tree, or -rev)
// unless -sqlcached names a binary, and runs the contenders interleaved,
// round after round ([bench.Interleaving]), so that the noise of a shared
// machine falls on all of them alike. Everything it starts is stopped and
// the temporary directory removed when it ends (unless -keep). As root,
// the servers run as the postgres user.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sqlcached/sqlcached/bench"
)

// comparisons are the comparisons by name, with a line of help.
var comparisons = []struct {
	name, help string
	run        func(ctx context.Context, args []string) int
}{
	{"passthrough", "sqlcached relaying without its cache, against direct PostgreSQL and pgbouncer in transaction mode (pgbench)", passthrough},
	{"cachehits", "a dashboard mix answered from sqlcached's cache, against direct PostgreSQL and pgpool-II's query cache (pgbench)", cachehits},
	{"dashboards", "`sqlcached bench` on a dashboard workload against direct PostgreSQL, pgbouncer, pgpool-II and sqlcached", dashboards},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) > 0 {
		for _, c := range comparisons {
			if c.name == args[0] {
				return c.run(ctx, args[1:])
			}
		}
	}
	fmt.Fprintln(os.Stderr, "usage: go run ./bench/cmd/compare COMPARISON [flags]")
	fmt.Fprintln(os.Stderr, "comparisons:")
	for _, c := range comparisons {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.help)
	}
	return 2
}

// common holds the flags every comparison has, and what they set up.
type common struct {
	name                       string
	fs                         *flag.FlagSet
	binary, src, rev           *string
	pgBin, pgbench             *string
	pgbouncer, pgpool, redis   *string
	pool                       *int
	keep                       *bool
	work, sqlcached, builtFrom string
}

// newCommon makes the flag set of comparison name with the common flags.
func newCommon(name string) *common {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &common{
		name:      name,
		fs:        fs,
		binary:    fs.String("sqlcached", "", "a built sqlcached binary (default: build ./cmd/sqlcached of -src)"),
		src:       fs.String("src", ".", "the sqlcached module to build"),
		rev:       fs.String("rev", "", "build this git revision of -src (exported with git archive) instead of its working tree"),
		pgBin:     fs.String("pgbin", bench.PostgresBinDir(), "directory of PostgreSQL's initdb, postgres and psql"),
		pgbench:   fs.String("pgbench", "", "pgbench binary (default: pgbench in -pgbin)"),
		pgbouncer: fs.String("pgbouncer", "/usr/sbin/pgbouncer", "pgbouncer binary"),
		pgpool:    fs.String("pgpool", "/usr/sbin/pgpool", "pgpool-II binary"),
		redis:     fs.String("redis", "redis-server", "redis-server binary"),
		pool:      fs.Int("pool", 20, "server connections: pgbouncer's default_pool_size and sqlcached's max_conns"),
		keep:      fs.Bool("keep", false, "keep the temporary directory (servers' logs and configuration)"),
	}
}

// parse parses args; a false result ends the comparison with exit code 2.
func (c *common) parse(args []string) bool {
	if err := c.fs.Parse(args); err != nil {
		return false
	}
	if c.fs.NArg() > 0 {
		c.errorf("unexpected arguments: %v", c.fs.Args())
		return false
	}
	if *c.pgBin == "" {
		c.errorf("no PostgreSQL binaries found; give -pgbin")
		return false
	}
	return true
}

// setUp makes the temporary directory and, if withSqlcached, the sqlcached
// binary. The returned function removes the directory (unless -keep).
func (c *common) setUp(ctx context.Context, withSqlcached bool) (func(), error) {
	work, err := os.MkdirTemp("", "sqlcached-"+c.name+"-")
	if err != nil {
		return func() {}, err
	}
	c.work = work
	cleanup := func() { os.RemoveAll(work) }
	if *c.keep {
		c.logf("keeping %s", work)
		cleanup = func() {}
	}
	if withSqlcached {
		if c.sqlcached, c.builtFrom, err = bench.SqlcachedBinary(ctx, *c.binary, *c.src, *c.rev, work); err != nil {
			return cleanup, err
		}
	}
	return cleanup, nil
}

// pgbenchRun runs a pgbench comparison in the set-up's work directory
// with its sqlcached binary, and returns the result and its versions.
type pgbenchRun func(work, sqlcached string) (interface{ Markdown(string) string }, map[string]string, error)

// runReport sets up (building sqlcached if any contender is one of
// sqlcacheds), runs the comparison and prints its report, writing it to
// out if set. The sqlcached contenders' versions say what they were built
// from.
func (c *common) runReport(ctx context.Context, contenders []string, isSqlcached func(string) bool, out string, run pgbenchRun) int {
	cleanup, err := c.setUp(ctx, slices.ContainsFunc(contenders, isSqlcached))
	defer cleanup()
	if err != nil {
		return c.fail(err)
	}
	res, versions, err := run(c.work, c.sqlcached)
	if err != nil {
		return c.fail(err)
	}
	if c.builtFrom != "" {
		for _, name := range contenders {
			if isSqlcached(name) {
				versions[name] += ", built from " + c.builtFrom
			}
		}
	}
	return c.report(res.Markdown(c.commandLine()), out)
}

// commandLine is the comparison's command line, for its report; the
// comparison's name is the first of the process's arguments.
func (c *common) commandLine() string {
	return bench.CommandLine("go run ./bench/cmd/compare")
}

func (c *common) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (c *common) errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare %s: %s\n", c.name, fmt.Sprintf(format, args...))
}

// fail reports err and returns the exit code 1.
func (c *common) fail(err error) int {
	if errors.Is(err, context.Canceled) {
		c.errorf("interrupted")
	} else {
		c.errorf("%v", err)
	}
	return 1
}

// report prints a Markdown report and writes it to out, if set.
func (c *common) report(md, out string) int {
	fmt.Print(md)
	if out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			return c.fail(err)
		}
	}
	return 0
}

// roundFlags are the flags of the comparisons that run pgbench in rounds.
type roundFlags struct {
	seconds, rounds, jobs      *int
	clients, modes, contenders *string
	out                        *string
}

// roundFlags adds the pgbench round flags, with the defaults of -clients
// and -contenders and the help of -contenders.
func (c *common) roundFlags(clients, contenders, contendersHelp string) *roundFlags {
	fs := c.fs
	return &roundFlags{
		seconds:    fs.Int("T", 10, "seconds of each pgbench run"),
		rounds:     fs.Int("rounds", 3, "rounds; every round runs every cell against every contender"),
		jobs:       fs.Int("j", 2, "pgbench -j"),
		clients:    fs.String("clients", clients, "pgbench -c values"),
		modes:      fs.String("modes", "simple,prepared", "pgbench -M values: simple, extended, prepared"),
		contenders: fs.String("contenders", contenders, "contenders, in the order of the first round: "+contendersHelp),
		out:        fs.String("out", "", "also write the Markdown report to this file"),
	}
}

// config checks the round flags and returns them as a bench.RoundsConfig;
// a false result ends the comparison with exit code 2.
func (r *roundFlags) config(c *common) (bench.RoundsConfig, bool) {
	if *r.seconds < 1 || *r.rounds < 1 {
		c.errorf("-T and -rounds must be at least 1")
		return bench.RoundsConfig{}, false
	}
	n, err := bench.PositiveInts(*r.clients)
	if err != nil {
		c.errorf("-clients: %v", err)
		return bench.RoundsConfig{}, false
	}
	for flag, v := range map[string]string{"-clients": *r.clients, "-modes": *r.modes, "-contenders": *r.contenders} {
		if len(bench.SplitList(v)) == 0 {
			c.errorf("%s names nothing", flag)
			return bench.RoundsConfig{}, false
		}
	}
	return bench.RoundsConfig{
		Clients:    n,
		Modes:      bench.SplitList(*r.modes),
		Contenders: bench.SplitList(*r.contenders),
		Jobs:       *r.jobs,
		Seconds:    *r.seconds,
		Rounds:     *r.rounds,
	}, true
}
