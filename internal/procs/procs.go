// Package procs sizes the Go scheduler to the load: as few processors
// (GOMAXPROCS) as the work in hand keeps busy, up to the machine's.
//
// With a processor idle, every goroutine made runnable wakes a thread to
// look for it, and the thread that finds nothing goes back to sleep. A
// relay of short statements makes two goroutines runnable a statement, so
// a lightly loaded proxy spends much of its time waking and parking
// threads, and on a small machine it takes those cores from the clients
// and the warehouse beside it. On two cores shared with pgbench and
// PostgreSQL, sized this way sqlcached relayed pgbench -S up to 19 %
// faster than on two processors (−4 % to +19 % a round), and answered
// cached lookups as fast (docs/benchmarks.md, "Rules that cache
// nothing"): their load fills one processor and gets them all. Run samples the process's CPU time and how
// long runnable goroutines waited for a processor; it narrows when fewer
// processors would have done for settle samples in a row (a second), and
// widens at the next sample when the processors are busy, or after three
// when goroutines keep queueing for them. A load that comes back right after each narrowing
// makes it wait longer before the next. It narrows to a quarter of the
// cores at most (one on up to seven).
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
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

const (
	// fullAt is how busy (CPU seconds a second, per processor) the
	// processors are when the scheduler should widen.
	fullAt = 0.85
	// fitAt is how busy the fewer processors may be after narrowing:
	// below fullAt, so that a steady load does not swing between widths.
	fitAt = 0.75
	// settle is how many samples in a row must have needed fewer
	// processors before narrowing; maxSettle is how long that grows to
	// for a load that keeps coming back right after each narrowing.
	settle    = 10
	maxSettle = 32 * settle
	// slowWait is a wait for a processor that counts as queueing (the
	// histogram's buckets put the bound at 1.05 ms).
	slowWait = time.Millisecond
	// queued is the share of a sample's recorded scheduling events, and
	// minQueued the least number, that waited slowWait or longer before
	// widening. The runtime records one goroutine's transitions in eight,
	// so two recorded waits stand for about sixteen.
	queued    = 0.01
	minQueued = 2
	// queuedFor is how many samples in a row must show goroutines
	// queueing: a blocking system call at a connection's start can hold
	// the one processor for a millisecond once, a queue lasts.
	queuedFor = 3
)

// Auto reports whether the scheduler's width is left to Run: GOMAXPROCS
// in the environment is not a number the runtime takes (a positive
// integer).
func Auto() bool {
	n, err := strconv.Atoi(os.Getenv("GOMAXPROCS"))
	return err != nil || n <= 0
}

// Config is how Run samples and how wide it may go.
type Config struct {
	// Max is the widest; 0 takes runtime.GOMAXPROCS(0) when Run starts
	// (the cores it may run on, or its container's CPU limit rounded up).
	Max int
	// Interval is the time between samples; 0 is 100 ms. Narrowing
	// waits for settle samples (a second at 100 ms) or more.
	Interval time.Duration
	// Logger gets a debug line at each change of width; nil discards.
	Logger *slog.Logger

	// sample replaces the meter in tests.
	sample func() (busy float64, waits, slow uint64, ok bool)
}

// Run sizes GOMAXPROCS to the load until ctx ends, then gives the width
// back: to Max when it was set, else to the runtime's default, which
// again follows the container's limit.
func Run(ctx context.Context, cfg Config) {
	if cfg.Max <= 0 {
		cfg.Max = runtime.GOMAXPROCS(0)
		defer runtime.SetDefaultGOMAXPROCS()
	} else {
		defer runtime.GOMAXPROCS(cfg.Max)
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
	s := newSizer(cfg.Max, runtime.GOMAXPROCS(0))
	if s.procs != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(s.procs)
	}
	sample := cfg.sample
	if sample == nil {
		m := meter{shortest: cfg.Interval / 2}
		m.read()
		sample = m.read
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		busy, waits, slow, ok := sample()
		if !ok {
			continue
		}
		was := s.procs
		if now := s.next(busy, waits, slow); now != was {
			runtime.GOMAXPROCS(now)
			log.Debug("scheduler width", "procs", now, "was", was, "busy", math.Round(busy*100)/100, "slow_waits", slow)
		}
	}
}

