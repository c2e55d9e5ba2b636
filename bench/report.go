package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Stat sums up one contender's runs of one cell: medians over the rounds
// that completed.
type Stat struct {
	TPS, Avg, P50, P99 float64
	OK, Runs           int
	Unsupported        bool
	Err                string // the first error, if any run failed
}

// Stat sums up contender's runs of cell.
func (r *PassthroughResult) Stat(cell Cell, contender string) Stat {
	return r.Runs.Stat(cell, contender)
}

// PgbouncerBaseline returns the pgbouncer figures sqlcached's cell is
// compared with, and the mode they were measured in. When pgbouncer could
// not run the cell's mode (-M prepared in transaction mode), it is its
// extended-protocol figure of the same workload and clients if there is
// one, else its simple-protocol figure.
func (r *PassthroughResult) PgbouncerBaseline(cell Cell) (Stat, string) {
	s := r.Stat(cell, PgBouncer)
	if s.OK > 0 || !s.Unsupported {
		return s, cell.Mode
	}
	for _, m := range []string{"extended", "simple"} {
		alt := Cell{cell.Workload, cell.Clients, m}
		if _, ok := r.Runs[alt]; !ok {
			continue
		}
		if a := r.Stat(alt, PgBouncer); a.OK > 0 {
			return a, m
		}
	}
	return s, cell.Mode
}

// Ratio is sqlcached's median TPS over the baseline's, NaN when either is
// missing.
func Ratio(sqlcached, baseline Stat) float64 {
	if sqlcached.OK == 0 || baseline.OK == 0 || baseline.TPS == 0 {
		return math.NaN()
	}
	return sqlcached.TPS / baseline.TPS
}

// Markdown renders the comparison: a header, the table of medians and
// ratios, notes, and every round's TPS.
func (r *PassthroughResult) Markdown(command string) string {
	c := r.Config
	var b strings.Builder
	if command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", command)
	}
	fmt.Fprintf(&b, "pgbench -T %d -j %d, %d rounds with the contenders interleaved (%s, order rotated each round), scale %d, pool size %d, warm-up %d s per contender.\n",
		c.Seconds, c.Jobs, c.Rounds, strings.Join(c.Contenders, ", "), c.Scale, c.PoolSize, c.Warmup)
	var vs []string
	for _, k := range sortedKeys(r.Versions) {
		vs = append(vs, fmt.Sprintf("%s: %s", k, r.Versions[k]))
	}
	fmt.Fprintf(&b, "Versions: %s.\n", strings.Join(vs, "; "))
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s; took %s.\n\n", r.LoadBefore, r.LoadAfter, r.Elapsed.Round(1e9))

	hasSC := contains(c.Contenders, SqlCached)
	header, align := comparisonHeader(c.Contenders, PgBouncer)
	row := func(cells []string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	row(header)
	row(align)
	var notes []string
	note := func(s string) {
		if !contains(notes, s) {
			notes = append(notes, s)
		}
	}
	for _, cell := range r.Cells {
		cols := []string{cell.Workload, fmt.Sprint(cell.Clients), cell.Mode}
		for _, ct := range c.Contenders {
			cols = append(cols, statCols(r.Stat(cell, ct), ct, cell, &notes)...)
		}
		if hasSC {
			scs := r.Stat(cell, SqlCached)
			if contains(c.Contenders, PgBouncer) {
				base, mode := r.PgbouncerBaseline(cell)
				v := fmtRatio(Ratio(scs, base))
				if mode != cell.Mode && v != "–" {
					v += fmt.Sprintf(" (vs %s)", mode)
					note(fmt.Sprintf("(vs %s): pgbouncer could not run -M %s, so sqlcached's -M %s figure is compared with pgbouncer's -M %s figure for the same workload and clients", mode, cell.Mode, cell.Mode, mode))
				}
				cols = append(cols, v)
			}
			if contains(c.Contenders, Direct) {
				cols = append(cols, fmtRatio(Ratio(scs, r.Stat(cell, Direct))))
			}
		}
		row(cols)
	}
	b.WriteString("\nTPS are medians over the rounds of pgbench's figure excluding connection time; avg is pgbench's average latency (duration × clients / transactions); p50 and p99 are medians over the rounds of each run's percentiles of the per-transaction latencies pgbench logs (-l), in which pgbench's lazy clock reads log a transaction whose answer was already waiting as taking about 0 ms, so the p50 of the fastest endpoint reads low on a busy machine; ratios are of median TPS.\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	if r.ProfileResult != nil {
		fmt.Fprintf(&b, "\nCPU profile of sqlcached during one more run of %s (%.0f TPS while profiled): %s\n", c.ProfileCell, r.ProfileResult.TPS, c.Profile)
	}

	paired := hasSC && contains(c.Contenders, PgBouncer)
	b.WriteString("\nTPS of every round")
	hdr := append([]string{"workload", "clients", "mode"}, c.Contenders...)
	aln := append([]string{"---", "---:", "---"}, repeat("---", len(c.Contenders))...)
	if paired {
		b.WriteString(", and sqlcached / pgbouncer within each round (against the same baseline as above)")
		hdr, aln = append(hdr, "sqlcached / pgbouncer by round"), append(aln, "---")
	}
	b.WriteString(":\n\n")
	row(hdr)
	row(aln)
	for _, cell := range r.Cells {
		cols := []string{cell.Workload, fmt.Sprint(cell.Clients), cell.Mode}
		for _, ct := range c.Contenders {
			cols = append(cols, roundTPS(r.Runs[cell][ct]))
		}
		if paired {
			cols = append(cols, strings.Join(r.roundRatios(cell), ", "))
		}
		row(cols)
	}
	return b.String()
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// roundRatios are sqlcached's TPS over pgbouncer's baseline (see
// PgbouncerBaseline) round by round.
func (r *PassthroughResult) roundRatios(cell Cell) []string {
	_, mode := r.PgbouncerBaseline(cell)
	base := r.Runs[Cell{cell.Workload, cell.Clients, mode}][PgBouncer]
	var out []string
	for i, x := range r.Runs[cell][SqlCached] {
		if i >= len(base) || x.Err != nil || base[i].Err != nil || base[i].TPS == 0 {
			out = append(out, "–")
			continue
		}
		out = append(out, fmt.Sprintf("%.2f", x.TPS/base[i].TPS))
	}
	return out
}

// comparisonHeader returns the header and alignment rows of a table with
// TPS and latencies per contender, then sqlcached's ratios to peer and to
// direct PostgreSQL where both are contenders.
func comparisonHeader(contenders []string, peer string) (header, align []string) {
	header = []string{"workload", "clients", "mode"}
	align = []string{"---", "---:", "---"}
	for _, ct := range contenders {
		header = append(header, ct+" TPS", ct+" avg / p50 / p99 ms")
		align = append(align, "---:", "---:")
	}
	if !contains(contenders, SqlCached) {
		return header, align
	}
	for _, other := range []string{peer, Direct, Bare} {
		if contains(contenders, other) {
			header, align = append(header, "sqlcached / "+other), append(align, "---:")
		}
	}
	return header, align
}
