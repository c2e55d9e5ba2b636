package snowflake

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor"
)

// TestLiveSnowflake runs a few types against a real Snowflake account,
// named by SNOWFLAKE_TEST_DSN (a gosnowflake DSN); it is the only test
// that skips, and only without that variable.
func TestLiveSnowflake(t *testing.T) {
	dsn := os.Getenv("SNOWFLAKE_TEST_DSN")
	if dsn == "" {
		t.Skip("SNOWFLAKE_TEST_DSN is not set")
	}
	w, err := Open(Config{DSN: dsn, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := w.Execute(ctx, &executor.Request{
		SQL: `select 42::NUMBER(10,0) AS n, 1234567.891::NUMBER(20,3) AS d, 1.5::FLOAT AS f, 'x'::VARCHAR AS s,
			true AS b, '2024-01-02'::DATE AS dt, '2024-01-02 03:04:05.123456'::TIMESTAMP_NTZ AS ntz,
			'2024-01-02 03:04:05.123456 +00:00'::TIMESTAMP_TZ AS tz, PARSE_JSON('[1]') AS v, TO_BINARY('AB01', 'HEX') AS bin`,
		Settings: map[string]string{"sqlcached.dashboard": "SET sqlcached.dashboard = 'sqlcached live test'"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, res.Wire)
	if len(got.rows) != 1 {
		t.Fatalf("%d rows, want 1", len(got.rows))
	}
	checkRow(t, got, []want{
		{"N", 20, -1, "42"},
		{"D", 1700, numeric(20, 3), "1234567.891"},
		{"F", 701, -1, "1.5"},
		{"S", 25, -1, "x"},
		{"B", 16, -1, "t"},
		{"DT", 1082, -1, "2024-01-02"},
		{"NTZ", 1114, -1, "2024-01-02 03:04:05.123456"},
		{"TZ", 1184, -1, "2024-01-02 03:04:05.123456+00"},
		{"V", 114, -1, "[\n  1\n]"},
		{"BIN", 17, -1, `\xab01`},
	})
}
