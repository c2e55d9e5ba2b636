package status

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/status/pagetest"
)

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// busy is the snapshot of a proxy that has answered dashboards for a
// while.
func busy() Snapshot {
	return Snapshot{
		Now: now, Started: now.Add(-(2*time.Hour + 5*time.Minute)), Version: "v1.4.0", Clients: 17,
		Listen: "bi.internal:6432", Statements: true,
		Totals: observe.Totals{
			Requests: 12345, Hits: 9000, HitRatio: 0.75, Saved: 200 * time.Second,
			ByOutcome: map[string]int64{"hit_l1": 9000, "miss": 3000, "bypass": 300, "error": 45},
		},
		History: hour(now, map[int]observe.Minute{
			0: {Requests: 14, Hits: 9, Misses: 4, Errs: 1, HitRatio: 9.0 / 13, Saved: 1300 * time.Millisecond},
			5: {Requests: 7, Hits: 7, HitRatio: 1, Saved: 700 * time.Millisecond},
		}),
		TopRuns: []observe.ShapeStats{{
			Shape: "00000000deadbeef", SQL: "select region, sum(amount) from sales where day > $1 group by 1",
			Dashboard: "Revenue", Rule: "dashboards", Requests: 1200, Hits: 900, Runs: 300, HitRatio: 0.75,
			Mean: 12300 * time.Microsecond, P95: 250 * time.Millisecond, Saved: 95 * time.Second,
			LastError: "57014 canceling statement due to statement timeout",
		}, {Shape: "0000000000000bad", SQL: "select * from salse", Requests: 2, Errors: 2}}, // never ran
		TopSaved: []observe.ShapeStats{
			{Shape: "00000000deadbeef", SQL: "select region, sum(amount) from sales where day > $1 group by 1", Requests: 1200, Saved: 95 * time.Second},
			{Shape: "0000000000000001", SQL: "select 1", Requests: 3, Runs: 3}, // saved nothing
		},
		Errors: []observe.ErrorRecord{{Time: now.Add(-time.Minute), User: "looker", Database: "analytics", Shape: 0xbad, SQLState: "42P01", Message: `relation "salse" does not exist`}},
		Queues: []Queue{{Backend: "wh", Name: "dash", Workers: 4, Busy: 4, Waiting: 2}},
		Pools:  []Pool{{Backend: "wh", Busy: 3, Idle: 5, Max: 8}},
		Cache: &Cache{
			L1: cache.L1Stats{Entries: 321, Bytes: 3 << 20}, Redis: true,
			Stats: cache.Stats{L2Hits: 42, L2Errors: 3},
		},
	}
}

