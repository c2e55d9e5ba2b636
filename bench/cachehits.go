package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CacheHitsConfig describes a comparison of cache hits on a dashboard mix:
// direct PostgreSQL (every query runs), pgpool-II with its in-memory query
// cache, sqlcached with a catch-all caching policy, and the Bare server
// (the floor of a hit on the machine).
type CacheHitsConfig struct {
	RoundsConfig     // Contenders: Direct, PgPool, SqlCached, Bare
	Rows         int // rows of the orders fact table

	TTL       string // sqlcached's catch-all policy ttl, such as "10m"
	L2        bool   // also run a private Redis as sqlcached's L2
	RedisBin  string // redis-server
	PoolSize  int    // sqlcached's max_conns
	Sqlcached string // a built sqlcached binary

	PgpoolBin      string
	PgpoolChildren int // num_init_children
	PgpoolExpire   int // memqcache_expire, seconds; 0: never

	PostgresBin string // directory of initdb, postgres, psql, pgbench
	Pgbench     string // pgbench binary; default PostgresBin/pgbench
	WorkDir     string // an empty directory for servers and logs

	Logf func(format string, args ...any) // progress; nil: none
}

// The reference cells: SELECT 1 sent straight to PostgreSQL, one per
// number of clients, the latency a cache hit through a proxy is held
// against. With one client, pgbench's per-transaction clock is exact.
const referenceWorkload = "select1"

func isReference(c Cell) bool { return c.Workload == referenceWorkload }

// pgpoolCachedWorkload is the name of the cells that run only the
// dashboard queries pgpool-II's query cache keeps.
const pgpoolCachedWorkload = "pgpool-cached"

// Check is the correctness check of one dashboard query through one proxy.
type Check struct {
	Query     string
	Contender string
	// Mismatch says how the proxy's answers differed from PostgreSQL's
	// ("" if they did not). The query is asked twice through the proxy,
	// the second time to get the cached answer, and both are compared.
	Mismatch string
	// Executions is how many times the warehouse ran the query while the
	// proxy answered the second ask: 0 when the answer came from the cache.
	Executions int64
}

// CacheHitsResult holds every run of a cache-hits comparison.
type CacheHitsResult struct {
	Config   CacheHitsConfig
	Cells    []Cell // the dashboard cells, then the reference cell
	Runs     Runs
	Versions map[string]string
	Checks   []Check
	// PgpoolCached are the dashboard queries pgpool-II answered from its
	// cache in the checks; when they are not all of them, the
	// pgpool-cached cells run just these (simple protocol, no direct).
	PgpoolCached []Script
	References   []Cell
	// Executions are the warehouse executions of dashboard queries per
	// transaction pgbench counted, by cell and contender, one per round:
	// 1 for direct, 0 for a proxy that answered everything from its cache.
	Executions map[Cell]map[string][]float64
	BuildTime  time.Duration // building the data
	LoadBefore string
	LoadAfter  string
	Started    time.Time
	Elapsed    time.Duration
}

// executionsSQL counts the completed executions of the dashboard queries
// (every one reads orders) that pg_stat_statements has seen.
const executionsSQL = `select coalesce(sum(calls), 0) from pg_stat_statements where query ~* 'from\s+orders\s'`

