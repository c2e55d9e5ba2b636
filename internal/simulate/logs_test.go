package simulate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixtureStatements are the statements every PostgreSQL fixture holds, in
// the order they started: what a log_min_duration_statement = 0 log of
// one dashboard refresh and one write says.
var fixtureStatements = []struct {
	start  string // time of day, UTC
	ms     float64
	sql    string
	params [][]byte
}{
	{"07:10:00.000", 40, "select region, sum(amount) from sales group by region", nil},
	{"07:10:00.101", 5, "select * from sales where region = $1", [][]byte{[]byte("north")}},
	{"07:10:01.000", 40, "select region, sum(amount) from sales group by region", nil},
	{"07:10:01.040", 20, "select region,\n       count(*)\n  from sales\n group by region", nil},
	{"07:10:01.107", 3, "select * from sales where region = $1 and note = $2", [][]byte{[]byte("it's"), nil}},
	{"07:10:02.000", 2, "insert into sales (region, amount) values ('north', 1)", nil},
	{"07:10:02.500", 40, "select region, sum(amount) from sales group by region", nil},
}

func checkFixture(t *testing.T, recs []Record) {
	t.Helper()
	if len(recs) != len(fixtureStatements) {
		for _, r := range recs {
			t.Logf("line %d: %q", r.Line, r.SQL)
		}
		t.Fatalf("%d statements, want %d", len(recs), len(fixtureStatements))
	}
	for i, want := range fixtureStatements {
		r := recs[i]
		if got := r.Start.UTC().Format("15:04:05.000"); got != want.start {
			t.Errorf("statement %d starts at %s, want %s", i, got, want.start)
		}
		if got := float64(r.Duration) / float64(time.Millisecond); got != want.ms {
			t.Errorf("statement %d took %v ms, want %v", i, got, want.ms)
		}
		if r.SQL != want.sql {
			t.Errorf("statement %d: %q, want %q", i, r.SQL, want.sql)
		}
		if len(r.Params) != len(want.params) || (len(want.params) > 0 && !reflect.DeepEqual(r.Params, want.params)) {
			t.Errorf("statement %d parameters %q, want %q", i, r.Params, want.params)
		}
	}
}

func TestParseCSVLog(t *testing.T) {
	t.Parallel()
	recs, st, err := ParseFile("testdata/pg15.csv", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != FormatCSVLog {
		t.Errorf("detected %s, want %s", st.Format, FormatCSVLog)
	}
	checkFixture(t, recs)
	// Parse and bind steps, the error and a portal's later fetch.
	if st.Entries != 11 || st.Skipped != 4 {
		t.Errorf("entries %d, skipped %d; want 11 and 4", st.Entries, st.Skipped)
	}
	r := recs[0]
	if r.User != "grafana" || r.Database != "analytics" || r.ApplicationName != "Grafana" || r.Session != "4101" || r.Line != 1 {
		t.Errorf("first statement %+v", r)
	}
	if recs[5].User != "loader" {
		t.Errorf("the insert's user %q, want loader", recs[5].User)
	}
}

func TestParseStderrLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, user string
		skipped    int
	}{
		{"testdata/pg-stderr-userdb.log", "grafana", 4}, // parse, bind, the error, a checkpoint
		{"testdata/pg-stderr-default.log", "", 3},       // PostgreSQL's default '%m [%p] ': no user
	} {
		recs, st, err := ParseFile(tc.file, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Format != FormatStderr {
			t.Errorf("%s: detected %s", tc.file, st.Format)
		}
		checkFixture(t, recs)
		if st.Skipped != tc.skipped {
			t.Errorf("%s: skipped %d, want %d", tc.file, st.Skipped, tc.skipped)
		}
		if recs[0].User != tc.user || recs[0].Session != "4101" {
			t.Errorf("%s: user %q session %q", tc.file, recs[0].User, recs[0].Session)
		}
	}
}

