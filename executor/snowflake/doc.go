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
// internal/pgformat. Numbers come from the driver in its higher-precision
// mode (big.Int and big.Float instead of float64). A scaled NUMBER of more
// than 18 digits reaches the driver's big.Float divided in binary at the
// integer's own precision, which can round away its last digit in Arrow
// results: the exact decimal is recovered when only one decimal rounds to
// that big.Float, and Execute fails with ErrInexactNumber when two do
// (about a quarter of 24-digit values); it never answers a wrong digit.
// JSON results (the session parameter GO_QUERY_RESULT_FORMAT=json in the
// DSN) are exact.
package snowflake
