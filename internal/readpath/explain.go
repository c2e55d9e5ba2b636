package readpath

import (
	"fmt"
	"io"
	"strings"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/policy"
)

// Explanation is what the read path makes of one request, step by step,
// for `sqlcached policy explain`.
type Explanation struct {
	Analysis *fingerprint.Analysis
	Labels   policy.Labels
	Decision policy.Decision
	// Key holds the key's components, when the answer is cached.
	Key *fingerprint.KeyInput
}

// Explain runs the steps of the read path that decide a request under
// rules (analyse, labels, rule, key), without looking anything up.
func Explain(rules *policy.Set, analyzer *fingerprint.Analyzer, req *Request) Explanation {
	a := req.Analysis
	if a == nil {
		a = analyzer.Analyze(req.SQL)
	}
	var e Explanation
	e.Analysis = a
	e.Labels, e.Decision = decide(rules, nil, req, a)
	if e.Decision.Cache {
		in := KeyInput(req, a, e.Decision)
		e.Key = &in
	}
	return e
}

// WriteText writes the explanation for a person to read.
func (e *Explanation) WriteText(w io.Writer) error {
	a, d := e.Analysis, e.Decision
	var b strings.Builder
	line := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-11s %s\n", name+":", fmt.Sprintf(format, args...))
	}
	line("statement", "%s", a.Normalized)
	line("kind", "%s", a.Kind)
	if a.ShapeID != 0 {
		line("shape", "%s", policy.ShapeString(a.ShapeID))
	}
	if len(a.ReadTables) > 0 {
		line("reads", "%s", strings.Join(a.ReadTables, ", "))
	}
	var labels []string
	if e.Labels.Dashboard != "" {
		labels = append(labels, fmt.Sprintf("dashboard=%q (from %s)", e.Labels.Dashboard, e.Labels.DashboardSource))
	}
	if e.Labels.Chart != "" {
		labels = append(labels, fmt.Sprintf("chart=%q", e.Labels.Chart))
	}
	if e.Labels.Tool != "" {
		labels = append(labels, fmt.Sprintf("tool=%q", e.Labels.Tool))
	}
	if len(labels) == 0 {
		labels = append(labels, "none")
	}
	line("labels", "%s", strings.Join(labels, ", "))
	if d.Rule == nil {
		line("rule", "none matches")
	} else {
		line("rule", "%s", d.Rule.Describe())
	}
	if a.Cacheable {
		line("cacheable", "yes")
	} else {
		line("cacheable", "no: %s", a.Reason)
	}
	switch {
	case d.Cache:
		r := d.Rule
		line("decision", "cached: ttl %v, stale_ttl %v, stale_if_error %v, refresh_ahead %v, timeout %v, queue %s, shared %v, cancel_abandoned %v, max_entry_bytes %d",
			d.TTL, r.StaleTTL, r.StaleIfError, r.RefreshAhead, r.Timeout, r.Queue, d.Shared, r.CancelAbandoned, r.MaxEntryBytes)
	case d.Rule != nil && d.Rule.Timeout > 0:
		line("decision", "not cached: %s (sent to the warehouse, under the rule's timeout of %v)", d.Reason, d.Rule.Timeout)
	default:
		line("decision", "not cached: %s (sent to the warehouse)", d.Reason)
	}
	if d.Hint != "" {
		line("hint", "%s", d.Hint)
	}
	if k := e.Key; k != nil {
		user := k.User
		if k.Shared {
			user = "(shared by every user)"
		}
		line("key", "%s", k.Key())
		fmt.Fprintf(&b, "%-11s backend %s, database %s, user %s\n", "", k.Backend, k.Database, user)
		fmt.Fprintf(&b, "%-11s text %q\n", "", k.Normalized)
		if len(k.Params) > 0 {
			fmt.Fprintf(&b, "%-11s %d parameters\n", "", len(k.Params))
		}
		if len(k.Settings) == 0 {
			fmt.Fprintf(&b, "%-11s settings: the warehouse's defaults\n", "")
		}
		for _, s := range k.Settings {
			fmt.Fprintf(&b, "%-11s setting %s\n", "", s.Value)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
