// Package simulate predicts what sqlcached would do for a workload from
// its query log, with no warehouse and no proxy running: the hit rate and
// the warehouse time saved for a grid of TTLs and L1 sizes, and the
// statement shapes that gain the most.
//
// Data flows in three steps.
//
//  1. A parser (ParseFile) reads a log into Records: PostgreSQL's csvlog
//     and its stderr log, both with log_min_duration_statement = 0 (each
//     statement's "duration: ... statement:" or "execute ...:" line, with
//     its bound parameters from the DETAIL), or a Snowflake QUERY_HISTORY
//     export. Lines that are not statements (parse and bind steps, other
//     messages, failed queries) are counted and skipped; a line that does
//     not parse is an error naming the file, the line and the reason.
//  2. Run replays the Records in the order they started through the read
//     path's own decisions (readpath.Explain: fingerprint's analysis,
//     the policy's labels and rule, the key's components), so that two
//     statements meet in the simulated cache exactly when they would meet
//     in sqlcached. Only the cache itself is modelled (see Model).
//  3. A Report gathers one Result per setting of the grid and the top
//     shapes, and writes them as Markdown, JSON and charts.
//
// The package imports the read path's lower layers (fingerprint, policy,
// readpath's key building) and nothing that talks to a server; it lives
// apart from bench, which stands outside the proxy and talks only to DSNs.
package simulate
