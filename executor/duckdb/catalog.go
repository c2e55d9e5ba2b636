//go:build cgo

package duckdb

import (
	"fmt"
	"strconv"
	"strings"
)

// The rewriters of the tools' catalog queries: each answers from DuckDB's
// catalog functions (duckdb_tables(), duckdb_columns(), ...) in the
// columns the tool reads, named and typed as PostgreSQL answers them.

// version names DuckDB in a string that PostgreSQL's clients parse as a
// PostgreSQL 15 server's (SQLAlchemy reads the major and minor version).
func version(*toolQuery) (string, error) {
	return `SELECT 'PostgreSQL ` + ServerVersion + ` (sqlcached, DuckDB ' || library_version || ')' AS version FROM pragma_version()`, nil
}

// ServerVersion is the PostgreSQL version the DuckDB warehouse answers as,
// for the server_version parameter a PostgreSQL endpoint reports.
const ServerVersion = "15.0"

// rels is every relation of the current database, as pg_class has them:
// tables (r), views (v) and sequences (S).
const rels = `rels AS (
	SELECT table_oid AS oid, schema_name AS nspname, table_name AS relname, 'r' AS relkind,
		check_constraint_count AS relchecks, has_primary_key OR index_count > 0 AS relhasindex,
		temporary, comment
	FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal
	UNION ALL
	SELECT view_oid, schema_name, view_name, 'v', 0, false, temporary, comment
	FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
	UNION ALL
	SELECT sequence_oid, schema_name, sequence_name, 'S', 0, false, temporary, comment
	FROM duckdb_sequences() WHERE database_name = current_database())`

// visible is pg_table_is_visible on rels: DuckDB resolves unqualified
// names in the current schema.
const visible = `nspname = current_schema()`

// owner is whom relations are shown as owned by: DuckDB has no owners, so
// the user asking.
func (q *toolQuery) owner() string {
	if q.req.Login.User != "" {
		return quoteLiteral(q.req.Login.User)
	}
	return "current_user"
}

// oid is the relation OID the query names after frag, checked to be a
// number.
func (q *toolQuery) oid(frag string) (string, error) {
	s, ok := litAfter(q.toks, frag)
	if !ok {
		return "", notSupported("%s without a relation OID after %q", q.name, frag)
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", newError("22P02", "invalid input syntax for type oid: %q", s)
	}
	return s, nil
}

// relkinds is the SQL list of the relation kinds the query asks for.
func (q *toolQuery) relkinds(frag string) string {
	var kinds []string
	for _, k := range litsAfter(q.toks, frag) {
		if k != "" {
			kinds = append(kinds, quoteLiteral(k))
		}
	}
	if len(kinds) == 0 {
		return "NULL"
	}
	return strings.Join(kinds, ", ")
}

// filters are the conditions of psql's name patterns and visibility test.
func (q *toolQuery) filters() string {
	var where []string
	if p, ok := litAfter(q.toks, "c.relname OPERATOR(pg_catalog.~)"); ok {
		where = append(where, "regexp_matches(relname, "+quoteLiteral(p)+")")
	}
	if p, ok := litAfter(q.toks, "n.nspname OPERATOR(pg_catalog.~)"); ok {
		where = append(where, "regexp_matches(nspname, "+quoteLiteral(p)+")")
	}
	if find(q.toks, "pg_catalog.pg_table_is_visible(c.oid)") >= 0 {
		where = append(where, visible)
	}
	if len(where) == 0 {
		return ""
	}
	return " AND " + strings.Join(where, " AND ")
}

// psql's \d, \dt, \dv, \ds with or without patterns.
func psqlRelations(q *toolQuery) (string, error) {
	return `WITH ` + rels + `
SELECT nspname AS "Schema", relname AS "Name",
	CASE relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' END AS "Type",
	` + q.owner() + ` AS "Owner"
FROM rels WHERE relkind IN (` + q.relkinds("c.relkind IN (") + `)` + q.filters() + `
ORDER BY 1, 2`, nil
}

