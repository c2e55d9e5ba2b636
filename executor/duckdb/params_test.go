//go:build cgo

package duckdb

import (
	"context"
	"errors"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sqlcached/sqlcached/executor"
)

// TestBinaryParamsRoundTrip sends values encoded by pgtype as binary
// parameters and reads them back in binary.
func TestBinaryParamsRoundTrip(t *testing.T) {
	db := open(t)
	m := pgtype.NewMap()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	cases := []struct {
		sql  string
		oid  uint32
		in   any
		want any // nil: in
	}{
		{`select $1`, 21, int16(-7), nil},
		{`select $1`, 23, int32(123456), nil},
		{`select $1`, 20, int64(1) << 60, nil},
		{`select $1`, 700, float32(2.25), nil},
		{`select $1`, 701, 1.5e300, nil},
		{`select $1`, 16, true, nil},
		{`select $1`, 25, "héllo", nil},
		{`select $1`, 1043, "varchar", nil},
		{`select $1`, 17, []byte{0, 1, 0xff}, nil},
		{`select $1`, 1082, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), nil},
		{`select $1`, 1082, time.Date(1960, 2, 29, 0, 0, 0, 0, time.UTC), nil},
		{`select $1`, 1114, ts, nil},
		{`select $1`, 1184, ts, nil},
		{`select $1`, 1083, pgtype.Time{Microseconds: 3723000001, Valid: true}, nil},
		{`select $1`, 1186, pgtype.Interval{Months: 14, Days: -3, Microseconds: 5000001, Valid: true}, nil},
		{`select $1::uuid`, 2950, [16]byte{0xa0, 0xee, 0xbc, 0x99, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, nil},
		{`select $1::decimal(12,2)`, 1700, pgtype.Numeric{Int: big.NewInt(-1250), Exp: -2, Valid: true}, nil},
		{`select $1::decimal(38,10)`, 1700, pgtype.Numeric{Int: big.NewInt(123456789), Exp: -10, Valid: true}, nil},
		{`select $1::json`, 114, map[string]any{"a": []any{1.0, "x"}}, nil},
		{`select $1::integer[]`, 1007, []int32{1, 2, 3}, nil},
		{`select $1::varchar[]`, 1009, []string{"a", "b c", "it's", `back\slash`, `"q"`, "[x, y]", "NULL", ""}, nil},
		{`select $1::double[]`, 1022, []float64{1.5, -2}, nil},
		{`select $1::date[]`, 1182, []time.Time{time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}, nil},
		{`select $1 + 1`, 20, int64(41), int64(42)},
	}
	for _, c := range cases {
		p, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.in, nil)
		if err != nil {
			t.Fatalf("%s %v: %v", c.sql, c.in, err)
		}
		res, err := db.Execute(context.Background(), &executor.Request{
			SQL: c.sql, ParamOIDs: []uint32{c.oid}, ParamFormats: []int16{1}, Params: [][]byte{p}, ResultFormats: []int16{1},
		})
		if err != nil {
			t.Errorf("%s with %T %v: %v", c.sql, c.in, c.in, err)
			continue
		}
		a := decode(t, res.Wire)
		f := a.fields[0]
		want := c.want
		if want == nil {
			want = c.in
		}
		got := reflect.New(reflect.TypeOf(want))
		if err := m.Scan(f.DataTypeOID, 1, []byte(*a.rows[0][0]), got.Interface()); err != nil {
			t.Errorf("%s: scanning oid %d: %v", c.sql, f.DataTypeOID, err)
			continue
		}
		if g := got.Elem().Interface(); !reflect.DeepEqual(g, want) && !sameTime(g, want) {
			t.Errorf("%s: sent %v (oid %d), got %v (oid %d)", c.sql, c.in, c.oid, g, f.DataTypeOID)
		}
	}
}

func sameTime(a, b any) bool {
	ta, ok1 := a.(time.Time)
	tb, ok2 := b.(time.Time)
	return ok1 && ok2 && ta.Equal(tb)
}

// TestTypedTextParams checks that text parameters with an OID compare as
// that type where DuckDB cannot tell the type itself, and as DuckDB's
// inferred type where it can.
func TestTypedTextParams(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if err := db.Exec(ctx, `create table o (id bigint, amount decimal(12,2), d date, ts timestamp, ok boolean, f double);
		insert into o values (42, 12.50, '2024-01-02', '2024-01-02 03:04:05', true, 1.5), (7, 1.00, '2023-01-01', '2023-01-01 00:00:00', false, 2)`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sql   string
		oid   uint32
		param string
		want  string
	}{
		{`select id from o where id = $1`, 20, "42", "42"},
		{`select id from o where $1 = id`, 20, "42", "42"},
		{`select id from o where amount = $1`, 1700, "12.5", "42"},
		{`select id from o where d = $1`, 1082, "2024-01-02", "42"},
		{`select id from o where ts = $1`, 1114, "2024-01-02 03:04:05", "42"},
		{`select id from o where ok = $1`, 16, "f", "7"},
		{`select id from o where f = $1`, 701, "1.5", "42"},
		{`select $1 + 1`, 20, "41", "42"},
		{`select $1 + 1`, 23, " 41 ", "42"},
		{`select $1 * 2`, 701, "1.25", "2.5"},
		{`select $1 * 2`, 1700, "21", "42"},
		{`select not $1`, 16, "yes", "f"},
		{`select $1 + interval 1 day`, 1082, "2024-01-02", "2024-01-03 00:00:00"},
		{`select $1 || 'x'`, 25, "a", "ax"},
		{`select $1 || 'x'`, 0, "a", "ax"},
	}
	for _, c := range cases {
		res, err := db.Execute(ctx, &executor.Request{SQL: c.sql, ParamOIDs: []uint32{c.oid}, Params: [][]byte{[]byte(c.param)}})
		if err != nil {
			t.Errorf("%s with %q (oid %d): %v", c.sql, c.param, c.oid, err)
			continue
		}
		a := decode(t, res.Wire)
		if len(a.rows) != 1 || *a.rows[0][0] != c.want {
			t.Errorf("%s with %q (oid %d): got %d rows %v, want %q", c.sql, c.param, c.oid, len(a.rows), a.rows, c.want)
		}
	}
}

func TestBadParams(t *testing.T) {
	db := open(t)
	for _, c := range []struct {
		sql    string
		params [][]byte
		code   string
	}{
		{`select $1, $2`, [][]byte{[]byte("1")}, "08P01"},
		{`select $1`, [][]byte{[]byte("1"), []byte("2")}, "08P01"},
		{`select $1`, nil, "42P02"},
	} {
		_, err := db.Execute(context.Background(), &executor.Request{SQL: c.sql, Params: c.params})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("%s with %d parameters: got %v, want %s", c.sql, len(c.params), err, c.code)
		}
	}
	for _, c := range []struct {
		oid    uint32
		format int16
		param  string
		code   string
	}{
		{23, 1, "\x00\x01\x02", "22P03"},
		{600, 1, "0123456789abcdef", "0A000"}, // point
		{20, 0, "forty-two", "22P02"},
		{21, 0, "70000", "22003"},
	} {
		_, err := db.Execute(context.Background(), &executor.Request{
			SQL: `select $1`, ParamOIDs: []uint32{c.oid}, ParamFormats: []int16{c.format}, Params: [][]byte{[]byte(c.param)},
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("oid %d format %d %q: got %v, want %s", c.oid, c.format, c.param, err, c.code)
		}
	}
}
