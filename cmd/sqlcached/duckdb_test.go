//go:build cgo

package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/duckdb"
)

// everything holds a row of every type the DuckDB warehouse maps, and a
// row of NULLs.
const everything = `
create table everything (
  i2 smallint, i4 integer, i8 bigint, d decimal(12,2), f8 double, s varchar, b boolean,
  dt date, tm time, ts timestamp, tz timestamptz, iv interval, u uuid, bl blob,
  li integer[], st struct(a integer, b varchar), mp map(varchar, integer), js json);
insert into everything values (-12, 123456, 9007199254740993, 12.50, 1.5, 'héllo, "world"', true,
  date '2024-01-02', time '03:04:05.5', timestamp '2024-01-02 03:04:05.123456', timestamptz '2024-01-02 03:04:05.123+02',
  interval '1 year 2 months 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x01\x02\xff'::blob,
  [1, NULL, 3], {'a': 1, 'b': 'x'}, map {'k': 1}, '{"z": 1, "a": [true, null]}');
insert into everything (i2) values (NULL);
create table orders (order_id bigint primary key, customer varchar not null, amount decimal(12,2), ordered_at timestamp);
insert into orders values (1, 'ada', 10.00, timestamp '2025-01-01 10:00:00');
`

const everythingQuery = `select * from everything order by i2 nulls last`

// countingWarehouse counts the statements that reach DuckDB.
type countingWarehouse struct {
	*duckdb.DB
	n atomic.Int64
}

func (c *countingWarehouse) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	c.n.Add(1)
	return c.DB.Execute(ctx, req)
}

// serveDuckDB serves a DuckDB holding everything through sqlcached, with
// every answer cached; it returns the DSN of database "shop".
func serveDuckDB(t *testing.T) (string, *countingWarehouse) {
	t.Helper()
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Exec(context.Background(), everything); err != nil {
		t.Fatal(err)
	}
	wh := &countingWarehouse{DB: db}
	return startServer(t, `
backends: [{name: duck, kind: duckdb}]
policies:
  - {name: default, ttl: 5m}
`, map[string]executor.Warehouse{"duck": wh}), wh
}

// startServer runs sqlcached in this process with trust authentication
// and body, until the test ends; it returns the DSN of database "shop" as
// user "analyst".
func startServer(t *testing.T, body string, warehouses map[string]executor.Warehouse) string {
	t.Helper()
	addr, _ := serveWarehouses(t, "auth: {method: trust}\n"+body, slog.New(slog.DiscardHandler), warehouses)
	host, port := splitHostPort(addr)
	return fmt.Sprintf("host=%s port=%s user=analyst dbname=shop sslmode=disable", host, port)
}

