package bench

import (
	"context"
)

// Rounds describes the timed part of a comparison.
type Rounds struct {
	Rounds     int
	Seconds    int
	Cells      []Cell
	Contenders []string // in the order of the first round
	// Workload returns the workload of a cell.
	Workload func(Cell) Workload
	// Skip, if set, leaves a contender out of a cell.
	Skip func(Cell, string) bool
	// BeforeRound, if set, runs at the start of every round (0-based).
	BeforeRound func(ctx context.Context, round int) error
	// Around, if set, wraps every run: it calls run and may look at the
	// servers before and after (and annotate the result).
	Around func(ctx context.Context, contender string, cell Cell, run func() (Result, error)) (Result, error)
}

// Runs holds every run of a comparison: cell, contender, one result per
// round.
type Runs map[Cell]map[string][]Result

// RunRounds runs every cell against every contender, cell after cell,
// round after round, rotating the contenders' order from round to round
// so that none always runs first after a change of cell. A contender
// that does not support a cell's mode is tried in the first round only.
func (h *Harness) RunRounds(ctx context.Context, rr Rounds) (Runs, error) {
	runs := Runs{}
	for _, cell := range rr.Cells {
		runs[cell] = map[string][]Result{}
	}
	for round := 0; round < rr.Rounds; round++ {
		if rr.BeforeRound != nil {
			if err := rr.BeforeRound(ctx, round); err != nil {
				return nil, err
			}
		}
		order := make([]string, len(rr.Contenders))
		for i := range rr.Contenders {
			order[i] = rr.Contenders[(i+round)%len(rr.Contenders)]
		}
		for _, cell := range rr.Cells {
			for _, c := range order {
				if rr.Skip != nil && rr.Skip(cell, c) {
					continue
				}
				prev := runs[cell][c]
				if len(prev) > 0 && prev[0].Unsupported {
					continue // it will not work any better in this round
				}
				bench := func() (Result, error) {
					return h.Bench(ctx, Run{Contender: c, Workload: rr.Workload(cell), Clients: cell.Clients, Mode: cell.Mode, Seconds: rr.Seconds})
				}
				var r Result
				var err error
				if rr.Around != nil {
					r, err = rr.Around(ctx, c, cell, bench)
				} else {
					r, err = bench()
				}
				if err != nil {
					return nil, err
				}
				runs[cell][c] = append(prev, r)
				if r.Err != nil {
					h.logf("round %d %-24s %-10s %s", round+1, cell, c, describeErr(r))
				} else {
					h.logf("round %d %-24s %-10s %9.1f tps  avg %.3f ms  p50 %.3f ms  p99 %.3f ms", round+1, cell, c, r.TPS, r.Avg, r.P50, r.P99)
				}
			}
		}
	}
	return runs, nil
}

// Stat sums up contender's runs of cell: medians over the rounds that
// completed.
func (r Runs) Stat(cell Cell, contender string) Stat {
	var s Stat
	var tps, avg, p50, p99 []float64
	for _, x := range r[cell][contender] {
		s.Runs++
		if x.Err != nil {
			s.Unsupported = s.Unsupported || x.Unsupported
			if s.Err == "" {
				s.Err = x.Err.Error()
			}
			continue
		}
		s.OK++
		tps, avg = append(tps, x.TPS), append(avg, x.Avg)
		p50, p99 = append(p50, x.P50), append(p99, x.P99)
	}
	s.TPS, s.Avg, s.P50, s.P99 = Median(tps), Median(avg), Median(p50), Median(p99)
	return s
}
