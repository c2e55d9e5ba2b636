package simulate

import (
	"container/heap"
	"container/list"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
)

// entry states of the model.
type simEntry struct {
	key     fingerprint.Key
	created time.Time // when the fill that produced it started: freshness counts from here
	ready   time.Time // when that fill ended: before it, lookups join the flight
	expires time.Time // created plus the keep window: L1 lets it go then
	size    int64
	tables  []string
	stored  bool          // in L1 (a too-large answer only ever flies)
	elem    *list.Element // in lru, when stored
}

// l1 models sqlcached's in-process tier: entries bounded in bytes,
// evicted least recently used first, dropped when their keep window
// ends, and indexed by the tables they read for invalidation.
//
// ristretto, the real L1, admits a new entry only when its TinyLFU
// estimate of the entry's use beats that of the entries it would evict,
// and evicts by sampled LFU. Under a cache too small for the hot set this
// keeps frequently asked answers that LRU lets go (real hit rates a
// little higher than predicted), and turns away one-off answers and
// sometimes the first fills of a new hot answer (a little lower). With L1
// larger than the answers alive within a TTL, the two agree.
type l1 struct {
	max       int64
	bytes     int64
	peak      int64
	evictions int
	entries   map[fingerprint.Key]*simEntry // stored or in flight
	lru       *list.List                    // of *simEntry, most recent first
	byTable   map[string]map[fingerprint.Key]struct{}
	expiry    expiryHeap
}

func newL1(maxBytes int64) *l1 {
	return &l1{max: maxBytes, entries: map[fingerprint.Key]*simEntry{}, lru: list.New(), byTable: map[string]map[fingerprint.Key]struct{}{}}
}

// expire drops the entries whose keep window ended by now.
func (c *l1) expire(now time.Time) {
	for len(c.expiry) > 0 && !c.expiry[0].at.After(now) {
		x := heap.Pop(&c.expiry).(expiryItem)
		if e := c.entries[x.key]; e != nil && e.expires.Equal(x.at) && !e.ready.After(now) {
			c.remove(e)
		}
	}
}

// get returns the entry of k, stored or in flight, or nil.
func (c *l1) get(k fingerprint.Key) *simEntry { return c.entries[k] }

// touch marks e used.
func (c *l1) touch(e *simEntry) {
	if e.stored {
		c.lru.MoveToFront(e.elem)
	}
}

// fill records a fill of k started at now, taking dur, whose answer of
// size bytes is kept for keep after now when it fits. An entry already
// there is replaced.
func (c *l1) fill(k fingerprint.Key, now time.Time, dur, keep time.Duration, size, maxEntry int64, tables []string) *simEntry {
	if old := c.entries[k]; old != nil {
		c.remove(old)
	}
	e := &simEntry{key: k, created: now, ready: now.Add(dur), expires: now.Add(max(keep, dur)), size: size, tables: tables}
	c.entries[k] = e
	heap.Push(&c.expiry, expiryItem{at: e.expires, key: k})
	for _, t := range tables {
		m := c.byTable[t]
		if m == nil {
			m = map[fingerprint.Key]struct{}{}
			c.byTable[t] = m
		}
		m[k] = struct{}{}
	}
	if size > maxEntry || size > c.max {
		return e // answered, never stored
	}
	for c.bytes+size > c.max {
		c.evict()
	}
	e.stored, e.elem = true, c.lru.PushFront(e)
	c.bytes += size
	c.peak = max(c.peak, c.bytes)
	return e
}

// refreshed restarts e's life from a refresh started at now, which takes
// dur. The old answer serves the lookups until the refresh ends; they are
// hits either way, so the model counts the new answer from now on.
func (c *l1) refreshed(e *simEntry, now time.Time, dur, keep time.Duration) {
	e.created, e.expires = now, now.Add(max(keep, dur))
	heap.Push(&c.expiry, expiryItem{at: e.expires, key: e.key})
}

func (c *l1) evict() {
	back := c.lru.Back()
	c.evictions++
	c.remove(back.Value.(*simEntry))
}

func (c *l1) remove(e *simEntry) {
	if e.stored {
		c.lru.Remove(e.elem)
		c.bytes -= e.size
		e.stored = false
	}
	delete(c.entries, e.key)
	for _, t := range e.tables {
		if m := c.byTable[t]; m != nil {
			delete(m, e.key)
			if len(m) == 0 {
				delete(c.byTable, t)
			}
		}
	}
}

// invalidate drops the stored entries that read any of tables. A fill in
// flight is dropped too: sqlcached does not store an answer an
// invalidation overtook.
func (c *l1) invalidate(tables []string) {
	for _, t := range tables {
		for k := range c.byTable[t] {
			c.remove(c.entries[k])
		}
	}
}

type expiryItem struct {
	at  time.Time
	key fingerprint.Key
}

// expiryHeap orders entries by the end of their keep window.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