func TestParseStderrOtherPrefix(t *testing.T) {
	t.Parallel()
	log := "2026-12-03 07:10:00 UTC:127.0.0.1(5432):bi@dw:[77]:LOG:  duration: 1.500 ms  statement: select 1\n" +
		"2026-12-03 07:10:01 UTC:127.0.0.1(5432):bi@dw:[77]:LOG:  duration: 2.000 ms  statement: select 2\n"
	recs, _, err := Parse(strings.NewReader(log), "rds.log", ParseOptions{Format: FormatStderr, Prefix: "%t:%r:%u@%d:[%p]:"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].User != "bi" || recs[0].Database != "dw" || recs[0].Session != "77" || recs[1].SQL != "select 2" {
		t.Fatalf("records %+v", recs)
	}
}

func TestParseSnowflakeHistory(t *testing.T) {
	t.Parallel()
	recs, st, err := ParseFile("testdata/snowflake-query-history.csv", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != FormatSnowflake || len(recs) != 4 || st.Skipped != 1 {
		t.Fatalf("format %s, %d statements, %d skipped; want snowflake-csv, 4, 1 (the failed query)", st.Format, len(recs), st.Skipped)
	}
	r := recs[0]
	want := time.Date(2026, 12, 3, 15, 10, 0, 0, time.UTC)
	if !r.Start.Equal(want) || r.Duration != 1200*time.Millisecond || r.User != "LOOKER" || r.Database != "ANALYTICS" ||
		r.Tag != "sales-dashboard" || r.Session != "1001" || r.Rows != 4 {
		t.Errorf("first statement %+v", r)
	}
	if !strings.Contains(recs[3].SQL, "\n  sum(amount)\n") || recs[3].Rows != 120000 {
		t.Errorf("last statement %+v", recs[3])
	}
}

func TestParseErrorsNameFileLineAndReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "2026-12-03 07:10:00.040 UTC,u,d,1,h,s,1,SELECT,2026-12-03 07:00:00 UTC,3/1,0,LOG,00000,\"duration: 1.000 ms  statement: select 1\",,,,,,,,,app,client backend,,0\n"
	for _, tc := range []struct {
		name, body string
		opt        ParseOptions
		line       int
		reason     string
	}{
		{"bare-quote.csv", good + good + "2026-12-03 07:10:00.040 UTC,u,d,1,h,s,1,SELECT,x,3/1,0,LOG,00000,dur\"ation,,,,,,,,,app,client backend,,0\n",
			ParseOptions{Format: FormatCSVLog}, 3, `bare " in non-quoted-field`},
		{"short.csv", good + "a,b,c\n", ParseOptions{Format: FormatCSVLog}, 2, "3 fields, want 23 to 26"},
		{"bad-time.csv", strings.Replace(good, "2026-12-03 07:10:00.040 UTC", "yesterday", 1), ParseOptions{Format: FormatCSVLog}, 1, `bad log time "yesterday"`},
		{"bad-params.csv", strings.Replace(strings.Replace(good, "statement: select 1\",", "execute <unnamed>: select $1\",\"parameters: $1 = 5\"", 1), "select 1", "select $1", 1),
			ParseOptions{Format: FormatCSVLog}, 1, "bad parameters in DETAIL"},
		{"wrong-prefix.log", "\n12/03/2026 07:10 LOG: duration: 1 ms  statement: select 1\n", ParseOptions{Format: FormatStderr}, 2, `does not start with the log_line_prefix "%m [%p] %q%u@%d "`},
		{"no-time.log", "x\n", ParseOptions{Format: FormatStderr, Prefix: "[%p] "}, 0, "has no time"},
		{"no-text.csv", "START_TIME,TOTAL_ELAPSED_TIME\n", ParseOptions{Format: FormatSnowflake}, 1, "no QUERY_TEXT column"},
		{"sf-time.csv", "query_text,start_time,total_elapsed_time\nselect 1,2026-12-03 07:00:00.000 -0800,5\nselect 1,soon,5\n", ParseOptions{}, 3, `START_TIME "soon" is not a time`},
		{"sf-elapsed.csv", "QUERY_TEXT,START_TIME,TOTAL_ELAPSED_TIME\nselect 1,2026-12-03 07:00:00.000 -0800,fast\n", ParseOptions{}, 2, "TOTAL_ELAPSED_TIME \"fast\" is not a number"},
		{"sf-fields.csv", "QUERY_TEXT,START_TIME,TOTAL_ELAPSED_TIME\nselect 1,2026-12-03 07:00:00.000 -0800\n", ParseOptions{}, 2, "2 fields, the header has 3"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := ParseFile(path, tc.opt)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want a ParseError", tc.name, err)
			continue
		}
		if pe.File != path || pe.Line != tc.line || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("%s: %v; want line %d and %q", tc.name, err, tc.line, tc.reason)
		}
		if tc.line > 0 && !strings.HasPrefix(err.Error(), path+":") {
			t.Errorf("%s: %q does not start with file:line", tc.name, err)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	got, err := parseParams(`$1 = '5', $2 = NULL, $3 = 'a, $4 = ''b''', $4 = ''`)
	want := [][]byte{[]byte("5"), nil, []byte("a, $4 = 'b'"), []byte("")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseParams = %q, %v; want %q", got, err, want)
	}
}

// FuzzParse: any input is read or refused with a ParseError, never a
// panic, in every format.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"pg15.csv", "pg-stderr-userdb.log", "pg-stderr-default.log", "snowflake-query-history.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range Formats {
			recs, _, err := Parse(strings.NewReader(string(b)), "fuzz", ParseOptions{Format: format})
			var pe *ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("%s: %v is not a ParseError", format, err)
			}
			for i := 1; i < len(recs); i++ {
				if recs[i].Start.Before(recs[i-1].Start) {
					t.Fatalf("%s: records out of order", format)
				}
			}
		}
	})
}
