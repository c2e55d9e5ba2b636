package simulate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/policy"
)

// ModelText says, for the report's reader, what the prediction models and
// what it leaves out.
const ModelText = `Each statement, in the order it started, is analysed, labelled, matched to its rule and keyed by sqlcached's own code (backend, database, user unless the rule shares the answer, normalised text, parameters, the key settings the session SET; no result formats or parameter types, which logs do not carry). ` +
	`An answer is fresh for the TTL from the start of the run that filled it; a statement arriving while that run is in flight is collapsed onto it (a hit); stale_ttl and refresh_ahead serve the old answer and count one background run; writes invalidate the answers that read their tables; reads in a transaction that wrote, or above READ COMMITTED, and in pinned sessions bypass; admission turns away shapes answered fewer than 10 times in 1000. ` +
	`L1 is modelled as LRU bounded in bytes; ristretto's TinyLFU admission and sampled-LFU eviction make real hit rates a little higher than LRU's when L1 is too small for the hot set (it keeps frequent answers) and a little lower for bursts of new answers (it may turn a first fill away). Redis (L2) is not modelled: with it, answers L1 lets go are hits of L2. ` +
	`Answer sizes: the log's when it has them, rows times the row size when it has a row count, otherwise one size for every answer (--entry-bytes). Warehouse time saved is the sum of the logged durations of the hits.`

// Report is the prediction for every setting of the grid.
type Report struct {
	Log   string     `json:"log"`
	Parse ParseStats `json:"parse"`

	Statements int           `json:"statements"`
	First      time.Time     `json:"first"`
	Last       time.Time     `json:"last"`
	Logged     time.Duration `json:"logged_ns"`
	Model      string        `json:"model"`

	Results []Result `json:"results"`
	// Reference is the index in Results of the setting Shapes describe:
	// the one that saves the most warehouse time (the smallest such).
	Reference int           `json:"reference"`
	Shapes    []ShapeResult `json:"shapes"`
}

// finish sums up the log and picks the shapes of the reference setting.
func (rep *Report) finish(recs []Record, shapes []shapeInfo, top int) {
	rep.Model = ModelText
	rep.Statements = len(recs)
	if len(recs) > 0 {
		rep.First = recs[0].Start
		for i := range recs {
			rep.Logged += recs[i].Duration
			if end := recs[i].End(); end.After(rep.Last) {
				rep.Last = end
			}
		}
	}
	for i, r := range rep.Results {
		if r.Saved > rep.Results[rep.Reference].Saved {
			rep.Reference = i
		}
	}
	if len(rep.Results) == 0 {
		return
	}
	ref := rep.Results[rep.Reference].shapes
	out := make([]ShapeResult, 0, len(ref))
	for i, sr := range ref {
		if sr.Count == 0 {
			continue
		}
		sr.Shape, sr.Sample, sr.NotCached = policy.ShapeString(shapes[i].id), shapes[i].sample, shapes[i].reason
		out = append(out, sr)
	}
	slices.SortStableFunc(out, func(a, b ShapeResult) int {
		return cmp.Or(cmp.Compare(b.Saved, a.Saved), cmp.Compare(b.Logged, a.Logged), cmp.Compare(b.Count, a.Count))
	})
	rep.Shapes = out[:min(top, len(out))]
}

// Setting describes a result's setting for people: "TTL 5m, L1 256MiB".
func (r *Result) Setting() string {
	return "TTL " + ttlString(r.TTL) + ", L1 " + bytesString(r.L1Bytes)
}

func ttlString(d time.Duration) string {
	switch {
	case d == 0:
		return "as configured"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func bytesString(n int64) string { return config.ByteSize(n).String() }

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteMarkdown writes the report for people.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Predicted cache hit rates\n\n")
	fmt.Fprintf(&b, "Log `%s` (%s): %d statements", rep.Log, rep.Parse.Format, rep.Statements)
	if rep.Statements > 0 {
		fmt.Fprintf(&b, " from %s over %s", rep.First.Format("2006-01-02 15:04:05 MST"), round(rep.Last.Sub(rep.First)))
	}
	fmt.Fprintf(&b, ", %s of warehouse time; %d log entries skipped (not statements)", round(rep.Logged), rep.Parse.Skipped)
	if rep.Parse.Foreign > 0 {
		fmt.Fprintf(&b, ", %d lines not in the log's format", rep.Parse.Foreign)
	}
	b.WriteString(".\n\n")
	b.WriteString("| TTL | L1 | hit rate | hits | of which collapsed | misses | bypass | warehouse executions | warehouse time saved |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "| %s | %s | %.1f%% | %d | %d | %d | %d | %d | %s (%.1f%%) |\n",
			ttlString(r.TTL), bytesString(r.L1Bytes), 100*r.HitRate, r.Hits, r.Collapsed, r.Misses, r.Bypass,
			r.Executions, round(r.Saved), percent(r.Saved, r.Logged))
	}
	if len(rep.Results) > 0 {
		fmt.Fprintf(&b, "\n## Top shapes by warehouse time saved (%s)\n\n", rep.Results[rep.Reference].Setting())
		b.WriteString("| shape | statement | count | hits | warehouse time | saved |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | ---: |\n")
		for _, s := range rep.Shapes {
			stmt := "`" + mdCell(abbreviate(s.Sample, 100)) + "`"
			if s.NotCached != "" {
				stmt += " (not cached: " + mdCell(s.NotCached) + ")"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %d | %d | %s | %s |\n", s.Shape, stmt, s.Count, s.Hits, round(s.Logged), round(s.Saved))
		}
	}
	b.WriteString("\n" + rep.Model + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func percent(part, whole time.Duration) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// round shortens a duration for a table.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// mdCell makes s safe in a Markdown table cell inside backquotes.
func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
	return s
}
