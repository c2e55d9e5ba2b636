//go:build cgo

package duckdb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sqlcached/sqlcached/executor"
)

// binaryCases are values of every type with a binary form, as DuckDB
// expressions, with the PostgreSQL type OID they are described as.
var binaryCases = []struct {
	expr string
	oid  uint32
}{
	{`1::smallint`, 21},
	{`(-32768)::smallint`, 21},
	{`(-5)::tinyint`, 21},
	{`200::utinyint`, 21},
	{`60000::usmallint`, 23},
	{`(-2147483648)::integer`, 23},
	{`4000000000::uinteger`, 20},
	{`9223372036854775807::bigint`, 20},
	{`170141183460469231731687303715884105727::hugeint`, 1700},
	{`(-170141183460469231731687303715884105727)::hugeint`, 1700},
	{`18446744073709551615::ubigint`, 1700},
	{`12.50::decimal(12,2)`, 1700},
	{`(-0.05)::decimal(18,4)`, 1700},
	{`0::decimal(10,3)`, 1700},
	{`123456789012345678.50::decimal(38,2)`, 1700},
	{`10000::decimal(10,0)`, 1700},
	{`0.0001::decimal(10,4)`, 1700},
	{`99999999.99999999::decimal(16,8)`, 1700},
	{`1.000000000000000001::decimal(38,18)`, 1700},
	{`2.25::float`, 700},
	{`'nan'::float`, 700},
	{`1.5::double`, 701},
	{`1e300::double`, 701},
	{`(-0.0)::double`, 701},
	{`'-inf'::double`, 701},
	{`'héllo'::varchar`, 25},
	{`''::varchar`, 25},
	{`true`, 16},
	{`false`, 16},
	{`date '2024-01-02'`, 1082},
	{`date '1999-12-31'`, 1082},
	{`date '1900-05-06'`, 1082},
	{`time '03:04:05.5'`, 1083},
	{`time '23:59:59.999999'`, 1083},
	{`timestamp '2024-01-02 03:04:05.123456'`, 1114},
	{`timestamp '1960-01-01 00:00:00'`, 1114},
	{`timestamp_ms '2024-01-02 03:04:05.123'`, 1114},
	{`timestamp_s '2024-01-02 03:04:05'`, 1114},
	{`timestamptz '2024-01-02 03:04:05.123+02'`, 1184},
	{`interval '1 year 2 months 3 days 04:05:06.789'`, 1186},
	{`interval '-1 day 2 hours'`, 1186},
	{`'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid`, 2950},
	{`'\x01\x02\xff'::blob`, 17},
	{`''::blob`, 17},
	{`[1, NULL, 3]::integer[]`, 1007},
	{`[1, 2]::bigint[]`, 1016},
	{`[1, 2]::smallint[]`, 1005},
	{`['a', NULL, 'b c', '']::varchar[]`, 1009},
	{`[1.50, -2.25]::decimal(5,2)[]`, 1231},
	{`[date '2024-01-02', NULL]`, 1182},
	{`[[1, 2], [3, 4]]::integer[][]`, 1007},
	{`[]::integer[]`, 1007},
	{`[1.5::double, 'nan'::double]`, 1022},
	{`[true, false]`, 1000},
	{`[timestamp '2024-01-02 03:04:05']`, 1115},
	{`[timestamptz '2024-01-02 03:04:05+00']`, 1185},
	{`['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]`, 2951},
	{`[interval '1 day']`, 1187},
	{`[time '01:02:03']`, 1183},
	{`['\x01'::blob]`, 1001},
	{`[1.5::float]`, 1021},
	{`[1, 2, 3]::integer[3]`, 1007},
	{`'{"a":[1,2],"b":null}'::json`, 114},
	{`'10110'::bit`, 1562},
	{`'101101011'::bit`, 1562},
	{`{'a': 1, 'b': 'x'}`, 114},
	{`map {'k': 1}`, 114},
}

