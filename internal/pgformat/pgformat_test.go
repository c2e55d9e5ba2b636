package pgformat_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/pgformat"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// warehouse runs statements on a real PostgreSQL and returns its answers
// as the wire carries them.
type warehouse struct {
	pool  *postgres.Pool
	login executor.Login
}

func newWarehouse(t *testing.T) *warehouse {
	t.Helper()
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	p, err := postgres.NewPool(postgres.Config{DSN: fmt.Sprintf("postgres://%s/%s?sslmode=disable", pg.Addr(), db), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &warehouse{pool: p, login: executor.Login{User: testenv.SuperUser, Password: testenv.SuperPassword, Database: db}}
}

func (w *warehouse) answer(t *testing.T, sql string, formats []int16, settings map[string]string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := w.pool.Execute(ctx, &executor.Request{Login: w.login, SQL: sql, ResultFormats: formats, Settings: settings})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res.Wire
}

func set(pairs ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(pairs); i += 2 {
		m[strings.ToLower(pairs[i])] = fmt.Sprintf("SET %s = '%s'", pairs[i], pairs[i+1])
	}
	return m
}

// column is one type's values, as SQL literals.
type column struct {
	typ    string
	values []string
}

var convertible = []column{
	{"bool", []string{"true", "false", "null"}},
	{"int2", []string{"0", "-32768", "32767", "7", "null"}},
	{"int4", []string{"0", "-2147483648", "2147483647", "-1", "42"}},
	{"int8", []string{"0", "-9223372036854775808", "9223372036854775807", "2502500"}},
	{"oid", []string{"0", "4294967295", "1259"}},
	{"numeric", []string{"0", "0.00", "-1.5", "123456789.000100", "1e-20", "'NaN'", "'Infinity'", "'-Infinity'",
		"10000", "0.0001", "99999999999999999999.99999", "-0.000000001", "1e100", "12345678901234567890123456789",
		"0.5", "-0.00005", "100000000", "2502500", "(2.50)::numeric(10,2)", "round(47.5, 2)", "1/3::numeric", "null"}},
	{"text", []string{"''", "'plain'", "'ünïcødé ✓'", "'tab\tand\nnewline'", "repeat('x', 5000)", "null"}},
	{"varchar(10)", []string{"'a'", "'ab  '", "''"}},
	{"char(5)", []string{"'a'", "'abcde'", "''"}},
	{"name", []string{"'pg_class'", "''"}},
	{"json", []string{`'{"a": [1, 2.5, "x"], "b" : null}'`, "'[]'", "'3'"}},
	{"jsonb", []string{`'{"a": [1, 2.5, "x"], "b" : null}'`, "'[]'", `'"é"'`}},
	{"uuid", []string{"'00000000-0000-0000-0000-000000000000'", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"}},
	{"bytea", []string{`'\x'`, `'\xdeadbeef00ff'`, "'abc'", "null"}},
	{"date", []string{"'2026-11-24'", "'2000-01-01'", "'1999-12-31'", "'0001-01-01 BC'", "'4713-01-01 BC'",
		"'5874897-12-31'", "'infinity'", "'-infinity'", "'1600-02-29'", "'10000-01-01'"}},
	{"time", []string{"'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'", "'01:02:03.000001'"}},
	{"timestamp", []string{"'2026-11-24 09:29:14.123456'", "'1999-12-31 23:59:59.999999'", "'2000-01-01 00:00:00'",
		"'0044-03-15 12:00:00 BC'", "'infinity'", "'-infinity'", "'294276-12-31 23:59:59.999999'", "'4714-11-24 00:00:00 BC'",
		"'1850-06-01 12:00:00.1'"}},
	{"timestamptz", []string{"'2026-11-24 09:29:14.123456+00'", "'2026-07-01 12:00:00+05:30'", "'1850-01-01 00:00:00+00'",
		"'1900-06-01 00:00:00+00'", "'0044-03-15 12:00:00+00 BC'", "'infinity'", "'-infinity'", "'2000-01-01 00:00:00+00'",
		"'1999-12-31 23:59:59.5-03:30'"}},
}

var exactFloats = []column{
	{"float8", []string{"0", "'-0'", "0.1", "1e308", "5e-324", "'Infinity'", "'-Infinity'", "1/3::float8", "2502500", "-123.456e-7"}},
	{"float4", []string{"0", "'-0'", "0.1", "3.4028235e38", "1e-45", "'Infinity'", "'-Infinity'", "1/3::float4", "16777217"}},
}

// Types and values whose binary form cannot be read off their text.
var refused = []column{
	{"interval", []string{"'1 day 02:03:04'"}},
	{"int4[]", []string{"'{1,2,3}'"}},
	{"text[]", []string{`'{"a b",NULL}'`}},
	{"timetz", []string{"'12:00:00+02'"}},
	{"money", []string{"12.5"}},
	{"inet", []string{"'10.0.0.1'"}},
	{"point", []string{"'(1,2)'"}},
}

// valuesQuery is a statement answering one column per type in cols, each
// with its values down the rows (NULL where a column has fewer).
func valuesQuery(cols []column) string {
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c.values))
	}
	var sb strings.Builder
	sb.WriteString("select * from (values ")
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for i, c := range cols {
			if i > 0 {
				sb.WriteString(", ")
			}
			v := "null"
			if r < len(c.values) {
				v = c.values[r]
			}
			fmt.Fprintf(&sb, "(%s)::%s", v, c.typ)
		}
		sb.WriteString(")")
	}
	sb.WriteString(") t(")
	for i := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "c%d", i)
	}
	sb.WriteString(")")
	return sb.String()
}

