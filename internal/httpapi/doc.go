// Package httpapi is the asynchronous query API over HTTP: a client posts
// a read, gets a job id at once, and later asks for the job's status, its
// rows (JSON, CSV or NDJSON), or a stream of its status changes
// (Server-Sent Events).
//
// # The life of a job
//
// POST /v1/queries authenticates the caller (HTTP Basic against the
// configured users, or a bearer token naming one), decodes the body once
// into a typed request, routes its database to a backend, and plans the
// statement through the shared read path (readpath.Path.Plan), exactly as
// the PostgreSQL frontends do: the same analysis, the same rules, the same
// key. Anything but one read (SELECT, VALUES, TABLE, a read-only WITH) is
// refused: writes and DDL go through the PostgreSQL protocol, which
// invalidates what they change. An accepted job takes one of MaxJobs slots
// and runs on a goroutine of its own, under a context that DELETE and
// Server.Close cancel.
//
// A statement the rules cache is answered by readpath.Path.Get: a hit in
// L1 or Redis, a run already under way for the same key, or a run through
// the rule's executor queue under its timeout, stored for the next reader
// whatever the frontend. An HTTP query therefore warms the cache for psql
// and the reverse: a query without parameters has the key of a simple
// query, one with parameters the key of the extended protocol with every
// format text. A statement the rules do not cache runs on the rule's queue
// and timeout by executor.Run, and its answer is the job's alone.
//
// Cancelling a job ends its wait. What happens to the warehouse run is the
// rule's cancel_abandoned, as for any client: a cached run is shared and
// carries on unless the rule says to stop it when its last waiter leaves;
// an uncached run belongs to the job and is cancelled on the warehouse.
//
// # Where jobs are kept
//
// The process that runs a job keeps its record in memory until its result
// expires, and writes it to the cache Group at each change of status
// (queued, running, finished), under keys of its own derived from the job
// id, which never meet a query's key. A finished job's answer is stored
// with its record in one entry, kept for ResultTTL; the record alone is
// kept ExpiredTTL longer, as a tombstone, so that an expired id is told
// apart from one never issued (410 rather than 404). Another sqlcached
// process sharing the Group's Redis (the same URL and namespace) answers
// status and result requests for jobs it did not run from these entries;
// the record names its owner, so that a job is only ever shown to the user
// who submitted it (anyone else is told 404, as for an unknown id). While
// a job is queued or running, only its own process knows more than the
// last record says, and only it can cancel the job.
//
// A result is read from the cache entry and written as it is decoded,
// DataRow after DataRow: the body is never built whole. Every answer the
// cache holds is in text format, which the typed JSON encoding reads by
// column type (see results.go).
package httpapi
