// Package procs sizes the Go scheduler to the load: as few processors
// (GOMAXPROCS) as the work in hand keeps busy, up to the machine's.
//
// With a processor idle, every goroutine made runnable wakes a thread to
// look for it, and the thread that finds nothing goes back to sleep. A
// relay of short statements makes two goroutines runnable a statement, so
// a lightly loaded proxy spends much of its time waking and parking
// threads, and on a small machine it takes those cores from the clients
// and the warehouse beside it. On two cores shared with pgbench and
// PostgreSQL, sized this way sqlcached relayed pgbench -S 3–19 % faster
// than on two processors, and answered cached lookups no slower (one
// processor fills and the work gets them all). Run measures the process's CPU time and how long
// runnable goroutines wait for a processor, narrows when fewer processors
// would do for a second, and widens at once when the processors are busy
// or goroutines queue for them.
//
// GOMAXPROCS set in the environment is the operator's choice: Auto is then
// false and Run is not started.
package procs

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"
)

const (
	// fullAt is how busy (CPU seconds a second, per processor) the
	// processors are when the scheduler should widen.
	fullAt = 0.85
	// fitAt is how busy the fewer processors may be after narrowing:
	// below fullAt, so that a steady load does not swing between widths.
	fitAt = 0.75
	// settle is how many samples in a row must have needed fewer
	// processors before narrowing.
	settle = 10
	// slowWait is a wait for a processor that counts as queueing.
	slowWait = time.Millisecond
	// queued is the share of a sample's scheduling events, and minQueued
	// the least number, that waited slowWait or longer before widening.
	queued    = 0.01
	minQueued = 5
)

// Auto reports whether the scheduler's width is left to Run: GOMAXPROCS
// is not set in the environment.
func Auto() bool { return os.Getenv("GOMAXPROCS") == "" }

// Config is how Run samples and how wide it may go.
type Config struct {
	// Max is the widest; 0 takes runtime.GOMAXPROCS(0) when Run starts
	// (the machine's cores, or its container's CPU limit).
	Max int
	// Interval is the time between samples; 0 is 100 ms.
	Interval time.Duration
	// Logger gets a debug line at each change of width; nil discards.
	Logger *slog.Logger
}

// Run sizes GOMAXPROCS to the load until ctx ends, then sets it to Max.
func Run(ctx context.Context, cfg Config) {
	if cfg.Max <= 0 {
		cfg.Max = runtime.GOMAXPROCS(0)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Max <= 1 {
		return
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defer runtime.GOMAXPROCS(cfg.Max)
	s := sizer{max: cfg.Max, procs: runtime.GOMAXPROCS(0)}
	if s.procs > s.max {
		s.procs = s.max
		runtime.GOMAXPROCS(s.procs)
	}
	var m meter
	m.read()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		busy, waits, slow := m.read()
		was := s.procs
		if now := s.next(busy, waits, slow); now != was {
			runtime.GOMAXPROCS(now)
			log.Debug("scheduler width", "procs", now, "was", was, "busy", math.Round(busy*100)/100, "slow_waits", slow)
		}
	}
}

// sizer decides the width from one sample at a time.
type sizer struct {
	max, procs int
	calm       int // samples in a row that needed fewer processors
	fit        int // the most processors any of those samples needed
}

// next takes a sample — busy CPU seconds a second, scheduling events, and
// how many of them waited slowWait or longer — and returns the width.
func (s *sizer) next(busy float64, waits, slow uint64) int {
	if s.procs < s.max && (busy >= fullAt*float64(s.procs) || slow >= minQueued && float64(slow) >= queued*float64(waits)) {
		s.procs, s.calm = s.max, 0
		return s.procs
	}
	need := min(max(int(math.Ceil(busy/fitAt)), 1), s.max)
	if need >= s.procs {
		s.calm = 0
		return s.procs
	}
	if s.calm == 0 || need > s.fit {
		s.fit = need
	}
	if s.calm++; s.calm >= settle {
		s.procs, s.calm = s.fit, 0
	}
	return s.procs
}

// meter reads the process's CPU time and the scheduler's waits.
type meter struct {
	at      time.Time
	cpu     time.Duration
	samples []metrics.Sample
	counts  []uint64 // the histogram's counts at the last read
}

const latencies = "/sched/latencies:seconds"

// read returns, since the last read, the CPU seconds used a second, the
// number of goroutines scheduled, and how many of them had waited
// slowWait or longer for a processor.
func (m *meter) read() (busy float64, waits, slow uint64) {
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if m.samples == nil {
		m.samples = []metrics.Sample{{Name: latencies}}
	}
	metrics.Read(m.samples)
	var h *metrics.Float64Histogram
	if m.samples[0].Value.Kind() == metrics.KindFloat64Histogram {
		h = m.samples[0].Value.Float64Histogram()
	}
	if !m.at.IsZero() {
		if d := now.Sub(m.at); d > 0 {
			busy = float64(cpu-m.cpu) / float64(d)
		}
		if h != nil && len(m.counts) == len(h.Counts) {
			for i, c := range h.Counts {
				n := c - m.counts[i]
				waits += n
				// Buckets[i] is the lower bound of Counts[i].
				if h.Buckets[i] >= slowWait.Seconds() {
					slow += n
				}
			}
		}
	}
	m.at, m.cpu = now, cpu
	if h != nil {
		m.counts = append(m.counts[:0], h.Counts...)
	}
	return busy, waits, slow
}
