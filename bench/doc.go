// Package bench runs side-by-side benchmarks of sqlcached against direct
// PostgreSQL and other poolers on one machine.
//
// It stands apart from the proxy: it starts every server as a separate
// process (a private PostgreSQL, pgbouncer, pgpool-II, Redis, a sqlcached
// binary) on free
// loopback ports in a temporary directory, drives them with their ordinary
// clients (pgbench, psql) and reads nothing but what those clients print.
// Contenders run interleaved in every round (A B C, A B C, ...) so that the
// noise of a shared machine falls on all of them alike; reports quote
// medians over rounds and ratios between contenders.
//
// The passthrough comparison (sqlcached relaying without its cache, against
// direct PostgreSQL and pgbouncer in transaction mode) is [RunPassthrough];
// its command is bench/cmd/passthrough. The cache-hits comparison
// (sqlcached answering a dashboard mix from its cache, against direct
// PostgreSQL and pgpool-II's in-memory query cache) is [RunCacheHits]; its
// command is bench/cmd/cachehits. Both run on a [Harness].
package bench
