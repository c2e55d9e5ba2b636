// Package observe keeps what sqlcached did, for the people who run it:
// Prometheus metrics, the top statement shapes, an hour of per-minute
// history, the recent errors and the audit log, all fed by one Record call
// per statement and one Fill call per warehouse run.
//
// Metric labels are bounded: outcome, rule, queue, backend, tier, op,
// reason and state; never a user, a dashboard or a statement. Those go to
// the shapes table (bounded by Config.MaxShapes) and the audit log.
package observe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sqlcached/sqlcached/cache"
)

// Outcome is how a statement was answered.
type Outcome uint8

// Outcomes.
const (
	HitL1     Outcome = iota // from this process's cache
	HitL2                    // from Redis
	Miss                     // run on the warehouse, then cached
	Collapsed                // answered by another request's run of the same statement
	Stale                    // a stale answer, served while a refresh runs (or the warehouse fails)
	Bypass                   // relayed to the warehouse uncached
	Error                    // the client got an error
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"hit_l1", "hit_l2", "miss", "collapsed", "stale", "bypass", "error"}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Hit reports whether the answer came from the cache.
func (o Outcome) Hit() bool { return o == HitL1 || o == HitL2 || o == Collapsed || o == Stale }

// FromCache is the outcome of an answer the cache gave with status s.
func FromCache(s cache.Status) Outcome {
	switch s {
	case cache.HitL1:
		return HitL1
	case cache.HitL2:
		return HitL2
	case cache.Stale, cache.StaleIfError:
		return Stale
	case cache.Shared:
		return Collapsed
	}
	return Miss
}

// Event is one statement a client sent, as it was answered.
type Event struct {
	Start    time.Time
	Duration time.Duration // as the client waited, from the statement to its answer

	User, Client, Database string
	Backend, Rule          string
	Dashboard              string
	Shape                  uint64 // the statement's shape; 0 when it was not analysed
	SQL                    string // the statement's text; kept only where Config.Statements allows

	Outcome Outcome
	Rows    int64
	Bytes   int64
	// Saved is, for a hit, how long the warehouse took for the run whose
	// answer it reused.
	Saved    time.Duration
	SQLState string // on error
	Message  string // on error
}

// FillEvent is one run on a warehouse for the cache.
type FillEvent struct {
	Backend, Queue, Rule string
	Waited, Elapsed      time.Duration
	TimedOut             bool
	Err                  bool
}

