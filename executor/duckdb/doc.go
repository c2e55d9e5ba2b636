// Package duckdb runs statements on an embedded DuckDB database and hands
// back their answers in the PostgreSQL wire form the proxy stores and
// serves (executor.Warehouse).
//
// Answers are in PostgreSQL's text format, with the PostgreSQL type OIDs a
// PostgreSQL server would describe them with: DuckDB's integers, decimals,
// floats, strings, booleans, dates and times, intervals, UUIDs and blobs map
// to their PostgreSQL counterparts, lists to arrays, and structs, maps,
// unions and JSON to json.
//
// The package needs cgo; without it only this documentation builds.
package duckdb
