package bench

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Request is one query of a schedule: when the viewer sends it, in
// virtual time from the start of the run, and what it sends.
type Request struct {
	At    time.Duration
	Board int // index in Dashboards.Boards
	Chart int // index in the board's Charts
	SQL   string
}

// Schedule is the requests of every viewer, each viewer's in the order it
// sends them. It depends on nothing but the workload (and its seed), so
// every target is sent the same requests at the same virtual times.
type Schedule struct {
	Viewers [][]Request
}

// Len is the number of requests of the schedule.
func (s *Schedule) Len() int {
	n := 0
	for _, v := range s.Viewers {
		n += len(v)
	}
	return n
}

// Between returns viewer v's requests with from <= At < to.
func (s *Schedule) Between(v int, from, to time.Duration) []Request {
	reqs := s.Viewers[v]
	i := sort.Search(len(reqs), func(i int) bool { return reqs[i].At >= from })
	j := sort.Search(len(reqs), func(i int) bool { return reqs[i].At >= to })
	return reqs[i:j]
}

// Zipf draws ranks 0..n-1 with probability proportional to 1/(rank+1)^s;
// s = 0 draws them uniformly. Unlike math/rand's Zipf it takes any s >= 0.
type Zipf struct {
	cdf []float64 // cumulative weights, cdf[n-1] the total
}

// NewZipf returns a Zipf over n ranks with exponent s.
func NewZipf(n int, s float64) *Zipf {
	z := &Zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += math.Pow(float64(i+1), -s)
		z.cdf[i] = sum
	}
	return z
}

// Draw returns a rank.
func (z *Zipf) Draw(r *rand.Rand) int {
	u := r.Float64() * z.cdf[len(z.cdf)-1]
	i := sort.SearchFloat64s(z.cdf, u)
	return min(i, len(z.cdf)-1)
}

// Schedule draws the workload's schedule from its seed. Each viewer starts
// at a random time within its first think time, so that the viewers do
// not all open their dashboards at once.
func (w *Dashboards) Schedule() *Schedule {
	boards := NewZipf(len(w.Boards), w.DashboardZipf)
	zipfs := map[*Param]*Zipf{}
	draw := func(r *rand.Rand, p *Param) string {
		z, ok := zipfs[p]
		if !ok {
			z = NewZipf(len(p.Values), p.Zipf)
			zipfs[p] = z
		}
		return p.Values[z.Draw(r)]
	}
	s := &Schedule{Viewers: make([][]Request, w.Viewers)}
	for v := range w.Viewers {
		r := rand.New(rand.NewPCG(w.Seed, uint64(v)))
		t := time.Duration(r.Int64N(int64(min(w.ThinkTime, w.Duration))))
		for t < w.Duration {
			bi := boards.Draw(r)
			b := &w.Boards[bi]
			vals := map[string]string{}
			for i := range b.Params {
				vals[b.Params[i].Name] = draw(r, &b.Params[i])
			}
			charts := make([]string, len(b.Charts))
			for ci := range b.Charts {
				c := &b.Charts[ci]
				own := map[string]string{}
				for i := range c.Params {
					own[c.Params[i].Name] = draw(r, &c.Params[i])
				}
				charts[ci] = c.render(own, vals)
			}
			stay := time.Duration(r.ExpFloat64() * float64(w.ThinkTime))
			refresh := w.RefreshInterval
			if b.HasRefresh {
				refresh = b.RefreshInterval
			}
			for load := t; load < w.Duration; load += refresh {
				for ci, sql := range charts {
					s.Viewers[v] = append(s.Viewers[v], Request{At: load, Board: bi, Chart: ci, SQL: sql})
				}
				if refresh <= 0 || load+refresh >= t+stay {
					break
				}
			}
			// At least a millisecond on, so that a viewer always moves.
			t += max(stay, time.Millisecond)
		}
	}
	return s
}

// render writes the chart's SQL with the values of its own parameters,
// else of its dashboard's.
func (c *Chart) render(own, board map[string]string) string {
	var b strings.Builder
	for _, p := range c.parts {
		if p.param == "" {
			b.WriteString(p.text)
			continue
		}
		if v, ok := own[p.param]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(board[p.param])
		}
	}
	return b.String()
}
