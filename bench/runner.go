package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DashboardsConfig says what RunDashboards runs.
type DashboardsConfig struct {
	Workload *Dashboards
	Targets  []Target
	// WarehouseDSN, if set, is the PostgreSQL behind the targets, where
	// pg_stat_statements counts the executions each target caused.
	WarehouseDSN string
	// Progress gets a line at the end of every target's turn; nil: none.
	Progress io.Writer
	// Command is the command line, for the report.
	Command string
}

// RunDashboards replays the workload's schedule against every target,
// interleaved: the schedule is cut into rounds of Workload.Round, and each
// round is replayed against each target in turn (the order rotated from
// round to round), so that the noise of a shared machine falls on all of
// them alike and each target's warehouse executions and cache counters
// can be read around its own turns. A run takes about Duration times the
// number of targets.
//
// Within a turn a viewer sends each request at its time in the schedule,
// or at once when it is behind; what it has not sent when the turn's time
// is up is skipped (counted, not sent). Latency is from sending a query to
// reading the last row of its answer.
//
// A target that cannot be connected to at the start is reported down with
// its error and left out; the others are measured. The run stops early,
// with what it measured so far, when ctx is done.
func RunDashboards(ctx context.Context, cfg DashboardsConfig) (*DashboardsReport, error) {
	w := cfg.Workload
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	names := map[string]bool{}
	for _, t := range cfg.Targets {
		if names[t.Name] {
			return nil, fmt.Errorf("target %q given twice", t.Name)
		}
		names[t.Name] = true
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	sched := w.Schedule()
	rep := newDashboardsReport(cfg, sched)
	var wh *Warehouse
	if cfg.WarehouseDSN != "" {
		var err error
		if wh, err = OpenWarehouse(ctx, cfg.WarehouseDSN); err != nil {
			rep.WarehouseError = err.Error()
			fmt.Fprintf(progress, "warehouse: %v (no warehouse executions in the report)\n", err)
		} else {
			defer wh.Close(context.Background())
		}
	}
	states := make([]*targetState, len(cfg.Targets))
	for i, t := range cfg.Targets {
		st := &targetState{t: t, w: w, res: &TargetResult{Name: t.Name, DSN: RedactDSN(t.DSN), Metrics: t.MetricsURL}, outcomes: Outcomes{}}
		st.open(ctx)
		if st.res.Down != "" {
			fmt.Fprintf(progress, "%s is down: %s\n", t.Name, st.res.Down)
		}
		defer st.close()
		states[i] = st
		rep.Targets = append(rep.Targets, st.res)
	}
	rounds := int((w.Duration + w.Round - 1) / w.Round)
	// An interrupted run ends with what it measured so far.
	_ = Interleaving[*targetState]{
		Rounds: rounds, Contenders: states,
		Turn: func(ctx context.Context, k, _ int, st *targetState) error {
			if st.res.Down == "" {
				from, to := time.Duration(k)*w.Round, min(time.Duration(k+1)*w.Round, w.Duration)
				st.turn(ctx, sched, k, from, to, wh)
				fmt.Fprintf(progress, "%s\n", st.progressLine(k, rounds))
			}
			rep.Rounds = k + 1
			return nil
		},
	}.Run(ctx)
	rep.Interrupted = ctx.Err() != nil
	for _, st := range states {
		st.finish()
	}
	rep.finish()
	return rep, nil
}

// targetState is one target during a run.
type targetState struct {
	t     Target
	w     *Dashboards
	res   *TargetResult
	conns []*pgx.Conn // one per viewer; nil until connected, or after it broke

	mu  sync.Mutex // protects lat and res's counts during a turn
	lat []int64    // microseconds of every answered request

	outcomes    Outcomes // sqlcached's counters over every turn
	haveMetrics bool
	executions  int64
	haveExec    bool
	wall        time.Duration // time spent in turns
}

// open connects every viewer; a target none of whose viewers could
// connect is down.
func (st *targetState) open(ctx context.Context) {
	st.conns = make([]*pgx.Conn, st.w.Viewers)
	errs := make([]error, len(st.conns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range st.conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st.conns[i], errs[i] = st.connect(ctx)
		})
	}
	wg.Wait()
	if errs[0] != nil {
		st.res.Down = oneLine(errs[0].Error())
		st.close()
	}
}

// oneLine joins the distinct lines of s (pgx gives a line per address it
// tried, often the same twice).
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " ")
}

func (st *targetState) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(st.t.DSN)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "sqlcached bench"
	}
	switch st.w.Protocol {
	case ProtocolExtended:
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	case ProtocolPrepared:
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	default:
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func (st *targetState) close() {
	for i, c := range st.conns {
		if c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.Close(ctx)
			cancel()
			st.conns[i] = nil
		}
	}
}

