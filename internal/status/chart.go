package status

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/observe"
)

// chart is an SVG chart of one value a minute over the last hour, laid
// out in the coordinates of its viewBox for page.html to draw. Marks
// carry the minute and value they show (data-minute, data-value) and a
// title a person reads on hover.
type chart struct {
	ID, Title     string
	Width, Height float64 // of the viewBox
	Left, Top     float64 // of the plot area
	Right, Bottom float64
	YTicks        []tick
	XTicks        []tick
	Bars          []mark // bars from the bottom of the plot area
	BarClass      string
	Line          string // an SVG path through Points, broken where minutes have none
	Points        []mark
	Empty         string // said instead of the marks when there are none
}

// tick is a labelled position on an axis.
type tick struct {
	Pos   float64
	Label string
}

// mark is one minute's bar or point.
type mark struct {
	X, Y, W, H float64
	Minute     string // the minute's start, RFC 3339, UTC
	Value      string // the value shown, as a number
	Label      string // what the mark says on hover
}

const (
	chartWidth  = 600
	chartHeight = 180
)

// frame returns a chart with the plot area and the minutes' axis of
// hist laid out.
func frame(id, title string, hist []observe.Minute) chart {
	c := chart{ID: id, Title: title, Width: chartWidth, Height: chartHeight, Left: 52, Top: 10, Right: chartWidth - 8, Bottom: chartHeight - 22}
	n := len(hist)
	for i := n - 1; i >= 0; i -= 15 {
		label := "now"
		if ago := n - 1 - i; ago > 0 {
			label = "−" + strconv.Itoa(ago) + " min"
		}
		c.XTicks = append(c.XTicks, tick{Pos: c.slotX(i, n) + c.slotW(n)/2, Label: label})
	}
	return c
}

func (c *chart) slotW(n int) float64    { return (c.Right - c.Left) / float64(max(n, 1)) }
func (c *chart) slotX(i, n int) float64 { return c.Left + float64(i)*c.slotW(n) }

// y is the vertical position of v on a scale from 0 to top.
func (c *chart) y(v, top float64) float64 {
	if top <= 0 {
		return c.Bottom
	}
	return c.Bottom - v/top*(c.Bottom-c.Top)
}

// hitRateChart draws each minute's hit rate as a line of points over
// bars of its number of requests (on a scale of their own).
func hitRateChart(hist []observe.Minute) chart {
	c := frame("chart-hit-rate", "Hit rate per minute, last hour", hist)
	c.BarClass = "volume"
	for _, r := range []float64{0, .25, .5, .75, 1} {
		c.YTicks = append(c.YTicks, tick{Pos: c.y(r, 1), Label: percent(r)})
	}
	var most int64
	for _, m := range hist {
		most = max(most, m.Requests)
	}
	var path strings.Builder
	joined := false
	n := len(hist)
	for i, m := range hist {
		x, w := c.slotX(i, n), c.slotW(n)
		at := m.Start.UTC().Format(time.RFC3339)
		if m.Requests > 0 {
			top := c.y(float64(m.Requests), float64(most))
			c.Bars = append(c.Bars, mark{X: x + w*0.15, Y: top, W: w * 0.7, H: c.Bottom - top, Minute: at,
				Value: strconv.FormatInt(m.Requests, 10), Label: m.Start.Format("15:04") + " · " + count(m.Requests) + " requests"})
		}
		answered := m.Hits + m.Misses
		if answered == 0 {
			joined = false
			continue
		}
		p := mark{X: x + w/2, Y: c.y(m.HitRatio, 1), Minute: at, Value: strconv.FormatFloat(m.HitRatio, 'f', 4, 64),
			Label: m.Start.Format("15:04") + " · " + percent(m.HitRatio) + " of " + count(answered) + " from the cache"}
		c.Points = append(c.Points, p)
		if joined {
			path.WriteString(" L")
		} else {
			path.WriteString(" M")
		}
		path.WriteString(coord(p.X) + " " + coord(p.Y))
		joined = true
	}
	c.Line = strings.TrimSpace(path.String())
	if len(c.Points) == 0 {
		c.Empty = "No cacheable statements in the last hour"
	}
	return c
}

// savedChart draws each minute's warehouse time saved as bars.
func savedChart(hist []observe.Minute) chart {
	c := frame("chart-saved", "Warehouse time saved per minute, last hour", hist)
	c.BarClass = "saved"
	var most time.Duration
	for _, m := range hist {
		most = max(most, m.Saved)
	}
	top := niceCeil(most.Seconds())
	for _, f := range []float64{0, .5, 1} {
		c.YTicks = append(c.YTicks, tick{Pos: c.y(f, 1), Label: short(time.Duration(f * top * float64(time.Second)))})
	}
	n := len(hist)
	for i, m := range hist {
		if m.Saved <= 0 {
			continue
		}
		x, w := c.slotX(i, n), c.slotW(n)
		y := c.y(m.Saved.Seconds(), top)
		// A minute that saved a little still shows.
		y = min(y, c.Bottom-1)
		c.Bars = append(c.Bars, mark{X: x + w*0.15, Y: y, W: w * 0.7, H: c.Bottom - y,
			Minute: m.Start.UTC().Format(time.RFC3339), Value: strconv.FormatFloat(m.Saved.Seconds(), 'f', 6, 64),
			Label: m.Start.Format("15:04") + " · " + duration(m.Saved) + " saved by " + count(m.Hits) + " hits"})
	}
	if len(c.Bars) == 0 {
		c.Empty = "No warehouse time saved in the last hour"
	}
	return c
}

// niceCeil returns the smallest of 1, 2 or 5 times a power of ten that is
// at least v (seconds); 1 for v of 0.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= v*(1-1e-9) {
			return f * p
		}
	}
	return 10 * p
}

// short is duration without the trailing zeros of its decimals, for
// axis labels: 5 ms, 2.5 s.
func short(d time.Duration) string {
	s := duration(d)
	num, unit, ok := strings.Cut(s, " ")
	if !ok || !strings.Contains(num, ".") || strings.Contains(unit, " ") {
		return s
	}
	num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	return num + " " + unit
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// MidX and MidY are the centre of the plot area, where Empty is said.
func (c chart) MidX() float64 { return (c.Left + c.Right) / 2 }
func (c chart) MidY() float64 { return (c.Top + c.Bottom) / 2 }