// direct returns what DuckDB itself returns for everythingQuery, through
// database/sql.
func direct(t *testing.T) ([]string, [][]any) {
	t.Helper()
	c, err := duck.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec(everything); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(everythingQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	return cols, out
}

// canon writes a value as DuckDB's Go driver or pgx returns it in one form
// for both, exact: numbers with their scale, instants in UTC, intervals by
// their three fields, composites as sorted JSON.
func canon(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case *big.Int:
		return v.String()
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case []byte:
		return "x" + hex.EncodeToString(v)
	case duck.Decimal:
		return fmt.Sprintf("%se-%d", v.Value, v.Scale)
	case pgtype.Numeric:
		return fmt.Sprintf("%se%d", v.Int, v.Exp)
	case time.Time:
		return v.UTC().Format("2006-01-02T15:04:05.999999Z")
	case pgtype.Time:
		return fmt.Sprintf("%dus", v.Microseconds)
	case duck.Interval:
		return fmt.Sprintf("%dm%dd%dus", v.Months, v.Days, v.Micros)
	case pgtype.Interval:
		return fmt.Sprintf("%dm%dd%dus", v.Months, v.Days, v.Microseconds)
	case duck.UUID:
		return "x" + hex.EncodeToString(v[:])
	case [16]byte:
		return "x" + hex.EncodeToString(v[:])
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canon(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return canonJSON(v)
}

// canonJSON writes a composite or JSON value as JSON with sorted keys
// and numbers as JSON numbers.
func canonJSON(v any) string {
	switch m := v.(type) {
	case duck.Map:
		obj := map[string]any{}
		for k, e := range m {
			obj[fmt.Sprint(k)] = e
		}
		v = obj
	case string:
		// A DuckDB JSON column reads as its text.
		var x any
		if json.Unmarshal([]byte(m), &x) == nil {
			v = x
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unmarshalable %T", v)
	}
	var x any
	json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

// canonTime writes a DuckDB TIME (a time.Time on day one) as pgx's.
func canonTime(v any) string {
	if t, ok := v.(time.Time); ok {
		h, m, s := t.Clock()
		return fmt.Sprintf("%dus", (int64(h)*3600+int64(m)*60+int64(s))*1e6+int64(t.Nanosecond()/1000))
	}
	return canon(v)
}

func TestDuckDBAnswersEqualDuckDBDirect(t *testing.T) {
	dsn, wh := serveDuckDB(t)
	cols, want := direct(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// Text (simple protocol) and binary (pgx's cached statements ask for
	// binary results of the types it knows).
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for run := range 2 {
			rows, err := c.Query(ctx, everythingQuery, mode)
			if err != nil {
				t.Fatalf("%v: %v", mode, err)
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
			if err != nil {
				t.Fatalf("%v: %v", mode, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%v: %d rows, want %d", mode, len(got), len(want))
			}
			for r := range want {
				for i, col := range cols {
					w, g := canon(want[r][i]), canon(got[r][i])
					if col == "tm" {
						w = canonTime(want[r][i])
					}
					if w != g {
						t.Errorf("%v run %d row %d %s: pgx %s (%T), DuckDB %s (%T)", mode, run+1, r, col, g, got[r][i], w, want[r][i])
					}
				}
			}
		}
	}
	// Each protocol's answer ran once on DuckDB; the repeats were hits.
	if n := wh.n.Load(); n > 2 {
		t.Errorf("%d runs on DuckDB for 2 protocols x 2 runs, want at most 2", n)
	}
}

// psql prints what PostgreSQL would print for each type, and \dt and \d
// work.
func TestDuckDBThroughPsql(t *testing.T) {
	dsn, _ := serveDuckDB(t)
	psql := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("psql", append([]string{dsn, "-X", "-v", "ON_ERROR_STOP=1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	got := psql("-A", "-t", "-F", "|", "-c", everythingQuery)
	want := `-12|123456|9007199254740993|12.50|1.5|héllo, "world"|t|2024-01-02|03:04:05.5|2024-01-02 03:04:05.123456|2024-01-02 01:04:05.123+00|1 year 2 mons 3 days 04:05:06.789|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\x0102ff|{1,NULL,3}|`
	if !strings.HasPrefix(got, want) {
		t.Errorf("psql printed\n%s\nwant it to start with\n%s", got, want)
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 2 || lines[1] != strings.Repeat("|", 17) {
		t.Errorf("the NULL row: %q", got)
	}
	dt := psql("-c", `\dt`)
	for _, w := range []string{"everything", "orders", "table"} {
		if !strings.Contains(dt, w) {
			t.Errorf(`\dt does not show %q:\n%s`, w, dt)
		}
	}
	d := psql("-c", `\d orders`)
	for _, w := range []string{"order_id", "bigint", "not null", "customer", "character varying", "amount", "numeric(12,2)", "ordered_at", "timestamp without time zone"} {
		if !strings.Contains(d, w) {
			t.Errorf(`\d orders does not show %q:\n%s`, w, d)
		}
	}
}

// SQLAlchemy with psycopg2, as Superset uses them: the engine connects, the
// inspector lists tables and columns, and a query's values equal DuckDB's.
func TestDuckDBThroughSQLAlchemy(t *testing.T) {
	dsn, _ := serveDuckDB(t)
	f := strings.Fields(dsn)
	kv := map[string]string{}
	for _, p := range f {
		k, v, _ := strings.Cut(p, "=")
		kv[k] = v
	}
	url := fmt.Sprintf("postgresql+psycopg2://%s@%s:%s/%s", kv["user"], kv["host"], kv["port"], kv["dbname"])
	script := `
import json, sys, datetime, decimal, uuid
import sqlalchemy as sa
eng = sa.create_engine(sys.argv[1])
def canon(v):
    if v is None: return "NULL"
    if isinstance(v, bool): return str(v).lower()
    if isinstance(v, int): return str(v)
    if isinstance(v, decimal.Decimal): return "dec:" + str(v)
    if isinstance(v, float): return repr(v)
    if isinstance(v, str): return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None: v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, (datetime.date, datetime.time)): return v.isoformat()
    if isinstance(v, datetime.timedelta): return "td:%d:%d:%d" % (v.days, v.seconds, v.microseconds)
    if isinstance(v, uuid.UUID): return str(v)
    if isinstance(v, (bytes, memoryview)): return "x" + bytes(v).hex()
    if isinstance(v, list): return "[" + ",".join(canon(e) for e in v) + "]"
    return json.dumps(v, sort_keys=True, separators=(",", ":"))
with eng.connect() as c:
    insp = sa.inspect(c)
    print(json.dumps(sorted(insp.get_table_names())))
    print(json.dumps([(col["name"], str(col["type"]), col["nullable"]) for col in insp.get_columns("orders")]))
    print(json.dumps(insp.get_pk_constraint("orders")["constrained_columns"]))
    for row in c.execute(sa.text(sys.argv[2])):
        print(json.dumps([canon(v) for v in row], ensure_ascii=False))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, url, everythingQuery).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 {
		t.Fatalf("python printed:\n%s", out)
	}
	if lines[0] != `["everything", "orders"]` {
		t.Errorf("get_table_names: %s", lines[0])
	}
	if lines[1] != `[["order_id", "BIGINT", false], ["customer", "VARCHAR", false], ["amount", "NUMERIC(12, 2)", true], ["ordered_at", "TIMESTAMP", true]]` {
		t.Errorf("get_columns: %s", lines[1])
	}
	if lines[2] != `["order_id"]` {
		t.Errorf("get_pk_constraint: %s", lines[2])
	}
	// The values as psycopg2 turns them into Python, from what DuckDB
	// returns directly.
	_, want := direct(t)
	py := func(col string, v any) string {
		switch v := v.(type) {
		case nil:
			return "NULL"
		case duck.Decimal:
			s := v.Value.String()
			for len(s) <= int(v.Scale) {
				s = "0" + s
			}
			return "dec:" + s[:len(s)-int(v.Scale)] + "." + s[len(s)-int(v.Scale):]
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			if col == "js" {
				return canonJSON(v)
			}
			b, _ := json.Marshal(v)
			return strings.ReplaceAll(string(b), `\u0026`, "&")
		case time.Time:
			switch col {
			case "dt":
				return v.Format("2006-01-02")
			case "tm":
				return strings.TrimSuffix(v.Format("15:04:05.000000"), ".000000")
			}
			return strings.TrimSuffix(v.UTC().Format("2006-01-02T15:04:05.000000"), ".000000")
		case duck.Interval:
			// psycopg2 counts a year as 365 days and a month as 30.
			days := int64(v.Months/12)*365 + int64(v.Months%12)*30 + int64(v.Days)
			return fmt.Sprintf("td:%d:%d:%d", days, v.Micros/1e6, v.Micros%1e6)
		case []byte:
			if col != "u" {
				return canon(v)
			}
			h := hex.EncodeToString(v)
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		case duck.UUID:
			h := hex.EncodeToString(v[:])
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		case []any, map[string]any, duck.Map:
			if l, ok := v.([]any); ok {
				parts := make([]string, len(l))
				for i, e := range l {
					parts[i] = canon(e)
				}
				return "[" + strings.Join(parts, ",") + "]"
			}
			return canonJSON(v)
		}
		return canon(v)
	}
	cols := []string{"i2", "i4", "i8", "d", "f8", "s", "b", "dt", "tm", "ts", "tz", "iv", "u", "bl", "li", "st", "mp", "js"}
	for r, row := range want {
		var got []string
		if err := json.Unmarshal([]byte(lines[3+r]), &got); err != nil {
			t.Fatal(err)
		}
		for i, col := range cols {
			if w := py(col, row[i]); got[i] != w {
				t.Errorf("row %d %s: Python %s, DuckDB %s", r, col, got[i], w)
			}
		}
	}
}
