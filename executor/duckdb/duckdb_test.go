//go:build cgo

package duckdb

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/executor"
)

type answer struct {
	fields []pgproto3.FieldDescription
	rows   [][]*string
	tag    string
}

// decode parses a Result's wire messages.
func decode(t *testing.T, wire []byte) answer {
	t.Helper()
	var a answer
	for len(wire) > 0 {
		if len(wire) < 5 {
			t.Fatalf("short message: %q", wire)
		}
		n := 1 + int(uint32(wire[1])<<24|uint32(wire[2])<<16|uint32(wire[3])<<8|uint32(wire[4]))
		typ, body := wire[0], wire[5:n]
		wire = wire[n:]
		switch typ {
		case 'T':
			var m pgproto3.RowDescription
			if err := m.Decode(body); err != nil {
				t.Fatal(err)
			}
			a.fields = m.Fields
		case 'D':
			var m pgproto3.DataRow
			if err := m.Decode(body); err != nil {
				t.Fatal(err)
			}
			row := make([]*string, len(m.Values))
			for i, v := range m.Values {
				if v != nil {
					s := string(v)
					row[i] = &s
				}
			}
			a.rows = append(a.rows, row)
		case 'C':
			var m pgproto3.CommandComplete
			if err := m.Decode(body); err != nil {
				t.Fatal(err)
			}
			a.tag = string(m.CommandTag)
			if len(wire) != 0 {
				t.Fatalf("%d bytes after CommandComplete", len(wire))
			}
		default:
			t.Fatalf("unexpected message %q", typ)
		}
	}
	return a
}

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func query(t *testing.T, db *DB, sql string) answer {
	t.Helper()
	res, err := db.Execute(context.Background(), &executor.Request{SQL: sql})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	a := decode(t, res.Wire)
	if a.tag != res.Tag || res.Rows != int64(len(a.rows)) {
		t.Fatalf("result says tag %q rows %d, wire %q %d", res.Tag, res.Rows, a.tag, len(a.rows))
	}
	return a
}

