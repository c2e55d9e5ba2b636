package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Dashboards is a dashboard workload: what `sqlcached bench` replays
// against every target. It is read from YAML by LoadDashboards; see
// deploy/bench/dashboards.yaml for a commented example.
//
// Viewers are concurrent clients, each with its own connection. A viewer
// opens a dashboard (chosen by Zipf popularity, the first listed the most
// popular), picks a value for each of its parameters (Zipf again, over the
// parameter's domain), runs every chart's SQL in turn, and stays on the
// dashboard for a time drawn around ThinkTime, reloading it every
// refresh interval if the dashboard has one; then it opens the next.
type Dashboards struct {
	File     string        // the file it was read from
	Name     string        // default: the file's name
	Duration time.Duration // virtual time of the schedule, per target; default 1m
	Seed     uint64        // the schedule's random seed; the same seed, the same schedule
	Viewers  int           // concurrent clients; default 8

	// ThinkTime is the mean time a viewer stays on a dashboard before it
	// opens another (exponentially distributed). Default 5s.
	ThinkTime time.Duration
	// RefreshInterval is how often an open dashboard reloads while a
	// viewer stays on it, unless the dashboard sets its own; 0: never.
	RefreshInterval time.Duration
	// Round is the length of one target's turn: the schedule is cut into
	// rounds and every round is replayed against each target in turn.
	// Default 5s. Shorter rounds spread a noisy machine more evenly over
	// the targets; each turn costs a scrape of the metrics and of
	// pg_stat_statements.
	Round time.Duration
	// Timeout bounds one request. Default 30s.
	Timeout time.Duration
	// Protocol is how queries are sent: simple (default: the simple query
	// protocol, as psql and psycopg2 send them), extended (an unnamed
	// statement per query, as JDBC and most drivers do) or prepared (a
	// named prepared statement per distinct text, kept on the connection).
	Protocol string
	// DashboardZipf is the Zipf exponent of the dashboards' popularity
	// (0: all alike; 1: the second is half as popular as the first).
	// Default 1.
	DashboardZipf float64
	// ParamZipf is the default Zipf exponent of parameter values. Default 1.
	ParamZipf float64

	Boards  []Board
	Targets []Target // the targets the file names; flags replace them
}

// Board is one dashboard.
type Board struct {
	Name string
	Line int
	// RefreshInterval, if HasRefresh, replaces the workload's.
	RefreshInterval time.Duration
	HasRefresh      bool
	// Params are the dashboard's filters: one value of each is chosen per
	// visit and shared by all its charts.
	Params []Param
	Charts []Chart
}

// Chart is one chart of a dashboard: a SQL template. {{name}} in the text
// is replaced by a value of the parameter name (the chart's own, else the
// dashboard's) written as a SQL literal.
type Chart struct {
	Name   string
	Line   int
	SQL    string
	Params []Param // chosen per chart per visit
	parts  []templatePart
}

type templatePart struct {
	text  string
	param string // if not "", a parameter's value goes here
}

// Param is a parameter's domain: its values as SQL literals, the most
// popular first, and the Zipf exponent of their popularity.
type Param struct {
	Name   string
	Values []string
	Zipf   float64
}

// Target is a server to measure.
type Target struct {
	Name string
	DSN  string
	// MetricsURL, if set, is sqlcached's /metrics, read before and after
	// every turn for its hit ratio and collapse ratio.
	MetricsURL string
}

// Protocols of Dashboards.Protocol.
const (
	ProtocolSimple   = "simple"
	ProtocolExtended = "extended"
	ProtocolPrepared = "prepared"
)

// maxDomain is the most values a parameter's domain may hold.
const maxDomain = 1_000_000

// WorkloadError is a workload file that does not parse: the file, the
// line and what is wrong there.
type WorkloadError struct {
	File string
	Line int
	Msg  string
}