func renderString(t *testing.T, s Snapshot) string {
	t.Helper()
	var buf bytes.Buffer
	if err := render(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// text is what a person reads of the element with id.
func text(t *testing.T, page, id string) string {
	t.Helper()
	el, ok := pagetest.Element(page, id)
	if !ok {
		t.Fatalf("no whole element with id %q", id)
	}
	return pagetest.Visible(el)
}

func TestPageShowsTheHeadlineNumbers(t *testing.T) {
	t.Parallel()
	page := renderString(t, busy())
	for id, want := range map[string]string{
		"hit-rate-total": "75%",
		"hit-rate-hour":  "80%", // 16 hits of 20
		"saved-total":    "3 min 20 s",
		"saved-hour":     "2.00 s",
		"requests-total": "12,345",
		"requests-hour":  "21",
		"clients-now":    "17",
		"version":        "v1.4.0",
		"uptime":         "2 h 5 min",
	} {
		if got := text(t, page, id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	if got := text(t, page, "requests"); !strings.Contains(got, "300 relayed uncached · 45 errors") {
		t.Errorf("requests card %q does not count relays and errors", got)
	}
	if !strings.Contains(page, `<meta http-equiv="refresh" content="10">`) {
		t.Error("the page does not refresh itself")
	}
}

func TestPageShowsTheTopShapesQueuesPoolsAndCache(t *testing.T) {
	t.Parallel()
	page := renderString(t, busy())
	runs := text(t, page, "top-runs")
	for _, want := range []string{
		"00000000deadbeef", "select region, sum(amount) from sales where day > $1 group by 1", "Revenue", "dashboards",
		"300 1,200 75% 12.3 ms 250 ms 1 min 35 s 57014 canceling statement due to statement timeout",
	} {
		if !strings.Contains(runs, want) {
			t.Errorf("top by executions %q lacks %q", runs, want)
		}
	}
	if strings.Contains(runs, "0000000000000bad") {
		t.Errorf("top by executions %q lists a shape that never ran", runs)
	}
	saved := text(t, page, "top-saved")
	if !strings.Contains(saved, "deadbeef") || strings.Contains(saved, "select 1") {
		t.Errorf("top by time saved %q: want the shape that saved time, not the one that saved none", saved)
	}
	for id, want := range map[string]string{
		"queues":     "wh dash 4 4 2",
		"pools":      "wh 3 5 8 0",
		"l1-entries": "321",
		"l1-bytes":   "3.00 MiB",
		"redis":      "breaker closed: answers shared with the other replicas",
		"l2-hits":    "42",
		"l2-errors":  "3",
		"errors":     `15:08:26 looker analytics 42P01 relation "salse" does not exist`,
	} {
		if got := text(t, page, id); !strings.Contains(got, want) {
			t.Errorf("#%s shows %q, want it to hold %q", id, got, want)
		}
	}
	if !strings.Contains(page, `data-minute="2026-03-14T15:09:00Z" data-value="0.6923"`) {
		t.Error("the hit rate chart has no point for this minute")
	}
}

func TestStatementsAndErrorsCannotRunScripts(t *testing.T) {
	t.Parallel()
	s := busy()
	evil := `select '</code><script>alert(1)</script>' as "x"`
	s.TopRuns[0].SQL = evil
	s.TopRuns[0].Dashboard = `"><img src=x onerror=alert(2)>`
	s.TopRuns[0].LastError = `42P01 relation "<script>alert(3)</script>" does not exist`
	s.Errors[0].Message = `relation "<script>alert(4)</script>" does not exist`
	s.Errors[0].User = `<b onmouseover=alert(5)>`
	page := renderString(t, s)
	for _, bad := range []string{"<script", "<img", "<b onmouseover", "</code><script"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q from a client", bad)
		}
	}
	for _, want := range []string{
		`&lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;`, // text and title attribute
		`&lt;script&gt;alert(3)&lt;/script&gt;`,
		`&lt;script&gt;alert(4)&lt;/script&gt;`,
		`&#34;&gt;&lt;img src=x onerror=alert(2)&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q escaped", want)
		}
	}
}

func TestAFreshProxySaysWhatToDo(t *testing.T) {
	t.Parallel()
	s := Snapshot{Now: now, Started: now.Add(-3 * time.Second), Version: "dev", Listen: "127.0.0.1:6432", Statements: true,
		Totals: observe.Totals{ByOutcome: map[string]int64{}}, History: hour(now, nil)}
	page := renderString(t, s)
	for id, want := range map[string]string{
		"hit-rate-total": "—",
		"hit-rate-hour":  "—",
		"saved-total":    "0 s",
		"requests-total": "0",
		"uptime":         "3 s",
		"top-runs":       "No statements yet: point a BI tool at postgres://127.0.0.1:6432/database and open a dashboard.",
		"top-saved":      "No statements yet",
		"chart-hit-rate": "No cacheable statements in the last hour",
		"chart-saved":    "No warehouse time saved in the last hour",
		"queues":         "No queues: nothing is cached",
		"cache":          "Nothing is cached: the configuration has no policies",
		"errors":         "No errors: every client got its answer.",
	} {
		if got := text(t, page, id); !strings.Contains(got, want) {
			t.Errorf("#%s shows %q, want it to hold %q", id, got, want)
		}
	}
}

func TestShapesWithoutTheirText(t *testing.T) {
	t.Parallel()
	s := busy()
	s.Statements = false
	s.TopRuns[0].SQL, s.TopSaved[0].SQL = "", ""
	got := text(t, renderString(t, s), "top-runs")
	for _, want := range []string{"00000000deadbeef text not kept", "Statement text is not kept: set audit: {statements: true}"} {
		if !strings.Contains(got, want) {
			t.Errorf("top by executions %q lacks %q", got, want)
		}
	}
}

func TestNothingSavedYet(t *testing.T) {
	t.Parallel()
	s := busy()
	s.TopSaved = s.TopSaved[1:]
	if got := text(t, renderString(t, s), "top-saved"); !strings.Contains(got, "Nothing saved yet") {
		t.Errorf("top by time saved %q", got)
	}
}

func TestRedisStates(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		redis, open bool
		want        string
	}{
		{false, false, "not configured"},
		{true, true, "breaker open: calls suspended"},
		{true, false, "breaker closed"},
	} {
		s := busy()
		s.Cache.Redis, s.Cache.BreakerOpen = c.redis, c.open
		page := renderString(t, s)
		if got := text(t, page, "redis"); !strings.HasPrefix(got, c.want) {
			t.Errorf("redis %v, breaker open %v: %q, want %q", c.redis, c.open, got, c.want)
		}
		if hasL2 := strings.Contains(page, `id="l2-hits"`); hasL2 != c.redis {
			t.Errorf("redis %v: L2 counts shown %v", c.redis, hasL2)
		}
	}
}

func TestHandlerServesAScriptlessPage(t *testing.T) {
	t.Parallel()
	calls := 0
	h := Handler(SourceFunc(func() Snapshot { calls++; return busy() }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || calls != 1 {
		t.Fatalf("status %d after %d snapshots", rec.Code, calls)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q lets scripts run", csp)
	}
	if !strings.Contains(rec.Body.String(), `<svg class="chart" id="chart-saved"`) {
		t.Error("no chart of time saved")
	}
}

func TestTheListenerIsNamedAsClientsReachIt(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ listen, host, want string }{
		{"127.0.0.1:6432", "status.example:8080", "127.0.0.1:6432"},
		{"bi.internal:6432", "10.0.0.5:8080", "bi.internal:6432"},
		{":6432", "proxy.example:8080", "proxy.example:6432"},
		{"0.0.0.0:6432", "proxy.example", "proxy.example:6432"},
		{"[::]:6432", "[2001:db8::1]:8080", "[2001:db8::1]:6432"},
		{":6432", "", "localhost:6432"},
	} {
		if got := reachable(c.listen, c.host); got != c.want {
			t.Errorf("reachable(%q, %q) = %q, want %q", c.listen, c.host, got, c.want)
		}
	}
}
