// Package bench runs side-by-side benchmarks of sqlcached against direct
// PostgreSQL and other poolers on one machine.
//
// It stands apart from the proxy: it starts every server as a separate
// process (a private PostgreSQL made by initdb for the run, pgbouncer,
// pgpool-II, Redis, a sqlcached binary) on free loopback ports in a
// temporary directory, drives them with their ordinary clients (pgbench,
// psql) and reads nothing but what those clients print. Contenders run
// interleaved in every round (A B C, A B C, ...) so that the noise of a
// shared machine falls on all of them alike; reports quote medians over
// rounds and ratios between contenders.
//
// The servers are started by internal/servers, as the tests' are
// (internal/testenv); as root they run as the postgres user. bench keeps
// what is its own: which contenders run, their settings
// ([PostgresSettings], [ContenderConfig]) and the sqlcached binary's
// configuration ([StartSqlcached]). A [Harness] holds what one comparison
// started and stops all of it in Close.
//
// The passthrough comparison (sqlcached relaying without its cache,
// against direct PostgreSQL and pgbouncer in transaction mode) is
// [RunPassthrough]; its command is `go run ./bench/cmd/compare
// passthrough`. The cache-hits comparison (sqlcached answering a dashboard
// mix from its cache, against direct PostgreSQL and pgpool-II's in-memory
// query cache) is [RunCacheHits]; its command is `go run
// ./bench/cmd/compare cachehits`. Both run on a [Harness].
//
// `sqlcached bench --workload FILE` is the product's own benchmark and
// talks only to DSNs: [LoadDashboards] reads a dashboard workload (YAML:
// dashboards of charts as SQL templates over parameter domains, viewers,
// Zipf popularity, think time, refresh), [Dashboards.Schedule] draws from
// its seed the requests every viewer sends and when, and [RunDashboards]
// replays that schedule against each target in turn, round by round,
// reading sqlcached's /metrics and the warehouse's pg_stat_statements
// around every turn; the [DashboardsReport] it returns writes report.md,
// report.json and the charts. `go run ./bench/cmd/compare dashboards`
// starts direct PostgreSQL, pgbouncer, pgpool-II and sqlcached on a
// [Harness] and runs the command against them.
package bench
