// Package adapter serves a warehouse that does not speak the PostgreSQL
// protocol (the embedded DuckDB, Snowflake) as if it did, so that the proxy
// relays to it exactly as it relays to PostgreSQL: the same pooled
// connections, transactions, SET and SHOW, cursors, cancel requests and
// cache fills.
//
// A Server listens on a Unix socket in a private directory (Listen) and
// runs each statement a session sends through an executor.Warehouse, one
// request per statement, with the session's settings. What a warehouse of
// this kind has no notion of is answered by the session itself, as
// PostgreSQL would answer it:
//
//   - SET, RESET, SHOW, DISCARD ALL and the settings given at startup are
//     kept per session and passed to the warehouse with each statement
//     (the warehouse applies those that change its answers, such as
//     TimeZone); settings PostgreSQL reports (TimeZone, application_name,
//     DateStyle, ...) are reported with ParameterStatus.
//   - BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE track the transaction
//     status clients expect, and a failed statement aborts the block until
//     ROLLBACK. The warehouse runs each statement on its own: a write is
//     committed when it completes, and ROLLBACK after a write says so in a
//     WARNING.
//   - DECLARE, FETCH, MOVE and CLOSE run the cursor's query once and hand
//     out its rows.
//   - The extended protocol (Parse, Bind, Describe, Execute with a row
//     limit, Close, Sync, Flush) is served in full: a statement is
//     described without running it when the warehouse is an
//     executor.Describer; a portal is run when it is described or
//     executed, and its rows handed out in the portions Execute asks for.
//   - pg_backend_pid(), pg_cancel_backend(pid) and pg_terminate_backend(pid)
//     name the adapter's sessions, and a CancelRequest with a session's key
//     cancels its running statement on the warehouse.
//
// Authentication is trust: the socket's directory is readable by its owner
// only. COPY, LISTEN/NOTIFY, PREPARE/EXECUTE in SQL and the function-call
// protocol are refused with SQLSTATE 0A000.
package adapter
