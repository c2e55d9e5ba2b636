// Package proxy is the client side of sqlcached: a PostgreSQL protocol 3.0
// server that BI tools and drivers connect to, relaying their work to
// warehouse connections it pools.
//
// # Layers
//
// A Server accepts connections and runs one goroutine per client session
// (conn). The session reads the client's messages whole with
// internal/pgwire, decodes the few it must understand (Query, Parse, Bind,
// Describe, Execute, Close, Sync, Flush) and writes the warehouse's answers
// back as the bytes it received them in: relaying never re-encodes rows.
//
// # Life of a connection
//
//  1. startup.go: SSLRequest (TLS when configured), GSSENCRequest
//     (declined), CancelRequest, then the StartupMessage. A newer minor
//     version or _pq_ options get NegotiateProtocolVersion.
//  2. auth.go: trust, cleartext password, md5 or SCRAM-SHA-256 against the
//     configured users. A wrong password and an unknown user get the same
//     answer, 28P01.
//  3. The first warehouse connection applies the client's settings (its
//     startup parameters), so that a bad one fails the login as on the
//     warehouse, and the warehouse's ParameterStatus values, with
//     server_version, go to the client with a BackendKeyData the proxy
//     made up.
//  4. conn.go: the message loop. Sessions do not own warehouse
//     connections: one is acquired from the backend's pool when a
//     transaction starts (the first message that needs it) and released at
//     the ReadyForQuery that ends it, as pgbouncer's transaction pooling
//     does.
//
// # Relaying
//
// relay.go keeps, per session, the list of answers awaited from the
// warehouse, one entry per message sent. Entries let the proxy put its own
// messages into the stream at the right place (a ParseComplete for a
// statement already prepared on the connection, a CloseComplete for a
// client's Close of a statement) and drop answers to messages it added (a
// Parse re-preparing a statement on a connection that lacks it, a settings
// replay). On an error the warehouse skips to Sync, and so does the list.
//
// Session settings (SET, RESET, RESET ALL, DISCARD ALL, startup
// parameters) are followed through command tags and transaction ends, and
// replayed on whichever connection the session gets next. What cannot move
// between connections (LISTEN, session advisory locks, WITH HOLD cursors,
// temporary tables, SQL-level PREPARE, settings the proxy does not know)
// pins the session to its connection for the rest of its life.
//
// # Cancellation
//
// The client's CancelRequest carries the proxy's key; the proxy sends the
// warehouse a CancelRequest with the attached connection's key, holding
// the session's lock until the warehouse has taken it, so the signal
// cannot reach a connection that has passed to another session.
//
// # Counting and the admin console
//
// With Config.Observe set, every statement a client sends is reported once
// with its outcome (a hit, a miss, collapsed, stale, relayed, an error),
// its time, rule, shape and rows: from the read path when the cache
// answers, from the relay when the warehouse does. A session of an admin
// user (Config.Admin) to database "sqlcached" is the admin console: its
// simple-protocol statements go to Config.Admin, never to a warehouse.
//
// # Shutdown
//
// Shutdown closes the listeners, ends idle sessions with 57P01 at once,
// lets sessions inside a statement or transaction finish until its context
// is done, then closes the rest.
package proxy
