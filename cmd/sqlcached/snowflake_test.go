//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/snowflakedb/gosnowflake"
	sfenv "github.com/sqlcached/sqlcached/internal/testenv/snowflake"
)

// serveSnowflake serves a Snowflake stand-in through sqlcached: answers
// cached for 5 minutes, statements reading range() under a 1s timeout.
func serveSnowflake(t *testing.T, opts sfenv.Options) (*sfenv.Server, *pgx.Conn) {
	t.Helper()
	_ = gosnowflake.GetLogger().SetLogLevel("fatal")
	sf, err := sfenv.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sf.Close() })
	dsn := startServer(t, fmt.Sprintf(`
backends: [{name: snow, kind: snowflake, dsn: %q, max_conns: 4}]
policies:
  - {name: slow, match: {sql: "range\\("}, ttl: 5m, timeout: 1s}
  - {name: default, ttl: 5m}
`, sf.DSN("analyst", "secret", "SHOP")), nil)
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return sf, c
}

// runs counts the statements the stand-in saw whose text holds s.
func runs(sf *sfenv.Server, s string) (n, canceled int, tags []string) {
	for _, q := range sf.Queries() {
		if strings.Contains(q.SQL, s) {
			n++
			if q.Canceled {
				canceled++
			}
			tags = append(tags, q.QueryTag)
		}
	}
	return n, canceled, tags
}

const snowTypes = `select 12345::DECIMAL(18,0) n0, 123.45::DECIMAL(10,2) n2, 1.5::DOUBLE f, 'héllo' s, true b,
	DATE '2024-01-02' d, TIME '03:04:05.123456' t, TIMESTAMP '2024-01-02 03:04:05.123456' ntz,
	TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' ltz, {'x': 1} o, [1, 2] a, '\xAB\x01'::BLOB bin`

func TestSnowflakeThroughSqlcached(t *testing.T) {
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			sf, c := serveSnowflake(t, sfenv.Options{JSON: json})
			ctx := context.Background()
			want := []struct {
				oid uint32
				val string
			}{
				{20, "12345"}, {1700, "123.45"}, {701, "1.5"}, {25, "héllo"}, {16, "t"},
				{1082, "2024-01-02"}, {1083, "03:04:05.123456"}, {1114, "2024-01-02 03:04:05.123456"},
				{1184, "2024-01-02 03:04:05.123456+00"}, {114, "{\n  \"x\": 1\n}"}, {114, "[\n  1,\n  2\n]"}, {17, `\xab01`},
			}
			for run := range 3 {
				res, err := c.PgConn().Exec(ctx, snowTypes).ReadAll()
				if err != nil {
					t.Fatalf("run %d: %v", run+1, err)
				}
				r := res[0]
				if len(r.Rows) != 1 || len(r.FieldDescriptions) != len(want) {
					t.Fatalf("run %d: %d rows, %d columns", run+1, len(r.Rows), len(r.FieldDescriptions))
				}
				for i, w := range want {
					if f := r.FieldDescriptions[i]; f.DataTypeOID != w.oid || string(r.Rows[0][i]) != w.val {
						t.Errorf("run %d column %s: OID %d %q, want %d %q", run+1, f.Name, f.DataTypeOID, r.Rows[0][i], w.oid, w.val)
					}
				}
			}
			if n, _, _ := runs(sf, "12345::DECIMAL(18,0)"); n != 1 {
				t.Errorf("%d runs on Snowflake for 3 views, want 1", n)
			}

			// The other types: NUMBER beyond 18 digits, TIMESTAMP_TZ,
			// VARIANT (parse_json's volatility is unknown here: relayed).
			res, err := c.PgConn().Exec(ctx, `select 12345678901234567890123.45::DECIMAL(38,2) nbig,
				to_timestamp_tz('2024-01-02 03:04:05.123456 +05:30') tz, parse_json('{"b":1,"a":[1,2]}') v, NULL::INTEGER nul`).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			more := []struct {
				oid uint32
				val string
			}{{1700, "12345678901234567890123.45"}, {1184, "2024-01-01 21:34:05.123456+00"}, {114, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": 1\n}"}, {20, ""}}
			for i, w := range more {
				f, v := res[0].FieldDescriptions[i], res[0].Rows[0][i]
				if f.DataTypeOID != w.oid || string(v) != w.val || (w.val == "") != (v == nil) {
					t.Errorf("column %s: OID %d %q, want %d %q", f.Name, f.DataTypeOID, v, w.oid, w.val)
				}
			}

			// pgx's extended protocol with binary results, answered from
			// the same warehouse run where the formats convert.
			var n2 pgtype.Numeric
			var d time.Time
			if err := c.QueryRow(ctx, "select 123.45::DECIMAL(10,2) n2, DATE '2024-01-02' d").Scan(&n2, &d); err != nil {
				t.Fatal(err)
			}
			if v, _ := n2.Value(); v != "123.45" || d.Format("2006-01-02") != "2024-01-02" {
				t.Errorf("extended protocol: %v %v", v, d)
			}

			// The dashboard label reaches Snowflake as the QUERY_TAG.
			if _, err := c.Exec(ctx, "set sqlcached.dashboard = 'Sales'"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "select 42 as answer_for_sales", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			if n, _, tags := runs(sf, "answer_for_sales"); n != 1 || tags[0] != "Sales" {
				t.Errorf("the labelled query ran %d times with tags %q, want once with QUERY_TAG Sales", n, tags)
			}
			// Statements relayed uncached (random() is volatile) carry it
			// too: the session's, or the one in their own comment.
			if _, err := c.Exec(ctx, "select random() as relayed_plain", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "select random() as relayed_commented /*dashboard='Ops'*/"); err != nil {
				t.Fatal(err)
			}
			if _, _, tags := runs(sf, "relayed_plain"); len(tags) != 1 || tags[0] != "Sales" {
				t.Errorf("relayed statement's tags %q, want Sales", tags)
			}
			if _, _, tags := runs(sf, "relayed_commented"); len(tags) != 1 || tags[0] != "Ops" {
				t.Errorf("relayed commented statement's tags %q, want Ops", tags)
			}

			// A rule's timeout cancels the statement on Snowflake.
			t0 := time.Now()
			_, err = c.Exec(ctx, "select count(*) from range(100000000) a, range(100000) b where a.range = -b.range - 1")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "57014" || !strings.Contains(pe.Message, `"slow"`) {
				t.Fatalf("slow statement: %v, want 57014 naming the rule", err)
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("the timeout of 1s answered after %v", d)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, canceled, _ := runs(sf, "range(100000000)")
				if canceled == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the stand-in saw no abort of the timed-out statement: %+v", sf.Queries())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
