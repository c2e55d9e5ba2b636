//go:build cgo

package duckdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// toolSchema is created in DuckDB and in PostgreSQL alike. It keeps to what
// both print the same way: varchar without a length, a check without an
// implicit cast.
const toolSchema = `
create table customers (id integer primary key, name varchar not null, email varchar unique);
create table orders (id bigint primary key, customer_id integer not null references customers(id) check (customer_id > 0),
	amount numeric(12,2) not null, note varchar, status varchar, created_at timestamp default now(),
	paid boolean, unique (note, status));
create index orders_customer on orders(customer_id);
create view big_orders as select * from orders where amount > 100;
create sequence seq1;
`

// capturedOIDs are the relations the OIDs in the captured tool queries
// named on the server they were captured from.
var capturedOIDs = map[string]string{"16384": "customers", "16389": "orders", "16411": "seq1", "16412": "orders"}

// duckNames are DuckDB's names for the constraints PostgreSQL names
// otherwise: a tool shows them but does not depend on them.
var duckNames = strings.NewReplacer(
	"customers_id_pkey", "customers_pkey",
	"orders_id_pkey", "orders_pkey",
	"orders_customer_id_id_fkey", "orders_customer_id_fkey",
)

type toolAnswer struct {
	names []string
	oids  []uint32
	rows  [][]string
}

// TestToolQueriesAnswerAsPostgreSQL runs every captured psql 15 and
// SQLAlchemy 1.4 catalog query through Execute, and the same query on
// PostgreSQL 15 over the same schema, and compares the answers where the
// tools could tell them apart: the same rows (with DuckDB's main for public,
// ART for btree, OIDs as the relations they name), and for SQLAlchemy, which
// reads some answers by column name and converts by type, the same column
// names and kinds of type.
func TestToolQueriesAnswerAsPostgreSQL(t *testing.T) {
	ctx := context.Background()
	pg := testenv.SharedPostgreSQL(t)
	dbName := pg.NewDatabase(t)
	pg.Exec(t, dbName, toolSchema)
	pgc, err := pgconn.Connect(ctx, pg.DSN(dbName))
	if err != nil {
		t.Fatal(err)
	}
	defer pgc.Close(ctx)
	duck := open(t)
	if err := duck.Exec(ctx, toolSchema); err != nil {
		t.Fatal(err)
	}

	pgOIDs := oidsOf(t, func(rel string) string {
		return pgAnswer(t, pgc, `select oid from pg_class where relname = '`+rel+`'`).rows[0][0]
	})
	duckOIDs := oidsOf(t, func(rel string) string {
		var oid string
		err := duck.db.QueryRowContext(ctx, `select coalesce((select table_oid from duckdb_tables() where table_name = $1),
			(select view_oid from duckdb_views() where view_name = $1), (select sequence_oid from duckdb_sequences() where sequence_name = $1))::varchar`, rel).Scan(&oid)
		if err != nil {
			t.Fatal(err)
		}
		return oid
	})

	files, err := filepath.Glob("toolqueries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no tool queries: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if strings.HasPrefix(name, "sqlalchemy14-version") || name == "psql15-databases.sql" {
			continue // TestVersion, TestDatabases: the servers differ there
		}
		// psql's \d NAME flow runs for each table.
		targets := []string{""}
		if strings.Contains(string(b), "16389") {
			targets = []string{"orders", "customers", "big_orders"}
		}
		for _, target := range targets {
			sql := string(b)
			pgSQL, duckSQL := sql, strings.NewReplacer("'public'", "'main'", "^(public)$", "^(main)$").Replace(sql)
			for captured, rel := range capturedOIDs {
				if target != "" && captured == "16389" {
					rel = target
				}
				pgSQL = strings.ReplaceAll(pgSQL, captured, pgOIDs[rel])
				duckSQL = strings.ReplaceAll(duckSQL, captured, duckOIDs[rel])
			}
			want := normalise(pgAnswer(t, pgc, pgSQL), pgOIDs, true)
			got := normalise(duckAnswer(t, duck, duckSQL), duckOIDs, false)
			what := name + " " + target
			if !slices.EqualFunc(got.rows, want.rows, slices.Equal) {
				t.Errorf("%s:\n got  %q\n want %q", what, got.rows, want.rows)
			}
			if len(got.names) != len(want.names) {
				t.Errorf("%s: columns %q, want %q", what, got.names, want.names)
				continue
			}
			if !strings.HasPrefix(name, "sqlalchemy") {
				continue
			}
			for i := range got.names {
				if got.names[i] != want.names[i] || typeKind(got.oids[i]) != typeKind(want.oids[i]) {
					t.Errorf("%s: column %d is %s (oid %d), want %s (oid %d)", what, i, got.names[i], got.oids[i], want.names[i], want.oids[i])
				}
			}
		}
	}
}

