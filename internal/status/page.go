package status

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/observe"
)

//go:embed page.html
var pageHTML string

// refreshSeconds is how often the page reloads itself.
const refreshSeconds = 10

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"count":    count,
	"int":      func(n int) string { return count(int64(n)) },
	"percent":  percent,
	"duration": duration,
	"size":     size,
	"f":        coord,
	"plural":   plural,
}).Parse(pageHTML))

// Handler serves the page, built from a new Snapshot of src at each
// request.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := src.Snapshot()
		s.Listen = reachable(s.Listen, r.Host)
		var buf bytes.Buffer
		if err := render(&buf, s); err != nil {
			http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// The page runs no script and loads nothing: say so, so that a
		// statement or message that got past escaping still could not run.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(buf.Bytes())
	})
}

// reachable is the address BI tools reach the listener at listen by:
// when it listens on every interface (":6432", "0.0.0.0:6432"), the
// host the page was asked of, with the listener's port.
func reachable(listen, reqHost string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || (host != "" && !net.ParseIP(host).IsUnspecified()) {
		return listen
	}
	if h, _, err := net.SplitHostPort(reqHost); err == nil {
		reqHost = h
	}
	if reqHost == "" {
		reqHost = "localhost"
	}
	return net.JoinHostPort(strings.Trim(reqHost, "[]"), port)
}

// render writes the page of s.
func render(buf *bytes.Buffer, s Snapshot) error {
	return pageTemplate.Execute(buf, newView(s))
}

// view is what page.html is executed on: the snapshot with its sums,
// formatted headline numbers and charts.
type view struct {
	Snapshot
	Refresh  int
	Uptime   string
	Updated  string
	Total    headline
	Hour     headline
	HitChart chart
	Saved    chart
	Shapes   []shapeTable
	Errors   []errorRow
}

// headline is the numbers of the top of the page over one period.
type headline struct {
	Requests, Bypass, Errors int64
	HitRate                  string // "—" before anything could be answered from the cache
	Saved                    time.Duration
}

// shapeTable is a table of the top shapes in one order.
type shapeTable struct {
	ID, Title, Order string
	Rows             []shapeRow
}

type shapeRow struct {
	observe.ShapeStats
	HitRate string
}

type errorRow struct {
	observe.ErrorRecord
	When, Shape string
}

func newView(s Snapshot) view {
	v := view{
		Snapshot: s,
		Refresh:  refreshSeconds,
		Uptime:   uptime(s.Now.Sub(s.Started)),
		Updated:  s.Now.Format("15:04:05 MST"),
		Total:    totalHeadline(s.Totals),
		Hour:     hourHeadline(s.History),
		HitChart: hitRateChart(s.History),
		Saved:    savedChart(s.History),
	}
	v.Shapes = []shapeTable{
		{ID: "top-runs", Title: "Top statements by executions on the warehouse", Order: "executions", Rows: shapeRows(ran(s.TopRuns))},
		{ID: "top-saved", Title: "Top statements by warehouse time saved", Order: "time saved", Rows: shapeRows(savedAny(s.TopSaved))},
	}
	for _, e := range s.Errors {
		r := errorRow{ErrorRecord: e, When: clock(e.Time, s.Now)}
		if e.Shape != 0 {
			r.Shape = shapeID(e.Shape)
		}
		v.Errors = append(v.Errors, r)
	}
	return v
}

func totalHeadline(t observe.Totals) headline {
	h := headline{Requests: t.Requests, Bypass: t.ByOutcome[observe.Bypass.String()], Errors: t.ByOutcome[observe.Error.String()], Saved: t.Saved, HitRate: "—"}
	if h.Requests-h.Bypass-h.Errors > 0 {
		h.HitRate = percent(t.HitRatio)
	}
	return h
}

func hourHeadline(hist []observe.Minute) headline {
	h := headline{HitRate: "—"}
	var hits, misses int64
	for _, m := range hist {
		h.Requests += m.Requests
		h.Bypass += m.Bypass
		h.Errors += m.Errs
		h.Saved += m.Saved
		hits += m.Hits
		misses += m.Misses
	}
	if hits+misses > 0 {
		h.HitRate = percent(float64(hits) / float64(hits+misses))
	}
	return h
}

// ran drops the shapes that never ran on the warehouse (those that only
// failed, or were only answered from Redis).
func ran(ss []observe.ShapeStats) []observe.ShapeStats {
	var out []observe.ShapeStats
	for _, s := range ss {
		if s.Runs > 0 {
			out = append(out, s)
		}
	}
	return out
}

// savedAny drops the shapes that saved nothing.
func savedAny(ss []observe.ShapeStats) []observe.ShapeStats {
	var out []observe.ShapeStats
	for _, s := range ss {
		if s.Saved > 0 {
			out = append(out, s)
		}
	}
	return out
}

func shapeRows(ss []observe.ShapeStats) []shapeRow {
	rows := make([]shapeRow, len(ss))
	for i, s := range ss {
		rows[i] = shapeRow{ShapeStats: s, HitRate: "—"}
		if s.Requests > s.Errors {
			rows[i].HitRate = percent(s.HitRatio)
		}
	}
	return rows
}

// shapeID is a shape's id as observe.ShapeStats spells it.
func shapeID(id uint64) string { return fmt.Sprintf("%016x", id) }
