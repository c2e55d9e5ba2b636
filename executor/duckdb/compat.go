//go:build cgo

package duckdb

import (
	"embed"
	"path"
	"strings"

	"github.com/sqlcached/sqlcached/executor"
)

// The catalog queries psql and SQLAlchemy send, exactly as they send them,
// one file per query: "tool-what.variant.sql". Every file must have a
// rewriter named "tool-what" in rewriters.
//
//go:embed toolqueries/*.sql
var toolQueries embed.FS

// A rewriter turns a recognised tool query into the DuckDB query that
// answers it with the columns, in the order and of the types, the tool
// reads.
type rewriter func(q *toolQuery) (string, error)

// toolQuery is a recognised query and what it is asked for.
type toolQuery struct {
	name string // of the rewriter
	toks []token
	req  *executor.Request
}

// shapes maps the shape of each tool query to the rewriter's name.
var shapes = func() map[string]string {
	m := make(map[string]string)
	files, err := toolQueries.ReadDir("toolqueries")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		b, err := toolQueries.ReadFile(path.Join("toolqueries", f.Name()))
		if err != nil {
			panic(err)
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f.Name(), ".sql"), ".")
		if rewriters[name] == nil {
			panic("duckdb: no rewriter for " + f.Name())
		}
		toks, ok := lex(string(b))
		if !ok {
			panic("duckdb: cannot lex " + f.Name())
		}
		m[shapeOf(toks)] = name
	}
	return m
}()

// rewrite is the SQL that answers req on DuckDB: the DuckDB form of a
// recognised tool query, an error for other queries of PostgreSQL's
// catalog that DuckDB would answer wrongly or not at all, and req.SQL
// otherwise.
func rewrite(req *executor.Request) (string, error) {
	if !mayBeCatalog(req.SQL) {
		return req.SQL, nil
	}
	toks, ok := lex(req.SQL)
	if !ok {
		return req.SQL, nil
	}
	if name, ok := shapes[shapeOf(toks)]; ok {
		return rewriters[name](&toolQuery{name: name, toks: toks, req: req})
	}
	for _, t := range toks {
		if !t.lit && pgCatalogOnly[strings.TrimPrefix(t.text, "pg_catalog.")] {
			return "", notSupported("this query of PostgreSQL's catalog (%s)", t.text)
		}
	}
	return req.SQL, nil
}

// mayBeCatalog is a quick test that rules out most statements before they
// are lexed.
func mayBeCatalog(sql string) bool {
	lower := strings.ToLower(sql)
	for _, w := range []string{"pg_", "version", "current_schema", "show", "regclass", "regtype"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// pgCatalogOnly are the names of PostgreSQL's catalog that DuckDB lacks or
// fills in too partially for a tool to rely on: a query naming one, unless
// recognised, fails rather than answers wrongly.
var pgCatalogOnly = func() map[string]bool {
	m := make(map[string]bool)
	for _, n := range strings.Fields(`pg_class pg_namespace pg_attribute pg_type pg_index
		pg_constraint pg_attrdef pg_description pg_am pg_proc pg_depend pg_inherits pg_trigger
		pg_policy pg_roles pg_user pg_authid pg_database pg_sequence pg_encoding_to_char pg_enum pg_collation
		pg_statistic_ext pg_publication pg_rewrite pg_views pg_tables pg_indexes pg_matviews
		pg_stat_activity pg_settings pg_extension pg_foreign_table pg_partitioned_table
		regclass regtype regproc regnamespace format_type pg_get_expr pg_get_constraintdef
		pg_get_indexdef pg_get_viewdef pg_get_userbyid pg_table_is_visible pg_type_is_visible
		pg_get_serial_sequence pg_get_triggerdef pg_relation_size pg_total_relation_size`) {
		m[n] = true
	}
	return m
}()

// rewriters by name; see the files in toolqueries.
var rewriters = map[string]rewriter{
	"psql15-relations":                              psqlRelations,
	"psql15-lookup":                                 psqlLookup,
	"psql15-tableinfo":                              psqlTableInfo,
	"psql15-columns":                                psqlColumns,
	"psql15-indexes":                                psqlIndexes,
	"psql15-checks":                                 psqlChecks,
	"psql15-foreign-keys":                           psqlForeignKeys,
	"psql15-referenced-by":                          psqlReferencedBy,
	"psql15-policies":                               none("polname", "polpermissive", "array_to_string", "pg_get_expr", "pg_get_expr", "cmd"),
	"psql15-statistics":                             none("oid", "stxrelid", "nsp", "stxname", "columns", "ndist_enabled", "deps_enabled", "mcv_enabled", "stxstattarget"),
	"psql15-publications":                           none("pubname", "?column?", "?column?"),
	"psql15-triggers":                               none("tgname", "pg_get_triggerdef", "tgenabled", "tgisinternal", "parent"),
	"psql15-inherits":                               none("oid"),
	"psql15-partitions":                             none("oid", "relkind", "inhdetachpending", "pg_get_expr"),
	"psql15-sequence":                               psqlSequence,
	"psql15-sequence-owner":                         none("?column?", "deptype"),
	"psql15-databases":                              psqlDatabases,
	"psql15-schemas":                                psqlSchemas,
	"sqlalchemy14-hstore":                           none("oid BIGINT", "typarray BIGINT"),
	"sqlalchemy14-version":                          version,
	"sqlalchemy14-current-schema":                   fixed(`SELECT current_schema() AS current_schema`),
	"sqlalchemy14-show-isolation":                   fixed(`SELECT 'read committed' AS transaction_isolation`),
	"sqlalchemy14-show-standard-conforming-strings": fixed(`SELECT 'on' AS standard_conforming_strings`),
	"sqlalchemy14-relations":                        saRelations,
	"sqlalchemy14-has-table":                        saHasTable,
	"sqlalchemy14-table-oid":                        saTableOID,
	"sqlalchemy14-columns":                          saColumns,
	"sqlalchemy14-domains":                          none("name", "attype", "nullable BOOLEAN", "default", "visible BOOLEAN", "schema"),
	"sqlalchemy14-enums":                            saEnums,
	"sqlalchemy14-pk-columns":                       saPKColumns,
	"sqlalchemy14-pk-name":                          saPKName,
	"sqlalchemy14-foreign-keys":                     saForeignKeys,
	"sqlalchemy14-indexes":                          saIndexes,
	"sqlalchemy14-unique":                           saUnique,
	"sqlalchemy14-checks":                           saChecks,
	"sqlalchemy14-table-comment":                    saTableComment,
	"sqlalchemy14-schemas":                          saSchemas,
}

// none answers a query about something DuckDB does not have (policies,
// triggers, publications, ...) with no rows, in columns of these names:
// "name" or "name TYPE", VARCHAR by default.
func none(cols ...string) rewriter {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		name, typ, ok := strings.Cut(c, " ")
		if !ok {
			typ = "VARCHAR"
		}
		b.WriteString("NULL::" + typ + " AS ")
		b.WriteString(quoteIdent(name))
	}
	b.WriteString(" WHERE false")
	sql := b.String()
	return func(*toolQuery) (string, error) { return sql, nil }
}

func fixed(sql string) rewriter {
	return func(*toolQuery) (string, error) { return sql, nil }
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
