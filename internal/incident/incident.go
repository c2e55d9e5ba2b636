// Package incident keeps the log readable while a dependency fails: a
// failing Redis or warehouse is logged once when it starts failing and once
// when it recovers, with counts of what its failure affected in between,
// never a line per request.
//
// The component that calls the dependency holds one Incident for it and
// reports every outcome:
//
//	if err := call(); err != nil {
//		inc.Fail(err, "reads served without Redis") // one line, then counts
//	} else {
//		inc.OK() // one line when a failure ends, then nothing
//	}
//
// The lines, for a Redis down for 31 seconds under load:
//
//	WARN redis failing err="dial tcp 10.0.0.7:6379: connect: connection refused"
//	INFO "redis recovered after 31.2s: 21,381 reads served without Redis, 612 invalidations not shared at once"
//
// and, while it lasts, at most one reminder a minute ("redis still failing
// after 2m0s: ..."). A dependency is called recovered once it has answered
// for Settle without failing, so that one that flaps is one incident, not a
// pair of lines per flap.
//
// Both calls are cheap on the hot path: OK on a healthy dependency is one
// atomic load, and Fail on a failing one a few atomic operations and a
// clock read, without allocating. Nothing runs in the background: the
// lines are written by the calls that change the state.
package incident

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Timing of the lines.
const (
	// Settle is how long a failing dependency must answer without failing
	// before it is called recovered.
	Settle = time.Second
	// Remind is the least time between two lines about one incident while
	// it lasts.
	Remind = time.Minute
)

// An Incident follows one dependency ("redis", "warehouse sales") through
// its failures. It is safe for concurrent use.
type Incident struct {
	name  string
	log   *slog.Logger
	level slog.Level

	failing  atomic.Bool
	since    atomic.Int64 // unix ns of the failure that started the incident
	okSince  atomic.Int64 // unix ns of the first success since the last failure; 0: none
	lastLine atomic.Int64 // unix ns of the last line written about the incident

	counts atomic.Pointer[[]*count] // copied on write, under mu

	mu sync.Mutex // serialises starting and ending incidents and adding to counts
}

// count is how many times one kind of thing was affected.
type count struct {
	what string
	n    atomic.Int64
}

// New returns an Incident for the dependency name, healthy. Its failure
// line is written at level (slog.LevelWarn for a dependency the service
// can do without, such as a cache, slog.LevelError for one it cannot);
// its recovery line at slog.LevelInfo. A nil log is slog.Default().
func New(log *slog.Logger, level slog.Level, name string) *Incident {
	if log == nil {
		log = slog.Default()
	}
	i := &Incident{name: name, log: log, level: level}
	i.counts.Store(new([]*count))
	return i
}

// Name returns the dependency's name.
func (i *Incident) Name() string { return i.name }

// Failing reports whether an incident is open: a failure has been
// reported and no recovery since.
func (i *Incident) Failing() bool { return i.failing.Load() }

// Fail reports a failed call, err saying why, and counts one what ("reads
// served without Redis"); an empty what is not counted. The first Fail of
// an incident writes the failure line with err; later ones count, and write
// a reminder at most once per Remind.
func (i *Incident) Fail(err error, what string) {
	if !i.failing.Load() {
		i.start(err)
	}
	i.add(what)
	if i.okSince.Load() != 0 {
		i.okSince.Store(0)
	}
	i.remind(err)
}

// Count counts one what affected by an incident without a call that failed
// (a call not made because the dependency is known to be down). It does
// nothing while the dependency is healthy.
func (i *Incident) Count(what string) {
	if i.failing.Load() {
		i.add(what)
	}
}

// OK reports a successful call. The first one Settle after the last
// failure ends the incident and writes the recovery line with the counts.
func (i *Incident) OK() {
	if !i.failing.Load() {
		return
	}
	now := time.Now().UnixNano()
	ok := i.okSince.Load()
	if ok == 0 {
		i.okSince.CompareAndSwap(0, now)
		return
	}
	if time.Duration(now-ok) >= Settle {
		i.end()
	}
}

// start opens an incident, unless a concurrent Fail did, and writes the
// failure line.
func (i *Incident) start(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failing.Load() {
		return
	}
	for _, c := range *i.counts.Load() {
		c.n.Store(0)
	}
	now := time.Now().UnixNano()
	i.since.Store(now)
	i.okSince.Store(0)
	i.lastLine.Store(now)
	i.failing.Store(true)
	i.log.Log(context.Background(), i.level, i.name+" failing", "err", err)
}

// end closes the incident, unless a concurrent OK did or a failure came
// since, and writes the recovery line.
func (i *Incident) end() {
	i.mu.Lock()
	defer i.mu.Unlock()
	ok := i.okSince.Load()
	if !i.failing.Load() || ok == 0 || time.Since(time.Unix(0, ok)) < Settle {
		return
	}
	i.failing.Store(false)
	d := time.Duration(ok - i.since.Load())
	counts, total := i.summary()
	i.log.Info(i.name+" recovered after "+round(d).String()+counts, "down", d, "affected", total)
}

// remind writes a line about the incident if none was written for Remind.
func (i *Incident) remind(err error) {
	now := time.Now().UnixNano()
	last := i.lastLine.Load()
	if time.Duration(now-last) < Remind || !i.lastLine.CompareAndSwap(last, now) {
		return
	}
	d := time.Duration(now - i.since.Load())
	counts, total := i.summary()
	i.log.Log(context.Background(), i.level, i.name+" still failing after "+round(d).String()+counts, "err", err, "affected", total)
}

// add counts one what.
func (i *Incident) add(what string) {
	if what == "" {
		return
	}
	for _, c := range *i.counts.Load() {
		if c.what == what {
			c.n.Add(1)
			return
		}
	}
	i.mu.Lock()
	cs := *i.counts.Load()
	for _, c := range cs {
		if c.what == what {
			i.mu.Unlock()
			c.n.Add(1)
			return
		}
	}
	c := &count{what: what}
	c.n.Store(1)
	next := append(cs[:len(cs):len(cs)], c)
	i.counts.Store(&next)
	i.mu.Unlock()
}

// summary returns the non-zero counts as ": 1,234 reads served without
// Redis, 56 ...", largest first, and their sum.
func (i *Incident) summary() (string, int64) {
	type kv struct {
		what string
		n    int64
	}
	var counts []kv
	var total int64
	for _, c := range *i.counts.Load() {
		if n := c.n.Load(); n > 0 {
			counts = append(counts, kv{c.what, n})
			total += n
		}
	}
	slices.SortStableFunc(counts, func(a, b kv) int { return cmp.Compare(b.n, a.n) })
	var b strings.Builder
	for k, c := range counts {
		if k == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(thousands(c.n))
		b.WriteByte(' ')
		b.WriteString(c.what)
	}
	return b.String(), total
}

// round gives a duration to a tenth of a second under a minute, to the
// second above.
func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for k, r := range s {
		if k > 0 && (len(s)-k)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
