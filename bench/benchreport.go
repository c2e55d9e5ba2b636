package bench

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DashboardsReport is what a run of a dashboard workload measured, as
// report.json has it.
type DashboardsReport struct {
	Workload    string    `json:"workload"`
	File        string    `json:"file"`
	Command     string    `json:"command,omitempty"`
	Started     time.Time `json:"started"`
	Elapsed     float64   `json:"elapsed_seconds"`
	Duration    float64   `json:"duration_seconds"` // of the schedule, per target
	Round       float64   `json:"round_seconds"`
	Rounds      int       `json:"rounds"` // rounds run
	Interrupted bool      `json:"interrupted,omitempty"`
	Viewers     int       `json:"viewers"`
	Seed        uint64    `json:"seed"`
	Protocol    string    `json:"protocol"`
	Dashboards  int       `json:"dashboards"`
	Charts      int       `json:"charts"`
	// Scheduled is the number of requests of the schedule: what each
	// target is sent if it keeps up.
	Scheduled      int             `json:"scheduled"`
	Warehouse      string          `json:"warehouse,omitempty"` // its DSN without the password
	WarehouseError string          `json:"warehouse_error,omitempty"`
	LoadBefore     string          `json:"load_before"`
	LoadAfter      string          `json:"load_after"`
	Targets        []*TargetResult `json:"targets"`
}

