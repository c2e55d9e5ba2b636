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

// Interleaving is the one order in which every comparison runs its
// contenders: round after round, and within a round group after group
// (pgbench's cells; a dashboard replay has one group a round), each
// contender in turn, the contenders' order rotated by one from round to
// round so that none always runs first after a change. Interleaved so,
// the noise of a shared machine falls on all of them alike.
type Interleaving[C any] struct {
	Rounds     int
	Groups     int // at least 1
	Contenders []C // in the order of the first round
	// BeforeRound, if set, runs at the start of every round (0-based).
	BeforeRound func(ctx context.Context, round int) error
	// Turn runs one contender's turn.
	Turn func(ctx context.Context, round, group int, c C) error
}

// Run runs every turn in order. It stops at the first error, and before
// the next turn once ctx is done, returning ctx's error.
func (il Interleaving[C]) Run(ctx context.Context) error {
	n := len(il.Contenders)
	if n == 0 {
		return nil
	}
	for round := 0; round < il.Rounds; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if il.BeforeRound != nil {
			if err := il.BeforeRound(ctx, round); err != nil {
				return err
			}
		}
		for g := 0; g < max(il.Groups, 1); g++ {
			for i := range n {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := il.Turn(ctx, round, g, il.Contenders[(i+round)%n]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// RunRounds runs every cell against every contender with pgbench, in the
// order of an [Interleaving] whose groups are the cells. A contender that
// does not support a cell's mode is tried in the first round only.
func (h *Harness) RunRounds(ctx context.Context, rr Rounds) (Runs, error) {
	runs := Runs{}
	for _, cell := range rr.Cells {
		runs[cell] = map[string][]Result{}
	}
	if len(rr.Cells) == 0 || len(rr.Contenders) == 0 {
		return runs, nil
	}
	err := Interleaving[string]{
		Rounds: rr.Rounds, Groups: len(rr.Cells), Contenders: rr.Contenders,
		BeforeRound: rr.BeforeRound,
		Turn: func(ctx context.Context, round, group int, c string) error {
			cell := rr.Cells[group]
			if rr.Skip != nil && rr.Skip(cell, c) {
				return nil
			}
			prev := runs[cell][c]
			if len(prev) > 0 && prev[0].Unsupported {
				return nil // it will not work any better in this round
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
				return err
			}
			runs[cell][c] = append(prev, r)
			if r.Err != nil {
				h.logf("round %d %-24s %-10s %s", round+1, cell, c, describeErr(r))
			} else {
				h.logf("round %d %-24s %-10s %9.1f tps  avg %.3f ms  p50 %.3f ms  p99 %.3f ms", round+1, cell, c, r.TPS, r.Avg, r.P50, r.P99)
			}
			return nil
		},
	}.Run(ctx)
	if err != nil {
		return nil, err
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
