// Package snowflake runs statements on Snowflake through the gosnowflake
// driver and hands back their answers in the PostgreSQL wire form the
// proxy stores and serves (executor.Warehouse, executor.Describer).
//
// A request becomes one driver call on a pooled connection (a Snowflake
// session): the statement, with PostgreSQL's $1, $2 parameter references
// rewritten to Snowflake's :1, :2 and the parameters bound as text, runs
// under the request's context, so a deadline or cancellation makes the
// driver abort it on Snowflake. Session settings never touch the pooled
// sessions: the dashboard label (Request.Dashboard, else the setting
// sqlcached.dashboard) travels as the statement's QUERY_TAG, and the
// setting TimeZone decides the zone TIMESTAMP_LTZ and TIMESTAMP_TZ values
// are printed in, here rather than on Snowflake (the driver has no
// per-statement TIMEZONE). Other settings are ignored.
//
// Answers are in PostgreSQL's text format with PostgreSQL type OIDs:
//
//	NUMBER(p,0), p <= 18     int8
//	NUMBER(p,s), otherwise   numeric(p,s), exactly s digits after the point
//	FLOAT                    float8, the shortest text that reads back the same
//	VARCHAR                  text
//	BOOLEAN                  bool
//	DATE, TIME               date, time
//	TIMESTAMP_NTZ            timestamp
//	TIMESTAMP_LTZ, _TZ       timestamptz, in the session's TimeZone
//	VARIANT, OBJECT, ARRAY   json, the text Snowflake sends
//	BINARY                   bytea, hex
//
// Times keep microseconds, as PostgreSQL's do (Snowflake's nanoseconds are
// rounded). Binary result formats are derived from the text answer with
// internal/pgformat.
//
// A statement that returns rows runs through the driver's own connection
// with its Arrow batches on (arrow.go): Arrow results arrive as the records
// Snowflake sent, and each column is printed from Snowflake's encoding —
// a NUMBER from its scaled integer (Int8 to Int64, or Decimal128 beyond
// int64) and the scale, so NUMBER(38,s) is exact; timestamps from their
// epoch integers or structs; TIME from its scaled integer. The driver's
// Go values, which turn scaled NUMBERs into binary floats, are used only
// when Snowflake answers in JSON (the session parameter
// GO_QUERY_RESULT_FORMAT=json, or statements Snowflake always answers in
// JSON): the driver parses those NUMBERs into 127-bit floats, from which
// the decimal is recovered exactly up to an unscaled 2^126, and Execute
// fails with ErrInexactNumber beyond it rather than answer a wrong digit.
// Statements without rows go through database/sql.
//
// The driver's Arrow batches cast TIME columns to time64; Snowflake sends
// TIME(0) to TIME(4) as Int32, which that cast rejects, so such a column
// in an Arrow result fails the statement (TIME and TIME(9), the default,
// are Int64 and work).
package snowflake