func (e *WorkloadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadDashboards reads and parses a workload file.
func LoadDashboards(path string) (*Dashboards, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseDashboards(path, data)
}

// ParseDashboards parses a workload, fills in the defaults and checks it.
// Errors are *WorkloadError naming file, the line and the key at fault.
func ParseDashboards(file string, data []byte) (*Dashboards, error) {
	p := &wparser{file: file}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		line := yamlErrorLine(err)
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", line))
		return nil, &WorkloadError{File: file, Line: line, Msg: msg}
	}
	if len(root.Content) == 0 {
		return nil, &WorkloadError{File: file, Msg: "empty workload: it needs dashboards"}
	}
	w, err := p.workload(root.Content[0])
	if err != nil {
		return nil, err
	}
	return w, nil
}

// yamlErrorLine returns the line of a yaml syntax error ("yaml: line 3:
// mapping values are not allowed in this context"), or 0.
func yamlErrorLine(err error) int {
	rest, ok := strings.CutPrefix(err.Error(), "yaml: line ")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return n
}

type wparser struct{ file string }

func (p *wparser) errorf(n *yaml.Node, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	return &WorkloadError{File: p.file, Line: n.Line, Msg: msg}
}

// fields calls f for each key of the mapping n, in order; a key not in
// known is an error at its line.
func (p *wparser) fields(n *yaml.Node, path string, known []string, f func(key string, v *yaml.Node, path string) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, path, "must be a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := k.Value
		if path != "" {
			kp = path + "." + k.Value
		}
		if !contains(known, k.Value) {
			return p.errorf(k, kp, "unknown key (known: %s)", strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return p.errorf(k, kp, "given twice")
		}
		seen[k.Value] = true
		if err := f(k.Value, v, kp); err != nil {
			return err
		}
	}
	return nil
}

func (p *wparser) scalar(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errorf(n, path, "must be a single value")
	}
	return n.Value, nil
}

func (p *wparser) duration(n *yaml.Node, path string) (time.Duration, error) {
	s, err := p.scalar(n, path)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, p.errorf(n, path, "%q is not a duration such as 30s or 2m", s)
	}
	return d, nil
}

