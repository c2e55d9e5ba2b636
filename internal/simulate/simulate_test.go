package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/config"
)

var t0 = time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)

// rec is a statement of user u in session s at offset at, taking dur.
func rec(at, dur time.Duration, s, u, sql string, params ...string) Record {
	r := Record{Start: t0.Add(at), Duration: dur, Session: s, User: u, Database: "dw", SQL: sql, Rows: -1}
	for _, p := range params {
		r.Params = append(r.Params, []byte(p))
	}
	return r
}

func runOne(t *testing.T, recs []Record, opt Options) Result {
	t.Helper()
	rep, err := Run(recs, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	return rep.Results[0]
}

func TestRunFixture(t *testing.T) {
	t.Parallel()
	recs, _, err := ParseFile("testdata/pg15.csv", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The second aggregate is a hit; the insert invalidates sales, so the
	// third is a miss.
	got := runOne(t, recs, Options{TTLs: []time.Duration{time.Minute}, L1Sizes: []int64{64 << 20}})
	if got.Hits != 1 || got.Misses != 5 || got.Bypass != 1 || got.Executions != 6 || got.Saved != 40*time.Millisecond {
		t.Errorf("got %+v; want 1 hit saving 40ms, 5 misses, 1 bypass", got)
	}
}

func TestRunTTLCollapseAndKeys(t *testing.T) {
	t.Parallel()
	q := "select region, sum(amount) from sales group by region"
	recs := []Record{
		rec(0, 500*time.Millisecond, "1", "ann", q),                            // miss
		rec(100*time.Millisecond, 10*time.Millisecond, "2", "bob", q),          // another user: its own key, a miss
		rec(200*time.Millisecond, 450*time.Millisecond, "3", "ann", q),         // in flight: collapsed
		rec(2*time.Second, 30*time.Millisecond, "1", "ann", q),                 // fresh: hit
		rec(2*time.Second, 5*time.Millisecond, "1", "ann", q+" "),              // same normalised text: hit
		rec(11*time.Second, 40*time.Millisecond, "1", "ann", q),                // 11s old: miss
		rec(12*time.Second, 1*time.Millisecond, "1", "ann", "select random()"), // volatile: bypass
		rec(13*time.Second, 2*time.Millisecond, "1", "ann", "select * from sales where id = $1", "7"),
		rec(14*time.Second, 2*time.Millisecond, "1", "ann", "select * from sales where id = $1", "8"), // other parameter: miss
		rec(15*time.Second, 2*time.Millisecond, "1", "ann", "select * from sales where id = $1", "7"), // hit
	}
	got := runOne(t, recs, Options{TTLs: []time.Duration{10 * time.Second}, L1Sizes: []int64{1 << 20}})
	want := Result{TTL: 10 * time.Second, L1Bytes: 1 << 20, Statements: 10, Hits: 4, Collapsed: 1, Misses: 5, Bypass: 1, Executions: 6,
		Saved: 450*time.Millisecond + 30*time.Millisecond + 5*time.Millisecond + 2*time.Millisecond}
	got.shapes, got.Logged, got.PeakBytes, got.HitRate = nil, 0, 0, 0
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestRunL1EvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	var recs []Record
	// Three answers of 16 KiB cycled through an L1 that holds two: LRU
	// misses every time; one that holds three hits after the first round.
	for i := range 9 {
		recs = append(recs, rec(time.Duration(i)*time.Second, time.Millisecond, "1", "ann", fmt.Sprintf("select * from t%d", i%3)))
	}
	rep, err := Run(recs, Options{TTLs: []time.Duration{time.Hour}, L1Sizes: []int64{32 << 10, 48 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if small, big := rep.Results[0], rep.Results[1]; small.Hits != 0 || small.Evictions != 7 || big.Hits != 6 || big.Evictions != 0 {
		t.Errorf("32KiB: %d hits %d evictions; 48KiB: %d hits %d evictions; want 0/7 and 6/0", small.Hits, small.Evictions, big.Hits, big.Evictions)
	}
}

func TestRunTransactionsAndWrites(t *testing.T) {
	t.Parallel()
	q := "select count(*) from orders"
	recs := []Record{
		rec(0, time.Millisecond, "1", "ann", q), // miss
		rec(1*time.Second, 0, "2", "bob", "begin"),
		rec(2*time.Second, 0, "2", "bob", "update orders set x = 1"), // invalidates orders
		rec(3*time.Second, 0, "2", "bob", q),                         // in a transaction that wrote: bypass
		rec(4*time.Second, 0, "2", "bob", "commit"),
		rec(5*time.Second, time.Millisecond, "1", "ann", q), // invalidated: miss
		rec(6*time.Second, time.Millisecond, "1", "ann", q), // hit
		rec(7*time.Second, 0, "1", "ann", "set search_path = other"),
		rec(8*time.Second, time.Millisecond, "1", "ann", q), // another search_path: another key, miss
	}
	got := runOne(t, recs, Options{TTLs: []time.Duration{time.Minute}, L1Sizes: []int64{1 << 20}})
	if got.Hits != 1 || got.Misses != 3 || got.Bypass != 5 {
		t.Errorf("hits %d misses %d bypass %d; want 1, 3, 5", got.Hits, got.Misses, got.Bypass)
	}
}

func TestRunAdmissionTurnsAwayShapesThatNeverRepeat(t *testing.T) {
	t.Parallel()
	var recs []Record
	for i := range 1500 {
		recs = append(recs, rec(time.Duration(i)*time.Millisecond, time.Millisecond, "1", "ann", fmt.Sprintf("select * from orders where id = %d", i)))
	}
	got := runOne(t, recs, Options{TTLs: []time.Duration{time.Hour}, L1Sizes: []int64{1 << 30}})
	if got.Misses != 1000 || got.Bypass != 500 {
		t.Errorf("misses %d bypass %d; want 1000 looked up, then 500 bypassed", got.Misses, got.Bypass)
	}
}

func TestRunWithConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
backends: [{name: wh, dsn: "postgres://x@127.0.0.1/dw"}]
cache: {max_entry_bytes: 1MiB}
policies:
  - {name: shared, match: {tables: [sales]}, ttl: 1m, shared: true, stale_ttl: 1h}
  - {name: nothing, match: {tables: [secrets]}, cache: false}
  - {name: default, ttl: 10s}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	sales, secrets, other := "select sum(amount) from sales", "select * from secrets", "select * from other"
	recs := []Record{
		rec(0, time.Millisecond, "1", "ann", sales),
		rec(time.Second, time.Millisecond, "2", "bob", sales), // shared: hit
		rec(2*time.Second, time.Millisecond, "1", "ann", secrets),
		rec(3*time.Second, time.Millisecond, "1", "ann", secrets), // cache: false
		rec(4*time.Second, time.Millisecond, "1", "ann", other),
		rec(20*time.Second, time.Millisecond, "1", "ann", other), // 16s old under ttl 10s: miss
		rec(90*time.Second, time.Millisecond, "2", "bob", sales), // 90s old, within stale_ttl: stale hit
	}
	got := runOne(t, recs, Options{Config: cfg, L1Sizes: []int64{64 << 20}})
	if got.TTL != 0 || got.Hits != 2 || got.Stale != 1 || got.Misses != 3 || got.Bypass != 2 || got.Executions != 6 {
		t.Errorf("got %+v; want 2 hits (1 stale), 3 misses, 2 bypass, 6 executions with the refresh", got)
	}
	// A TTL from the grid replaces the rules' own: 1h keeps other fresh.
	got = runOne(t, recs, Options{Config: cfg, TTLs: []time.Duration{time.Hour}, L1Sizes: []int64{64 << 20}})
	if got.Hits != 3 || got.Stale != 0 {
		t.Errorf("with ttl 1h: %d hits (%d stale), want 3 (0)", got.Hits, got.Stale)
	}
}

func TestReportFiles(t *testing.T) {
	t.Parallel()
	recs, st, err := ParseFile("testdata/pg15.csv", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(recs, Options{L1Sizes: []int64{1 << 20, 64 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	rep.Log, rep.Parse = "testdata/pg15.csv", st
	if len(rep.Results) != 8 {
		t.Fatalf("%d results, want 4 TTLs x 2 sizes", len(rep.Results))
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1m | 1MiB | 14.3% |", "| 1h | 64MiB |", "## Top shapes by warehouse time saved (TTL 1m, L1 1MiB)",
		"`select region, sum(amount) from sales group by region` | 3 | 1 | 120ms | 40ms |", "(not cached: writes)", "4 log entries skipped"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 8 || back.Results[0].Hits != 1 || back.Shapes[0].Saved != 40*time.Millisecond {
		t.Errorf("JSON round trip: %v %+v", err, back.Results)
	}
	dir := t.TempDir()
	if err := rep.WriteCharts(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range Charts {
		for _, ext := range []string{".png", ".svg"} {
			if fi, err := os.Stat(filepath.Join(dir, name+ext)); err != nil || fi.Size() < 1000 {
				t.Errorf("%s%s: %v", name, ext, err)
			}
		}
	}
}
