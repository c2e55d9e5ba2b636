package observe

import (
	"cmp"
	"slices"
	"time"
)

// shape is what is known of one statement shape.
type shape struct {
	id        uint64
	sql       string
	dashboard string
	rule      string
	requests  int64
	hits      int64
	runs      int64 // misses and relays: executions on the warehouse
	errors    int64
	total     time.Duration // of all the requests' durations
	saved     time.Duration
	buckets   [numBuckets + 1]int64
	lastError string
	lastSeen  time.Time
}

// shape returns the entry of ev's shape, making room for it if needed;
// under o.mu.
func (o *Observer) shape(ev *Event) *shape {
	s := o.shapes[ev.Shape]
	if s != nil {
		return s
	}
	if len(o.shapes) >= o.cfg.MaxShapes {
		// Drop the least requested of a few (map order is random): an
		// approximation of least-frequently-used that costs O(1).
		var victim *shape
		n := 0
		for _, c := range o.shapes {
			if victim == nil || c.requests < victim.requests {
				victim = c
			}
			if n++; n == 8 {
				break
			}
		}
		delete(o.shapes, victim.id)
	}
	s = &shape{id: ev.Shape}
	if o.cfg.Statements {
		s.sql = truncate(ev.SQL, 500)
	}
	o.shapes[ev.Shape] = s
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n-- // not in the middle of a UTF-8 sequence
	}
	return s[:n] + "…"
}

func (s *shape) add(ev *Event, now time.Time) {
	s.requests++
	s.total += ev.Duration
	s.lastSeen = now
	if ev.Dashboard != "" {
		s.dashboard = ev.Dashboard
	}
	if ev.Rule != "" {
		s.rule = ev.Rule
	}
	switch {
	case ev.Outcome.Hit():
		s.hits++
		s.saved += ev.Saved
	case ev.Outcome == Error:
		s.errors++
		s.lastError = ev.SQLState + " " + ev.Message
	default:
		s.runs++
	}
	s.buckets[bucket(ev.Duration)]++
}

func bucket(d time.Duration) int {
	sec := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	return i
}

// ShapeStats is what is known of one statement shape.
type ShapeStats struct {
	Shape     string // id, in hex
	SQL       string // a statement of the shape, when Config.Statements allows
	Dashboard string // the last dashboard label seen
	Rule      string
	Requests  int64
	Hits      int64
	Runs      int64 // executions on the warehouse
	Errors    int64
	HitRatio  float64
	Mean      time.Duration
	P95       time.Duration // the upper bound of the histogram bucket holding it
	Saved     time.Duration
	LastError string
	LastSeen  time.Time
}

// Orders of TopShapes.
const (
	ByRequests = "requests"
	ByRuns     = "executions"
	BySaved    = "saved"
)

// TopShapes returns the n shapes with the most requests, executions on
// the warehouse or warehouse time saved.
func (o *Observer) TopShapes(by string, n int) []ShapeStats {
	o.mu.Lock()
	out := make([]ShapeStats, 0, len(o.shapes))
	for _, s := range o.shapes {
		out = append(out, s.stats())
	}
	o.mu.Unlock()
	key := func(s ShapeStats) int64 {
		switch by {
		case ByRuns:
			return s.Runs
		case BySaved:
			return int64(s.Saved)
		}
		return s.Requests
	}
	slices.SortFunc(out, func(a, b ShapeStats) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Shape, b.Shape)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func (s *shape) stats() ShapeStats {
	st := ShapeStats{
		Shape: shapeString(s.id), SQL: s.sql, Dashboard: s.dashboard, Rule: s.rule,
		Requests: s.requests, Hits: s.hits, Runs: s.runs, Errors: s.errors,
		Saved: s.saved, LastError: s.lastError, LastSeen: s.lastSeen,
	}
	if s.requests > 0 {
		st.Mean = s.total / time.Duration(s.requests)
		if n := s.requests - s.errors; n > 0 {
			st.HitRatio = float64(s.hits) / float64(n)
		}
		// p95: the bucket where 95 % of the requests are reached.
		want, seen := (s.requests*95+99)/100, int64(0)
		for i, c := range s.buckets {
			if seen += c; seen >= want {
				if i < len(latencyBuckets) {
					st.P95 = time.Duration(latencyBuckets[i] * float64(time.Second))
				} else {
					st.P95 = st.Mean // beyond the last bucket
				}
				break
			}
		}
	}
	return st
}

// minute is one minute of history.
type minute struct {
	at       int64 // Unix minute
	requests int64
	hits     int64
	misses   int64 // runs on the warehouse for the cache
	bypass   int64
	errors   int64
	saved    time.Duration
}

// minute returns the slot of now's minute, cleared if it held an older
// one; under o.mu.
func (o *Observer) minute(now time.Time) *minute {
	at := now.Unix() / 60
	m := &o.series[at%int64(len(o.series))]
	if m.at != at {
		*m = minute{at: at}
	}
	return m
}

func (m *minute) add(ev *Event) {
	m.requests++
	switch {
	case ev.Outcome.Hit():
		m.hits++
		m.saved += ev.Saved
	case ev.Outcome == Miss:
		m.misses++
	case ev.Outcome == Bypass:
		m.bypass++
	case ev.Outcome == Error:
		m.errors++
	}
}

// Minute is one minute of history.
type Minute struct {
	Start                                time.Time
	Requests, Hits, Misses, Bypass, Errs int64
	// HitRatio is hits over hits and misses; 0 in a minute without either.
	HitRatio float64
	Saved    time.Duration
}

// History returns the last hour, a minute at a time, oldest first; a
// minute without statements is there with zero counts.
func (o *Observer) History() []Minute {
	now := o.cfg.Now().Unix() / 60
	out := make([]Minute, len(o.series))
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range out {
		at := now - int64(len(out)-1-i)
		out[i].Start = time.Unix(at*60, 0)
		m := o.series[at%int64(len(o.series))]
		if m.at != at {
			continue
		}
		out[i].Requests, out[i].Hits, out[i].Misses, out[i].Bypass, out[i].Errs = m.requests, m.hits, m.misses, m.bypass, m.errors
		out[i].Saved = m.saved
		if m.hits+m.misses > 0 {
			out[i].HitRatio = float64(m.hits) / float64(m.hits+m.misses)
		}
	}
	return out
}

// ErrorRecord is an error a client got.
type ErrorRecord struct {
	Time      time.Time
	User      string
	Database  string
	Dashboard string
	Shape     uint64
	SQLState  string
	Message   string
}

// RecentErrors returns the last errors clients got, newest first.
func (o *Observer) RecentErrors() []ErrorRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(o.nerr, len(o.errors))
	out := make([]ErrorRecord, 0, n)
	for i := range n {
		out = append(out, o.errors[(o.nerr-1-i)%len(o.errors)])
	}
	return out
}
