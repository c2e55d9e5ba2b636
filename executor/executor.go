// Package executor runs the statements the cache could not answer on a
// warehouse and hands back the answer in the PostgreSQL wire form the
// proxy stores and serves, whatever the warehouse.
//
// Warehouse is the interface the cache-miss path calls; each driver
// (executor/postgres now, Snowflake and DuckDB later) implements it. An
// execution belongs to no client: it runs under its own context (the
// policy's timeout), and the driver cancels the statement on the warehouse
// when that context ends.
package executor

import (
	"context"
	"errors"
	"time"
)

// ErrTooLarge is returned when an answer grows past Request.MaxBytes: the
// caller streams it through uncached instead.
var ErrTooLarge = errors.New("executor: answer larger than the entry bound")

// Login is whom a statement runs as.
type Login struct {
	User     string
	Password string
	Database string
}

// Request is one statement to run.
type Request struct {
	Login Login
	// SQL is one statement. With no Params, ParamOIDs, ParamFormats or
	// ResultFormats it runs as a simple query; otherwise through the
	// extended protocol.
	SQL string
	// Statement, if set, names SQL (with its ParamOIDs) on the warehouse:
	// a warehouse that keeps prepared statements parses it once per
	// connection and binds it by that name afterwards. Two requests with
	// one Statement must have the same SQL and ParamOIDs. "" runs it
	// unnamed.
	Statement     string
	ParamOIDs     []uint32
	ParamFormats  []int16
	Params        [][]byte // nil is NULL
	ResultFormats []int16
	// Settings are the session settings to run under, by name, each as
	// the SQL that applies it (SET TimeZone = 'UTC').
	Settings map[string]string
	// MaxBytes bounds the answer; 0 means no bound.
	MaxBytes int
	// Dashboard is the statement's dashboard label, for warehouses that
	// tag their queries with it (Snowflake's QUERY_TAG). It changes no
	// answer.
	Dashboard string
}

// Extended reports whether the request runs through the extended protocol.
func (r *Request) Extended() bool {
	return len(r.Params) > 0 || len(r.ParamOIDs) > 0 || len(r.ParamFormats) > 0 || len(r.ResultFormats) > 0
}

// Result is an answer as the wire carries it: RowDescription (absent when
// the statement returns no rows), the DataRows, and CommandComplete, one
// whole message after another.
type Result struct {
	Wire []byte
	Rows int64
	Tag  string
	// Elapsed is how long the warehouse took (set by Run): the time a
	// cached copy of the answer saves. Waited is how long the run waited
	// for a worker of its queue first.
	Elapsed, Waited time.Duration
}

// Warehouse runs statements.
type Warehouse interface {
	Execute(ctx context.Context, req *Request) (*Result, error)
}

// Describer is a Warehouse that can describe a statement without running
// it, as the extended protocol's Describe asks before Bind: the types of
// its parameters and the columns of its answer.
type Describer interface {
	Describe(ctx context.Context, req *Request) (*Description, error)
}

// Description is what a statement takes and returns.
type Description struct {
	// ParamOIDs holds the PostgreSQL type OID of each parameter, in
	// order; the request's own ParamOIDs win where they are not 0.
	ParamOIDs []uint32
	// Fields is the RowDescription message, whole, with text format
	// codes; nil when the statement returns no rows.
	Fields []byte
}