func TestTypes(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if err := db.Exec(ctx, `set TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	err := db.Exec(ctx, `create table t (
		id integer, i2 smallint, i4 integer, i8 bigint, h hugeint, d decimal(10,2),
		f8 double, f4 float, s varchar, b boolean, dt date, tm time, ts timestamp,
		tsf timestamp, tstz timestamptz, iv interval, iv2 interval, u uuid, bl blob,
		li integer[], lb bigint[], ls varchar[], st struct(a integer, "b c" varchar),
		m map(varchar, integer), j json);
	insert into t values (1, 1, 2, 3, 170141183460469231731687303715884105727, 12.50,
		1.5, 2.25, 'hello', true, '2024-01-02', '03:04:05.5', '2024-01-02 03:04:05',
		'2024-01-02 03:04:05.12', '2024-01-02 03:04:05.123+02', interval '1 day 2 hours',
		interval '1 year 2 months', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x01\x02'::blob,
		[1,2,3], [4,5], ['a', 'b c', NULL, ''], {'a': 1, 'b c': 'x"y'}, map {'k': 1}, '{"z":1,"a":[1,2]}');
	insert into t (id) values (2);`)
	if err != nil {
		t.Fatal(err)
	}
	a := query(t, db, `select * exclude (id) from t order by id`)
	want := []struct {
		name string
		oid  uint32
		text string
	}{
		{"i2", 21, "1"},
		{"i4", 23, "2"},
		{"i8", 20, "3"},
		{"h", 1700, "170141183460469231731687303715884105727"},
		{"d", 1700, "12.50"},
		{"f8", 701, "1.5"},
		{"f4", 700, "2.25"},
		{"s", 25, "hello"},
		{"b", 16, "t"},
		{"dt", 1082, "2024-01-02"},
		{"tm", 1083, "03:04:05.5"},
		{"ts", 1114, "2024-01-02 03:04:05"},
		{"tsf", 1114, "2024-01-02 03:04:05.12"},
		{"tstz", 1184, "2024-01-02 01:04:05.123+00"},
		{"iv", 1186, "1 day 02:00:00"},
		{"iv2", 1186, "1 year 2 mons"},
		{"u", 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"bl", 17, `\x0102`},
		{"li", 1007, "{1,2,3}"},
		{"lb", 1016, "{4,5}"},
		{"ls", 1009, `{a,"b c",NULL,""}`},
		{"st", 114, `{"a":1,"b c":"x\"y"}`},
		{"m", 114, `{"k":1}`},
		{"j", 114, `{"a":[1,2],"z":1}`},
	}
	if len(a.fields) != len(want) || len(a.rows) != 2 || a.tag != "SELECT 2" {
		t.Fatalf("got %d fields, %d rows, tag %q", len(a.fields), len(a.rows), a.tag)
	}
	for i, w := range want {
		f := a.fields[i]
		if string(f.Name) != w.name || f.DataTypeOID != w.oid || f.Format != 0 {
			t.Errorf("column %d: %s oid %d, want %s oid %d", i, f.Name, f.DataTypeOID, w.name, w.oid)
		}
		if got := a.rows[0][i]; got == nil || *got != w.text {
			t.Errorf("%s: got %v, want %q", w.name, deref(got), w.text)
		}
		if got := a.rows[1][i]; got != nil {
			t.Errorf("%s: NULL row has %q", w.name, *got)
		}
	}
	if m := a.fields[4].TypeModifier; m != (10<<16|2)+4 {
		t.Errorf("decimal typmod %d", m)
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestText(t *testing.T) {
	db := open(t)
	cases := []struct{ sql, want string }{
		{`select interval '-1 day 2 hours'`, "-1 days +02:00:00"},
		{`select interval '1 day -2 hours'`, "1 day -02:00:00"},
		{`select interval '0 seconds'`, "00:00:00"},
		{`select interval '3 years 1 month 5 days 1.25 seconds'`, "3 years 1 mon 5 days 00:00:01.25"},
		{`select interval '30 hours'`, "30:00:00"},
		{`select 1e20::double`, "1e+20"},
		{`select 123456.0::double`, "123456"},
		{`select 0.0001::double`, "0.0001"},
		{`select 0.00001::double`, "1e-05"},
		{`select -0.5::decimal(4,3)`, "-0.500"},
		{`select 0.05::decimal(18,4)`, "0.0500"},
		{`select 123456789012345678.5::decimal(38,2)`, "123456789012345678.50"},
		{`select 5::decimal(5,0)`, "5"},
		{`select false`, "f"},
		{`select [[1,2],[3]]`, "{{1,2},{3}}"},
		{`select ['NULL', 'a,b', 'x\y']`, `{"NULL","a,b","x\\y"}`},
		{`select [{'a': 1}]`, `{"{\"a\":1}"}`},
		{`select {'l': [1, NULL], 'd': 1.50::decimal(4,2), 't': date '2024-01-02'}`, `{"l":[1,null],"d":1.50,"t":"2024-01-02"}`},
		{`select time '23:59:59.999999'`, "23:59:59.999999"},
		{`select timestamp '0001-01-01 00:00:00' - interval '1 day'`, "0001-12-31 00:00:00 BC"},
		{`select 'é'::varchar`, "é"},
		{`select 'infinity'::date`, "infinity"},
		{`select '-infinity'::timestamp`, "-infinity"},
		{`select 'infinity'::timestamptz`, "infinity"},
		{`select 0.1::float`, "0.1"},
		{`select 18446744073709551615::ubigint`, "18446744073709551615"},
		{`select [1,2,3]::integer[3]`, "{1,2,3}"},
		{`select time with time zone '01:02:03+05:30'`, "01:02:03+05:30"},
		{`select ''::blob`, `\x`},
		{`select map {1: [1.5]}`, `{"1":[1.5]}`},
		{`select '"a<b"'::json`, `"a<b"`},
	}
	for _, c := range cases {
		a := query(t, db, c.sql)
		if len(a.rows) != 1 || a.rows[0][0] == nil || *a.rows[0][0] != c.want {
			var got any
			if len(a.rows) == 1 {
				got = deref(a.rows[0][0])
			}
			t.Errorf("%s: got %v, want %q", c.sql, got, c.want)
		}
	}
}

func TestParams(t *testing.T) {
	db := open(t)
	res, err := db.Execute(context.Background(), &executor.Request{
		SQL:    `select $1::integer + 1, $2::varchar is null, $3`,
		Params: [][]byte{[]byte("41"), nil, []byte("x")},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := decode(t, res.Wire)
	if *a.rows[0][0] != "42" || *a.rows[0][1] != "t" || *a.rows[0][2] != "x" {
		t.Fatalf("got %v %v %v", deref(a.rows[0][0]), deref(a.rows[0][1]), deref(a.rows[0][2]))
	}
}

func TestCommands(t *testing.T) {
	db := open(t)
	for _, c := range []struct{ sql, tag string }{
		{`create table x (a integer)`, "CREATE"},
		{`insert into x values (1), (2)`, "INSERT 0 2"},
		{`update x set a = a + 1`, "UPDATE 2"},
		{`delete from x where a = 2`, "DELETE 1"},
		{`select * from x`, "SELECT 1"},
		{`select * from x where false`, "SELECT 0"},
	} {
		a := query(t, db, c.sql)
		if a.tag != c.tag {
			t.Errorf("%s: tag %q, want %q", c.sql, a.tag, c.tag)
		}
	}
}

func TestTooLarge(t *testing.T) {
	db := open(t)
	req := &executor.Request{SQL: `select range, 'some text' from range(100000)`, MaxBytes: 10000}
	if _, err := db.Execute(context.Background(), req); !errors.Is(err, executor.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	req.MaxBytes = 10 << 20
	res, err := db.Execute(context.Background(), req)
	if err != nil || res.Rows != 100000 {
		t.Fatalf("got %v, %v", res, err)
	}
	// Exactly the answer's size fits.
	req.MaxBytes = len(res.Wire)
	if _, err := db.Execute(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req.MaxBytes = len(res.Wire) - 1
	if _, err := db.Execute(context.Background(), req); !errors.Is(err, executor.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// An answer far larger than the bound is refused without being built:
// 10 GB of rows would take DuckDB minutes and the machine's memory.
func TestTooLargeIsNotBuilt(t *testing.T) {
	db := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	_, err := db.Execute(ctx, &executor.Request{SQL: `select range, repeat('x', 100) as pad from range(100000000)`, MaxBytes: 1 << 20})
	if !errors.Is(err, executor.ErrTooLarge) {
		t.Fatalf("got %v after %v, want ErrTooLarge", err, time.Since(t0))
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 64<<20 {
		t.Errorf("refusing the answer allocated %d MiB in Go", grew>>20)
	}
	// Columns of one name keep their names: the bound steps aside.
	dup, err := db.Execute(context.Background(), &executor.Request{SQL: `select 1 as a, 2 as a`, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if f := decode(t, dup.Wire).fields; len(f) != 2 || string(f[0].Name) != "a" || string(f[1].Name) != "a" {
		t.Errorf("columns %v, want a, a", f)
	}
	// Order and LIMIT inside the statement are kept.
	r, err := db.Execute(context.Background(), &executor.Request{SQL: `select range from range(10) order by range desc limit 3`, MaxBytes: 1 << 20})
	if err != nil || r.Rows != 3 || !strings.Contains(string(r.Wire), "\x00\x00\x00\x019") {
		t.Errorf("ordered answer under a bound: %v %q", err, r.Wire)
	}
}

func TestCancel(t *testing.T) {
	db := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled time.Time
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancelled = time.Now()
		cancel()
	}()
	_, err := db.Execute(ctx, &executor.Request{SQL: `select count(*) from range(100000000) a, range(100000000) b`})
	took := time.Since(cancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	t.Logf("returned %v after cancel", took)
	if took > 500*time.Millisecond {
		t.Fatalf("returned %v after cancel", took)
	}
	// The database still answers.
	if a := query(t, db, `select 1`); *a.rows[0][0] != "1" {
		t.Fatal("no answer after cancel")
	}

	// A deadline works the same way.
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err = db.Execute(ctx, &executor.Request{SQL: `select count(*) from range(100000000) a, range(100000000) b`})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 700*time.Millisecond {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestErrors(t *testing.T) {
	db := open(t)
	if err := db.Exec(context.Background(), `create table u (id integer primary key, n integer not null)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(context.Background(), `insert into u values (1, 1)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sql, code string }{
		{`selec 1`, "42601"},
		{`select * from nope`, "42P01"},
		{`select nope from u`, "42703"},
		{`select 1::decimal(4,1) // 0`, "22012"},
		{`select 'abc'::integer`, "22P02"},
		{`insert into u values (1, 2)`, "23505"},
		{`insert into u values (2, null)`, "23502"},
		{`select nofunc(1)`, "42883"},
		{`select error('boom')`, "22023"},
	} {
		_, err := db.Execute(context.Background(), &executor.Request{SQL: c.sql})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v (%T), want a PgError", c.sql, err, err)
			continue
		}
		if pe.Code != c.code || pe.Message == "" || pe.Severity != "ERROR" {
			t.Errorf("%s: got %s %q, want %s", c.sql, pe.Code, pe.Message, c.code)
		}
		t.Logf("%s: %s %q detail %q hint %q position %d", c.sql, pe.Code, pe.Message, pe.Detail, pe.Hint, pe.Position)
	}
	_, err := db.Execute(context.Background(), &executor.Request{SQL: "select 1,\n  nope from u"})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position != 13 || strings.Contains(pe.Message, "\n") {
		t.Errorf("got %#v", err)
	}
	if got := sqlState(duck.ErrorTypeInternal, "x"); got != "XX000" {
		t.Errorf("internal error: %s", got)
	}
}