// TestToBinaryMatchesPostgreSQL: for every convertible type, under the
// settings that change text output, the text answer converted is byte for
// byte what PostgreSQL sends when asked for binary results, for all
// columns in binary and for a mix.
func TestToBinaryMatchesPostgreSQL(t *testing.T) {
	w := newWarehouse(t)
	settingsCases := []map[string]string{
		set("DateStyle", "ISO, MDY", "TimeZone", "UTC", "extra_float_digits", "1"),
		set("DateStyle", "ISO, DMY", "TimeZone", "Europe/Amsterdam", "extra_float_digits", "3"),
		set("DateStyle", "ISO", "TimeZone", "America/St_Johns", "extra_float_digits", "2", "IntervalStyle", "sql_standard"),
		set("DateStyle", "ISO", "TimeZone", "Asia/Kolkata", "client_encoding", "UTF8", "bytea_output", "hex"),
	}
	for i, settings := range settingsCases {
		for _, cols := range [][]column{convertible, exactFloats} {
			sql := valuesQuery(cols)
			text := w.answer(t, sql, []int16{0}, settings)
			mixed := make([]int16, len(cols))
			for k := range mixed {
				mixed[k] = int16(k % 2)
			}
			for _, formats := range [][]int16{{1}, mixed} {
				want := w.answer(t, sql, formats, settings)
				got, ok := pgformat.ToBinary(text, formats, pgformat.Options{ExactFloats: true})
				if !ok {
					t.Fatalf("settings %d, formats %v: not converted:\n%s", i, formats, sql)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("settings %d, formats %v: converted answer differs from PostgreSQL's binary answer: %s",
						i, formats, firstDifference(text, got, want, cols))
				}
			}
			// All text asked: the answer is the text answer itself.
			if got, ok := pgformat.ToBinary(text, nil, pgformat.Options{}); !ok || !bytes.Equal(got, text) {
				t.Fatalf("settings %d: formats none: %v, changed the answer", i, ok)
			}
		}
	}
}

