package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Contender names.
const (
	Direct    = "direct"
	PgBouncer = "pgbouncer"
	SqlCached = "sqlcached"
)

// PassthroughConfig describes a passthrough comparison.
type PassthroughConfig struct {
	Workloads  []string // names in Workloads
	Clients    []int
	Modes      []string // pgbench -M: simple, extended, prepared
	Contenders []string // Direct, PgBouncer, SqlCached, in the order of a round
	Jobs       int      // pgbench -j
	Seconds    int      // pgbench -T of each run
	Rounds     int
	Warmup     int // seconds of pgbench -S per contender before the first round; 0: none
	Scale      int // pgbench -i -s
	PoolSize   int // pgbouncer's default_pool_size and sqlcached's max_conns

	PostgresBin  string // directory of initdb, postgres, psql, pgbench
	Pgbench      string // pgbench binary; default PostgresBin/pgbench
	PgbouncerBin string
	Sqlcached    string // a built sqlcached binary
	WorkDir      string // an empty directory for servers and logs

	// Profile, if set, is a file to write a CPU profile of sqlcached to,
	// taken from its /debug/pprof/profile endpoint during one extra run of
	// ProfileCell after the rounds.
	Profile     string
	ProfileCell Cell

	Logf func(format string, args ...any) // progress; nil: none
}

// Cell is one row of the comparison.
type Cell struct {
	Workload string
	Clients  int
	Mode     string
}

func (c Cell) String() string { return fmt.Sprintf("%s/c%d/%s", c.Workload, c.Clients, c.Mode) }

// PassthroughResult holds every run of a comparison.
type PassthroughResult struct {
	Config     PassthroughConfig
	Cells      []Cell
	Runs       map[Cell]map[string][]Result // cell, contender, one per round
	Versions   map[string]string            // contender (and pgbench) versions
	LoadBefore string                       // /proc/loadavg at the start
	LoadAfter  string                       // and at the end
	Started    time.Time
	Elapsed    time.Duration
	// ProfileResult is the pgbench result of the profiled run, if any.
	ProfileResult *Result
}