// Config configures an Observer.
type Config struct {
	// Version is reported by sqlcached_build_info.
	Version string
	// Audit receives one record per statement; nil turns the audit log
	// off.
	Audit *slog.Logger
	// Statements lets the text of statements into the audit log and the
	// shapes table. Off, only shape ids are kept.
	Statements bool
	// MaxShapes bounds the shapes table. Defaults to 1000.
	MaxShapes int
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Observer collects. It is safe for concurrent use; Record and Fill do
// not block on anything slower than a mutex.
type Observer struct {
	cfg       Config
	reg       *prometheus.Registry
	realClock bool // cfg.Now is time.Now: an event's end is the time

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	saved         *prometheus.CounterVec
	warehouse     *prometheus.HistogramVec
	queueWait     *prometheus.HistogramVec
	timeouts      *prometheus.CounterVec
	invalidations *prometheus.CounterVec
	l2Latency     *prometheus.HistogramVec
	l2Errors      prometheus.Counter

	byLabels sync.Map // reqLabels -> *reqMetrics
	// lastLabels is the entry of byLabels last used: a run of events of
	// one outcome, rule and backend finds it without hashing its labels.
	lastLabels atomic.Pointer[reqMetrics]

	totals totals

	mu     sync.Mutex // protects the fields below
	shapes map[uint64]*shape
	series [60]minute
	errors [50]ErrorRecord
	nerr   int
}

type reqLabels struct {
	o             Outcome
	rule, backend string
}

type reqMetrics struct {
	labels  reqLabels
	count   prometheus.Counter
	latency prometheus.Observer
	saved   prometheus.Counter
}

// Buckets of the latency histograms, in seconds: 100µs to 5 minutes.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

const numBuckets = 20 // len(latencyBuckets)

// New returns an Observer with its metrics registered on a registry of
// its own (with Go's and the process's collectors).
func New(cfg Config) *Observer {
	if cfg.MaxShapes <= 0 {
		cfg.MaxShapes = 1000
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	reg := prometheus.NewRegistry()
	o := &Observer{cfg: cfg, reg: reg, shapes: map[uint64]*shape{}, realClock: realClock}
	o.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlcached_requests_total", Help: "Statements answered, by outcome (hit_l1, hit_l2, miss, collapsed, stale, bypass, error), rule and backend.",
	}, []string{"outcome", "rule", "backend"})
	o.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sqlcached_request_duration_seconds", Help: "Time from a statement to its answer, as the client waits.", Buckets: latencyBuckets,
	}, []string{"outcome", "rule", "backend"})
	o.saved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlcached_warehouse_time_saved_seconds_total", Help: "Warehouse time the cache saved: each hit credited with the execution time of the run that filled it.",
	}, []string{"rule", "backend"})
	o.warehouse = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sqlcached_warehouse_duration_seconds", Help: "Execution time on the warehouse of the runs that fill the cache.", Buckets: latencyBuckets,
	}, []string{"backend", "queue"})
	o.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sqlcached_queue_wait_seconds", Help: "Time a run waited for a worker of its queue.", Buckets: latencyBuckets,
	}, []string{"backend", "queue"})
	o.timeouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlcached_timeouts_total", Help: "Statements cancelled at their rule's timeout.",
	}, []string{"rule", "backend"})
	o.invalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlcached_invalidations_total", Help: "Invalidations, by reason: write, ddl, admin, remote (from another replica).",
	}, []string{"reason"})
	o.l2Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sqlcached_l2_duration_seconds", Help: "Redis calls, by op (get, set, delete).",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	}, []string{"op"})
	o.l2Errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "sqlcached_l2_errors_total", Help: "Redis calls that failed or timed out."})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sqlcached_build_info", Help: "1, labelled with the running version."}, []string{"version"})
	info.WithLabelValues(cfg.Version).Set(1)
	reg.MustRegister(o.requests, o.latency, o.saved, o.warehouse, o.queueWait, o.timeouts, o.invalidations, o.l2Latency, o.l2Errors, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The reasons and outcomes exist from the start, at 0, so that rates
	// and alerts see them before the first one happens.
	for _, r := range []string{"write", "ddl", "admin", "remote"} {
		o.invalidations.WithLabelValues(r)
	}
	return o
}

// Handler serves the metrics in Prometheus's text format.
func (o *Observer) Handler() http.Handler {
	return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{Registry: o.reg})
}

// Register adds collectors (the gauges of the caches, queues and pools).
func (o *Observer) Register(cs ...prometheus.Collector) { o.reg.MustRegister(cs...) }

// Record counts a statement.
func (o *Observer) Record(ev *Event) {
	if ev.Outcome >= numOutcomes {
		return
	}
	m := o.metrics(ev.Outcome, ev.Rule, ev.Backend)
	m.count.Inc()
	m.latency.Observe(ev.Duration.Seconds())
	if ev.Outcome.Hit() && ev.Saved > 0 {
		m.saved.Add(ev.Saved.Seconds())
	}
	o.totals.add(ev)

	now := o.now(ev)
	o.mu.Lock()
	o.minute(now).add(ev)
	if ev.Shape != 0 {
		o.shape(ev).add(ev, now)
	}
	if ev.Outcome == Error {
		o.errors[o.nerr%len(o.errors)] = ErrorRecord{
			Time: now, User: ev.User, Database: ev.Database, Dashboard: ev.Dashboard,
			Shape: ev.Shape, SQLState: ev.SQLState, Message: ev.Message,
		}
		o.nerr++
	}
	o.mu.Unlock()

	if o.cfg.Audit != nil {
		o.audit(ev)
	}
}

// now returns the time an event is counted at: when it ended, or the
// clock's time when Config.Now replaces the system's.
func (o *Observer) now(ev *Event) time.Time {
	if o.realClock && !ev.Start.IsZero() {
		return ev.Start.Add(ev.Duration)
	}
	return o.cfg.Now()
}

