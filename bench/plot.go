package bench

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chartFiles are the charts of a dashboards report, by file name (each
// written as .png and .svg).
var chartFiles = []struct{ name, title string }{
	{"latency-cdf", "Latency CDF per target"},
	{"hit-rate", "Hit rate over time"},
	{"warehouse-executions", "Warehouse executions over time"},
}

// WriteCharts writes the report's charts into dir, each as PNG and SVG:
// the latency CDF per target, the hit rate over time and the warehouse
// executions over time (one point per round).
func (r *DashboardsReport) WriteCharts(dir string) error {
	plots := []*plot.Plot{r.latencyCDF(), r.hitRate(), r.executions()}
	for i, p := range plots {
		for _, ext := range []string{".png", ".svg"} {
			if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, chartFiles[i].name+ext)); err != nil {
				return fmt.Errorf("chart %s: %w", chartFiles[i].name, err)
			}
		}
	}
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// addLine adds a target's line, styled by its index among the targets so
// that a target looks the same in every chart.
func addLine(p *plot.Plot, i int, name string, xys plotter.XYs, points bool) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return // NaN or Inf: nothing sensible to draw
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	if points {
		s, err := plotter.NewScatter(xys)
		if err == nil {
			s.Color = plotutil.Color(i)
			s.Shape = plotutil.Shape(i)
			p.Add(s)
		}
	}
}

// latencyCDF: the share of answers at most x ms, x on a log scale.
func (r *DashboardsReport) latencyCDF() *plot.Plot {
	p := newPlot("Latency CDF: "+r.Workload, "latency (ms, log scale)", "share of answers at most this long")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	drawn := false
	for i, t := range r.Targets {
		lat := t.latencies
		if len(lat) == 0 {
			continue
		}
		const points = 400
		var xys plotter.XYs
		for k := 0; k <= points; k++ {
			j := min(len(lat)-1, k*len(lat)/points)
			x := max(float64(lat[j])/1000, 0.001) // a log scale has no 0
			xys = append(xys, plotter.XY{X: x, Y: float64(j+1) / float64(len(lat))})
		}
		addLine(p, i, t.Name, xys, false)
		drawn = true
	}
	if !drawn {
		p.X.Scale = plot.LinearScale{}
		p.X.Tick.Marker = plot.DefaultTicks{}
		p.Title.Text += " (no answers)"
	}
	return p
}

// hitRate: per round, sqlcached's hit ratio from its metrics; for a
// target without metrics but with warehouse executions counted, the share
// of answers that caused no execution (1 - executions/answers).
func (r *DashboardsReport) hitRate() *plot.Plot {
	p := newPlot("Hit rate over time: "+r.Workload, "time in the schedule (s)", "hit rate per round")
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Legend.Top, p.Legend.Left = false, false
	for i, t := range r.Targets {
		var xys plotter.XYs
		name := t.Name
		if t.HitRatio != nil {
			for _, pt := range t.Series {
				if pt.HitRatio != nil {
					xys = append(xys, plotter.XY{X: pt.At, Y: *pt.HitRatio})
				}
			}
		} else {
			name += " (1 − executions/answers)"
			for _, pt := range t.Series {
				if ok := pt.Requests - pt.Errors; pt.Executions != nil && ok > 0 {
					xys = append(xys, plotter.XY{X: pt.At, Y: max(0, 1-float64(*pt.Executions)/float64(ok))})
				}
			}
		}
		addLine(p, i, name, xys, true)
	}
	return p
}

// executions: the warehouse executions of each target's turn of a round.
func (r *DashboardsReport) executions() *plot.Plot {
	p := newPlot("Warehouse executions per round: "+r.Workload, "time in the schedule (s)", "executions (pg_stat_statements)")
	p.Y.Min = 0
	if r.Warehouse == "" || r.WarehouseError != "" {
		p.Title.Text += " (not measured: no --warehouse-dsn)"
	}
	for i, t := range r.Targets {
		var xys plotter.XYs
		for _, pt := range t.Series {
			if pt.Executions != nil {
				xys = append(xys, plotter.XY{X: pt.At, Y: float64(*pt.Executions)})
			}
		}
		addLine(p, i, t.Name, xys, true)
	}
	return p
}