func TestMillionRows(t *testing.T) {
	db := open(t)
	start := time.Now()
	err := db.Exec(context.Background(), `create table orders as select range as id, range % 1000 as customer,
		(range % 10000)::decimal(10,2) / 100 as amount, timestamp '2024-01-01' + to_seconds(range) as at,
		'item ' || (range % 100) as item from range(1000000)`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated 1,000,000 rows in %v", time.Since(start))
	start = time.Now()
	a := query(t, db, `select customer, count(*), sum(amount) from orders group by customer order by customer`)
	t.Logf("aggregated into %d rows in %v", len(a.rows), time.Since(start))
	if len(a.rows) != 1000 || *a.rows[0][1] != "1000" {
		t.Fatalf("got %d rows, first %v", len(a.rows), deref(a.rows[0][1]))
	}
	if testing.Short() {
		return
	}
	start = time.Now()
	res, err := db.Execute(context.Background(), &executor.Request{SQL: `select * from orders`})
	if err != nil || res.Rows != 1000000 {
		t.Fatalf("%v %v", res, err)
	}
	t.Logf("read all 1,000,000 rows (%d bytes of wire) in %v", len(res.Wire), time.Since(start))
}

func TestConcurrent(t *testing.T) {
	db := open(t)
	if err := db.Exec(context.Background(), `create table n as select range as i from range(10000)`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for k := 0; k < 20; k++ {
				res, err := db.Execute(context.Background(), &executor.Request{
					SQL:    `select i from n where i < $1::integer`,
					Params: [][]byte{[]byte("100")},
				})
				if err == nil && res.Rows != 100 {
					err = errors.New("wrong row count")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