func (p *wparser) integer(n *yaml.Node, path string, min int64) (int64, error) {
	s, err := p.scalar(n, path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < min {
		return 0, p.errorf(n, path, "%q is not a whole number of at least %d", s, min)
	}
	return v, nil
}

func (p *wparser) exponent(n *yaml.Node, path string) (float64, error) {
	s, err := p.scalar(n, path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 10 {
		return 0, p.errorf(n, path, "%q is not a Zipf exponent between 0 and 10", s)
	}
	return v, nil
}

func (p *wparser) sequence(n *yaml.Node, path string, f func(i int, v *yaml.Node, path string) error) error {
	if n.Kind != yaml.SequenceNode {
		return p.errorf(n, path, "must be a list")
	}
	for i, v := range n.Content {
		if err := f(i, v, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func (p *wparser) workload(n *yaml.Node) (*Dashboards, error) {
	w := &Dashboards{File: p.file}
	var boardsNode *yaml.Node
	set := map[string]bool{}
	err := p.fields(n, "", []string{"name", "duration", "seed", "viewers", "think_time", "refresh_interval",
		"round", "timeout", "protocol", "popularity", "dashboards", "targets"}, func(key string, v *yaml.Node, path string) error {
		set[key] = true
		var err error
		switch key {
		case "name":
			w.Name, err = p.scalar(v, path)
		case "duration":
			w.Duration, err = p.positiveDuration(v, path)
		case "seed":
			var s int64
			s, err = p.integer(v, path, 0)
			w.Seed = uint64(s)
		case "viewers":
			var s int64
			s, err = p.integer(v, path, 1)
			if err == nil && s > 10000 {
				err = p.errorf(v, path, "at most 10000 viewers")
			}
			w.Viewers = int(s)
		case "think_time":
			w.ThinkTime, err = p.positiveDuration(v, path)
		case "refresh_interval":
			w.RefreshInterval, err = p.duration(v, path)
		case "round":
			w.Round, err = p.positiveDuration(v, path)
		case "timeout":
			w.Timeout, err = p.positiveDuration(v, path)
		case "protocol":
			w.Protocol, err = p.scalar(v, path)
			if err == nil && !contains([]string{ProtocolSimple, ProtocolExtended, ProtocolPrepared}, w.Protocol) {
				err = p.errorf(v, path, "%q is not simple, extended or prepared", w.Protocol)
			}
		case "popularity":
			err = p.fields(v, path, []string{"dashboards", "params"}, func(key string, v *yaml.Node, path string) error {
				var err error
				if key == "dashboards" {
					w.DashboardZipf, err = p.exponent(v, path)
					set["popularity.dashboards"] = true
				} else {
					w.ParamZipf, err = p.exponent(v, path)
					set["popularity.params"] = true
				}
				return err
			})
		case "dashboards":
			boardsNode = v
		case "targets":
			err = p.sequence(v, path, func(_ int, v *yaml.Node, path string) error {
				t, err := p.target(v, path)
				w.Targets = append(w.Targets, t)
				return err
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	w.setDefaults(set)
	if boardsNode == nil {
		return nil, p.errorf(n, "dashboards", "missing: a workload needs at least one dashboard")
	}
	names := map[string]bool{}
	err = p.sequence(boardsNode, "dashboards", func(_ int, v *yaml.Node, path string) error {
		b, err := p.board(v, path, w.ParamZipf)
		if err != nil {
			return err
		}
		if names[b.Name] {
			return p.errorf(v, path+".name", "dashboard %q is defined twice", b.Name)
		}
		names[b.Name] = true
		w.Boards = append(w.Boards, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(w.Boards) == 0 {
		return nil, p.errorf(boardsNode, "dashboards", "empty: a workload needs at least one dashboard")
	}
	if w.Round > w.Duration {
		w.Round = w.Duration
	}
	return w, nil
}

func (p *wparser) positiveDuration(n *yaml.Node, path string) (time.Duration, error) {
	d, err := p.duration(n, path)
	if err == nil && d == 0 {
		err = p.errorf(n, path, "must be more than 0")
	}
	return d, err
}

func (w *Dashboards) setDefaults(set map[string]bool) {
	def := func(key string, f func()) {
		if !set[key] {
			f()
		}
	}
	def("name", func() { w.Name = w.File })
	def("duration", func() { w.Duration = time.Minute })
	def("viewers", func() { w.Viewers = 8 })
	def("think_time", func() { w.ThinkTime = 5 * time.Second })
	def("round", func() { w.Round = 5 * time.Second })
	def("timeout", func() { w.Timeout = 30 * time.Second })
	def("protocol", func() { w.Protocol = ProtocolSimple })
	def("popularity.dashboards", func() { w.DashboardZipf = 1 })
	def("popularity.params", func() { w.ParamZipf = 1 })
}

func (p *wparser) target(n *yaml.Node, path string) (Target, error) {
	var t Target
	err := p.fields(n, path, []string{"name", "dsn", "metrics"}, func(key string, v *yaml.Node, path string) error {
		s, err := p.scalar(v, path)
		switch key {
		case "name":
			t.Name = s
		case "dsn":
			t.DSN = s
		case "metrics":
			t.MetricsURL = s
		}
		return err
	})
	if err == nil && (t.Name == "" || t.DSN == "") {
		err = p.errorf(n, path, "a target needs a name and a dsn")
	}
	return t, err
}

func (p *wparser) board(n *yaml.Node, path string, zipf float64) (Board, error) {
	b := Board{Line: n.Line}
	var charts *yaml.Node
	err := p.fields(n, path, []string{"name", "refresh_interval", "params", "charts"}, func(key string, v *yaml.Node, path string) error {
		var err error
		switch key {
		case "name":
			b.Name, err = p.scalar(v, path)
		case "refresh_interval":
			b.RefreshInterval, err = p.duration(v, path)
			b.HasRefresh = true
		case "params":
			b.Params, err = p.params(v, path, zipf)
		case "charts":
			charts = v
		}
		return err
	})
	if err != nil {
		return b, err
	}
	if b.Name == "" {
		return b, p.errorf(n, path, "a dashboard needs a name")
	}
	if charts == nil {
		return b, p.errorf(n, path+".charts", "missing: a dashboard needs at least one chart")
	}
	err = p.sequence(charts, path+".charts", func(i int, v *yaml.Node, path string) error {
		c, err := p.chart(v, path, zipf, b.Params)
		if c.Name == "" {
			c.Name = fmt.Sprintf("chart %d", i+1)
		}
		b.Charts = append(b.Charts, c)
		return err
	})
	if err == nil && len(b.Charts) == 0 {
		err = p.errorf(charts, path+".charts", "empty: a dashboard needs at least one chart")
	}
	return b, err
}

func (p *wparser) chart(n *yaml.Node, path string, zipf float64, boardParams []Param) (Chart, error) {
	c := Chart{Line: n.Line}
	var sqlNode *yaml.Node
	err := p.fields(n, path, []string{"name", "sql", "params"}, func(key string, v *yaml.Node, path string) error {
		var err error
		switch key {
		case "name":
			c.Name, err = p.scalar(v, path)
		case "sql":
			sqlNode = v
			c.SQL, err = p.scalar(v, path)
		case "params":
			c.Params, err = p.params(v, path, zipf)
		}
		return err
	})
	if err != nil {
		return c, err
	}
	if sqlNode == nil || strings.TrimSpace(c.SQL) == "" {
		return c, p.errorf(n, path+".sql", "missing: a chart needs its SQL")
	}
	known := map[string]bool{}
	for _, ps := range [][]Param{boardParams, c.Params} {
		for _, q := range ps {
			known[q.Name] = true
		}
	}
	c.parts, err = parseTemplate(c.SQL)
	if err != nil {
		return c, p.errorf(sqlNode, path+".sql", "%v", err)
	}
	for _, part := range c.parts {
		if part.param != "" && !known[part.param] {
			return c, &WorkloadError{File: p.file, Line: templateLine(sqlNode, c.SQL, part.param),
				Msg: fmt.Sprintf("%s.sql: {{%s}} is not a parameter of the chart or its dashboard", path, part.param)}
		}
	}
	return c, nil
}

// templateLine is the line of the first {{name}} in the SQL of node n: in
// a block scalar (sql: |) the text starts on the line after the key.
func templateLine(n *yaml.Node, text, name string) int {
	i := strings.Index(text, "{{"+name)
	if i < 0 || (n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle) {
		return n.Line
	}
	return n.Line + 1 + strings.Count(text[:i], "\n")
}

// parseTemplate splits SQL text at its {{name}} references.
func parseTemplate(s string) ([]templatePart, error) {
	var parts []templatePart
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return append(parts, templatePart{text: s}), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("%q has no closing }}", tail(s[i:], 40))
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		if !isIdent(name) {
			return nil, fmt.Errorf("{{%s}} is not a parameter name (letters, digits, _)", name)
		}
		parts = append(parts, templatePart{text: s[:i]}, templatePart{param: name})
		s = s[i+j+2:]
	}
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (p *wparser) params(n *yaml.Node, path string, zipf float64) ([]Param, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, path, "must be a mapping of parameter names to domains")
	}
	var out []Param
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := path + "." + k.Value
		if !isIdent(k.Value) {
			return nil, p.errorf(k, kp, "a parameter name is letters, digits and _")
		}
		q, err := p.domain(v, kp, zipf)
		if err != nil {
			return nil, err
		}
		q.Name = k.Value
		out = append(out, q)
	}
	return out, nil
}

// domain parses a parameter's domain: a list of values (the short form),
// or a mapping with one of list, ints or dates, and optionally zipf.
func (p *wparser) domain(n *yaml.Node, path string, zipf float64) (Param, error) {
	q := Param{Zipf: zipf}
	if n.Kind == yaml.SequenceNode {
		vals, err := p.list(n, path)
		q.Values = vals
		return q, err
	}
	kinds := 0
	err := p.fields(n, path, []string{"list", "ints", "dates", "zipf"}, func(key string, v *yaml.Node, path string) error {
		var err error
		switch key {
		case "list":
			kinds++
			q.Values, err = p.list(v, path)
		case "ints":
			kinds++
			q.Values, err = p.ints(v, path)
		case "dates":
			kinds++
			q.Values, err = p.dates(v, path)
		case "zipf":
			q.Zipf, err = p.exponent(v, path)
		}
		return err
	})
	if err == nil && kinds != 1 {
		err = p.errorf(n, path, "give exactly one of list, ints or dates")
	}
	return q, err
}

// list: numbers and booleans are written as they are, everything else as
// a quoted string literal.
func (p *wparser) list(n *yaml.Node, path string) ([]string, error) {
	var vals []string
	err := p.sequence(n, path, func(_ int, v *yaml.Node, path string) error {
		s, err := p.scalar(v, path)
		if err != nil {
			return err
		}
		switch v.ShortTag() {
		case "!!int", "!!float", "!!bool":
			vals = append(vals, s)
		case "!!null":
			return p.errorf(v, path, "an empty value; write NULL queries without a parameter")
		default:
			vals = append(vals, quoteLiteral(s))
		}
		return nil
	})
	if err == nil && len(vals) == 0 {
		err = p.errorf(n, path, "empty: a domain needs at least one value")
	}
	return vals, err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ints: {from, to, step}, from first.
func (p *wparser) ints(n *yaml.Node, path string) ([]string, error) {
	var from, to int64
	step := int64(1)
	var have [2]bool
	err := p.fields(n, path, []string{"from", "to", "step"}, func(key string, v *yaml.Node, path string) error {
		var err error
		switch key {
		case "from":
			from, err = p.integer(v, path, -1<<62)
			have[0] = true
		case "to":
			to, err = p.integer(v, path, -1<<62)
			have[1] = true
		case "step":
			step, err = p.integer(v, path, 1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !have[0] || !have[1] || to < from {
		return nil, p.errorf(n, path, "needs from and to, from at most to")
	}
	if (to-from)/step >= maxDomain {
		return nil, p.errorf(n, path, "more than %d values", maxDomain)
	}
	var vals []string
	for v := from; v <= to; v += step {
		vals = append(vals, strconv.FormatInt(v, 10))
	}
	return vals, nil
}

// dates: {from, to, step: day|week|month}, as 'YYYY-MM-DD' literals, the
// latest first (dashboards look at recent days most).
func (p *wparser) dates(n *yaml.Node, path string) ([]string, error) {
	var from, to time.Time
	step := "day"
	err := p.fields(n, path, []string{"from", "to", "step"}, func(key string, v *yaml.Node, path string) error {
		s, err := p.scalar(v, path)
		if err != nil {
			return err
		}
		if key == "step" {
			if !contains([]string{"day", "week", "month"}, s) {
				return p.errorf(v, path, "%q is not day, week or month", s)
			}
			step = s
			return nil
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return p.errorf(v, path, "%q is not a date such as 2024-12-31", s)
		}
		if key == "from" {
			from = d
		} else {
			to = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return nil, p.errorf(n, path, "needs from and to, from no later than to")
	}
	var vals []string
	for i, d := 0, to; !d.Before(from); i++ {
		if i >= maxDomain {
			return nil, p.errorf(n, path, "more than %d values", maxDomain)
		}
		vals = append(vals, quoteLiteral(d.Format(time.DateOnly)))
		switch step {
		case "day":
			d = to.AddDate(0, 0, -(i + 1))
		case "week":
			d = to.AddDate(0, 0, -7*(i+1))
		case "month":
			d = to.AddDate(0, -(i + 1), 0)
		}
	}
	return vals, nil
}
