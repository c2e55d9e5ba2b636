package cache

import "sync/atomic"

// Stats is a snapshot of a Group's counters, all monotonic since New.
type Stats struct {
	L1Hits       uint64 // fresh answers from L1
	L2Hits       uint64 // fresh answers from Redis
	Misses       uint64 // Gets that found no usable entry and led a fill
	Fills        uint64 // fills run, background refreshes included
	FillErrors   uint64 // fills that returned an error other than ErrTooLarge
	Collapsed    uint64 // Gets answered by a fill another Get led
	Stale        uint64 // stale entries served while a refresh runs
	StaleIfError uint64 // stale entries served because the fill failed
	Refreshes    uint64 // background refreshes started
	Cancelled    uint64 // Gets whose context ended while they waited for a fill
	TooLarge     uint64 // Gets answered ErrTooLarge
	StoreSkipped uint64 // fills not stored because an invalidation overtook them

	Invalidations       uint64 // invalidations made here or received from other processes
	L2Errors            uint64 // failed or timed-out Redis calls
	L2Writes            uint64 // entries written to Redis
	L2WritesDropped     uint64 // writes dropped: queue full, breaker open or closed
	L2Corrupt           uint64 // Redis values that did not decode, counted as misses
	BreakerOpened       uint64 // times the breaker opened
	InvalidationPending uint64 // invalidations that could not reach Redis at once
	MasterSwitches      uint64 // Sentinel master switches followed, each dropping L1 and invalidating every Redis entry
}

// counters are the live, atomic form of Stats.
type counters struct {
	l1Hits, l2Hits, misses, fills, fillErrors, collapsed atomic.Uint64
	stale, staleIfError, refreshes, cancelled, tooLarge  atomic.Uint64
	storeSkipped, invalidations, l2Errors, l2Writes      atomic.Uint64
	l2WritesDropped, l2Corrupt, breakerOpened, pending   atomic.Uint64
	masterSwitches                                       atomic.Uint64
}

// Stats returns a snapshot of the Group's counters.
func (g *Group) Stats() Stats {
	c := &g.stats
	return Stats{
		L1Hits:              c.l1Hits.Load(),
		L2Hits:              c.l2Hits.Load(),
		Misses:              c.misses.Load(),
		Fills:               c.fills.Load(),
		FillErrors:          c.fillErrors.Load(),
		Collapsed:           c.collapsed.Load(),
		Stale:               c.stale.Load(),
		StaleIfError:        c.staleIfError.Load(),
		Refreshes:           c.refreshes.Load(),
		Cancelled:           c.cancelled.Load(),
		TooLarge:            c.tooLarge.Load(),
		StoreSkipped:        c.storeSkipped.Load(),
		Invalidations:       c.invalidations.Load(),
		L2Errors:            c.l2Errors.Load(),
		L2Writes:            c.l2Writes.Load(),
		L2WritesDropped:     c.l2WritesDropped.Load(),
		L2Corrupt:           c.l2Corrupt.Load(),
		BreakerOpened:       c.breakerOpened.Load(),
		InvalidationPending: c.pending.Load(),
		MasterSwitches:      c.masterSwitches.Load(),
	}
}

// L1Stats returns what the in-process tier holds now.
func (g *Group) L1Stats() L1Stats { return g.l1.stats() }