// TestToBinaryRefuses: what cannot be converted exactly is refused, never
// guessed: unknown types, floats without exact output, dates and
// timestamps in other DateStyles, bytea in escape output, NaN floats,
// format counts that do not fit the columns, and answers that are not
// text.
func TestToBinaryRefuses(t *testing.T) {
	w := newWarehouse(t)
	iso := set("DateStyle", "ISO", "TimeZone", "UTC", "extra_float_digits", "3")
	for _, c := range refused {
		sql := valuesQuery([]column{c})
		if _, ok := pgformat.ToBinary(w.answer(t, sql, []int16{0}, iso), []int16{1}, pgformat.Options{ExactFloats: true}); ok {
			t.Errorf("%s converted", c.typ)
		}
		// Asked in text, such a column is no obstacle.
		sql = valuesQuery([]column{c, {"int4", []string{"1"}}})
		text := w.answer(t, sql, []int16{0}, iso)
		got, ok := pgformat.ToBinary(text, []int16{0, 1}, pgformat.Options{})
		if want := w.answer(t, sql, []int16{0, 1}, iso); !ok || !bytes.Equal(got, want) {
			t.Errorf("%s in text beside a binary int4: ok %v, same %v", c.typ, ok, bytes.Equal(got, want))
		}
	}
	cases := []struct {
		name     string
		sql      string
		settings map[string]string
		opts     pgformat.Options
		formats  []int16
	}{
		{"float8 without exact output", "select 0.1::float8", iso, pgformat.Options{}, []int16{1}},
		{"float8 NaN", "select 'NaN'::float8", iso, pgformat.Options{ExactFloats: true}, []int16{1}},
		{"float4 NaN", "select 'NaN'::float4", iso, pgformat.Options{ExactFloats: true}, []int16{1}},
		{"date in SQL style", "select '2026-11-24'::date", set("DateStyle", "SQL, DMY"), pgformat.Options{}, []int16{1}},
		{"date in Postgres style", "select '2026-11-24'::date", set("DateStyle", "Postgres, MDY"), pgformat.Options{}, []int16{1}},
		{"date in German style", "select '2026-11-24'::date", set("DateStyle", "German"), pgformat.Options{}, []int16{1}},
		{"timestamptz in SQL style", "select now()", set("DateStyle", "SQL, MDY"), pgformat.Options{}, []int16{1}},
		{"timestamp in Postgres style", "select localtimestamp", set("DateStyle", "Postgres"), pgformat.Options{}, []int16{1}},
		{"bytea escape", `select '\xdeadbeef'::bytea`, set("bytea_output", "escape"), pgformat.Options{}, []int16{1}},
		{"two formats for one column", "select 1", iso, pgformat.Options{}, []int16{1, 1}},
		{"format 2", "select 1", iso, pgformat.Options{}, []int16{2}},
	}
	for _, c := range cases {
		text := w.answer(t, c.sql, []int16{0}, c.settings)
		if got, ok := pgformat.ToBinary(text, c.formats, c.opts); ok {
			t.Errorf("%s: converted to %x", c.name, got)
		}
	}
	bin := w.answer(t, "select 1", []int16{1}, iso)
	if _, ok := pgformat.ToBinary(bin, []int16{1}, pgformat.Options{}); ok {
		t.Errorf("a binary answer was converted again")
	}
	for _, bad := range [][]byte{nil, []byte("C\x00\x00\x00\x0bSELECT 1\x00"), []byte("T\x00\x00\x00\xffshort")} {
		if _, ok := pgformat.ToBinary(bad, []int16{1}, pgformat.Options{}); ok {
			t.Errorf("%q converted", bad)
		}
	}
}

// FuzzToBinary: whatever the bytes, ToBinary neither panics nor changes
// its input, and what it returns is a sequence of whole messages.
func FuzzToBinary(f *testing.F) {
	f.Add([]byte("T\x00\x00\x00\x1b\x00\x01n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x0142C\x00\x00\x00\x0dSELECT 1\x00"), int16(1))
	f.Fuzz(func(t *testing.T, answer []byte, format int16) {
		in := bytes.Clone(answer)
		out, ok := pgformat.ToBinary(answer, []int16{format}, pgformat.Options{ExactFloats: true})
		if !bytes.Equal(in, answer) {
			t.Fatal("input modified")
		}
		if !ok {
			return
		}
		for p := 0; p < len(out); {
			if len(out)-p < 5 {
				t.Fatalf("trailing %d bytes", len(out)-p)
			}
			l := int(uint32(out[p+1])<<24 | uint32(out[p+2])<<16 | uint32(out[p+3])<<8 | uint32(out[p+4]))
			if l < 4 || p+1+l > len(out) {
				t.Fatalf("message at %d has length %d of %d", p, l, len(out)-p)
			}
			p += 1 + l
		}
	})
}

// firstDifference describes where two answers first differ: the row, the
// column's type, the text value and both binary values.
func firstDifference(text, got, want []byte, cols []column) string {
	tm, gm, wm := messages(text), messages(got), messages(want)
	if len(gm) != len(wm) {
		return fmt.Sprintf("%d messages, want %d", len(gm), len(wm))
	}
	for i := range gm {
		if bytes.Equal(gm[i], wm[i]) {
			continue
		}
		if gm[i][0] != 'D' || i >= len(tm) {
			return fmt.Sprintf("message %d (%c): got %x, want %x", i, gm[i][0], gm[i], wm[i])
		}
		tv, gv, wv := fields(tm[i]), fields(gm[i]), fields(wm[i])
		for c := range wv {
			if c < len(gv) && !bytes.Equal(gv[c], wv[c]) {
				return fmt.Sprintf("row %d, %s %q: got %x, want %x", i-1, cols[c].typ, tv[c], gv[c], wv[c])
			}
		}
		return fmt.Sprintf("row %d: got %x, want %x", i-1, gm[i], wm[i])
	}
	return "same messages"
}

func messages(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 5 {
		n := 1 + int(uint32(b[1])<<24|uint32(b[2])<<16|uint32(b[3])<<8|uint32(b[4]))
		if n > len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func fields(row []byte) [][]byte {
	var out [][]byte
	n := int(row[5])<<8 | int(row[6])
	p := 7
	for range n {
		l := int32(uint32(row[p])<<24 | uint32(row[p+1])<<16 | uint32(row[p+2])<<8 | uint32(row[p+3]))
		p += 4
		if l < 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, row[p:p+int(l)])
		p += int(l)
	}
	return out
}
