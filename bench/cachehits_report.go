package bench

import (
	"fmt"
	"math"
	"strings"
)

// Bars the cache-hits comparison is held to.
const (
	// HitLatencyBar: sqlcached's hit latency at most this many times that
	// of SELECT 1 sent straight to PostgreSQL.
	HitLatencyBar = 1.2
	// HitTPSBar: sqlcached's hit TPS at least this many times pgpool-II's
	// query cache.
	HitTPSBar = 3.0
)

// ExecutionsPerTx is the median over the rounds of the warehouse
// executions per transaction of contender in cell, NaN if unknown.
func (r *CacheHitsResult) ExecutionsPerTx(cell Cell, contender string) float64 {
	return Median(r.Executions[cell][contender])
}

// Markdown renders the comparison: a header, the correctness checks, the
// table of medians and ratios, the bars, and every round's TPS.
func (r *CacheHitsResult) Markdown(command string) string {
	c := r.Config
	var b strings.Builder
	if command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", command)
	}
	cache := "L1 only"
	if c.L2 {
		cache = "L1 and a private Redis as L2"
	}
	fmt.Fprintf(&b, "Dashboard mix: %d queries over %d orders (data built in %s), one chosen at random per transaction (`-f q.sql@1` each). pgbench -T %d -j %d, %d rounds with the contenders interleaved (%s, order rotated each round); every proxy asked every query once per protocol before each round. sqlcached: catch-all policy ttl %s, %s, max_conns %d. pgpool-II: raw mode, num_init_children %d, max_pool 1, memqcache shmem, memqcache_expire %d.\n",
		len(DashboardQueries), c.Rows, r.BuildTime.Round(1e9), c.Seconds, c.Jobs, c.Rounds, strings.Join(c.Contenders, ", "),
		c.TTL, cache, c.PoolSize, c.PgpoolChildren, c.PgpoolExpire)
	var vs []string
	for _, k := range sortedKeys(r.Versions) {
		vs = append(vs, fmt.Sprintf("%s: %s", k, r.Versions[k]))
	}
	fmt.Fprintf(&b, "Versions: %s.\n", strings.Join(vs, "; "))
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s; took %s.\n\n", r.LoadBefore, r.LoadAfter, r.Elapsed.Round(1e9))

	r.writeChecks(&b)

	row := func(cells []string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	hasSC := contains(c.Contenders, SqlCached)
	header, align := comparisonHeader(c.Contenders, PgPool)
	row(header)
	row(align)
	var notes []string
	for _, cell := range r.Cells {
		cols := []string{cell.Workload, fmt.Sprint(cell.Clients), cell.Mode}
		for _, ct := range c.Contenders {
			s := r.Runs.Stat(cell, ct)
			cols = append(cols, statCols(s, ct, cell, &notes)...)
		}
		if hasSC {
			scs := r.Runs.Stat(cell, SqlCached)
			if contains(c.Contenders, PgPool) {
				cols = append(cols, fmtRatio(Ratio(scs, r.Runs.Stat(cell, PgPool))))
			}
			if contains(c.Contenders, Direct) {
				cols = append(cols, fmtRatio(Ratio(scs, r.Runs.Stat(cell, Direct))))
			}
			if contains(c.Contenders, Bare) {
				cols = append(cols, fmtRatio(Ratio(scs, r.Runs.Stat(cell, Bare))))
			}
		}
		row(cols)
	}
	if len(r.PgpoolCached) > 0 && len(r.PgpoolCached) < len(DashboardQueries) {
		var names []string
		for _, q := range r.PgpoolCached {
			names = append(names, q.Name)
		}
		fmt.Fprintf(&b, "\nThe %s rows run only the %d dashboard queries pgpool-II's cache kept in the checks (%s), simple protocol, without direct.\n", pgpoolCachedWorkload, len(names), strings.Join(names, ", "))
	}
	b.WriteString("\nTPS are medians over the rounds of pgbench's figure excluding connection time; avg is pgbench's average latency (duration × clients / transactions); p50 and p99 are medians over the rounds of each run's percentiles of the per-transaction latencies pgbench logs (-l), in which pgbench's lazy clock reads log a transaction whose answer was already waiting as taking about 0 ms, so p50 reads low for the fastest endpoints on a busy machine; ratios are of median TPS. The select1 rows are the reference: `SELECT 1` sent straight to PostgreSQL; with 1 client, pgbench reads the clock for every transaction and p50 is exact.\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}

	// Warehouse executions per transaction.
	b.WriteString("\nWarehouse executions of dashboard queries per transaction (pg_stat_statements, medians over the rounds; 0 means every answer came from the cache):\n\n")
	hdr := []string{"workload", "clients", "mode"}
	aln := []string{"---", "---:", "---"}
	hdr, aln = append(hdr, c.Contenders...), append(aln, repeat("---:", len(c.Contenders))...)
	row(hdr)
	row(aln)
	for _, cell := range r.Cells {
		if isReference(cell) {
			continue
		}
		cols := []string{cell.Workload, fmt.Sprint(cell.Clients), cell.Mode}
		for _, ct := range c.Contenders {
			x := r.ExecutionsPerTx(cell, ct)
			if math.IsNaN(x) {
				cols = append(cols, "–")
			} else {
				cols = append(cols, fmt.Sprintf("%.3f", x))
			}
		}
		row(cols)
	}

	r.writeBars(&b)

	b.WriteString("\nTPS of every round:\n\n")
	hdr = append([]string{"workload", "clients", "mode"}, c.Contenders...)
	aln = append([]string{"---", "---:", "---"}, repeat("---", len(c.Contenders))...)
	row(hdr)
	row(aln)
	for _, cell := range r.Cells {
		cols := []string{cell.Workload, fmt.Sprint(cell.Clients), cell.Mode}
		for _, ct := range c.Contenders {
			cols = append(cols, roundTPS(r.Runs[cell][ct]))
		}
		row(cols)
	}
	return b.String()
}

func (r *CacheHitsResult) writeChecks(b *strings.Builder) {
	var bad []string
	uncached := map[string][]string{}
	for _, ck := range r.Checks {
		if ck.Mismatch != "" {
			bad = append(bad, fmt.Sprintf("- **MISMATCH** %s through %s: %s", ck.Query, ck.Contender, ck.Mismatch))
		}
		if ck.Executions != 0 {
			uncached[ck.Contender] = append(uncached[ck.Contender], ck.Query)
		}
	}
	proxies := 0
	for _, ct := range r.Config.Contenders {
		if ct != Direct {
			proxies++
		}
	}
	if len(bad) == 0 {
		fmt.Fprintf(b, "Correctness: every dashboard query asked once directly and twice through each proxy (psql -Atc, simple protocol; the second ask answered from the cache where the proxy caches it): all %d answers through the proxies identical to PostgreSQL's.\n\n", 2*len(r.Checks))
	} else {
		fmt.Fprintf(b, "Correctness: **%d of %d query × proxy checks differ from PostgreSQL's answer**:\n\n%s\n\n", len(bad), len(r.Checks), strings.Join(bad, "\n"))
	}
	_ = proxies
	for _, ct := range r.Config.Contenders {
		if ct == Direct {
			continue
		}
		qs := uncached[ct]
		if len(qs) == 0 {
			fmt.Fprintf(b, "- %s answered the second ask of all %d queries from its cache.\n", ct, len(DashboardQueries))
		} else {
			fmt.Fprintf(b, "- %s sent the second ask of %d of %d queries to the warehouse again (not cached): %s.\n", ct, len(qs), len(DashboardQueries), strings.Join(qs, ", "))
		}
	}
	b.WriteString("\n")
}

func (r *CacheHitsResult) writeBars(b *strings.Builder) {
	c := r.Config
	if !contains(c.Contenders, SqlCached) {
		return
	}
	b.WriteString("\nBars:\n\n")
	for _, rc := range r.References {
		ref := r.Runs.Stat(rc, Direct)
		if ref.OK == 0 {
			continue
		}
		fmt.Fprintf(b, "- Hit latency at most %.1f× direct `SELECT 1` (%d clients, simple: avg %.3f ms, p50 %.3f ms):\n", HitLatencyBar, rc.Clients, ref.Avg, ref.P50)
		for _, cell := range r.Cells {
			// Latency grows with the clients: only cells with the
			// reference's number of clients compare.
			if isReference(cell) || cell.Clients != rc.Clients {
				continue
			}
			s := r.Runs.Stat(cell, SqlCached)
			if s.OK == 0 {
				continue
			}
			pa, pp := s.Avg/ref.Avg, s.P50/ref.P50
			if ref.P50 <= 0 {
				// pgbench's lazy clock logged most SELECT 1s as 0 ms:
				// there is no p50 to compare with.
				fmt.Fprintf(b, "  - %s: sqlcached avg %.3f ms = **%.2f×** (%s), p50 %.3f ms (the reference's p50 is not measurable at this concurrency)\n",
					cell, s.Avg, pa, met(pa <= HitLatencyBar), s.P50)
				continue
			}
			fmt.Fprintf(b, "  - %s: sqlcached avg %.3f ms = **%.2f×** (%s), p50 %.3f ms = **%.2f×** (%s)\n",
				cell, s.Avg, pa, met(pa <= HitLatencyBar), s.P50, pp, met(pp <= HitLatencyBar))
		}
	}
	if contains(c.Contenders, PgPool) {
		fmt.Fprintf(b, "- Hit TPS at least %.0f× pgpool-II's query cache:\n", HitTPSBar)
		for _, cell := range r.Cells {
			if isReference(cell) {
				continue
			}
			x := Ratio(r.Runs.Stat(cell, SqlCached), r.Runs.Stat(cell, PgPool))
			if math.IsNaN(x) {
				fmt.Fprintf(b, "  - %s: no ratio (a contender has no successful run)\n", cell)
				continue
			}
			fmt.Fprintf(b, "  - %s: **%.2f×** (%s)\n", cell, x, met(x >= HitTPSBar))
		}
	}
	if contains(c.Contenders, Bare) {
		b.WriteString("- The floor: the bare server (a map lookup and a write per query, nothing else) on the same machine in the same rounds:\n")
		for _, cell := range r.Cells {
			bs := r.Runs.Stat(cell, Bare)
			if isReference(cell) || bs.OK == 0 {
				continue
			}
			line := fmt.Sprintf("  - %s: sqlcached reaches **%.2f×** of the bare server's TPS", cell, Ratio(r.Runs.Stat(cell, SqlCached), bs))
			if x := Ratio(bs, r.Runs.Stat(cell, PgPool)); !math.IsNaN(x) {
				line += fmt.Sprintf("; the bare server itself runs %.2f× pgpool-II", x)
			}
			b.WriteString(line + "\n")
		}
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// statCols are a contender's TPS and latency columns of one cell, with a
// note for what failed.
func statCols(s Stat, contender string, cell Cell, notes *[]string) []string {
	note := func(n string) {
		if !contains(*notes, n) {
			*notes = append(*notes, n)
		}
	}
	switch {
	case s.Runs == 0:
		return []string{"", ""}
	case s.Unsupported && s.OK == 0:
		note(fmt.Sprintf("%s cannot run -M %s: %s", contender, cell.Mode, s.Err))
		return []string{"unsupported", ""}
	case s.OK == 0:
		note(fmt.Sprintf("%s %s: %s", contender, cell, s.Err))
		return []string{"error", ""}
	}
	t := fmtTPS(s.TPS)
	if s.OK < s.Runs {
		t += fmt.Sprintf(" (%d of %d runs)", s.OK, s.Runs)
		note(fmt.Sprintf("%s %s failed in some rounds: %s", contender, cell, s.Err))
	}
	return []string{t, fmt.Sprintf("%.2f / %.2f / %.2f", s.Avg, s.P50, s.P99)}
}

// fmtTPS keeps a decimal for the slowest contenders.
func fmtTPS(x float64) string {
	if x < 20 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

func roundTPS(runs []Result) string {
	var xs []string
	for _, x := range runs {
		switch {
		case x.Unsupported:
			xs = append(xs, "unsupported")
		case x.Err != nil:
			xs = append(xs, "error")
		default:
			xs = append(xs, fmtTPS(x.TPS))
		}
	}
	return strings.Join(xs, ", ")
}
