package simulate

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/policy"
)

// Options configure Run.
type Options struct {
	// Config supplies the policies, label sources, backends and the cache's
	// max_entry_bytes, as `sqlcached serve` would read them. If nil, one
	// rule caches every cacheable statement with the TTL of the setting.
	Config *config.Config
	// TTLs are the TTLs tried. With a Config, each replaces the ttl of
	// every rule that caches, and an empty list keeps the rules' own (one
	// setting, "as configured"). Without one, empty means DefaultTTLs.
	TTLs []time.Duration
	// L1Sizes are the L1 sizes tried, in bytes. If empty, DefaultL1Sizes.
	L1Sizes []int64
	// EntryBytes is the size in L1 assumed for an answer the log gives no
	// size or row count for. If zero, it defaults to DefaultEntryBytes:
	// a dashboard chart's answer of a few hundred rows. PostgreSQL's logs
	// never give sizes; measure yours (sqlcached_cache_bytes divided by
	// sqlcached_cache_entries) and set it.
	EntryBytes int64
	// RowBytes is the size assumed per row when the log gives a row count
	// (Snowflake's ROWS_PRODUCED). If zero, DefaultRowBytes.
	RowBytes int64
	// Volatility is the volatility of the warehouse's functions; nil: the
	// built-in list, which treats functions it does not know (the
	// warehouse's own) as volatile, never cached. sqlcached reads the
	// warehouse's catalog instead.
	Volatility fingerprint.VolatilityMap
	// Top is how many shapes the report lists. If zero, 10.
	Top int
}

// Defaults.
var (
	DefaultTTLs    = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
	DefaultL1Sizes = []int64{64 << 20, 256 << 20, 1 << 30}
)

const (
	DefaultEntryBytes = 16 << 10
	DefaultRowBytes   = 64
)

// Result is the prediction for one setting of the grid.
type Result struct {
	// TTL is the TTL simulated; 0 for the rules' own.
	TTL     time.Duration `json:"ttl_ns"`
	L1Bytes int64         `json:"l1_bytes"`

	Statements int `json:"statements"`
	// Hits were answered without running the statement: from L1,
	// collapsed onto a run in flight, or stale (stale_ttl).
	Hits      int `json:"hits"`
	Collapsed int `json:"collapsed"`
	Stale     int `json:"stale"`
	Misses    int `json:"misses"`
	// Bypass were sent to the warehouse uncached: writes, statements no
	// rule caches or that cannot be cached, shapes admission turned away.
	Bypass int `json:"bypass"`
	// Executions are the runs on the warehouse: misses, bypasses and
	// background refreshes.
	Executions int     `json:"executions"`
	HitRate    float64 `json:"hit_rate"`

	// Logged is the warehouse time of every statement in the log, Saved
	// that of the hits.
	Logged    time.Duration `json:"logged_ns"`
	Saved     time.Duration `json:"saved_ns"`
	Evictions int           `json:"evictions"`
	PeakBytes int64         `json:"peak_bytes"`

	shapes []ShapeResult
}

// ShapeResult is what one statement shape gained under a setting.
type ShapeResult struct {
	Shape  string        `json:"shape"` // 16 hex digits, as policy explain prints it
	Sample string        `json:"sample"`
	Count  int           `json:"count"`
	Hits   int           `json:"hits"`
	Logged time.Duration `json:"logged_ns"`
	Saved  time.Duration `json:"saved_ns"`
	// NotCached says why the shape's statements were not cached, if
	// they were not.
	NotCached string `json:"not_cached,omitempty"`
}

// Admission, as policy.Admission judges shapes: of every window of
// admitWindow cached lookups of a shape, fewer than one in
// admitMinHitEvery answered sends the shape uncached for bypassFor.
const (
	admitWindow      = 1000
	admitMinHitEvery = 100
	bypassFor        = time.Minute
)

type admitStats struct {
	lookups, answered int
	bypassUntil       time.Time
}

// Run predicts, for each setting of the grid, what sqlcached would have
// done with recs (in the order they started, as Parse returns them).
func Run(recs []Record, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	analyzer, err := fingerprint.New(fingerprint.Config{Volatility: opt.Volatility})
	if err != nil {
		return nil, err
	}
	ttls := opt.TTLs
	if len(ttls) == 0 {
		ttls = []time.Duration{0}
	}
	rep := &Report{}
	p := &planner{cfg: opt.Config, analyzer: analyzer, sizes: sizer{opt.EntryBytes, opt.RowBytes}, shapeIdx: map[uint64]int{}}
	for _, ttl := range ttls {
		rules, err := rulesFor(opt.Config, ttl)
		if err != nil {
			return nil, err
		}
		p.rules = rules
		steps := p.plan(recs)
		for _, size := range opt.L1Sizes {
			res := replay(recs, steps, size, len(p.shapes))
			res.TTL, res.L1Bytes = ttl, size
			rep.Results = append(rep.Results, res)
		}
	}
	rep.finish(recs, p.shapes, opt.Top)
	return rep, nil
}

