package status

import (
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/internal/observe"
)

// Snapshot is everything the page shows, taken at one moment.
type Snapshot struct {
	Now     time.Time // when it was taken
	Started time.Time // when the process started
	Version string
	Clients int // client connections open

	// Listen is the address BI tools connect to (the PostgreSQL
	// listener), for the page to say where to point them.
	Listen string
	// Statements reports whether the text of statements is kept
	// (audit.statements); without it the shapes show only their ids.
	Statements bool

	Totals   observe.Totals
	History  []observe.Minute      // the last hour, a minute at a time, oldest first
	TopRuns  []observe.ShapeStats  // the shapes with the most executions on the warehouse
	TopSaved []observe.ShapeStats  // the shapes that saved the most warehouse time
	Errors   []observe.ErrorRecord // the errors clients got, newest first

	Queues []Queue // sorted by backend and queue; none when nothing is cached
	Pools  []Pool  // sorted by backend
	Cache  *Cache  // nil when nothing is cached
}

// Queue is one queue of workers of one backend.
type Queue struct {
	Backend, Name          string
	Workers, Busy, Waiting int
}

// Pool is one backend's pool of warehouse connections.
type Pool struct {
	Backend                  string
	Busy, Idle, Waiting, Max int
}

// Cache is the state of the cache tiers.
type Cache struct {
	L1 cache.L1Stats
	// Redis reports whether an L2 (Redis) is configured.
	Redis bool
	// BreakerOpen reports whether calls to Redis are suspended after
	// failures.
	BreakerOpen bool
	Stats       cache.Stats
}

// Source supplies a Snapshot at each request of the page.
type Source interface {
	Snapshot() Snapshot
}

// SourceFunc is a func that is a Source.
type SourceFunc func() Snapshot

// Snapshot calls f.
func (f SourceFunc) Snapshot() Snapshot { return f() }
