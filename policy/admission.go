package policy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Admission. A statement shape whose answers are never asked for again (a
// lookup by a key that changes every time: an order by its id, pgbench -S)
// gains nothing from the cache and pays for it: every execution is a fill,
// a store, an eviction. Admission counts, per shape (pg_query's
// fingerprint: the statement with its literals and parameters taken out),
// how many of its cached lookups were answered without running it. When a
// window of admitWindow lookups of a shape found fewer than one in
// admitMinHitEvery answered, the shape is sent to the warehouse
// uncached for bypassFor; after that it is tried again. A shape with any
// real reuse (a dashboard, whose repeats are the point) stays far above
// that ratio. Bypassing costs a cached answer at most bypassFor later than
// otherwise, never a wrong one: bypassed statements run on the warehouse.

const (
	admitWindow      = 1000
	admitMinHitEvery = 100
	bypassFor        = time.Minute
	// maxShapes bounds the shapes followed; past it the table starts
	// anew.
	maxShapes = 4096
)

// Admission judges statement shapes by the reuse of their answers. It is
// safe for concurrent use.
type Admission struct {
	mu     sync.RWMutex
	shapes map[uint64]*shapeStats
	now    func() time.Time
}

type shapeStats struct {
	lookups     atomic.Int64
	answered    atomic.Int64 // lookups answered without running the statement
	bypassUntil atomic.Int64 // Unix nanoseconds; 0: admitted
}

// NewAdmission returns an Admission that admits every shape until it
// has judged it.
func NewAdmission() *Admission {
	return &Admission{shapes: map[uint64]*shapeStats{}, now: time.Now}
}

// stats returns the counters of a shape, nil for a statement without one
// (shape 0).
func (ad *Admission) stats(shape uint64) *shapeStats {
	if shape == 0 {
		return nil
	}
	ad.mu.RLock()
	s := ad.shapes[shape]
	ad.mu.RUnlock()
	if s != nil {
		return s
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if s = ad.shapes[shape]; s == nil {
		if len(ad.shapes) >= maxShapes {
			clear(ad.shapes)
		}
		s = &shapeStats{}
		ad.shapes[shape] = s
	}
	return s
}

// Bypassed reports whether a shape is kept out of the cache for now.
func (ad *Admission) Bypassed(shape uint64) bool {
	ad.mu.RLock()
	s := ad.shapes[shape]
	ad.mu.RUnlock()
	if s == nil {
		return false // not judged yet
	}
	until := s.bypassUntil.Load()
	return until != 0 && ad.now().UnixNano() < until
}

// Record counts one cached lookup of a shape, answered says whether it
// was answered without running the statement, and judges the shape at the
// end of each window.
func (ad *Admission) Record(shape uint64, answered bool) {
	s := ad.stats(shape)
	if s == nil {
		return
	}
	if answered {
		s.answered.Add(1)
	}
	// Exactly one lookup ends each window: the one that counts to
	// admitWindow. Lookups counted while it judges go to the next window
	// or are lost, which only blurs a ratio.
	if s.lookups.Add(1) != admitWindow {
		return
	}
	n := s.answered.Swap(0)
	s.lookups.Store(0)
	if n*admitMinHitEvery < admitWindow {
		s.bypassUntil.Store(ad.now().Add(bypassFor).UnixNano())
	} else {
		s.bypassUntil.Store(0)
	}
}