// psql's \d NAME: which relations NAME is.
func psqlLookup(q *toolQuery) (string, error) {
	return `WITH ` + rels + `
SELECT oid, nspname, relname FROM rels WHERE true` + q.filters() + `
ORDER BY 2, 3`, nil
}

// psql's \d NAME: what kind of relation it is and what to list about it.
// relhastriggers is set when foreign keys point from or to the table, as
// in PostgreSQL (where they are triggers): psql lists them only then. A
// view has a rule, as in PostgreSQL.
func psqlTableInfo(q *toolQuery) (string, error) {
	oid, err := q.oid("c.oid =")
	if err != nil {
		return "", err
	}
	return `WITH ` + rels + `
SELECT relchecks, relkind, relhasindex, relkind = 'v' AS relhasrules,
	EXISTS (SELECT 1 FROM duckdb_constraints() k WHERE k.constraint_type = 'FOREIGN KEY'
		AND k.database_name = current_database()
		AND (k.table_oid = r.oid OR k.referenced_table = r.relname AND k.schema_name = r.nspname)) AS relhastriggers,
	false AS relrowsecurity, false AS relforcerowsecurity, false AS relhasoids, false AS relispartition,
	'' AS "?column?", 0 AS reltablespace, '' AS reloftype,
	CASE WHEN temporary THEN 't' ELSE 'p' END AS relpersistence,
	CASE relkind WHEN 'r' THEN 'd' ELSE 'n' END AS relreplident,
	CASE relkind WHEN 'r' THEN 'heap' END AS amname
FROM rels r WHERE oid = ` + oid, nil
}

// pgType is the SQL expression of format_type for a DuckDB type name
// held in expr, naming the PostgreSQL type that Execute describes values
// of that DuckDB type with.
func pgType(expr string) string {
	base := `regexp_replace(` + expr + `, '(\[\d*\])+$', '')`
	var b strings.Builder
	b.WriteString(`(CASE WHEN ` + base + ` LIKE 'DECIMAL(%' THEN 'numeric' || substr(` + base + `, 8)`)
	b.WriteString(` WHEN ` + base + ` LIKE 'ENUM(%' THEN 'text'`)
	b.WriteString(` WHEN ` + base + ` LIKE 'STRUCT(%' OR ` + base + ` LIKE 'MAP(%' OR ` + base + ` LIKE 'UNION(%' THEN 'json'`)
	b.WriteString(` ELSE coalesce(CASE ` + base)
	for _, m := range pgTypeNames {
		fmt.Fprintf(&b, ` WHEN '%s' THEN '%s'`, m[0], m[1])
	}
	b.WriteString(` END, lower(` + base + `)) END || CASE WHEN ` + expr + ` LIKE '%]' THEN '[]' ELSE '' END)`)
	return b.String()
}

// pgTypeNames are format_type's names of the PostgreSQL types DuckDB's
// types are answered as.
var pgTypeNames = [][2]string{
	{"BOOLEAN", "boolean"},
	{"TINYINT", "smallint"}, {"UTINYINT", "smallint"}, {"SMALLINT", "smallint"},
	{"USMALLINT", "integer"}, {"INTEGER", "integer"},
	{"UINTEGER", "bigint"}, {"BIGINT", "bigint"},
	{"UBIGINT", "numeric"}, {"HUGEINT", "numeric"}, {"UHUGEINT", "numeric"}, {"BIGNUM", "numeric"},
	{"FLOAT", "real"}, {"DOUBLE", "double precision"},
	{"VARCHAR", "character varying"}, {"BLOB", "bytea"}, {"JSON", "json"},
	{"DATE", "date"}, {"TIME", "time without time zone"}, {"TIME WITH TIME ZONE", "time with time zone"},
	{"TIMESTAMP", "timestamp without time zone"}, {"TIMESTAMP_S", "timestamp without time zone"},
	{"TIMESTAMP_MS", "timestamp without time zone"}, {"TIMESTAMP_NS", "timestamp without time zone"},
	{"TIMESTAMP WITH TIME ZONE", "timestamp with time zone"},
	{"INTERVAL", "interval"}, {"UUID", "uuid"}, {"BIT", "bit varying"},
}

