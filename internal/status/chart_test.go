package status

import (
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/observe"
)

// hour is an hour of empty minutes ending at now's minute, with the
// minutes given (by how many minutes ago) filled in.
func hour(now time.Time, filled map[int]observe.Minute) []observe.Minute {
	out := make([]observe.Minute, 60)
	end := now.Truncate(time.Minute)
	for i := range out {
		ago := 59 - i
		m := filled[ago]
		m.Start = end.Add(-time.Duration(ago) * time.Minute)
		out[i] = m
	}
	return out
}

func TestHitRateChartHasAPointForEachMinuteWithAnswers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	hist := hour(now, map[int]observe.Minute{
		0: {Requests: 14, Hits: 9, Misses: 4, Errs: 1, HitRatio: 9.0 / 13},
		1: {Requests: 2, Hits: 2, HitRatio: 1},
		3: {Requests: 1, Misses: 1},
		4: {Requests: 5, Bypass: 5}, // relayed only: no hit rate
	})
	c := hitRateChart(hist)
	if len(c.Points) != 3 {
		t.Fatalf("%d points, want 3 (the minutes with hits or misses)", len(c.Points))
	}
	last := c.Points[2]
	if last.Minute != "2026-03-14T15:09:00Z" || last.Value != "0.6923" {
		t.Errorf("this minute's point: %+v", last)
	}
	if want := c.y(9.0/13, 1); last.Y != want {
		t.Errorf("y = %v, want %v", last.Y, want)
	}
	if c.Points[0].Y != c.Bottom || c.Points[1].Y != c.Top {
		t.Errorf("0%% at %v and 100%% at %v, want the bottom %v and top %v", c.Points[0].Y, c.Points[1].Y, c.Bottom, c.Top)
	}
	// The line breaks at the minute without answers (2 minutes ago).
	if strings.Count(c.Line, "M") != 2 || strings.Count(c.Line, "L") != 1 {
		t.Errorf("line %q, want two runs: one point, then two joined", c.Line)
	}
	if len(c.Bars) != 4 {
		t.Errorf("%d request bars, want 4", len(c.Bars))
	}
	if tallest := c.Bars[3]; tallest.Y != c.Top || tallest.Value != "14" {
		t.Errorf("the busiest minute's bar %+v is not full height", tallest)
	}
	if c.Empty != "" {
		t.Errorf("empty message %q on a chart with points", c.Empty)
	}
	if got := c.XTicks[0].Label; got != "now" {
		t.Errorf("first x tick %q, want now", got)
	}
}

func TestSavedChartScalesToARoundNumber(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	hist := hour(now, map[int]observe.Minute{
		0:  {Hits: 3, Saved: 1300 * time.Millisecond},
		10: {Hits: 1, Saved: time.Microsecond}, // tiny, still visible
	})
	c := savedChart(hist)
	if len(c.Bars) != 2 {
		t.Fatalf("%d bars, want 2", len(c.Bars))
	}
	if got := c.YTicks[len(c.YTicks)-1].Label; got != "2 s" {
		t.Errorf("top of the scale %q, want 2 s", got)
	}
	if b := c.Bars[1]; b.Minute != "2026-03-14T15:09:00Z" || b.Value != "1.300000" {
		t.Errorf("this minute's bar %+v", b)
	}
	if b := c.Bars[0]; b.H < 1 {
		t.Errorf("a minute that saved 1µs has a bar %v high, want at least 1", b.H)
	}
}

func TestChartsOfAQuietHourSaySo(t *testing.T) {
	t.Parallel()
	hist := hour(time.Now(), nil)
	if c := hitRateChart(hist); c.Empty == "" || len(c.Points) != 0 || c.Line != "" {
		t.Errorf("hit rate chart of nothing: %+v", c)
	}
	if c := savedChart(hist); c.Empty == "" || len(c.Bars) != 0 {
		t.Errorf("saved chart of nothing: %+v", c)
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]float64{0: 1, 0.0013: 0.002, 0.3: 0.5, 1: 1, 1.3: 2, 7: 10, 45: 50} {
		if got := niceCeil(v); got < want*0.999999 || got > want*1.000001 {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