func (o Options) withDefaults() Options {
	if len(o.TTLs) == 0 && o.Config == nil {
		o.TTLs = DefaultTTLs
	}
	if len(o.L1Sizes) == 0 {
		o.L1Sizes = DefaultL1Sizes
	}
	if o.EntryBytes <= 0 {
		o.EntryBytes = DefaultEntryBytes
	}
	if o.RowBytes <= 0 {
		o.RowBytes = DefaultRowBytes
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	return o
}

// rulesFor compiles the rules in force for a TTL: cfg's with every
// caching rule's ttl replaced (none: as written), or one catch-all rule.
func rulesFor(cfg *config.Config, ttl time.Duration) (*policy.Set, error) {
	if cfg == nil {
		if ttl <= 0 {
			return nil, errors.New("simulate: a TTL is required without a configuration")
		}
		return policy.New(policy.Rule{Name: "all", Cache: true, TTL: ttl, CacheTimeFunctions: true, MaxEntryBytes: defaultMaxEntry}), nil
	}
	c := *cfg
	c.Policies = slices.Clone(cfg.Policies)
	if ttl > 0 {
		for i := range c.Policies {
			if c.Policies[i].Cache {
				c.Policies[i].TTL = config.Duration(ttl)
			}
		}
	}
	rules, err := policy.Compile(&c)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if len(rules.Rules()) == 0 {
		return nil, errors.New("simulate: the configuration has no policies: nothing would be cached")
	}
	return rules, nil
}

// replay runs the decided statements through a model of L1 of size bytes.
func replay(recs []Record, steps []step, size int64, nShapes int) Result {
	c := newL1(size)
	admit := map[uint64]*admitStats{}
	res := Result{Statements: len(recs), shapes: make([]ShapeResult, nShapes)}
	for i := range recs {
		r, s := &recs[i], &steps[i]
		c.expire(r.Start)
		sh := &res.shapes[s.shape]
		sh.Count++
		sh.Logged += r.Duration
		res.Logged += r.Duration
		hit := false
		switch s.kind {
		case stepWrite:
			res.Bypass++
			res.Executions++
			c.invalidate(s.tables)
		case stepBypass:
			res.Bypass++
			res.Executions++
		case stepLookup:
			a := admit[s.lexShape]
			if a == nil {
				a = &admitStats{}
				admit[s.lexShape] = a
			}
			if r.Start.Before(a.bypassUntil) {
				res.Bypass++
				res.Executions++
				continue
			}
			hit = lookup(c, r, s, &res)
			a.record(hit, r.Start)
		}
		if hit {
			res.Hits++
			res.Saved += r.Duration
			sh.Hits++
			sh.Saved += r.Duration
		}
	}
	res.Evictions, res.PeakBytes = c.evictions, c.peak
	if res.Statements > 0 {
		res.HitRate = float64(res.Hits) / float64(res.Statements)
	}
	return res
}

// lookup is one cached lookup at r.Start: it reports whether the answer
// came without running r, and counts misses, collapses, stale hits and
// refreshes in res.
func lookup(c *l1, r *Record, s *step, res *Result) bool {
	now := r.Start
	e := c.get(s.key)
	if e != nil && now.Before(e.ready) {
		res.Collapsed++ // joins the run in flight
		return true
	}
	if e != nil && e.stored {
		c.touch(e)
		age := now.Sub(e.created)
		switch {
		case age < s.ttl:
			if s.ahead > 0 && age >= s.ttl-s.ahead {
				res.Executions++ // refresh_ahead: refreshed once in the background
				c.refreshed(e, now, r.Duration, s.keep)
			}
			return true
		case age < s.ttl+s.stale:
			res.Stale++
			res.Executions++ // the one background refresh
			c.refreshed(e, now, r.Duration, s.keep)
			return true
		}
	}
	res.Misses++
	res.Executions++
	c.fill(s.key, now, r.Duration, s.keep, s.size, s.maxEntry, s.tables)
	return false
}

func (a *admitStats) record(answered bool, now time.Time) {
	a.lookups++
	if answered {
		a.answered++
	}
	if a.lookups < admitWindow {
		return
	}
	if a.answered*admitMinHitEvery < admitWindow {
		a.bypassUntil = now.Add(bypassFor)
	}
	a.lookups, a.answered = 0, 0
}
