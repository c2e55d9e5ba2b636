//go:build cgo

package snowflake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Kolkata without a system zoneinfo

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/snowflakedb/gosnowflake"
	"github.com/sqlcached/sqlcached/executor"
	sfenv "github.com/sqlcached/sqlcached/internal/testenv/snowflake"
)

func TestMain(m *testing.M) {
	// The driver logs every failed statement at level error; the tests
	// fail statements on purpose.
	_ = gosnowflake.GetLogger().SetLogLevel("fatal")
	os.Exit(m.Run())
}

// start starts a stand-in and opens a Warehouse on it.
func start(t *testing.T, opts sfenv.Options) (*sfenv.Server, *Warehouse) {
	t.Helper()
	s, err := sfenv.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(Config{DSN: s.DSN("tester", "secret", "TESTDB"), MaxConns: 2})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Close()
		if err := s.Close(); err != nil {
			t.Errorf("closing the stand-in: %v", err)
		}
	})
	return s, w
}

const typesSQL = `select 12345::DECIMAL(18,0) n0, 123.45::DECIMAL(10,2) n2, -0.05::DECIMAL(10,2) nneg,
	12345678901234567890123::DECIMAL(38,0) nbig, 1234567890123456.78::DECIMAL(38,2) nbigs,
	1.5::DOUBLE f, 'NaN'::DOUBLE fnan, '-Infinity'::DOUBLE finf, 1e20::DOUBLE fbig, 0.1::DOUBLE f01,
	'héllo' s, true b, false bf, DATE '2024-01-02' d, TIME '03:04:05.123456' t,
	TIMESTAMP '2024-01-02 03:04:05.123456' ntz, TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' ltz,
	to_timestamp_tz('2024-01-02 03:04:05.123456 +05:30') tz,
	parse_json('{"b":1,"a":[1,2]}') v, {'x': 1} o, [1, 2] a, '\xAB\x01'::BLOB bin, NULL::INTEGER nul`

var wantTypes = []want{
	{"n0", 20, -1, "12345"},
	{"n2", 1700, numeric(10, 2), "123.45"},
	{"nneg", 1700, numeric(10, 2), "-0.05"},
	{"nbig", 1700, numeric(38, 0), "12345678901234567890123"},
	{"nbigs", 1700, numeric(38, 2), "1234567890123456.78"},
	{"f", 701, -1, "1.5"},
	{"fnan", 701, -1, "NaN"},
	{"finf", 701, -1, "-Infinity"},
	{"fbig", 701, -1, "1e+20"},
	{"f01", 701, -1, "0.1"},
	{"s", 25, -1, "héllo"},
	{"b", 16, -1, "t"},
	{"bf", 16, -1, "f"},
	{"d", 1082, -1, "2024-01-02"},
	{"t", 1083, -1, "03:04:05.123456"},
	{"ntz", 1114, -1, "2024-01-02 03:04:05.123456"},
	{"ltz", 1184, -1, "2024-01-02 03:04:05.123456+00"},
	{"tz", 1184, -1, "2024-01-01 21:34:05.123456+00"},
	{"v", 114, -1, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": 1\n}"},
	{"o", 114, -1, "{\n  \"x\": 1\n}"},
	{"a", 114, -1, "[\n  1,\n  2\n]"},
	{"bin", 17, -1, `\xab01`},
	{"nul", 20, -1, "NULL"},
}

func TestTypesArriveAsPostgresText(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			_, w := start(t, sfenv.Options{JSON: json})
			res, err := w.Execute(context.Background(), &executor.Request{SQL: typesSQL})
			if err != nil {
				t.Fatal(err)
			}
			a := decode(t, res.Wire)
			if res.Tag != "SELECT 1" || a.tag != "SELECT 1" || res.Rows != 1 || len(a.rows) != 1 {
				t.Fatalf("tag %q/%q, %d rows, want SELECT 1", res.Tag, a.tag, len(a.rows))
			}
			checkRow(t, a, wantTypes)
		})
	}
}

