package bench

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pgbenchOutput = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 123456
number of failed transactions: 0 (0.000%)
latency average = 0.648 ms
initial connection time = 5.123 ms
tps = 12345.678901 (without initial connection time)
`

func TestParsePgbenchSummary(t *testing.T) {
	s, err := ParsePgbenchSummary(pgbenchOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{TPS: 12345.678901, Avg: 0.648, Transactions: 123456}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if _, err := ParsePgbenchSummary("pgbench: error: connection refused\n"); err == nil {
		t.Error("no error for output without a tps line")
	}
	none := strings.Replace(pgbenchOutput, "processed: 123456", "processed: 0", 1)
	if _, err := ParsePgbenchSummary(none); err == nil {
		t.Error("no error for a run without transactions")
	}
}

func TestPreparedUnsupported(t *testing.T) {
	for _, out := range []string{
		`pgbench: error: client 3 script 0 aborted in command 1 query 0: ERROR:  prepared statement "P_0" already exists`,
		`pgbench: error: client 0 script 0 aborted in command 1 query 0: ERROR:  prepared statement "P_0" does not exist`,
	} {
		if !preparedUnsupported.MatchString(out) {
			t.Errorf("not recognised: %s", out)
		}
	}
	if preparedUnsupported.MatchString(`ERROR:  relation "pgbench_accounts" does not exist`) {
		t.Error("a missing table taken for a missing prepared statement")
	}
}

func TestReadLatencyLogs(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "pgbench_log.123")
	b := filepath.Join(dir, "pgbench_log.123.1")
	os.WriteFile(a, []byte("0 0 250 0 1700000000 1\n0 1 300 0 1700000000 2\n1 0 failed 0 1700000000 3\n"), 0o644)
	os.WriteFile(b, []byte("4 0 1200 0 1700000000 9\n"), 0o644)
	lat, err := ReadLatencyLogs([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 3 || lat[0] != 250 || lat[1] != 300 || lat[2] != 1200 {
		t.Errorf("got %v", lat)
	}
	os.WriteFile(a, []byte("garbage\n"), 0o644)
	if _, err := ReadLatencyLogs([]string{a}); err == nil {
		t.Error("no error for a line that is not a transaction")
	}
}

func TestPercentileMedian(t *testing.T) {
	xs := make([]int64, 100)
	for i := range xs {
		xs[i] = int64(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 50}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %d, want %d", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
	if Median([]float64{3, 1, 2}) != 2 || Median([]float64{4, 1, 2, 3}) != 2.5 || !math.IsNaN(Median(nil)) {
		t.Error("median")
	}
}

func TestMarkdownRatios(t *testing.T) {
	simple := Cell{"select1", 8, "simple"}
	prepared := Cell{"select1", 8, "prepared"}
	ok := func(tps float64) Result { return Result{TPS: tps, Avg: 1, P50: 0.5, P99: 2} }
	unsupported := Result{Err: errors.New(`prepared statement "P_0" does not exist`), Unsupported: true}
	r := &PassthroughResult{
		Config: PassthroughConfig{RoundsConfig: RoundsConfig{Contenders: []string{Direct, PgBouncer, SqlCached}, Rounds: 3}},
		Cells:  []Cell{simple, prepared},
		Runs: map[Cell]map[string][]Result{
			simple: {
				Direct:    {ok(300), ok(100), ok(200)},
				PgBouncer: {ok(100), ok(110), ok(90)},
				SqlCached: {ok(95), ok(80), ok(90)},
			},
			prepared: {
				Direct:    {ok(400), ok(400), ok(400)},
				PgBouncer: {unsupported},
				SqlCached: {ok(120), ok(120), ok(120)},
			},
		},
	}
	md := r.Markdown("")
	for _, want := range []string{
		"| select1 | 8 | simple | 200 | 1.00 / 0.50 / 2.00 | 100 | 1.00 / 0.50 / 2.00 | 90 | 1.00 / 0.50 / 2.00 | 0.90× | 0.45× |",
		"| select1 | 8 | prepared | 400 | 1.00 / 0.50 / 2.00 | unsupported |  | 120 | 1.00 / 0.50 / 2.00 | 1.20× (vs simple) | 0.30× |",
		"| select1 | 8 | simple | 300, 100, 200 | 100, 110, 90 | 95, 80, 90 | 0.95, 0.73, 1.00 |",
		"| select1 | 8 | prepared | 400, 400, 400 | unsupported | 120, 120, 120 | 1.20, 1.09, 1.33 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