// RunCacheHits builds the dashboard data in a private PostgreSQL, starts
// the contenders in front of it, checks every dashboard query's answers
// through each proxy against PostgreSQL's, fills the caches, runs every
// cell against every contender, interleaved, for cfg.Rounds rounds, and
// stops everything it started.
func RunCacheHits(ctx context.Context, cfg CacheHitsConfig) (*CacheHitsResult, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := &CacheHitsResult{
		Config: cfg, LoadBefore: loadavg(), Started: time.Now(),
		Executions: map[Cell]map[string][]float64{},
	}
	for _, c := range cfg.Contenders {
		switch c {
		case Direct, PgPool, SqlCached, Bare:
		default:
			return nil, fmt.Errorf("unknown contender %q", c)
		}
	}
	for _, n := range cfg.Clients {
		for _, m := range cfg.Modes {
			res.Cells = append(res.Cells, Cell{"dashboard", n, m})
		}
	}
	if contains(cfg.Contenders, Direct) {
		for _, n := range cfg.Clients {
			res.References = append(res.References, Cell{referenceWorkload, n, "simple"})
		}
	}
	for _, cell := range res.Cells {
		res.Executions[cell] = map[string][]float64{}
	}

	h, err := StartHarness(ctx, HarnessConfig{
		WorkDir: cfg.WorkDir, PostgresBin: cfg.PostgresBin, Pgbench: cfg.Pgbench,
		Jobs: cfg.Jobs, Database: "dashboards", Logf: logf,
		PostgresSettings: []string{
			"shared_preload_libraries=pg_stat_statements",
			"pg_stat_statements.track=top",
			"timezone=UTC",
			// A statement whose client went away (pgbench ends its run
			// without waiting for the answers in flight) stops soon
			// instead of loading the next run.
			"client_connection_check_interval=100ms",
		},
	})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	res.Versions = h.Versions

	logf("building %d orders", cfg.Rows)
	t0 := time.Now()
	if _, err := h.Psql(ctx, Direct, strings.Join(DashboardData(cfg.Rows), ";\n")); err != nil {
		return nil, err
	}
	if _, err := h.Psql(ctx, Direct, "vacuum analyze"); err != nil {
		return nil, err
	}
	if _, err := h.Psql(ctx, Direct, "create extension pg_stat_statements"); err != nil {
		return nil, err
	}
	res.BuildTime = time.Since(t0)
	logf("built in %s", res.BuildTime.Round(time.Second))

	var proxies []string
	for _, c := range cfg.Contenders {
		switch c {
		case PgPool:
			proxies = append(proxies, c)
			if err := h.StartPgpool(ctx, PgpoolConfig{
				Path: cfg.PgpoolBin, Children: cfg.PgpoolChildren, Expire: cfg.PgpoolExpire,
			}); err != nil {
				return nil, err
			}
		case SqlCached:
			proxies = append(proxies, c)
			sc := SqlcachedConfig{Binary: cfg.Sqlcached, MaxConns: cfg.PoolSize, TTL: cfg.TTL}
			if cfg.L2 {
				if sc.RedisURL, err = h.StartRedis(ctx, cfg.RedisBin); err != nil {
					return nil, err
				}
			}
			if _, err := h.StartSqlcached(ctx, sc); err != nil {
				return nil, err
			}
		}
	}

	executions := func() (int64, error) {
		out, err := h.Psql(ctx, Direct, executionsSQL)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(firstLine(out, nil), 10, 64)
	}

	// Correctness, and the first fill of the caches: every query directly,
	// then twice through each proxy.
	logf("checking answers")
	for _, q := range DashboardQueries {
		want, err := h.Psql(ctx, Direct, q.SQL)
		if err != nil {
			return nil, err
		}
		for _, p := range proxies {
			ck := Check{Query: q.Name, Contender: p}
			var mismatches []string
			for ask := 1; ask <= 2; ask++ {
				before, err := executions()
				if err != nil {
					return nil, err
				}
				got, err := h.Psql(ctx, p, q.SQL)
				if err != nil {
					got = "error: " + err.Error()
				}
				if ask == 2 {
					after, err := executions()
					if err != nil {
						return nil, err
					}
					ck.Executions = after - before
				}
				if got != want {
					mismatches = append(mismatches, fmt.Sprintf("ask %d: %s", ask, diffLines(want, got)))
				}
				time.Sleep(50 * time.Millisecond) // let the answer settle in the cache
			}
			ck.Mismatch = strings.Join(mismatches, "; ")
			if ck.Mismatch != "" {
				logf("MISMATCH: %s through %s differs from PostgreSQL's answer: %s", q.Name, p, ck.Mismatch)
			}
			res.Checks = append(res.Checks, ck)
		}
	}

	// The queries pgpool-II's cache kept, in cells of their own, so that
	// its hits are also compared with sqlcached's without the warehouse
	// work of the queries it does not cache.
	if contains(proxies, PgPool) && contains(proxies, SqlCached) && contains(cfg.Modes, "simple") {
		kept := map[string]bool{}
		for _, ck := range res.Checks {
			if ck.Contender == PgPool && ck.Executions == 0 && ck.Mismatch == "" {
				kept[ck.Query] = true
			}
		}
		for _, q := range DashboardQueries {
			if kept[q.Name] {
				res.PgpoolCached = append(res.PgpoolCached, q)
			}
		}
		if len(res.PgpoolCached) > 0 && len(res.PgpoolCached) < len(DashboardQueries) {
			for _, n := range cfg.Clients {
				cell := Cell{pgpoolCachedWorkload, n, "simple"}
				res.Cells = append(res.Cells, cell)
				res.Executions[cell] = map[string][]float64{}
			}
		}
	}
	res.Cells = append(res.Cells, res.References...)

	if contains(cfg.Contenders, Bare) {
		sqls := make([]string, len(DashboardQueries))
		for i, q := range DashboardQueries {
			sqls[i] = q.SQL
		}
		answers, err := FetchAnswers(ctx, h.Endpoints[Direct].DSN("postgres", h.Database), sqls)
		if err != nil {
			return nil, err
		}
		bs, err := StartBare(answers)
		if err != nil {
			return nil, err
		}
		h.onClose(bs.Stop)
		h.Endpoints[Bare] = bs.Endpoint
	}

	// Every query once per proxy and protocol, so that the timed runs find
	// everything cached; again at the start of every round, so that a
	// short TTL cannot run out under the timed runs.
	warm := func(ctx context.Context, round int) error {
		for _, p := range proxies {
			for _, m := range cfg.Modes {
				r, err := h.Bench(ctx, Run{Contender: p, Workload: DashboardPass(), Clients: 1, Mode: m, Transactions: 1})
				if err != nil {
					return err
				}
				if r.Err != nil {
					logf("warm-up of %s, -M %s: %s", p, m, describeErr(r))
				}
			}
		}
		return h.waitIdle(ctx, 2*time.Minute)
	}
	logf("warm-up")

	res.Runs, err = h.RunRounds(ctx, Rounds{
		Rounds: cfg.Rounds, Seconds: cfg.Seconds, Cells: res.Cells, Contenders: cfg.Contenders,
		Workload: func(c Cell) Workload {
			switch c.Workload {
			case referenceWorkload:
				return Workloads["select1"]
			case pgpoolCachedWorkload:
				return Workload{Name: c.Workload, Scripts: res.PgpoolCached}
			}
			return DashboardWorkload()
		},
		Skip: func(c Cell, contender string) bool {
			if contender == Bare && c.Mode != "simple" {
				return true // it speaks the simple protocol only
			}
			switch c.Workload {
			case referenceWorkload:
				return contender != Direct
			case pgpoolCachedWorkload:
				return contender == Direct
			}
			return false
		},
		BeforeRound: warm,
		Around: func(ctx context.Context, contender string, cell Cell, bench func() (Result, error)) (Result, error) {
			if err := h.waitIdle(ctx, 2*time.Minute); err != nil {
				return Result{}, err
			}
			before, err := executions()
			if err != nil {
				return Result{}, err
			}
			r, err := bench()
			if err != nil {
				return r, err
			}
			after, err := executions()
			if err != nil {
				return r, err
			}
			if !isReference(cell) && r.Transactions > 0 {
				res.Executions[cell][contender] = append(res.Executions[cell][contender], float64(after-before)/float64(r.Transactions))
			}
			return r, nil
		},
	})
	if err != nil {
		return nil, err
	}
	res.LoadAfter = loadavg()
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// diffLines describes the first difference between two psql outputs.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: PostgreSQL %q, proxy %q (%d and %d lines)", i+1, tail(a, 120), tail(b, 120), len(w), len(g))
		}
	}
	return "same lines"
}