// sizer decides the width from one sample at a time.
type sizer struct {
	min, max int // the narrowest and widest
	procs    int
	calm     int // samples in a row that needed fewer processors
	fit      int // the most processors any of those samples needed
	settle   int // how many calm samples narrow
	narrowed int // samples since the last narrowing; -1 before one
	queueing int // samples in a row in which goroutines queued
}

// newSizer starts at procs. It narrows to a quarter of widest at most
// (one on up to seven cores): a burst on a large machine waits a sample
// on a quarter of its cores, not on one.
func newSizer(widest, procs int) sizer {
	narrowest := max(widest/4, 1)
	return sizer{min: narrowest, max: widest, procs: min(max(procs, narrowest), widest), settle: settle, narrowed: -1}
}

// next takes a sample — busy CPU seconds a second, recorded scheduling
// events, and how many of them waited slowWait or longer — and returns
// the width.
func (s *sizer) next(busy float64, waits, slow uint64) int {
	if s.narrowed >= 0 {
		s.narrowed++
	}
	if slow >= minQueued && float64(slow) >= queued*float64(waits) {
		s.queueing++
	} else {
		s.queueing = 0
	}
	if s.procs < s.max && (busy >= fullAt*float64(s.procs) || s.queueing >= queuedFor) {
		if s.narrowed >= 0 && s.narrowed <= 2*s.settle {
			// Back so soon: the load comes and goes; wait longer
			// before the next narrowing.
			s.settle = min(2*s.settle, maxSettle)
		}
		s.procs, s.calm, s.queueing = s.max, 0, 0
		return s.procs
	}
	if s.procs < s.max && s.narrowed > maxSettle {
		s.settle = settle // narrow and steady for a while
	}
	need := min(max(int(math.Ceil(busy/fitAt)), s.min), s.max)
	if need >= s.procs {
		s.calm = 0
		return s.procs
	}
	if s.calm == 0 || need > s.fit {
		s.fit = need
	}
	if s.calm++; s.calm >= s.settle {
		s.procs, s.calm, s.narrowed = s.fit, 0, 0
	}
	return s.procs
}

// meter reads the process's CPU time and the scheduler's waits. The CPU
// time is the whole process's: threads Go does not schedule (cgo, an
// embedded database's own) count too, which can only make it wider.
type meter struct {
	shortest time.Duration // a sample shorter than this is not taken
	at       time.Time
	cpu      time.Duration
	samples  []metrics.Sample
	counts   []uint64 // the histogram's counts at the last read
}

const latencies = "/sched/latencies:seconds"

// read returns, since the last read, the CPU seconds used a second, the
// number of scheduling events the runtime recorded, and how many of them
// had waited slowWait or longer for a processor. ok is false, and the
// sample is left to grow, when less than shortest has passed (a tick
// delivered late, then the next at once) or on the first read.
func (m *meter) read() (busy float64, waits, slow uint64, ok bool) {
	now := time.Now()
	if !m.at.IsZero() && now.Sub(m.at) < m.shortest {
		return 0, 0, 0, false
	}
	var ru syscall.Rusage
	// A raw call: getrusage never blocks, and a system call the runtime
	// watches wakes its monitor from its idle sleep.
	_, _, _ = syscall.RawSyscall(syscall.SYS_GETRUSAGE, uintptr(syscall.RUSAGE_SELF), uintptr(unsafe.Pointer(&ru)), 0)
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
			busy, ok = float64(cpu-m.cpu)/float64(d), true
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
	return busy, waits, slow, ok
}