// psql's \d NAME: the columns.
func psqlColumns(q *toolQuery) (string, error) {
	oid, err := q.oid("a.attrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT column_name AS attname, ` + pgType("data_type") + ` AS format_type,
	column_default AS pg_get_expr, NOT is_nullable AS attnotnull, NULL::VARCHAR AS attcollation,
	'' AS attidentity, '' AS attgenerated
FROM duckdb_columns() WHERE table_oid = ` + oid + ` ORDER BY column_index`, nil
}

// The indexes of a table, primary key and unique constraints first, with
// PostgreSQL's CREATE INDEX form (DuckDB's indexes are ART indexes).
func psqlIndexes(q *toolQuery) (string, error) {
	oid, err := q.oid("c.oid =")
	if err != nil {
		return "", err
	}
	return `SELECT * FROM (
	SELECT constraint_name AS relname, constraint_type = 'PRIMARY KEY' AS indisprimary, true AS indisunique,
		false AS indisclustered, true AS indisvalid,
		'CREATE UNIQUE INDEX ' || constraint_name || ' ON ' || ` + qualified + ` ||
			' USING art (' || array_to_string(constraint_column_names, ', ') || ')' AS pg_get_indexdef,
		regexp_replace(constraint_text, '^(PRIMARY KEY|UNIQUE)\(', '\1 (') AS pg_get_constraintdef,
		CASE constraint_type WHEN 'PRIMARY KEY' THEN 'p' ELSE 'u' END AS contype,
		false AS condeferrable, false AS condeferred, false AS indisreplident, 0 AS reltablespace
	FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')
	UNION ALL
	SELECT index_name, false, is_unique, false, true,
		'CREATE ' || CASE WHEN is_unique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || index_name || ' ON ' ||
			` + qualified + ` || ' USING art ' || regexp_extract(sql, ' ON [^(]*(\(.*\))', 1),
		NULL, NULL, NULL, NULL, false, 0
	FROM duckdb_indexes() WHERE table_oid = ` + oid + `
) ORDER BY indisprimary DESC, relname`, nil
}

// qualified is a table name as pg_get_indexdef prints it: with its schema
// unless that is the current one.
const qualified = `CASE WHEN schema_name = current_schema() THEN '' ELSE schema_name || '.' END || table_name`

// checkDef is PostgreSQL's pg_get_constraintdef of a DuckDB CHECK
// constraint: CHECK (expr).
const checkDef = `'CHECK ' || CASE WHEN expression LIKE '(%' THEN expression ELSE '(' || expression || ')' END`

func psqlChecks(q *toolQuery) (string, error) {
	oid, err := q.oid("r.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT constraint_name AS conname, ` + checkDef + ` AS pg_get_constraintdef
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'CHECK' ORDER BY 1`, nil
}

func psqlForeignKeys(q *toolQuery) (string, error) {
	oid, err := q.oid("r.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT true AS sametable, constraint_name AS conname, constraint_text AS condef, table_name AS ontable
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'FOREIGN KEY' ORDER BY conname`, nil
}

func psqlReferencedBy(q *toolQuery) (string, error) {
	oid, err := q.oid("pg_catalog.pg_partition_ancestors(")
	if err != nil {
		return "", err
	}
	return `WITH ` + rels + `
SELECT k.constraint_name AS conname, k.table_name AS ontable, k.constraint_text AS condef
FROM duckdb_constraints() k JOIN rels r ON k.referenced_table = r.relname AND k.schema_name = r.nspname
WHERE r.oid = ` + oid + ` AND k.constraint_type = 'FOREIGN KEY' AND k.database_name = current_database()
ORDER BY conname`, nil
}

func psqlSequence(q *toolQuery) (string, error) {
	oid, err := q.oid("seqrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT 'bigint' AS "Type", start_value AS "Start", min_value AS "Minimum", max_value AS "Maximum",
	increment_by AS "Increment", CASE WHEN cycle THEN 'yes' ELSE 'no' END AS "Cycles?", 1 AS "Cache"
FROM duckdb_sequences() WHERE sequence_oid = ` + oid, nil
}

// psql's \l: DuckDB's attached databases.
func psqlDatabases(q *toolQuery) (string, error) {
	return `SELECT database_name AS "Name", ` + q.owner() + ` AS "Owner", 'UTF8' AS "Encoding",
	'C' AS "Collate", 'C' AS "Ctype", NULL::VARCHAR AS "ICU Locale", 'libc' AS "Locale Provider",
	NULL::VARCHAR AS "Access privileges"
FROM duckdb_databases() WHERE NOT internal ORDER BY 1`, nil
}

// psql's \dn.
func psqlSchemas(q *toolQuery) (string, error) {
	return `SELECT DISTINCT schema_name AS "Name", ` + q.owner() + ` AS "Owner"
FROM duckdb_schemas() WHERE database_name = current_database()
	AND NOT regexp_matches(schema_name, '^pg_') AND schema_name <> 'information_schema'
ORDER BY 1`, nil
}

// SQLAlchemy's get_table_names and get_view_names.
func saRelations(q *toolQuery) (string, error) {
	schema, ok := litAfter(q.toks, "n.nspname =")
	if !ok {
		return "", notSupported("%s without a schema", q.name)
	}
	return `WITH ` + rels + `
SELECT relname FROM rels WHERE nspname = ` + quoteLiteral(schema) + ` AND relkind IN (` + q.relkinds("c.relkind in (") + `)`, nil
}

// schemaOrVisible is SQLAlchemy's choice between a named schema and the
// visible relations.
func (q *toolQuery) schemaOrVisible() string {
	if s, ok := litAfter(q.toks, "n.nspname ="); ok {
		return "nspname = " + quoteLiteral(s)
	}
	return visible
}

func saHasTable(q *toolQuery) (string, error) {
	name, ok := litAfter(q.toks, "relname =")
	if !ok {
		return "", notSupported("%s without a name", q.name)
	}
	return `WITH ` + rels + `
SELECT relname FROM rels WHERE ` + q.schemaOrVisible() + ` AND relname = ` + quoteLiteral(name), nil
}

func saTableOID(q *toolQuery) (string, error) {
	name, ok := litAfter(q.toks, "c.relname =")
	if !ok {
		return "", notSupported("%s without a name", q.name)
	}
	return `WITH ` + rels + `
SELECT oid FROM rels WHERE ` + q.schemaOrVisible() + ` AND relname = ` + quoteLiteral(name) +
		` AND relkind IN (` + q.relkinds("c.relkind in (") + `)`, nil
}

func saColumns(q *toolQuery) (string, error) {
	oid, err := q.oid("a.attrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT column_name AS attname, ` + pgType("data_type") + ` AS format_type,
	column_default AS "default", NOT is_nullable AS attnotnull, table_oid, comment,
	'' AS generated, NULL::MAP(VARCHAR, VARCHAR) AS identity_options
FROM duckdb_columns() WHERE table_oid = ` + oid + ` ORDER BY column_index`, nil
}

func saEnums(q *toolQuery) (string, error) {
	return `SELECT name, visible, schema, label FROM (
	SELECT type_name AS name, schema_name = current_schema() AS visible, schema_name AS schema,
		unnest(labels) AS label, unnest(range(len(labels))) AS i
	FROM duckdb_types() WHERE database_name = current_database() AND NOT internal AND logical_type = 'ENUM'
) ORDER BY schema, name, i`, nil
}

func saPKColumns(q *toolQuery) (string, error) {
	oid, err := q.oid("ix.indrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT unnest(constraint_column_names) AS attname
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'PRIMARY KEY'`, nil
}

func saPKName(q *toolQuery) (string, error) {
	oid, err := q.oid("r.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT constraint_name AS conname
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'PRIMARY KEY' ORDER BY 1`, nil
}

func saForeignKeys(q *toolQuery) (string, error) {
	oid, err := q.oid("r.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT constraint_name AS conname, constraint_text AS condef, schema_name AS conschema
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'FOREIGN KEY' ORDER BY 1`, nil
}

// SQLAlchemy's get_indexes: a row per index and column, with the index's
// column numbers as a space-separated list; an index on an expression has
// indexprs set (SQLAlchemy skips it). Unique constraints are listed too,
// with conrelid set, as PostgreSQL lists their indexes.
func saIndexes(q *toolQuery) (string, error) {
	oid, err := q.oid("t.oid =")
	if err != nil {
		return "", err
	}
	return `WITH ix AS (
	SELECT index_name, is_unique, table_oid, NULL::BIGINT AS conrelid,
		unnest(expressions::VARCHAR[]) AS e, generate_subscripts(expressions::VARCHAR[], 1) AS pos
	FROM duckdb_indexes() WHERE table_oid = ` + oid + ` AND NOT is_primary
	UNION ALL
	SELECT constraint_name, true, table_oid, table_oid, unnest(constraint_column_names),
		generate_subscripts(constraint_column_names, 1)
	FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'UNIQUE'
), k AS (
	SELECT ix.*, c.column_name, c.column_index
	FROM ix LEFT JOIN duckdb_columns() c ON c.table_oid = ix.table_oid AND c.column_name = ix.e
), keys AS (
	SELECT index_name, string_agg(coalesce(column_index, 0)::VARCHAR, ' ' ORDER BY pos) AS indkey,
		bool_or(column_name IS NULL) AS hasexpr, count(*) AS n
	FROM k GROUP BY index_name
)
SELECT k.index_name AS relname, k.is_unique AS indisunique,
	CASE WHEN keys.hasexpr THEN 'expression' END AS indexprs,
	k.column_name AS attname, k.column_index AS attnum, k.conrelid, keys.indkey AS indkey,
	trim(repeat('0 ', keys.n::INTEGER)) AS indoption, NULL::VARCHAR[] AS reloptions, 'art' AS amname,
	NULL::VARCHAR AS pg_get_expr, keys.n AS indnkeyatts
FROM k JOIN keys USING (index_name)
ORDER BY relname, pos`, nil
}

func saUnique(q *toolQuery) (string, error) {
	oid, err := q.oid("cons.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT constraint_name AS name, list_transform(constraint_column_indexes, lambda i: (i + 1)::INTEGER) AS key,
	(unnest(constraint_column_indexes) + 1)::INTEGER AS col_num, unnest(constraint_column_names) AS col_name
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'UNIQUE'`, nil
}

func saChecks(q *toolQuery) (string, error) {
	oid, err := q.oid("cons.conrelid =")
	if err != nil {
		return "", err
	}
	return `SELECT constraint_name AS name, ` + checkDef + ` AS src
FROM duckdb_constraints() WHERE table_oid = ` + oid + ` AND constraint_type = 'CHECK'`, nil
}

func saTableComment(q *toolQuery) (string, error) {
	oid, err := q.oid("pgd.objoid =")
	if err != nil {
		return "", err
	}
	return `WITH ` + rels + `
SELECT comment AS table_comment FROM rels WHERE oid = ` + oid + ` AND comment IS NOT NULL`, nil
}

func saSchemas(q *toolQuery) (string, error) {
	return `SELECT DISTINCT schema_name AS nspname FROM duckdb_schemas()
WHERE database_name IN (current_database(), 'system') AND NOT starts_with(schema_name, 'pg_')
ORDER BY nspname`, nil
}
