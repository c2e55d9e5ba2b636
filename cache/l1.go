package cache

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// maxIndexed bounds the entries the L1 index tracks. An entry that would go
// beyond it is not stored in L1 (it still goes to L2): an entry L1 holds but
// the index does not know could not be invalidated.
const maxIndexed = 1 << 20

// maxLocalGens bounds the per-name invalidation generations kept in process.
// Beyond it they are forgotten at once and the epoch moves instead, which
// only costs the fills running at that moment their store.
const maxLocalGens = 1 << 16

// l1 is the in-process tier: a ristretto cache of *Entry with an index from
// table and label names to keys, and the in-process invalidation
// generations.
//
// ristretto calls OnEvict and OnReject from its own goroutine, sometimes
// while a Del or Wait of ours waits on it; they therefore only append to
// evicted, and the index catches up under mu before it is next used.
type l1 struct {
	c *ristretto.Cache[uint64, *Entry]

	mu     sync.Mutex                  // protects the fields below
	all    map[Key]*Entry              // every entry L1 may hold
	byName map[string]map[Key]struct{} // genName -> keys of entries that read it
	gens   map[string]uint64           // genName -> invalidations so far
	epoch  uint64                      // InvalidateAll and resets so far

	evictMu sync.Mutex // protects evicted
	evicted []*Entry   // left L1 without us deleting them; unindexed under mu

	bytes     int64         // size of the indexed entries; under mu
	evictions atomic.Uint64 // entries ristretto let go: capacity, expiry, or refused
}

func newL1(maxBytes int64) (*l1, error) {
	l := &l1{
		all:    make(map[Key]*Entry),
		byName: make(map[string]map[Key]struct{}),
		gens:   make(map[string]uint64),
	}
	counters := min(max(maxBytes/256, 10000), 10_000_000)
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry]{
		NumCounters: counters,
		MaxCost:     maxBytes,
		BufferItems: 64,
		OnEvict:     l.left,
		OnReject:    l.left,
	})
	if err != nil {
		return nil, err
	}
	l.c = c
	return l, nil
}

// hash is the ristretto key of k. ristretto keys are 64 bits; get compares
// the whole key, so two keys sharing 64 bits only cost each other hits.
func hash(k Key) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// get returns the entry stored for k, or nil. It does not allocate.
func (l *l1) get(k Key) *Entry {
	e, ok := l.c.Get(hash(k))
	if !ok || e.Key != k {
		return nil
	}
	return e
}

func (l *l1) left(item *ristretto.Item[*Entry]) {
	if item.Value == nil {
		return
	}
	l.evictions.Add(1)
	l.evictMu.Lock()
	l.evicted = append(l.evicted, item.Value)
	l.evictMu.Unlock()
}

// L1Stats is what the in-process tier holds.
type L1Stats struct {
	Entries   int
	Bytes     int64
	Evictions uint64 // entries let go for room, at expiry, or refused by admission
}

func (l *l1) stats() L1Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.catchUpLocked()
	return L1Stats{Entries: len(l.all), Bytes: l.bytes, Evictions: l.evictions.Load()}
}

// catchUpLocked removes from the index the entries ristretto let go.
func (l *l1) catchUpLocked() {
	l.evictMu.Lock()
	ev := l.evicted
	l.evicted = nil
	l.evictMu.Unlock()
	for _, e := range ev {
		if l.all[e.Key] == e {
			l.unindexLocked(e)
		}
	}
}

// localGen is a snapshot of the in-process generations of some names.
type localGen struct {
	epoch uint64
	gens  []uint64
}

func (l *l1) snapshot(names []string) localGen {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := localGen{epoch: l.epoch, gens: make([]uint64, len(names))}
	for i, n := range names {
		s.gens[i] = l.gens[n]
	}
	return s
}

func (l *l1) currentLocked(s localGen, names []string) bool {
	if s.epoch != l.epoch {
		return false
	}
	for i, n := range names {
		if l.gens[n] != s.gens[i] {
			return false
		}
	}
	return true
}

// store puts e in L1 for ttl unless an invalidation of one of its names
// happened since s was taken; it reports whether no invalidation got in the
// way (the entry may still be dropped by ristretto's admission policy).
func (l *l1) store(e *Entry, names []string, s localGen, ttl time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.catchUpLocked()
	if !l.currentLocked(s, names) {
		return false
	}
	if old := l.all[e.Key]; old != nil {
		l.unindexLocked(old)
	} else if len(l.all) >= maxIndexed {
		return true
	}
	l.indexLocked(e, names)
	if !l.c.SetWithTTL(hash(e.Key), e, int64(e.Size()), ttl) {
		l.unindexLocked(e)
	}
	return true
}

func (l *l1) indexLocked(e *Entry, names []string) {
	l.all[e.Key] = e
	l.bytes += int64(e.Size())
	for _, n := range names {
		keys := l.byName[n]
		if keys == nil {
			keys = make(map[Key]struct{})
			l.byName[n] = keys
		}
		keys[e.Key] = struct{}{}
	}
}

func (l *l1) unindexLocked(e *Entry) {
	delete(l.all, e.Key)
	l.bytes -= int64(e.Size())
	for _, n := range genNames(e.Tables, e.Labels) {
		if keys := l.byName[n]; keys != nil {
			delete(keys, e.Key)
			if len(keys) == 0 {
				delete(l.byName, n)
			}
		}
	}
}

// invalidate moves the generations of names, so that fills running now are
// not stored, and deletes the entries that read any of them.
func (l *l1) invalidate(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.catchUpLocked()
	if len(l.gens)+len(names) > maxLocalGens {
		clear(l.gens)
		l.epoch++
	}
	for _, n := range names {
		l.gens[n]++
		for k := range l.byName[n] {
			l.deleteLocked(k)
		}
	}
}

// invalidateAll moves the epoch and deletes every entry.
func (l *l1) invalidateAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.catchUpLocked()
	l.epoch++
	for k := range l.all {
		l.deleteLocked(k)
	}
}

func (l *l1) deleteLocked(k Key) {
	if e := l.all[k]; e != nil {
		l.unindexLocked(e)
	}
	l.c.Del(hash(k))
}

func (l *l1) close() { l.c.Close() }
