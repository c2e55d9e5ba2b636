// Package duckdb runs statements on an embedded DuckDB database and hands
// back their answers in the PostgreSQL wire form the proxy stores and
// serves (executor.Warehouse, executor.Describer), so that psql, pgx and
// SQLAlchemy can talk to DuckDB through a PostgreSQL endpoint.
//
// # The life of a request
//
// Execute takes one statement. Settings are applied first (settings.go),
// then the text is checked against the catalog queries of the tools
// (compat.go) and, if it is one, replaced by the DuckDB query that answers
// it (catalog.go). The statement is prepared on a connection of the pool, its
// parameters decoded and bound (params.go), and run; the rows are encoded
// as they are read, each column in the format the request asks for
// (types.go for text, binary.go for binary), behind a RowDescription with
// the PostgreSQL type OIDs. When the context ends, DuckDB is interrupted.
// Describe (describe.go) does the same up to the prepare and answers from
// the prepared statement without running it.
//
// # Types
//
// DuckDB's integers, decimals, floats, strings, booleans, dates and times,
// intervals, UUIDs and blobs map to their PostgreSQL counterparts (UBIGINT
// and HUGEINT to numeric), lists to arrays, and structs, maps, unions and
// JSON to json. Every one has PostgreSQL's text form. The binary form
// (ResultFormats 1, one code for all columns or one per column) covers
// int2, int4, int8, numeric (with DuckDB's exact scale), float4, float8,
// text, bool, date, time, timetz, timestamp, timestamptz, interval, uuid,
// bytea, varbit, json and arrays of these; asked of GEOMETRY, of a type this
// package does not know, or of a list of lists of different lengths, binary
// fails with 0A000 naming the type.
//
// # Parameters
//
// Binary parameters of the same types are decoded by their OID; one of an
// OID without a decoder fails with 0A000, malformed data with 22P03. Text
// parameters are passed as strings, which DuckDB casts to the type it
// inferred for the parameter, so `where id = $1` compares as an integer.
// Where DuckDB cannot infer one (`$1 + 1`), a text parameter whose OID
// names an integer, float, bool, date or timestamp type is converted to
// it first; a numeric one then binds as an integer or a double, since
// DuckDB takes no decimal of unknown scale. A Bind with the wrong number
// of parameters fails with 08P01, as on PostgreSQL.
//
// # Settings
//
// TimeZone is applied to the DuckDB connection for the run and put back
// after it: DuckDB computes in the zone (casts, date_trunc) and
// timestamptz values are printed in it as PostgreSQL prints them
// ('2024-01-02 04:04:05+01'); without it DuckDB computes and prints in
// UTC, the database's zone. Only IANA zone names are taken. The other settings are ignored: answers are
// always in DateStyle ISO, IntervalStyle postgres, bytea_output hex and
// extra_float_digits 1 (the shortest exact float), which are PostgreSQL's
// defaults and what psql, pgx and psycopg2 use; search_path does not
// change where DuckDB looks for tables.
//
// # What psql and SQLAlchemy ask about the catalog
//
// DuckDB's pg_catalog is partial, and the queries these tools send about
// tables and columns fail on it or answer wrongly. The queries of psql 15
// (\d, \dt, \dv, \ds with and without patterns, \d NAME for tables, views
// and sequences, \dn) and of SQLAlchemy 1.4's PostgreSQL dialect (connect:
// version(), current_schema(), SHOW transaction isolation level and
// standard_conforming_strings, the hstore probe; the inspector's table,
// view and schema names, has_table, columns, primary key, foreign keys,
// indexes, unique and check constraints, table comment, enums, domains)
// are kept, exactly as captured, in toolqueries/. A statement is
// recognised by its shape: its tokens, with keywords lower-cased,
// whitespace and comments dropped, literals and lists of literals
// replaced by placeholders. A recognised query is rewritten into a query
// of duckdb_tables(), duckdb_columns(), duckdb_constraints() and the like,
// with the columns, in the order and of the types the tool reads, and
// PostgreSQL's type names (integer, numeric(12,2), character varying,
// timestamp without time zone). Tables, views and sequences are pg_class's
// relations r, v and S with DuckDB's OIDs; indexes are shown as ART
// indexes; DuckDB has no owners, so the user asking owns everything; a
// relation is visible when it is in the current schema. Other queries that
// name PostgreSQL's catalog (pg_class, pg_attribute, regclass,
// format_type, ...) fail with 0A000 ("... is not supported by the DuckDB
// warehouse") rather than answer wrongly.
//
// version() answers "PostgreSQL 15.0 (sqlcached, DuckDB vX.Y.Z)", which
// SQLAlchemy parses as PostgreSQL 15; the endpoint should report
// ServerVersion as server_version, since psql picks its queries by it.
//
// The package needs cgo; without it only this documentation builds.
package duckdb