// TestBinaryResultsMatchText checks every type's binary form: decoded with
// pgx's pgtype, it equals the text form decoded the same way and the value
// DuckDB returns through database/sql.
func TestBinaryResultsMatchText(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	m := pgtype.NewMap()
	for _, c := range binaryCases {
		sql := "select " + c.expr + " as v, 1 as n"
		text := runFormats(t, db, sql, []int16{0})
		bin := runFormats(t, db, sql, []int16{1, 0})
		if f := bin.fields[0]; f.Format != 1 || f.DataTypeOID != c.oid || bin.fields[1].Format != 0 {
			t.Errorf("%s: field %+v, want oid %d format 1", c.expr, f, c.oid)
			continue
		}
		if text.fields[0].DataTypeOID != c.oid || text.fields[0].Format != 0 {
			t.Errorf("%s: text field %+v", c.expr, text.fields[0])
		}
		var fromText, fromBin any
		if err := m.Scan(c.oid, 0, []byte(*text.rows[0][0]), &fromText); err != nil {
			t.Errorf("%s: scanning text %q: %v", c.expr, *text.rows[0][0], err)
			continue
		}
		if err := m.Scan(c.oid, 1, []byte(*bin.rows[0][0]), &fromBin); err != nil {
			t.Errorf("%s: scanning binary %x: %v", c.expr, *bin.rows[0][0], err)
			continue
		}
		if *bin.rows[0][1] != "1" {
			t.Errorf("%s: text column beside binary is %q", c.expr, *bin.rows[0][1])
		}
		var direct any
		if err := db.db.QueryRowContext(ctx, "select "+c.expr).Scan(&direct); err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		ct, cb, cd := canon(c.oid, fromText), canon(c.oid, fromBin), canon(c.oid, direct)
		if ct != cb || cb != cd {
			t.Errorf("%s (oid %d):\n text   %s\n binary %s\n duckdb %s", c.expr, c.oid, ct, cb, cd)
		}
	}
}

func runFormats(t *testing.T, db *DB, sql string, formats []int16) answer {
	t.Helper()
	res, err := db.Execute(context.Background(), &executor.Request{SQL: sql, ResultFormats: formats})
	if err != nil {
		t.Fatalf("%s %v: %v", sql, formats, err)
	}
	a := decode(t, res.Wire)
	if len(a.rows) != 1 || a.rows[0][0] == nil {
		t.Fatalf("%s: %d rows", sql, len(a.rows))
	}
	return a
}