func (o *Observer) metrics(out Outcome, rule, backend string) *reqMetrics {
	k := reqLabels{out, rule, backend}
	if m := o.lastLabels.Load(); m != nil && m.labels == k {
		return m
	}
	if m, ok := o.byLabels.Load(k); ok {
		o.lastLabels.Store(m.(*reqMetrics))
		return m.(*reqMetrics)
	}
	m := &reqMetrics{
		labels:  k,
		count:   o.requests.WithLabelValues(out.String(), rule, backend),
		latency: o.latency.WithLabelValues(out.String(), rule, backend),
		saved:   o.saved.WithLabelValues(rule, backend),
	}
	actual, _ := o.byLabels.LoadOrStore(k, m)
	o.lastLabels.Store(actual.(*reqMetrics))
	return actual.(*reqMetrics)
}

// Fill counts a run on a warehouse for the cache.
func (o *Observer) Fill(f FillEvent) {
	o.queueWait.WithLabelValues(f.Backend, f.Queue).Observe(f.Waited.Seconds())
	o.warehouse.WithLabelValues(f.Backend, f.Queue).Observe(f.Elapsed.Seconds())
	if f.TimedOut {
		o.Timeout(f.Rule, f.Backend)
	}
}

// Timeout counts a statement cancelled at its rule's timeout.
func (o *Observer) Timeout(rule, backend string) {
	o.timeouts.WithLabelValues(rule, backend).Inc()
	o.totals.timeouts.Add(1)
}

// Invalidated counts an invalidation for reason (write, ddl, admin,
// remote).
func (o *Observer) Invalidated(reason string) { o.invalidations.WithLabelValues(reason).Inc() }

// L2Call counts a Redis call.
func (o *Observer) L2Call(op string, d time.Duration, failed bool) {
	o.l2Latency.WithLabelValues(op).Observe(d.Seconds())
	if failed {
		o.l2Errors.Inc()
	}
}

func (o *Observer) audit(ev *Event) {
	attrs := []slog.Attr{
		slog.Time("start", ev.Start),
		slog.String("user", ev.User),
		slog.String("client", ev.Client),
		slog.String("database", ev.Database),
		slog.String("dashboard", ev.Dashboard),
		slog.String("shape", shapeString(ev.Shape)),
		slog.String("rule", ev.Rule),
		slog.String("backend", ev.Backend),
		slog.String("outcome", ev.Outcome.String()),
		slog.Int64("rows", ev.Rows),
		slog.Int64("bytes", ev.Bytes),
		slog.Float64("duration_ms", float64(ev.Duration.Microseconds())/1000),
	}
	if ev.SQLState != "" {
		attrs = append(attrs, slog.String("sqlstate", ev.SQLState), slog.String("error", ev.Message))
	}
	if o.cfg.Statements && ev.SQL != "" {
		attrs = append(attrs, slog.String("sql", ev.SQL))
	}
	o.cfg.Audit.LogAttrs(context.Background(), slog.LevelInfo, "statement", attrs...)
}

func shapeString(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", id)
}

// totals are the counts since the start.
type totals struct {
	byOutcome [numOutcomes]atomic.Int64
	saved     atomic.Int64 // nanoseconds
	timeouts  atomic.Int64
}

func (t *totals) add(ev *Event) {
	t.byOutcome[ev.Outcome].Add(1)
	if ev.Outcome.Hit() {
		t.saved.Add(int64(ev.Saved))
	}
}

// Totals are the counts since the process started.
type Totals struct {
	Requests  int64
	ByOutcome map[string]int64
	Hits      int64
	// HitRatio is hits over the requests the cache could answer (all but
	// bypass and error); 0 before any.
	HitRatio float64
	Saved    time.Duration
	Timeouts int64
}

// Totals returns the counts since the process started.
func (o *Observer) Totals() Totals {
	t := Totals{ByOutcome: map[string]int64{}, Saved: time.Duration(o.totals.saved.Load()), Timeouts: o.totals.timeouts.Load()}
	var cacheable int64
	for i := range numOutcomes {
		n := o.totals.byOutcome[i].Load()
		t.ByOutcome[i.String()] = n
		t.Requests += n
		if i.Hit() {
			t.Hits += n
		}
		if i != Bypass && i != Error {
			cacheable += n
		}
	}
	if cacheable > 0 {
		t.HitRatio = float64(t.Hits) / float64(cacheable)
	}
	return t
}
