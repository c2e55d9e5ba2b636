package observe

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRecordCountsAndShapes(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 30, 15, 0, time.UTC)
	var audit bytes.Buffer
	o := New(Config{Version: "test", Audit: slog.New(slog.NewJSONHandler(&audit, nil)), Statements: true, Now: func() time.Time { return now }})
	ev := func(out Outcome, shape uint64, d time.Duration, saved time.Duration) *Event {
		return &Event{Start: now, Duration: d, User: "ana", Client: "10.0.0.1:5000", Database: "shop", Backend: "wh", Rule: "dash",
			Dashboard: "sales", Shape: shape, SQL: "select 1", Outcome: out, Rows: 3, Bytes: 100, Saved: saved}
	}
	o.Record(ev(Miss, 1, 40*time.Millisecond, 0))
	o.Record(ev(HitL1, 1, 100*time.Microsecond, 40*time.Millisecond))
	o.Record(ev(HitL2, 1, 1*time.Millisecond, 40*time.Millisecond))
	o.Record(ev(Collapsed, 1, 30*time.Millisecond, 40*time.Millisecond))
	o.Record(ev(Bypass, 2, 2*time.Millisecond, 0))
	bad := ev(Error, 3, time.Millisecond, 0)
	bad.SQLState, bad.Message = "42P01", `relation "nowhere" does not exist`
	o.Record(bad)
	o.Fill(FillEvent{Backend: "wh", Queue: "dashboards", Rule: "dash", Waited: time.Millisecond, Elapsed: 40 * time.Millisecond})
	o.Fill(FillEvent{Backend: "wh", Queue: "dashboards", Rule: "dash", Elapsed: time.Second, TimedOut: true, Err: true})
	o.Invalidated("write")

	for out, want := range map[string]float64{"miss": 1, "hit_l1": 1, "hit_l2": 1, "collapsed": 1, "bypass": 1, "error": 1, "stale": 0} {
		if got := testutil.ToFloat64(o.requests.WithLabelValues(out, "dash", "wh")); got != want {
			t.Errorf("requests{%s} = %v, want %v", out, got, want)
		}
	}
	if got := testutil.ToFloat64(o.saved.WithLabelValues("dash", "wh")); got < 0.119 || got > 0.121 {
		t.Errorf("time saved %v s, want 0.12", got)
	}
	if got := testutil.ToFloat64(o.timeouts.WithLabelValues("dash", "wh")); got != 1 {
		t.Errorf("timeouts %v", got)
	}
	if got := testutil.ToFloat64(o.invalidations.WithLabelValues("write")); got != 1 {
		t.Errorf("invalidations %v", got)
	}
	tot := o.Totals()
	if tot.Requests != 6 || tot.Hits != 3 || tot.HitRatio != 0.75 || tot.Saved != 120*time.Millisecond || tot.Timeouts != 1 {
		t.Errorf("totals %+v", tot)
	}

	top := o.TopShapes(ByRequests, 10)
	if len(top) != 3 || top[0].Shape != "0000000000000001" || top[0].Requests != 4 || top[0].Hits != 3 || top[0].Runs != 1 ||
		top[0].HitRatio != 0.75 || top[0].Dashboard != "sales" || top[0].SQL != "select 1" || top[0].P95 != 50*time.Millisecond {
		t.Errorf("top shape %+v", top[0])
	}
	if s := o.TopShapes(BySaved, 1); s[0].Saved != 120*time.Millisecond {
		t.Errorf("by saved: %+v", s)
	}

	h := o.History()
	last := h[len(h)-1]
	if len(h) != 60 || last.Requests != 6 || last.Hits != 3 || last.Misses != 1 || last.Bypass != 1 || last.Errs != 1 || last.HitRatio != 0.75 {
		t.Errorf("this minute %+v", last)
	}
	if h[0].Requests != 0 || !h[0].Start.Equal(time.Date(2026, 12, 3, 9, 31, 0, 0, time.UTC)) {
		t.Errorf("an hour ago %+v", h[0])
	}
	// An hour later the minute is history, and its slot starts again.
	now = now.Add(time.Hour)
	if h := o.History(); h[len(h)-1].Requests != 0 {
		t.Errorf("an hour later %+v", h[len(h)-1])
	}

	if e := o.RecentErrors(); len(e) != 1 || e[0].SQLState != "42P01" || e[0].User != "ana" {
		t.Errorf("errors %+v", e)
	}

	// One JSON line per statement, with the fields an auditor needs.
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d audit lines, want 6", len(lines))
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[5]), &rec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "user", "client", "database", "dashboard", "shape", "outcome", "rows", "bytes", "duration_ms", "sqlstate", "sql"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("audit line lacks %q: %s", k, lines[5])
		}
	}
	if rec["sqlstate"] != "42P01" || rec["outcome"] != "error" {
		t.Errorf("audit line %s", lines[5])
	}

	// The exposition has every family, at /metrics.
	rr := httptest.NewRecorder()
	o.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rr.Body)
	for _, name := range []string{"sqlcached_requests_total", "sqlcached_request_duration_seconds_bucket", "sqlcached_warehouse_time_saved_seconds_total",
		"sqlcached_warehouse_duration_seconds_bucket", "sqlcached_queue_wait_seconds_bucket", "sqlcached_timeouts_total", "sqlcached_invalidations_total",
		"sqlcached_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestStatementsOffKeepsNoText(t *testing.T) {
	var audit bytes.Buffer
	o := New(Config{Audit: slog.New(slog.NewJSONHandler(&audit, nil))})
	o.Record(&Event{Shape: 7, SQL: "select secret from t where ssn = '123'", Outcome: Miss})
	if strings.Contains(audit.String(), "secret") || o.TopShapes(ByRequests, 1)[0].SQL != "" {
		t.Errorf("statement text kept: %s", audit.String())
	}
}

