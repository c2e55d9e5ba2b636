package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/internal/simulate"
)

const simulateUsage = `usage: sqlcached bench simulate --log FILE [--format pg-csvlog|pg-stderr|snowflake-csv] [--prefix LOG_LINE_PREFIX]
    [--config FILE] [--ttls 1m,5m,15m,1h] [--l1 64MiB,256MiB,1GiB] [--entry-bytes 16KiB] [--row-bytes 64]
    [--stable-functions f,g] [--top 10] [--out DIR]`

// benchSimulate runs `sqlcached bench simulate`: it predicts hit rates and
// warehouse time saved from a query log (see internal/simulate).
func benchSimulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, simulateUsage); fs.PrintDefaults() }
	logFile := fs.String("log", "", "the query log (required)")
	format := fs.String("format", "", "pg-csvlog, pg-stderr or snowflake-csv (default: detected from the first line)")
	prefix := fs.String("prefix", simulate.DefaultPrefix, "the server's log_line_prefix, for pg-stderr")
	cfgFile := fs.String("config", "", "a sqlcached configuration whose policies decide (default: one rule caching everything with each TTL)")
	ttls := fs.String("ttls", "1m,5m,15m,1h", "the TTLs tried; with --config, each replaces the ttl of every caching rule (not given: the rules' own)")
	l1 := fs.String("l1", "64MiB,256MiB,1GiB", "the L1 sizes tried")
	entryBytes := fs.String("entry-bytes", "16KiB", "the size assumed for an answer when the log gives none")
	rowBytes := fs.String("row-bytes", "64", "the size assumed per row when the log gives a row count")
	stable := fs.String("stable-functions", "", "the warehouse's own functions that may be cached (stable or immutable), comma-separated")
	top := fs.Int("top", 10, "how many statement shapes to list")
	out := fs.String("out", "sqlcached-simulate", "where to write report.md, report.json and the charts")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *logFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, simulateUsage)
		return exitConfig
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	opt := simulate.Options{Top: *top}
	var err error
	if *cfgFile != "" {
		if opt.Config, err = config.Load(*cfgFile); err != nil {
			fmt.Fprintln(stderr, err)
			return exitConfig
		}
	}
	if opt.Config == nil || set["ttls"] {
		if opt.TTLs, err = parseList(*ttls, parseTTL); err != nil {
			fmt.Fprintln(stderr, "sqlcached bench simulate: --ttls:", err)
			return exitConfig
		}
	}
	if opt.L1Sizes, err = parseList(*l1, parseBytes); err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate: --l1:", err)
		return exitConfig
	}
	if opt.EntryBytes, err = parseBytes(*entryBytes); err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate: --entry-bytes:", err)
		return exitConfig
	}
	if opt.RowBytes, err = parseBytes(*rowBytes); err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate: --row-bytes:", err)
		return exitConfig
	}
	if *stable != "" {
		opt.Volatility = fingerprint.BuiltinVolatility()
		for _, f := range strings.Split(*stable, ",") {
			opt.Volatility[strings.ToLower(strings.TrimSpace(f))] = fingerprint.Stable
		}
	}

	recs, st, err := simulate.ParseFile(*logFile, simulate.ParseOptions{Format: simulate.Format(*format), Prefix: *prefix})
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate:", err)
		return exitConfig
	}
	rep, err := simulate.Run(recs, opt)
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate:", err)
		return exitConfig
	}
	rep.Log, rep.Parse = *logFile, st
	if err := rep.WriteMarkdown(stdout); err != nil {
		return exitFail
	}
	if err := writeSimulation(rep, *out); err != nil {
		fmt.Fprintln(stderr, "sqlcached bench simulate:", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "wrote %s\n", strings.Join([]string{
		filepath.Join(*out, "report.md"), filepath.Join(*out, "report.json"),
		filepath.Join(*out, "hitrate.{png,svg}"), filepath.Join(*out, "timesaved.{png,svg}"),
	}, ", "))
	return exitOK
}

// writeSimulation writes the report's files into dir.
func writeSimulation(rep *simulate.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{"report.md": rep.WriteMarkdown, "report.json": rep.WriteJSON} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return rep.WriteCharts(dir)
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%s: a TTL must be positive", s)
	}
	return d, err
}

func parseBytes(s string) (int64, error) {
	b, err := config.ParseByteSize(s)
	if err == nil && b <= 0 {
		err = fmt.Errorf("%s: must be positive", s)
	}
	return int64(b), err
}