// RunPassthrough starts a private PostgreSQL with pgbench data, pgbouncer
// and sqlcached in front of it, runs every cell against every contender,
// interleaved, for cfg.Rounds rounds, and stops everything it started.
func RunPassthrough(ctx context.Context, cfg PassthroughConfig) (*PassthroughResult, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.Pgbench == "" {
		cfg.Pgbench = filepath.Join(cfg.PostgresBin, "pgbench")
	}
	res := &PassthroughResult{
		Config:     cfg,
		Runs:       map[Cell]map[string][]Result{},
		Versions:   map[string]string{},
		LoadBefore: loadavg(),
		Started:    time.Now(),
	}
	for _, w := range cfg.Workloads {
		if _, ok := Workloads[w]; !ok {
			return nil, fmt.Errorf("unknown workload %q", w)
		}
		for _, c := range cfg.Clients {
			for _, m := range cfg.Modes {
				cell := Cell{w, c, m}
				res.Cells = append(res.Cells, cell)
				res.Runs[cell] = map[string][]Result{}
			}
		}
	}
	if cfg.Profile != "" {
		if _, ok := Workloads[cfg.ProfileCell.Workload]; !ok {
			return nil, fmt.Errorf("unknown workload %q in the cell to profile", cfg.ProfileCell.Workload)
		}
	}
	acct, err := ServerAccount()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"postgres", "pgbouncer", "sqlcached", "runs"} {
		if err := os.MkdirAll(filepath.Join(cfg.WorkDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Everything under WorkDir must be reachable by the server account.
	if err := os.Chmod(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}

	const database = "pgbench"
	logf("starting PostgreSQL")
	pg, err := StartPostgres(ctx, cfg.PostgresBin, filepath.Join(cfg.WorkDir, "postgres"), acct)
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	if _, err := pg.Psql(ctx, "postgres", "create database "+database); err != nil {
		return nil, err
	}
	logf("pgbench -i -s %d", cfg.Scale)
	if _, err := run(ctx, nil, cfg.WorkDir, cfg.Pgbench, "-i", "-q", "-s", fmt.Sprint(cfg.Scale),
		"-h", pg.Host, "-p", fmt.Sprint(pg.Port), "-U", "postgres", database); err != nil {
		return nil, err
	}
	res.Versions["postgres"] = firstLine(pg.Psql(ctx, database, "show server_version"))
	res.Versions["pgbench"] = firstLine(run(ctx, nil, "", cfg.Pgbench, "--version"))

	endpoints := map[string]Endpoint{}
	var sc *Sqlcached
	for _, c := range cfg.Contenders {
		switch c {
		case Direct:
			endpoints[c] = pg.Endpoint
		case PgBouncer:
			logf("starting pgbouncer")
			b, err := StartPgbouncer(ctx, PgbouncerConfig{
				Path: cfg.PgbouncerBin, Dir: filepath.Join(cfg.WorkDir, "pgbouncer"),
				Backend: pg.Endpoint, Database: database,
				PoolSize: cfg.PoolSize, MaxClients: 500, Account: acct,
			}, cfg.PostgresBin)
			if err != nil {
				return nil, err
			}
			defer b.Stop()
			endpoints[c] = b.Endpoint
			res.Versions[c] = firstLine(run(ctx, nil, "", cfg.PgbouncerBin, "--version"))
		case SqlCached:
			logf("starting sqlcached")
			s, err := StartSqlcached(ctx, SqlcachedConfig{
				Binary: cfg.Sqlcached, Dir: filepath.Join(cfg.WorkDir, "sqlcached"),
				Backend: pg.Endpoint, Database: database, MaxConns: cfg.PoolSize,
			}, cfg.PostgresBin)
			if err != nil {
				return nil, err
			}
			defer s.Stop()
			sc = s
			endpoints[c] = s.Endpoint
			res.Versions[c] = firstLine(run(ctx, nil, "", cfg.Sqlcached, "version"))
		default:
			return nil, fmt.Errorf("unknown contender %q", c)
		}
	}

	runN := 0
	bench := func(contender string, cell Cell, seconds int) (Result, error) {
		runN++
		p := Pgbench{
			Path: cfg.Pgbench, Endpoint: endpoints[contender], Database: database,
			Workload: Workloads[cell.Workload], Clients: cell.Clients, Jobs: cfg.Jobs,
			Mode: cell.Mode, Seconds: seconds,
			Dir: filepath.Join(cfg.WorkDir, "runs", fmt.Sprintf("%03d-%s", runN, contender)),
		}
		r, err := p.Run(ctx)
		if err == nil && r.Err == nil {
			os.RemoveAll(p.Dir)
		} else {
			// Kept for a look at what went wrong.
			_ = os.WriteFile(filepath.Join(p.Dir, "pgbench.out"), []byte(r.Output), 0o644)
		}
		return r, err
	}

	if cfg.Warmup > 0 {
		for _, c := range cfg.Contenders {
			logf("warm-up: %s, select-only, %d clients, %d s", c, slicesMax(cfg.Clients), cfg.Warmup)
			r, err := bench(c, Cell{"select-only", slicesMax(cfg.Clients), "simple"}, cfg.Warmup)
			if err != nil {
				return nil, err
			}
			if r.Err != nil {
				return nil, fmt.Errorf("warm-up against %s: %w", c, r.Err)
			}
		}
	}

	for round := 0; round < cfg.Rounds; round++ {
		// Rotate the contenders' order from round to round so that none
		// always runs first after a change of cell.
		order := make([]string, len(cfg.Contenders))
		for i := range cfg.Contenders {
			order[i] = cfg.Contenders[(i+round)%len(cfg.Contenders)]
		}
		for _, cell := range res.Cells {
			for _, c := range order {
				prev := res.Runs[cell][c]
				if len(prev) > 0 && prev[0].Unsupported {
					continue // it will not work any better in this round
				}
				r, err := bench(c, cell, cfg.Seconds)
				if err != nil {
					return nil, err
				}
				res.Runs[cell][c] = append(prev, r)
				if r.Err != nil {
					logf("round %d %-24s %-10s %s", round+1, cell, c, describeErr(r))
				} else {
					logf("round %d %-24s %-10s %9.0f tps  avg %.3f ms  p50 %.3f ms  p99 %.3f ms", round+1, cell, c, r.TPS, r.Avg, r.P50, r.P99)
				}
			}
		}
	}

	if cfg.Profile != "" && sc != nil {
		logf("profiling sqlcached during %s", cfg.ProfileCell)
		r, err := profile(ctx, sc.HTTP, cfg.Profile, cfg.Seconds, func() (Result, error) {
			return bench(SqlCached, cfg.ProfileCell, cfg.Seconds)
		})
		if err != nil {
			return nil, err
		}
		res.ProfileResult = &r
	}
	res.LoadAfter = loadavg()
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// profile runs bench while fetching a CPU profile of the run's middle
// seconds from a Go process's /debug/pprof/profile endpoint.
func profile(ctx context.Context, httpAddr, out string, seconds int, bench func() (Result, error)) (Result, error) {
	secs := max(1, seconds-2)
	var wg sync.WaitGroup
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		perr = fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, secs), out)
	}()
	r, err := bench()
	wg.Wait()
	if err != nil {
		return r, err
	}
	if perr != nil {
		return r, perr
	}
	if r.Err != nil {
		return r, fmt.Errorf("profiled run: %w", r.Err)
	}
	return r, nil
}

func fetchProfile(ctx context.Context, url, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("this sqlcached does not serve /debug/pprof/profile on its HTTP listener: %s", resp.Status)
		}
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func describeErr(r Result) string {
	if r.Unsupported {
		return "unsupported: " + r.Err.Error()
	}
	return "error: " + r.Err.Error()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func firstLine(s string, err error) string {
	if err != nil {
		return "?"
	}
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
