package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sqlcached/sqlcached/bench"
)

const benchUsage = `usage: sqlcached bench --workload FILE [--target NAME=DSN[,metrics=URL] ...] [--warehouse-dsn DSN] [--out DIR] [--duration D] [--round D]
       sqlcached bench simulate --log FILE ...

Replays a dashboard workload against every target, interleaved in short
rounds, and writes report.md, report.json and charts (PNG and SVG) to
--out. A target's metrics URL (sqlcached's /metrics) gives its hit ratio;
--warehouse-dsn (the PostgreSQL behind the targets, with
pg_stat_statements) gives the warehouse executions of each target.
Without --target, the targets of the workload file are used.`

// targetFlags collects --target NAME=DSN[,metrics=URL].
type targetFlags []bench.Target

func (t *targetFlags) String() string { return fmt.Sprint(len(*t), " targets") }

func (t *targetFlags) Set(s string) error {
	x, err := parseTarget(s)
	if err == nil {
		*t = append(*t, x)
	}
	return err
}

// parseTarget reads NAME=DSN[,metrics=URL]. The DSN is everything between
// the first = and the last ",metrics=", so a URL or key=value DSN passes
// untouched.
func parseTarget(s string) (bench.Target, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" || rest == "" {
		return bench.Target{}, fmt.Errorf("%q: want NAME=DSN[,metrics=URL]", s)
	}
	t := bench.Target{Name: strings.TrimSpace(name), DSN: rest}
	if i := strings.LastIndex(rest, ",metrics="); i >= 0 {
		t.DSN, t.MetricsURL = rest[:i], rest[i+len(",metrics="):]
		if t.MetricsURL == "" {
			return bench.Target{}, fmt.Errorf("%q: metrics= needs a URL", s)
		}
	}
	return t, nil
}

func benchCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "simulate" {
		return benchSimulate(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, benchUsage); fs.PrintDefaults() }
	var targets targetFlags
	workload := fs.String("workload", "", "the dashboard workload, in YAML (required)")
	fs.Var(&targets, "target", "NAME=DSN[,metrics=URL]: a server to measure; repeat for each (default: the workload's targets)")
	warehouse := fs.String("warehouse-dsn", "", "the PostgreSQL behind the targets, to count their executions with pg_stat_statements")
	out := fs.String("out", "bench-report", "directory for report.md, report.json and the charts")
	duration := fs.Duration("duration", 0, "the schedule's length per target, overriding the workload's duration")
	round := fs.Duration("round", 0, "one target's turn, overriding the workload's round")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *workload == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, benchUsage)
		return exitConfig
	}
	w, err := bench.LoadDashboards(*workload)
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached:", err)
		return exitConfig
	}
	if *duration > 0 {
		w.Duration = *duration
	}
	if *round > 0 {
		w.Round = *round
	}
	w.Round = min(w.Round, w.Duration)
	if len(targets) == 0 {
		targets = w.Targets
	}
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "sqlcached bench: no targets: give --target NAME=DSN or list targets in the workload")
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(stderr, "sqlcached bench: %s, %d targets, %s each (about %s in all)\n", w.Name, len(targets), w.Duration,
		(w.Duration * time.Duration(len(targets))).Round(time.Second))
	rep, err := bench.RunDashboards(ctx, bench.DashboardsConfig{
		Workload: w, Targets: targets, WarehouseDSN: *warehouse, Progress: stderr,
		Command: bench.CommandLine("sqlcached"),
	})
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached bench:", err)
		return exitConfig
	}
	if err := rep.WriteFiles(*out); err != nil {
		fmt.Fprintln(stderr, "sqlcached bench:", err)
		return exitFail
	}
	fmt.Fprint(stdout, rep.Markdown(""))
	fmt.Fprintf(stdout, "\nReport: %s (and report.json, charts as PNG and SVG)\n", filepath.Join(*out, "report.md"))
	return benchStatus(ctx, rep)
}

// benchStatus fails a run that measured nothing: every target down, or
// interrupted.
func benchStatus(ctx context.Context, rep *bench.DashboardsReport) int {
	if errors.Is(ctx.Err(), context.Canceled) {
		return exitFail
	}
	for _, t := range rep.Targets {
		if t.Down == "" {
			return exitOK
		}
	}
	return exitFail
}
