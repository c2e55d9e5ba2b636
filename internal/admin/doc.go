// Package admin is sqlcached's admin console: the commands an operator
// runs against a live server, as pgbouncer's console has them.
//
// A command is parsed from text (Parse: "SHOW STATS", "INVALIDATE TABLE
// orders", "RELOAD"), or built directly (Command), then run (Run) against
// the parts of the server it reads and acts on (Deps): the observer's
// counts and shapes, the cache, the queues, the pools, the policy in
// force, the client sessions. Every command answers a table (Result) of
// typed columns; the table goes out in two forms from one value:
//
//   - to psql and any PostgreSQL client connected to database
//     "sqlcached", as RowDescription and DataRows in PostgreSQL's text
//     forms (Result.Text; package proxy writes the messages);
//   - as JSON under /admin/ on the HTTP listener, one object per row
//     (Result.Objects; cmd/sqlcached serves it).
//
// Failures are *Error values carrying the SQLSTATE a PostgreSQL client is
// shown: 42601 for an unknown command (with the list of commands as its
// hint), 55000 for what the configuration does not allow (no cache to
// invalidate, no file to reload), F0000 for a file that does not load.
package admin
