// Package snowflake is a Snowflake stand-in for tests: a small HTTP server
// that speaks enough of Snowflake's REST protocol for the real driver,
// github.com/snowflakedb/gosnowflake, to log in, run statements, fetch
// their results and cancel them, with an embedded DuckDB database doing
// the work.
//
// # The life of a statement
//
// The driver logs in (/session/v1/login-request) and gets a session
// token and the session's parameters (TIMEZONE is UTC). Each statement
// arrives at /queries/v1/query-request with its text, its bindings and
// its parameters (QUERY_TAG among them); the server records it (Queries),
// rewrites the few Snowflake spellings listed below, and runs it on DuckDB
// under a context that /queries/v1/abort-request, or the driver hanging
// up, cancels. The answer comes back the way Snowflake sends it: a rowtype
// describing each column, the first chunk of rows inline (an Arrow IPC
// stream in rowsetBase64, or a JSON rowset when JSON results are on) and
// the other chunks as URLs on this server that the driver fetches.
// Failures come back as Snowflake error responses, with a code, a
// SQLSTATE and a message, so the driver raises *gosnowflake.SnowflakeError.
//
// # Types
//
// DuckDB result columns map to Snowflake types as follows, and are
// encoded as Snowflake encodes them: numbers as scaled integers, in each
// chunk the narrowest of Int8, Int16, Int32 and Int64 that holds the
// chunk's values, else Decimal128, whatever the declared precision, with
// the scale in the field's metadata; times as scaled integers or
// epoch/fraction/timezone structs:
//
//	DECIMAL(p,s)                       NUMBER(p,s)  (FIXED)
//	HUGEINT, UBIGINT                   NUMBER(38,0)
//	BIGINT                             NUMBER(19,0)
//	INTEGER, SMALLINT, TINYINT, ...    NUMBER(10,0), NUMBER(5,0), NUMBER(3,0)
//	DOUBLE, FLOAT                      FLOAT        (REAL)
//	VARCHAR, UUID, ENUM                VARCHAR      (TEXT)
//	BOOLEAN, DATE                      BOOLEAN, DATE
//	TIME                               TIME(9)
//	TIMESTAMP (_S, _MS, _NS)           TIMESTAMP_NTZ(6) (0, 3, 9)
//	TIMESTAMPTZ                        TIMESTAMP_LTZ(6)
//	to_timestamp_tz(x)                 TIMESTAMP_TZ(6)
//	JSON                               VARIANT
//	STRUCT, MAP                        OBJECT
//	LIST, ARRAY                        ARRAY
//	BLOB                               BINARY
//
// VARIANT, OBJECT and ARRAY values are JSON text, objects with sorted keys
// and two-space indentation, as Snowflake prints them.
//
// # Snowflake spellings
//
// The server defines, in DuckDB, the functions parse_json(x) (DuckDB's
// json), to_timestamp_ntz(x), to_timestamp_ltz(x) and to_timestamp_tz(x),
// and the type names timestamp_ntz and timestamp_ltz. to_timestamp_tz is
// the way to ask for a TIMESTAMP_TZ column: it returns a struct that the
// server recognises, keeping the offset written at the end of a string
// argument ('2024-01-02 03:04:05 +05:30'; +00:00 when there is none). In
// statement text, `::VARIANT` becomes `::JSON` and the bind references
// `:1`, `:2` become DuckDB's `$1`, `$2`; `?` binds pass through.
// BEGIN, COMMIT, ROLLBACK, USE and ALTER SESSION succeed without doing
// anything: sessions share one DuckDB database and statements run on
// pooled DuckDB connections.
//
// The package needs cgo (DuckDB); without it only this documentation
// builds.
package snowflake
