package proxy

import (
	"context"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// What the proxy needs from the packages below it. *postgres.Pool is a
// Pool and *readpath.Path is Reads.

// Pool is a backend's warehouse connections: the proxy relays sessions
// on connections it acquires, and the read path runs misses on it.
type Pool interface {
	executor.Warehouse
	Acquire(ctx context.Context, login postgres.Login) (*postgres.Conn, error)
	// TryAcquire returns an idle connection at once, or nil.
	TryAcquire(login postgres.Login) *postgres.Conn
	Release(*postgres.Conn)
	Destroy(*postgres.Conn)
	// ServerParams returns the ParameterStatus values the warehouse
	// reported to its connections.
	ServerParams() map[string]string
	// Volatility returns pg_proc's volatility of every function.
	Volatility(ctx context.Context, login executor.Login) (map[string]byte, error)
}

// Reads is the shared read path (see package readpath): one way, for
// the simple and the extended protocol alike, from a statement to its
// cached answer.
type Reads interface {
	Analyzer() *fingerprint.Analyzer
	Policy() *policy.Set
	Plan(*readpath.Request) readpath.Plan
	Rule(*readpath.Request, *fingerprint.Analysis) *policy.Rule
	Bypassed(sql string) bool
	Peek(*readpath.Plan) (cache.Result, bool)
	Get(context.Context, *readpath.Request, *readpath.Plan) (cache.Result, error)
	Lookup(context.Context, *readpath.Plan) (cache.Result, *cache.Reservation)
	Store(resv *cache.Reservation, pl *readpath.Plan, wire []byte, rows int) bool
	Invalidate(ctx context.Context, tables ...string) error
}
