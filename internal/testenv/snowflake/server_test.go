//go:build cgo

package snowflake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snowflakedb/gosnowflake"
)

// open starts a server and connects the real driver to it.
func open(t *testing.T, opts Options) (*Server, *sql.DB) {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("snowflake", s.DSN("tester", "secret", "TESTDB"))
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, db
}

func TestLoginAndPing(t *testing.T) {
	t.Parallel()
	s, db := open(t, Options{})
	if err := db.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	qs := s.Queries()
	if len(qs) != 1 || qs[0].SQL != "SELECT 1" || qs[0].Err != "" {
		t.Fatalf("Queries() = %+v, want the driver's SELECT 1", qs)
	}
}

// typesSQL selects one value of every Snowflake type the server sends.
const typesSQL = `select 12345::DECIMAL(18,0) n0, 123.45::DECIMAL(10,2) n2,
	12345678901234567890123::DECIMAL(38,0) nbig, -1234567890123456789012.345::DECIMAL(38,3) nbigs,
	1.5::DOUBLE f, 'héllo' s, true b, DATE '2024-01-02' d, TIME '03:04:05.123456' t,
	TIMESTAMP '2024-01-02 03:04:05.123456' ntz, '2024-01-02 03:04:05.123456789'::TIMESTAMP_NS ntz9,
	TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' ltz,
	to_timestamp_tz('2024-01-02 03:04:05.123456 +05:30') tz,
	parse_json('{"b":1,"a":[1,2]}') v, {'x': 1, 'y': 'z'} o, [1, 2] a, '\xAB\x01'::BLOB bin,
	NULL::INTEGER nul`

func wantTypes(json bool) []any {
	tz := time.FixedZone("", 5*3600+1800)
	want := []any{
		"12345", "123.45", "12345678901234567890123", "-1234567890123456789012.345",
		1.5, "héllo", true,
		time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, tz),
		"{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": 1\n}",
		"{\n  \"x\": 1,\n  \"y\": \"z\"\n}",
		"[\n  1,\n  2\n]",
		[]byte{0xAB, 0x01},
		nil,
	}
	if json {
		// The driver hands JSON floats and booleans over as the text
		// Snowflake sent.
		want[4], want[6] = "1.5", "1"
	}
	return want
}

var wantTypeNames = []string{"FIXED", "FIXED", "FIXED", "FIXED", "REAL", "TEXT", "BOOLEAN", "DATE", "TIME",
	"TIMESTAMP_NTZ", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ", "VARIANT", "OBJECT", "ARRAY", "BINARY", "FIXED"}

func TestTypes(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			_, db := open(t, Options{JSON: json})
			rows, err := db.Query(typesSQL)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			types, _ := rows.ColumnTypes()
			for i, ct := range types {
				if ct.DatabaseTypeName() != wantTypeNames[i] {
					t.Errorf("column %s: type %s, want %s", ct.Name(), ct.DatabaseTypeName(), wantTypeNames[i])
				}
			}
			if p, s, _ := types[1].DecimalSize(); p != 10 || s != 2 {
				t.Errorf("n2: DecimalSize %d,%d, want 10,2", p, s)
			}
			got := scanOne(t, rows, len(types))
			for i, w := range wantTypes(json) {
				if !same(got[i], w) {
					t.Errorf("column %s: got %T %#v, want %T %#v", types[i].Name(), got[i], got[i], w, w)
				}
			}
		})
	}
}