// canon prints a value decoded by pgtype, or returned by DuckDB's driver,
// in one form for comparison.
func canon(oid uint32, v any) string {
	// Numerics compare by value: pgtype drops the scale of a binary
	// zero (TestBinaryNumericWire checks the bytes themselves).
	if oid == oidNumeric {
		var s string
		switch v := v.(type) {
		case pgtype.Numeric:
			x, _ := v.Value()
			s, _ = x.(string)
		case duck.Decimal:
			s = string(appendDecimal(nil, v))
		default:
			s = fmt.Sprint(v)
		}
		if r, ok := new(big.Rat).SetString(s); ok {
			return "numeric " + r.RatString()
		}
		return "numeric? " + s
	}
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint("int ", v)
	case float32:
		return "float " + strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		if oid == oidFloat4 || oid == 1021 {
			return "float " + strconv.FormatFloat(v, 'g', -1, 32)
		}
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		switch oid {
		case oidJSON:
			return "json " + v
		case oidVarbit:
			return "bits " + v
		}
		return "string " + v
	case bool:
		return fmt.Sprint("bool ", v)
	case []byte:
		if oid == oidUUID || oid == 2951 {
			return "uuid " + string(appendUUID(nil, v))
		}
		return "bytes " + hex.EncodeToString(v)
	case [16]byte:
		return "uuid " + string(appendUUID(nil, v[:]))
	case duck.UUID:
		return "uuid " + string(appendUUID(nil, v[:]))
	case *duck.UUID:
		return "uuid " + string(appendUUID(nil, v[:]))
	case time.Time:
		switch oid {
		case oidTime, 1183:
			return fmt.Sprint("time ", clockMicros(v))
		}
		return "instant " + v.UTC().Format(time.RFC3339Nano)
	case pgtype.Bits:
		var b strings.Builder
		for i := int32(0); i < v.Len; i++ {
			b.WriteByte('0' + v.Bytes[i/8]>>(7-i%8)&1)
		}
		return "bits " + b.String()
	case pgtype.Time:
		return fmt.Sprint("time ", v.Microseconds)
	case pgtype.Interval:
		return fmt.Sprintf("interval %d %d %d", v.Months, v.Days, v.Microseconds)
	case duck.Interval:
		return fmt.Sprintf("interval %d %d %d", v.Months, v.Days, v.Micros)
	case []any:
		elem := oid
		for a, e := range arrayOID {
			if e == oid {
				elem = a
			}
		}
		// pgtype reads a many-dimensional array as one flat list.
		var parts []string
		for _, e := range v {
			if sub, ok := e.([]any); ok {
				parts = append(parts, strings.Trim(canon(oid, sub), "[]"))
				continue
			}
			parts = append(parts, canon(elem, e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		b, _ := json.Marshal(v)
		return "json " + string(b)
	case duck.OrderedMap:
		out := map[string]any{}
		keys, vals := v.Keys(), v.Values()
		for i := range keys {
			out[fmt.Sprint(keys[i])] = vals[i]
		}
		b, _ := json.Marshal(out)
		return "json " + string(b)
	}
	return fmt.Sprintf("%T %v", v, v)
}

func TestBinaryUnsupportedType(t *testing.T) {
	db := open(t)
	for _, typ := range []string{"GEOMETRY", "GEOMETRY[]", "SOMETHING_NEW"} {
		err := parseType(typ).binaryOK()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, strings.TrimSuffix(typ, "[]")) {
			t.Errorf("%s: got %v, want 0A000 naming the type", typ, err)
		}
	}
	// PostgreSQL's arrays are rectangular; DuckDB's lists of lists need not be.
	_, err := db.Execute(context.Background(), &executor.Request{SQL: `select [[1, 2], [3]]`, ResultFormats: []int16{1}})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "rectangular") {
		t.Errorf("ragged list: got %v, want 0A000", err)
	}
	// Text is fine, and so is binary for the other columns.
	res, err := db.Execute(context.Background(), &executor.Request{SQL: `select [[1, 2], [3]], 1`, ResultFormats: []int16{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if a := decode(t, res.Wire); *a.rows[0][0] != "{{1,2},{3}}" || *a.rows[0][1] != "\x00\x00\x00\x01" {
		t.Fatalf("got %q %q", *a.rows[0][0], *a.rows[0][1])
	}
	// Format codes must be one, or one per column.
	_, err = db.Execute(context.Background(), &executor.Request{SQL: `select 1, 2, 3`, ResultFormats: []int16{1, 1}})
	if !errors.As(err, &pe) || pe.Code != "08P01" {
		t.Fatalf("two formats for three columns: got %v", err)
	}
}

// TestBinaryNumericWire checks the numeric encoding against PostgreSQL's
// own bytes for a few values.
func TestBinaryNumericWire(t *testing.T) {
	cases := []struct {
		n     int64
		scale int
		want  string // PostgreSQL 15's numeric_send, in hex
	}{
		{1250, 2, "0002000000000002000c1388"},          // 12.50
		{0, 3, "0000000000000003"},                     // 0.000
		{-5, 2, "0001ffff4000000201f4"},                // -0.05
		{100000000, 0, "00010002000000000001"},         // 100000000
		{1, 4, "0001ffff000000040001"},                 // 0.0001
		{123456789, 0, "0003000200000000000109291a85"}, // 123456789
	}
	for _, c := range cases {
		got := hex.EncodeToString(appendNumeric(nil, big.NewInt(c.n), c.scale))
		if got != c.want {
			t.Errorf("%d scale %d: got %s, want %s", c.n, c.scale, got, c.want)
		}
	}
}