func TestTimeZoneSettingPrintsTimestamps(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			_, w := start(t, sfenv.Options{JSON: json})
			res, err := w.Execute(context.Background(), &executor.Request{
				SQL:      `select TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' ltz, to_timestamp_tz('2024-01-02 03:04:05 -02:00') tz`,
				Settings: map[string]string{"TimeZone": "SET TimeZone = 'Asia/Kolkata'"},
			})
			if err != nil {
				t.Fatal(err)
			}
			checkRow(t, decode(t, res.Wire), []want{
				{"ltz", 1184, -1, "2024-01-02 08:34:05.123456+05:30"},
				{"tz", 1184, -1, "2024-01-02 10:34:05+05:30"},
			})
		})
	}
}

func TestParamsBoundAsText(t *testing.T) {
	t.Parallel()
	_, w := start(t, sfenv.Options{})
	res, err := w.Execute(context.Background(), &executor.Request{
		SQL:    `select $1::INTEGER + 1 AS n, $2::VARCHAR AS s, '$1' AS lit`,
		Params: [][]byte{[]byte("41"), nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRow(t, decode(t, res.Wire), []want{{"n", 20, -1, "42"}, {"s", 25, -1, "NULL"}, {"lit", 25, -1, "$1"}})

	_, err = w.Execute(context.Background(), &executor.Request{
		SQL: `select $1::INTEGER`, Params: [][]byte{{0, 0, 0, 1}}, ParamFormats: []int16{1},
	})
	if !errors.Is(err, ErrBinaryParams) {
		t.Errorf("binary parameter: got %v, want ErrBinaryParams", err)
	}
}

func TestTimeoutCancelsStatementOnServer(t *testing.T) {
	t.Parallel()
	s, w := start(t, sfenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := w.Execute(ctx, &executor.Request{SQL: `select count(*) from range(100000000) a, range(1000) b`})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Execute returned %v after it began, want soon after the 300ms deadline", d)
	}
	for {
		qs := s.Queries()
		if last := qs[len(qs)-1]; last.Err != "" {
			if !last.Canceled {
				t.Fatalf("the statement ended without being cancelled: %+v", last)
			}
			break
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatal("the statement still runs on the server 5s after the deadline")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDashboardBecomesQueryTag(t *testing.T) {
	t.Parallel()
	s, w := start(t, sfenv.Options{})
	_, err := w.Execute(context.Background(), &executor.Request{
		SQL:      "select 1 AS one",
		Settings: map[string]string{"sqlcached.dashboard": "SET sqlcached.dashboard = 'Sales ''EU'''"},
	})
	if err != nil {
		t.Fatal(err)
	}
	qs := s.Queries()
	if last := qs[len(qs)-1]; last.SQL != "select 1 AS one" || last.QueryTag != "Sales 'EU'" {
		t.Errorf("server saw %q with QUERY_TAG %q, want QUERY_TAG %q", last.SQL, last.QueryTag, "Sales 'EU'")
	}
	if _, err := w.Execute(context.Background(), &executor.Request{SQL: "select 2 AS two", Dashboard: "Ops"}); err != nil {
		t.Fatal(err)
	}
	qs = s.Queries()
	if last := qs[len(qs)-1]; last.QueryTag != "Ops" {
		t.Errorf("Request.Dashboard: server saw QUERY_TAG %q, want Ops", last.QueryTag)
	}
	for _, q := range qs {
		if strings.Contains(strings.ToUpper(q.SQL), "ALTER SESSION") {
			t.Errorf("the session was altered: %q", q.SQL)
		}
	}
}

func TestErrorsCarrySQLState(t *testing.T) {
	t.Parallel()
	_, w := start(t, sfenv.Options{})
	for _, c := range []struct{ sql, code string }{
		{"select * from no_such_table", "42P01"},
		{"selec 1", "42000"},
	} {
		_, err := w.Execute(context.Background(), &executor.Request{SQL: c.sql})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.code || pe.Message == "" || !strings.HasPrefix(pe.Detail, "Snowflake error") {
			t.Errorf("%s: got %#v, want a PgError with SQLSTATE %s", c.sql, err, c.code)
		}
	}
}

func TestMultiChunkAnswerArrivesWhole(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			_, w := start(t, sfenv.Options{ChunkRows: 10, JSON: json})
			res, err := w.Execute(context.Background(), &executor.Request{
				SQL: `select i, (i / 100.0)::DECIMAL(12,2) AS d from range(1000) t(i) order by i`,
			})
			if err != nil {
				t.Fatal(err)
			}
			a := decode(t, res.Wire)
			if res.Rows != 1000 || len(a.rows) != 1000 || a.tag != "SELECT 1000" {
				t.Fatalf("%d rows, tag %q, want 1000", len(a.rows), a.tag)
			}
			for i, r := range a.rows {
				if *r[0] != fmt.Sprint(i) || *r[1] != fmt.Sprintf("%d.%02d", i/100, i%100) {
					t.Fatalf("row %d: %s %s", i, *r[0], *r[1])
				}
			}
		})
	}
}

func TestMaxBytesStopsLargeAnswer(t *testing.T) {
	t.Parallel()
	_, w := start(t, sfenv.Options{ChunkRows: 100})
	_, err := w.Execute(context.Background(), &executor.Request{
		SQL: `select i, repeat('x', 100) from range(10000) t(i)`, MaxBytes: 4096,
	})
	if !errors.Is(err, executor.ErrTooLarge) {
		t.Fatalf("got %v, want executor.ErrTooLarge", err)
	}
	res, err := w.Execute(context.Background(), &executor.Request{SQL: `select 1 AS one`, MaxBytes: 4096})
	if err != nil || res.Rows != 1 {
		t.Fatalf("small answer under the bound: %v", err)
	}
}

func TestCommandTags(t *testing.T) {
	t.Parallel()
	_, w := start(t, sfenv.Options{})
	for _, c := range []struct{ sql, tag string }{
		{"create table t (i integer, s varchar)", "CREATE"},
		{"insert into t values (1, 'a'), (2, 'b')", "INSERT 0 2"},
		{"update t set s = 'c' where i = 1", "UPDATE 1"},
		{"delete from t", "DELETE 2"},
		{"/* a comment */ select * from t", "SELECT 0"},
	} {
		res, err := w.Execute(context.Background(), &executor.Request{SQL: c.sql})
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if a := decode(t, res.Wire); res.Tag != c.tag || a.tag != c.tag {
			t.Errorf("%s: tag %q, wire %q, want %q", c.sql, res.Tag, a.tag, c.tag)
		}
	}
}

func TestBinaryResultFormat(t *testing.T) {
	t.Parallel()
	_, w := start(t, sfenv.Options{})
	res, err := w.Execute(context.Background(), &executor.Request{
		SQL: `select 7::DECIMAL(18,0) AS n, 'x' AS s`, ResultFormats: []int16{1, 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := decode(t, res.Wire)
	if a.formats[0] != 1 || a.formats[1] != 0 || *a.rows[0][0] != "\x00\x00\x00\x00\x00\x00\x00\x07" || *a.rows[0][1] != "x" {
		t.Errorf("formats %v, row %q %q, want int8 7 in binary and x in text", a.formats, *a.rows[0][0], *a.rows[0][1])
	}
	_, err = w.Execute(context.Background(), &executor.Request{
		SQL: `select [1] AS a, TIME '01:02:03' AS t`, ResultFormats: []int16{1},
	})
	if err != nil {
		t.Fatalf("json and time in binary: %v", err)
	}
}

func TestDescribeWithoutRunning(t *testing.T) {
	t.Parallel()
	s, w := start(t, sfenv.Options{})
	d, err := w.Describe(context.Background(), &executor.Request{SQL: `select $1::INTEGER AS n, 'x' AS s`})
	if err != nil {
		t.Fatal(err)
	}
	a := decode(t, d.Fields)
	if len(d.ParamOIDs) != 1 || d.ParamOIDs[0] != 25 || len(a.oids) != 2 || a.oids[0] != 20 || a.oids[1] != 25 {
		t.Errorf("params %v, columns %v %v, want [25] and n int8, s text", d.ParamOIDs, a.names, a.oids)
	}
	if len(a.rows) != 0 {
		t.Errorf("describe returned rows: %v", a.rows)
	}
	if qs := s.Queries(); len(qs) != 1 {
		t.Errorf("server saw %+v, want one describe request", qs)
	}
}

func TestTimestampScalesArriveAsPostgresText(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			t.Parallel()
			_, w := start(t, sfenv.Options{JSON: json})
			res, err := w.Execute(context.Background(), &executor.Request{
				SQL: `select '2024-01-02 03:04:05.123456789'::TIMESTAMP_NS ns, '1969-12-31 23:59:59.5'::TIMESTAMP_MS ms,
					'1901-02-03 04:05:06'::TIMESTAMP_S s, '1960-01-02 03:04:05.25'::TIMESTAMP neg, TIME '23:59:59' t`,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkRow(t, decode(t, res.Wire), []want{
				{"ns", 1114, -1, "2024-01-02 03:04:05.123457"},
				{"ms", 1114, -1, "1969-12-31 23:59:59.5"},
				{"s", 1114, -1, "1901-02-03 04:05:06"},
				{"neg", 1114, -1, "1960-01-02 03:04:05.25"},
				{"t", 1083, -1, "23:59:59"},
			})
		})
	}
}

// TestScaledNumbersArriveExactly sends 2000 random NUMBER(38,s) values,
// up to 38 digits and negative half the time, and wants each back as the
// text that was inserted. Arrow chunks of 5 rows carry them in every
// integer width and in Decimal128. JSON results stay below 2^126, where
// the driver's 127-bit parse can still tell neighbours apart.
func TestScaledNumbersArriveExactly(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			t.Parallel()
			_, w := start(t, sfenv.Options{JSON: json, ChunkRows: 5})
			rng := rand.New(rand.NewPCG(1, uint64(len(fmt.Sprint(json)))))
			maxDigits := 38
			if json {
				maxDigits = 37
			}
			for _, scale := range []int{1, 2, 6, 12, 20} {
				values := randomDecimals(rng, 400, scale, maxDigits)
				if scale == 2 {
					values = append(values, "80190000000009824516530.10", "-167299000000020631484713.21",
						"191056000000023578839672.24", "317760000000039298066120.40")
				}
				var sql strings.Builder
				fmt.Fprintf(&sql, "select i, v::DECIMAL(38,%d) AS v from (values ", scale)
				for i, v := range values {
					if i > 0 {
						sql.WriteString(", ")
					}
					fmt.Fprintf(&sql, "(%d, '%s')", i, v)
				}
				sql.WriteString(") t(i, v) order by i")
				res, err := w.Execute(context.Background(), &executor.Request{SQL: sql.String()})
				if err != nil {
					t.Fatalf("scale %d: %v", scale, err)
				}
				a := decode(t, res.Wire)
				if len(a.rows) != len(values) || a.typmods[1] != numeric(38, scale) {
					t.Fatalf("scale %d: %d rows, typmod %d, want %d rows of numeric(38,%d)", scale, len(a.rows), a.typmods[1], len(values), scale)
				}
				for i, v := range values {
					if got := *a.rows[i][1]; got != v {
						t.Errorf("NUMBER(38,%d): got %s, want %s", scale, got, v)
					}
				}
			}
		})
	}
}

// randomDecimals makes n decimals with exactly scale digits after the
// point and 1 to maxDigits digits in all.
func randomDecimals(rng *rand.Rand, n, scale, maxDigits int) []string {
	out := make([]string, n)
	for i := range out {
		digits := make([]byte, 1+rng.IntN(maxDigits))
		for j := range digits {
			digits[j] = byte('0' + rng.IntN(10))
		}
		s := strings.TrimLeft(string(digits), "0")
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
		if rng.IntN(2) == 0 && strings.Trim(s, "0.") != "" {
			s = "-" + s
		}
		out[i] = s
	}
	return out
}
