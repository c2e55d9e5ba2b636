package simulate

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Charts are the charts WriteCharts writes, by file name without the
// extension.
var Charts = []string{"hitrate", "timesaved"}

// WriteCharts writes the report's charts into dir, each as PNG and SVG:
// hitrate (the predicted hit rate per setting) and timesaved (the
// warehouse time saved per setting), grouped by TTL, a bar per L1 size.
func (rep *Report) WriteCharts(dir string) error {
	unit, unitName := rep.savedUnit()
	charts := []struct {
		name, title, unit string
		value             func(*Result) float64
	}{
		{"hitrate", "Predicted hit rate", "hit rate (%)", func(r *Result) float64 { return 100 * r.HitRate }},
		{"timesaved", "Predicted warehouse time saved", "time saved (" + unitName + ")", func(r *Result) float64 { return float64(r.Saved) / float64(unit) }},
	}
	for _, c := range charts {
		p, groups, err := rep.barChart(c.title, c.unit, c.value)
		if err != nil {
			return err
		}
		width := max(14*vg.Centimeter, vg.Length(groups)*(groupWidth+groupGap)+4*vg.Centimeter)
		for _, ext := range []string{".png", ".svg"} {
			if err := p.Save(width, 10*vg.Centimeter, filepath.Join(dir, c.name+ext)); err != nil {
				return fmt.Errorf("simulate: chart %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// The bars of one TTL take groupWidth together, groupGap apart.
const (
	groupWidth = 48
	groupGap   = 24
)

// barChart groups the results by TTL along X, a bar of each L1 size in
// each group, and returns it with the number of groups.
func (rep *Report) barChart(title, unit string, value func(*Result) float64) (*plot.Plot, int, error) {
	var ttls []time.Duration
	var sizes []int64
	for _, r := range rep.Results {
		if !slices.Contains(ttls, r.TTL) {
			ttls = append(ttls, r.TTL)
		}
		if !slices.Contains(sizes, r.L1Bytes) {
			sizes = append(sizes, r.L1Bytes)
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "TTL"
	p.Y.Label.Text = unit
	p.Y.Min = 0
	p.Legend.Top = true
	width := vg.Length(groupWidth / len(sizes))
	top := 0.0
	for j, size := range sizes {
		vals := make(plotter.Values, len(ttls))
		for _, r := range rep.Results {
			if r.L1Bytes == size {
				vals[slices.Index(ttls, r.TTL)] = value(&r)
				top = max(top, value(&r))
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, 0, fmt.Errorf("simulate: chart: %w", err)
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(j)
		bars.Offset = width * vg.Length(float64(j)-float64(len(sizes)-1)/2)
		p.Add(bars)
		p.Legend.Add("L1 "+bytesString(size), bars)
	}
	names := make([]string, len(ttls))
	for i, t := range ttls {
		names[i] = ttlString(t)
	}
	p.NominalX(names...)
	p.Y.Max = max(1, top*1.3) // room for the legend above the bars
	return p, len(ttls), nil
}

// savedUnit is the unit the time saved is charted in: seconds, minutes or
// hours, whichever keeps the largest figure readable.
func (rep *Report) savedUnit() (time.Duration, string) {
	var top time.Duration
	for _, r := range rep.Results {
		top = max(top, r.Saved)
	}
	switch {
	case top >= 3*time.Hour:
		return time.Hour, "h"
	case top >= 3*time.Minute:
		return time.Minute, "min"
	}
	return time.Second, "s"
}