// oidsOf maps the relations of toolSchema to their OIDs, and back.
func oidsOf(t *testing.T, oidOf func(rel string) string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	for _, rel := range []string{"customers", "orders", "seq1", "big_orders"} {
		oid := oidOf(rel)
		m[rel], m[oid] = oid, rel
	}
	return m
}

func pgAnswer(t *testing.T, c *pgconn.PgConn, sql string) toolAnswer {
	t.Helper()
	mrr := c.Exec(context.Background(), sql)
	var a toolAnswer
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		for _, f := range rr.FieldDescriptions() {
			a.names = append(a.names, f.Name)
			a.oids = append(a.oids, f.DataTypeOID)
		}
		for rr.NextRow() {
			row := make([]string, len(rr.Values()))
			for i, v := range rr.Values() {
				row[i] = "NULL"
				if v != nil {
					row[i] = string(v)
				}
			}
			a.rows = append(a.rows, row)
		}
		if _, err := rr.Close(); err != nil {
			t.Fatalf("PostgreSQL: %s: %v", sql, err)
		}
	}
	if err := mrr.Close(); err != nil {
		t.Fatalf("PostgreSQL: %s: %v", sql, err)
	}
	return a
}

func duckAnswer(t *testing.T, db *DB, sql string) toolAnswer {
	t.Helper()
	res, err := db.Execute(context.Background(), &executor.Request{SQL: sql, Login: executor.Login{User: testenv.SuperUser}})
	if err != nil {
		t.Fatalf("DuckDB: %s: %v", sql, err)
	}
	d := decode(t, res.Wire)
	var a toolAnswer
	for _, f := range d.fields {
		a.names = append(a.names, string(f.Name))
		a.oids = append(a.oids, f.DataTypeOID)
	}
	for _, r := range d.rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = "NULL"
			if v != nil {
				row[i] = *v
			}
		}
		a.rows = append(a.rows, row)
	}
	return a
}

// normalise puts an answer in the terms both sides share, its rows sorted.
// PostgreSQL's own objects (pg_stat_statements of the test server, the
// domains of information_schema) are left out.
func normalise(a toolAnswer, oids map[string]string, pg bool) toolAnswer {
	a.rows = slices.DeleteFunc(a.rows, func(row []string) bool {
		return pg && slices.ContainsFunc(row, func(v string) bool {
			return strings.HasPrefix(v, "pg_stat_statements") || v == "information_schema" && len(row) == 6
		})
	})
	for _, row := range a.rows {
		for i, v := range row {
			if rel, ok := oids[v]; ok && !strings.ContainsAny(rel, "0123456789") {
				v = "oid:" + rel
			}
			if pg {
				v = strings.NewReplacer("public", "main", "btree", "art", "pg_database_owner", testenv.SuperUser).Replace(v)
			} else {
				v = duckNames.Replace(v)
			}
			row[i] = v
		}
	}
	slices.SortFunc(a.rows, func(x, y []string) int { return slices.Compare(x, y) })
	return a
}

// typeKind is what psycopg2 turns a value of the type oid into.
func typeKind(oid uint32) string {
	switch oid {
	case 16:
		return "bool"
	case 20, 21, 23, 26:
		return "int"
	case 1005, 1007, 1016, 22:
		return "int[]"
	case 25, 19, 1043, 18, 1042, 194:
		return "str"
	case 114, 3802:
		return "json"
	}
	return fmt.Sprint("oid ", oid)
}