func scanOne(t *testing.T, rows *sql.Rows, n int) []any {
	t.Helper()
	if !rows.Next() {
		t.Fatalf("no row: %v", rows.Err())
	}
	got := make([]any, n)
	ptrs := make([]any, n)
	for i := range got {
		ptrs[i] = &got[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return got
}

// same compares times as instants with the same UTC offset.
func same(got, want any) bool {
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		if !ok || !g.Equal(w) {
			return false
		}
		_, go_ := g.Zone()
		_, wo := w.Zone()
		return go_ == wo
	}
	return reflect.DeepEqual(got, want)
}

func TestChunkedResultArrivesWhole(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			s, db := open(t, Options{ChunkRows: 7, JSON: json})
			rows, err := db.Query(`select i, 'row ' || i from range(1000) t(i) order by i`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var i int64
				var s string
				if err := rows.Scan(&i, &s); err != nil {
					t.Fatal(err)
				}
				if i != int64(n) || s != fmt.Sprintf("row %d", n) {
					t.Fatalf("row %d: got %d %q", n, i, s)
				}
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != 1000 {
				t.Fatalf("got %d rows, want 1000", n)
			}
			if got := s.served.Load(); got != 142 {
				t.Errorf("chunks fetched: %d, want 142", got)
			}
		})
	}
}

func TestErrorCarriesSQLState(t *testing.T) {
	t.Parallel()
	_, db := open(t, Options{})
	for _, c := range []struct{ sql, state string }{
		{"select * from no_such_table", "42S02"},
		{"selec 1", "42000"},
	} {
		_, err := db.Query(c.sql)
		var se *gosnowflake.SnowflakeError
		if !errors.As(err, &se) {
			t.Fatalf("%s: got %T %v, want a *gosnowflake.SnowflakeError", c.sql, err, err)
		}
		if se.SQLState != c.state || se.Message == "" {
			t.Errorf("%s: SQLSTATE %q message %q, want %q", c.sql, se.SQLState, se.Message, c.state)
		}
	}
}

func TestCancelStopsTheStatement(t *testing.T) {
	t.Parallel()
	s, db := open(t, Options{})
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.QueryContext(ctx, `select count(*) from range(100000000) a, range(1000) b`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	// The statement ends on the server, cancelled, soon after.
	for {
		qs := s.Queries()
		last := qs[len(qs)-1]
		if last.Err != "" {
			if !last.Canceled || !strings.Contains(last.SQL, "range(100000000)") {
				t.Fatalf("last query %+v, want the cross join, cancelled", last)
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the statement still runs %v after the deadline", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueryTagReachesServer(t *testing.T) {
	t.Parallel()
	s, db := open(t, Options{})
	ctx := gosnowflake.WithQueryTag(context.Background(), "dashboard:Sales")
	var n int64
	if err := db.QueryRowContext(ctx, "select ?::INTEGER + 1", 41).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Errorf("got %d, want 42", n)
	}
	qs := s.Queries()
	if last := qs[len(qs)-1]; last.QueryTag != "dashboard:Sales" || last.Params["QUERY_TAG"] != "dashboard:Sales" {
		t.Errorf("last query %+v, want QUERY_TAG dashboard:Sales", last)
	}
}

func TestStatementsWithoutRows(t *testing.T) {
	t.Parallel()
	_, db := open(t, Options{})
	if _, err := db.Exec("create table t (i integer, s varchar)"); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("insert into t values (1, 'a'), (2, 'b')")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); n != 2 || err != nil {
		t.Errorf("RowsAffected = %d, %v, want 2", n, err)
	}
	var s string
	if err := db.QueryRow("select s from t where i = :1", 2).Scan(&s); err != nil || s != "b" {
		t.Errorf("got %q, %v, want b", s, err)
	}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`select '{"a":1}'::variant, x::VARIANT`: `select '{"a":1}'::JSON, x::JSON`,
		`select :1, ':2', "::variant", x::int`:  `select $1, ':2', "::variant", x::int`,
		"select 1 -- :1\n, :2 /* :3 */":         "select 1 -- :1\n, $2 /* :3 */",
	} {
		if got := translate(in); got != want {
			t.Errorf("translate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMain(m *testing.M) {
	// The driver logs every failed statement at level error; the tests
	// fail statements on purpose.
	_ = gosnowflake.GetLogger().SetLogLevel("fatal")
	os.Exit(m.Run())
}