// TargetResult is one target's figures over the whole run. Latencies are
// in milliseconds, of the answered requests.
type TargetResult struct {
	Name    string `json:"name"`
	DSN     string `json:"dsn"` // without the password
	Metrics string `json:"metrics,omitempty"`
	// Down is why the target could not be measured, if it could not.
	Down       string  `json:"down,omitempty"`
	Requests   int64   `json:"requests"` // sent
	Errors     int64   `json:"errors"`
	Skipped    int64   `json:"skipped"` // not sent: the target was behind the schedule at the end of a turn
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`    // time spent in its turns
	Throughput float64 `json:"throughput"` // answered requests per second of its turns
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	Mean       float64 `json:"mean_ms"`
	Max        float64 `json:"max_ms"`
	// HitRatio and CollapseRatio come from sqlcached's /metrics (see
	// Outcomes); nil for a target without a metrics URL.
	HitRatio      *float64 `json:"hit_ratio,omitempty"`
	CollapseRatio *float64 `json:"collapse_ratio,omitempty"`
	Outcomes      Outcomes `json:"outcomes,omitempty"`
	MetricsError  string   `json:"metrics_error,omitempty"`
	// WarehouseExecutions are the reads pg_stat_statements counted during
	// the target's turns; nil without a warehouse DSN.
	WarehouseExecutions  *int64        `json:"warehouse_executions,omitempty"`
	ExecutionsPerRequest *float64      `json:"executions_per_request,omitempty"`
	Series               []SeriesPoint `json:"series"`

	latencies []int64 // sorted microseconds, for the CDF
}

// SeriesPoint is one turn of a target.
type SeriesPoint struct {
	Round      int      `json:"round"`
	At         float64  `json:"at_seconds"` // the end of the round, in the schedule's time
	Requests   int64    `json:"requests"`
	Errors     int64    `json:"errors"`
	Skipped    int64    `json:"skipped"`
	HitRatio   *float64 `json:"hit_ratio,omitempty"`
	Executions *int64   `json:"warehouse_executions,omitempty"`
}

func newDashboardsReport(cfg DashboardsConfig, sched *Schedule) *DashboardsReport {
	w := cfg.Workload
	r := &DashboardsReport{
		Workload: w.Name, File: w.File, Command: cfg.Command, Started: time.Now(),
		Duration: w.Duration.Seconds(), Round: w.Round.Seconds(), Viewers: w.Viewers, Seed: w.Seed,
		Protocol: w.Protocol, Dashboards: len(w.Boards), Scheduled: sched.Len(), LoadBefore: loadavg(),
	}
	for _, b := range w.Boards {
		r.Charts += len(b.Charts)
	}
	if cfg.WarehouseDSN != "" {
		r.Warehouse = RedactDSN(cfg.WarehouseDSN)
	}
	return r
}

func (r *DashboardsReport) finish() {
	r.Elapsed = time.Since(r.Started).Seconds()
	r.LoadAfter = loadavg()
}

var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN returns dsn with its password replaced by xxxxx.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordKV.ReplaceAllString(dsn, "${1}xxxxx")
}

// Markdown renders the report: what ran, the table of targets, notes on
// what the columns mean, and the charts if chartDir names where they are
// relative to the Markdown file ("" for none).
func (r *DashboardsReport) Markdown(chartDir string) string {
	var b strings.Builder
	if r.Command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", r.Command)
	}
	var names []string
	for _, t := range r.Targets {
		names = append(names, t.Name)
	}
	fmt.Fprintf(&b, "Workload %q (%s): %d dashboards, %d charts, %d viewers, %s protocol, seed %d; %d requests scheduled per target over %s, replayed in rounds of %s with the targets interleaved (%s, order rotated each round).\n",
		r.Workload, r.File, r.Dashboards, r.Charts, r.Viewers, r.Protocol, r.Seed, r.Scheduled,
		secs(r.Duration), secs(r.Round), strings.Join(names, ", "))
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s; took %s", r.LoadBefore, r.LoadAfter, secs(r.Elapsed))
	if r.Interrupted {
		fmt.Fprintf(&b, "; interrupted after %d rounds", r.Rounds)
	}
	b.WriteString(".\n")
	switch {
	case r.WarehouseError != "":
		fmt.Fprintf(&b, "Warehouse executions not counted: %s.\n", r.WarehouseError)
	case r.Warehouse != "":
		fmt.Fprintf(&b, "Warehouse executions counted by pg_stat_statements at %s.\n", r.Warehouse)
	}
	b.WriteString("\n| target | requests | errors | skipped | answers/s | p50 ms | p95 ms | p99 ms | hit ratio | collapse ratio | warehouse executions | executions / answer |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range r.Targets {
		if t.Down != "" {
			fmt.Fprintf(&b, "| %s | down: %s |  |  |  |  |  |  |  |  |  |  |\n", t.Name, mdCell(t.Down))
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.1f | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n",
			t.Name, t.Requests, t.Errors, t.Skipped, t.Throughput, t.P50, t.P95, t.P99,
			optFloat(t.HitRatio, "%.3f"), optFloat(t.CollapseRatio, "%.3f"), optInt(t.WarehouseExecutions), optFloat(t.ExecutionsPerRequest, "%.3f"))
	}
	b.WriteString("\nRequests were sent, skipped were scheduled but not sent because the target was behind the schedule when its turn ended; answers/s is answered requests per second of the target's turns. Latency is from sending a query to reading the last row of its answer, over the answered requests. Hit ratio is sqlcached's own count (its /metrics: hit_l1 + hit_l2 + stale over every statement answered), collapse ratio the share of its cache misses that joined an execution already under way; both only where a metrics URL was given. Warehouse executions are the reads pg_stat_statements counted during the target's turns.\n")
	if ratios := r.ratios(); ratios != "" {
		b.WriteString("\n" + ratios)
	}
	var notes []string
	for _, t := range r.Targets {
		if t.FirstError != "" {
			notes = append(notes, fmt.Sprintf("%s's first error: %s", t.Name, t.FirstError))
		}
		if t.MetricsError != "" {
			notes = append(notes, fmt.Sprintf("%s's metrics could not be read: %s", t.Name, t.MetricsError))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "\n- %s", mdCell(n))
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	if chartDir != "" {
		for _, c := range chartFiles {
			fmt.Fprintf(&b, "\n![%s](%s)\n", c.title, filepath.ToSlash(filepath.Join(chartDir, c.name+".svg")))
		}
	}
	return b.String()
}

// ratios compares every target with the first one that is up: p95 and
// warehouse executions.
func (r *DashboardsReport) ratios() string {
	var base *TargetResult
	for _, t := range r.Targets {
		if t.Down == "" && t.Requests > 0 {
			base = t
			break
		}
	}
	if base == nil {
		return ""
	}
	var lines []string
	for _, t := range r.Targets {
		if t == base || t.Down != "" || t.Requests == 0 {
			continue
		}
		s := fmt.Sprintf("- %s against %s: p95 %s", t.Name, base.Name, fmtRatio(t.P95/base.P95))
		if t.Throughput > 0 && base.Throughput > 0 {
			s += fmt.Sprintf(", answers/s %s", fmtRatio(t.Throughput/base.Throughput))
		}
		if t.ExecutionsPerRequest != nil && base.ExecutionsPerRequest != nil && *base.ExecutionsPerRequest > 0 {
			s += fmt.Sprintf(", warehouse executions per answer %s", fmtRatio(*t.ExecutionsPerRequest / *base.ExecutionsPerRequest))
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func optFloat(x *float64, format string) string {
	if x == nil {
		return "–"
	}
	return fmt.Sprintf(format, *x)
}

func optInt(x *int64) string {
	if x == nil {
		return "–"
	}
	return fmt.Sprint(*x)
}

// mdCell makes s fit in a table cell or a list item: one line, no pipes.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// WriteFiles writes report.md, report.json and the charts (PNG and SVG)
// into dir, creating it if needed.
func (r *DashboardsReport) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := r.WriteCharts(dir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown(".")), 0o644)
}
