package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// Contender names.
const (
	Direct    = "direct"
	PgBouncer = "pgbouncer"
	PgPool    = "pgpool"
	SqlCached = "sqlcached"
)

// RoundsConfig is how the pgbench comparisons run their cells: every
// clients × mode cell against every contender, in rounds.
type RoundsConfig struct {
	Clients    []int
	Modes      []string // pgbench -M: simple, extended, prepared
	Contenders []string // in the order of the first round
	Jobs       int      // pgbench -j
	Seconds    int      // pgbench -T of each run
	Rounds     int
}

// PassthroughConfig describes a passthrough comparison.
type PassthroughConfig struct {
	RoundsConfig          // Contenders: Direct, PgBouncer, SqlCached
	Workloads    []string // names in Workloads
	Warmup       int      // seconds of pgbench -S per contender before the first round; 0: none
	Scale        int      // pgbench -i -s
	PoolSize     int      // pgbouncer's default_pool_size and sqlcached's max_conns

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
	Runs       Runs              // cell, contender, one per round
	Versions   map[string]string // contender (and pgbench) versions
	LoadBefore string            // /proc/loadavg at the start
	LoadAfter  string            // and at the end
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
	res := &PassthroughResult{
		Config:     cfg,
		LoadBefore: loadavg(),
		Started:    time.Now(),
	}
	for _, w := range cfg.Workloads {
		if _, ok := Workloads[w]; !ok {
			return nil, fmt.Errorf("unknown workload %q", w)
		}
		for _, c := range cfg.Clients {
			for _, m := range cfg.Modes {
				res.Cells = append(res.Cells, Cell{w, c, m})
			}
		}
	}
	if cfg.Profile != "" {
		if _, ok := Workloads[cfg.ProfileCell.Workload]; !ok {
			return nil, fmt.Errorf("unknown workload %q in the cell to profile", cfg.ProfileCell.Workload)
		}
	}

	h, err := StartHarness(ctx, HarnessConfig{
		WorkDir: cfg.WorkDir, PostgresBin: cfg.PostgresBin, Pgbench: cfg.Pgbench,
		Jobs: cfg.Jobs, Database: "pgbench", Logf: logf,
	})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	res.Versions = h.Versions
	logf("pgbench -i -s %d", cfg.Scale)
	if _, err := servers.Run(ctx, nil, cfg.WorkDir, h.Pgbench, "-i", "-q", "-s", fmt.Sprint(cfg.Scale),
		"-h", h.Postgres.Host, "-p", fmt.Sprint(h.Postgres.Port), "-U", "postgres", h.Database); err != nil {
		return nil, err
	}

	var sc *Sqlcached
	for _, c := range cfg.Contenders {
		switch c {
		case Direct:
		case PgBouncer:
			if err := h.StartPgbouncer(ctx, cfg.PgbouncerBin, cfg.PoolSize); err != nil {
				return nil, err
			}
		default:
			sqc, ok := ContenderConfig(c)
			if !ok {
				return nil, fmt.Errorf("unknown contender %q", c)
			}
			sqc.Binary, sqc.MaxConns = cfg.Sqlcached, cfg.PoolSize
			s, err := h.StartSqlcached(ctx, sqc)
			if err != nil {
				return nil, err
			}
			if c == SqlCached {
				sc = s
			}
		}
	}

	bench := func(contender string, cell Cell, seconds int) (Result, error) {
		return h.Bench(ctx, Run{Contender: contender, Workload: Workloads[cell.Workload],
			Clients: cell.Clients, Mode: cell.Mode, Seconds: seconds})
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

	res.Runs, err = h.RunRounds(ctx, Rounds{
		Rounds: cfg.Rounds, Seconds: cfg.Seconds, Cells: res.Cells, Contenders: cfg.Contenders,
		Workload: func(c Cell) Workload { return Workloads[c.Workload] },
	})
	if err != nil {
		return nil, err
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