func TestShapesBounded(t *testing.T) {
	o := New(Config{MaxShapes: 50})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				o.Record(&Event{Shape: uint64(g*1000 + i + 1), Outcome: Miss})
				o.Record(&Event{Shape: 999999, Outcome: HitL1}) // one busy shape
			}
		})
	}
	wg.Wait()
	if n := len(o.TopShapes(ByRequests, 1000)); n > 50 {
		t.Errorf("%d shapes kept, bound 50", n)
	}
	if top := o.TopShapes(ByRequests, 1); top[0].Shape != "00000000000f423f" {
		t.Errorf("the busy shape was dropped: %+v", top)
	}
}

// TestRequestsCountedUnderTheirLabels: events of alternating outcomes,
// rules and backends, from several goroutines, each count under their
// own labels.
func TestRequestsCountedUnderTheirLabels(t *testing.T) {
	o := New(Config{})
	kinds := []struct {
		out           Outcome
		rule, backend string
	}{{Bypass, "oltp", "pg"}, {HitL1, "dash", "pg"}, {Bypass, "oltp", "duck"}, {Miss, "dash", "pg"}, {Bypass, "dash", "pg"}}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				k := kinds[(g+i)%len(kinds)]
				if i%7 == 0 {
					k = kinds[0] // runs of one kind too
				}
				o.Record(&Event{Outcome: k.out, Rule: k.rule, Backend: k.backend, Duration: time.Millisecond})
			}
		})
	}
	wg.Wait()
	want := map[string]int{}
	for g := range 4 {
		for i := range 1000 {
			k := kinds[(g+i)%len(kinds)]
			if i%7 == 0 {
				k = kinds[0]
			}
			want[k.out.String()+" "+k.rule+" "+k.backend]++
		}
	}
	for _, k := range kinds {
		name := k.out.String() + " " + k.rule + " " + k.backend
		if got := int(testutil.ToFloat64(o.requests.WithLabelValues(k.out.String(), k.rule, k.backend))); got != want[name] {
			t.Errorf("%s: counted %d, want %d", name, got, want[name])
		}
	}
}