func TestVersion(t *testing.T) {
	db := open(t)
	// SQLAlchemy 1.4's _get_server_version_info.
	re := regexp.MustCompile(`.*(?:PostgreSQL|EnterpriseDB) (\d+)\.?(\d+)?(?:\.(\d+))?(?:\.\d+)?(?:devel|beta)?`)
	for _, sql := range []string{"select pg_catalog.version()", "select version()", "SELECT VERSION();", "Select Version()"} {
		a := query(t, db, sql)
		v := *a.rows[0][0]
		m := re.FindStringSubmatch(v)
		if string(a.fields[0].Name) != "version" || m == nil || m[1] != "15" || !strings.Contains(v, "DuckDB v") {
			t.Errorf("%s: %q (column %s)", sql, v, a.fields[0].Name)
		}
	}
}

func TestUnknownCatalogQueriesFail(t *testing.T) {
	db := open(t)
	for _, sql := range []string{
		`select relname, reltuples from pg_class where relkind = 'r'`,
		`select 'orders'::regclass::oid`,
		`select pg_catalog.format_type(23, -1)`,
		// psql's \d+ orders asks for more columns than \d.
		`SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attstorage FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16389'`,
	} {
		_, err := db.Execute(context.Background(), &executor.Request{SQL: sql})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "not supported by the DuckDB warehouse") {
			t.Errorf("%s: got %v, want 0A000", sql, err)
		}
	}
	// Queries that merely mention such names in strings or identifiers of
	// their own run as sent.
	for _, sql := range []string{`select 'pg_class' as name`, `select 1 as version`, `select current_schema()`} {
		query(t, db, sql)
	}
}

// TestToolQueriesAreRecognisedByShape checks that the recognition does not
// depend on the exact bytes: whitespace, case, comments and the literals
// may change.
func TestToolQueriesAreRecognisedByShape(t *testing.T) {
	db := open(t)
	if err := db.Exec(context.Background(), toolSchema); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"SELECT   c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n\tWHERE n.nspname = 'main' AND c.relkind IN ('r','p') -- tables",
		"select C.RELNAME from PG_CLASS c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'main' and c.relkind in ('r', 'p', 'f');",
	} {
		a := query(t, db, sql)
		if len(a.rows) != 2 || *a.rows[0][0] != "customers" && *a.rows[0][0] != "orders" {
			t.Errorf("%s: %d rows", sql, len(a.rows))
		}
	}
	// Describe sees the rewritten query too.
	desc, err := db.Describe(context.Background(), &executor.Request{SQL: "select pg_catalog.version()"})
	if err != nil || desc.Fields == nil {
		t.Fatalf("describe version(): %v", err)
	}
}

// TestDatabases checks psql's \l: DuckDB's databases, in the columns psql
// 15 prints.
func TestDatabases(t *testing.T) {
	db := open(t)
	b, err := os.ReadFile("toolqueries/psql15-databases.sql")
	if err != nil {
		t.Fatal(err)
	}
	a := query(t, db, string(b))
	if len(a.fields) != 8 || len(a.rows) != 1 || *a.rows[0][0] != "memory" || *a.rows[0][2] != "UTF8" {
		t.Fatalf("got %d columns, %d rows", len(a.fields), len(a.rows))
	}
}

func TestLex(t *testing.T) {
	toks, ok := lex("SELECT E'a\\nb''c', 'x''y' /* c */ , \"Q\"\"q\" -- d\n FROM t WHERE a IN (1, 2.5) AND b !~ '^pg_';")
	if !ok {
		t.Fatal("not lexed")
	}
	var got []string
	for _, tk := range toks {
		if tk.lit {
			got = append(got, "<"+tk.text+">")
		} else {
			got = append(got, tk.text)
		}
	}
	want := []string{"select", "<a\nb'c>", ",", "<x'y>", ",", `"Q""q"`, "from", "t", "where", "a", "in", "(", "<1>", ",", "<2.5>", ")", "and", "b", "!~", "<^pg_>"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if s := shapeOf(toks); s != `select ? , ? , "Q""q" from t where a in ( ?s ) and b !~ ?` {
		t.Errorf("shape %q", s)
	}
	for _, bad := range []string{"select 'x", "select /* x", `select "x`, "select U&'x'", "select E'x"} {
		if _, ok := lex(bad); ok {
			t.Errorf("%q lexed", bad)
		}
	}
}