// turn replays the requests of [from, to) against the target and reads its
// counters around it.
func (st *targetState) turn(ctx context.Context, sched *Schedule, round int, from, to time.Duration, wh *Warehouse) {
	var before Outcomes
	var metricsErr error
	if st.t.MetricsURL != "" {
		before, metricsErr = ScrapeOutcomes(ctx, st.t.MetricsURL)
	}
	var execBefore int64
	var execErr error
	if wh != nil {
		execBefore, execErr = wh.Executions(ctx)
	}
	pt := SeriesPoint{Round: round + 1, At: to.Seconds()}
	start := time.Now()
	end := start.Add(to - from)
	var wg sync.WaitGroup
	for v := range sched.Viewers {
		reqs := sched.Between(v, from, to)
		if len(reqs) > 0 {
			wg.Go(func() { st.viewer(ctx, v, reqs, start, from, end, &pt) })
		}
	}
	wg.Wait()
	st.wall += time.Since(start)
	if st.t.MetricsURL != "" {
		after, err := ScrapeOutcomes(ctx, st.t.MetricsURL)
		if err = errors.Join(metricsErr, err); err != nil {
			if st.res.MetricsError == "" {
				st.res.MetricsError = err.Error()
			}
		} else {
			d := after.Sub(before)
			st.outcomes.Add(d)
			st.haveMetrics = true
			if r, ok := d.HitRatio(); ok {
				pt.HitRatio = &r
			}
		}
	}
	if wh != nil {
		after, err := wh.Executions(ctx)
		if err = errors.Join(execErr, err); err == nil {
			n := after - execBefore
			st.executions += n
			st.haveExec = true
			pt.Executions = &n
		}
	}
	st.mu.Lock()
	st.res.Series = append(st.res.Series, pt)
	st.mu.Unlock()
}

// viewer sends one viewer's requests of a turn that started at start (at
// virtual time from) and ends at end.
func (st *targetState) viewer(ctx context.Context, v int, reqs []Request, start time.Time, from time.Duration, end time.Time, pt *SeriesPoint) {
	for i, r := range reqs {
		if d := time.Until(start.Add(r.At - from)); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil || time.Now().After(end) {
			st.mu.Lock()
			st.res.Skipped += int64(len(reqs) - i)
			pt.Skipped += int64(len(reqs) - i)
			st.mu.Unlock()
			return
		}
		lat, err := st.query(ctx, v, r.SQL)
		if err != nil && ctx.Err() != nil {
			return // interrupted, not failed
		}
		st.mu.Lock()
		st.res.Requests++
		pt.Requests++
		if err != nil {
			st.res.Errors++
			pt.Errors++
			if st.res.FirstError == "" {
				st.res.FirstError = err.Error()
			}
		} else {
			st.lat = append(st.lat, lat.Microseconds())
		}
		st.mu.Unlock()
	}
}

// query sends sql on viewer v's connection (connecting it again if it
// broke) and reads the whole answer.
func (st *targetState) query(ctx context.Context, v int, sql string) (time.Duration, error) {
	if c := st.conns[v]; c == nil || c.IsClosed() {
		c, err := st.connect(ctx)
		if err != nil {
			return 0, err
		}
		st.conns[v] = c
	}
	ctx, cancel := context.WithTimeout(ctx, st.w.Timeout)
	defer cancel()
	t0 := time.Now()
	rows, err := st.conns[v].Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	rows.Close()
	return time.Since(t0), rows.Err()
}

// progressLine is the line printed after the target's turn of a round:
// requests, p95 so far, errors, and the hit ratio and warehouse
// executions of the turn where they are known.
func (st *targetState) progressLine(round, rounds int) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	lat := slices.Clone(st.lat)
	slices.Sort(lat)
	s := fmt.Sprintf("round %d/%d  %-12s %7d requests  p95 %8.2f ms  %d errors", round+1, rounds, st.t.Name,
		st.res.Requests, float64(Percentile(lat, 95))/1000, st.res.Errors)
	if st.res.Skipped > 0 {
		s += fmt.Sprintf("  %d skipped", st.res.Skipped)
	}
	if n := len(st.res.Series); n > 0 {
		pt := st.res.Series[n-1]
		if pt.HitRatio != nil {
			s += fmt.Sprintf("  hit ratio %.3f", *pt.HitRatio)
		}
		if pt.Executions != nil {
			s += fmt.Sprintf("  warehouse %d", *pt.Executions)
		}
	}
	return s
}

// finish sums up the target's turns into its result.
func (st *targetState) finish() {
	r := st.res
	slices.Sort(st.lat)
	r.latencies = st.lat
	r.Seconds = st.wall.Seconds()
	if r.Seconds > 0 {
		r.Throughput = float64(r.Requests-r.Errors) / r.Seconds
	}
	if n := len(st.lat); n > 0 {
		ms := func(us int64) float64 { return float64(us) / 1000 }
		r.P50, r.P95, r.P99 = ms(Percentile(st.lat, 50)), ms(Percentile(st.lat, 95)), ms(Percentile(st.lat, 99))
		r.Max = ms(st.lat[n-1])
		var sum int64
		for _, x := range st.lat {
			sum += x
		}
		r.Mean = ms(sum) / float64(n)
	}
	if st.haveMetrics {
		r.Outcomes = st.outcomes
		if x, ok := st.outcomes.HitRatio(); ok {
			r.HitRatio = &x
		}
		if x, ok := st.outcomes.CollapseRatio(); ok {
			r.CollapseRatio = &x
		}
	}
	if st.haveExec {
		n := st.executions
		r.WarehouseExecutions = &n
		if ok := r.Requests - r.Errors; ok > 0 {
			x := float64(n) / float64(ok)
			r.ExecutionsPerRequest = &x
		}
	}
}
