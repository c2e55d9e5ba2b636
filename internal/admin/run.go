package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/policy"
)

// SQLSTATE codes of the console's errors.
const (
	CodeSyntaxError       = "42601"
	CodeNotInPrerequisite = "55000" // object_not_in_prerequisite_state
	CodeConfigFileError   = "F0000"
)

// Error is a command that failed, with the SQLSTATE a PostgreSQL client
// is shown.
type Error struct {
	Code    string
	Message string
	Hint    string
}

func (e *Error) Error() string { return e.Message }

func syntaxError(msg string) *Error {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.syntax
	}
	return &Error{Code: CodeSyntaxError, Message: msg, Hint: "The commands are: " + strings.Join(names, ", ") + "."}
}

// Pool is a backend's pool of warehouse connections.
type Pool interface {
	Stats() postgres.Stats
}

// Client is a client session, as SHOW CLIENTS lists it.
type Client struct {
	PID             uint32
	User, Database  string
	ApplicationName string
	Addr            string
	// State is idle, active (holding a warehouse connection: running a
	// statement or inside a transaction) or console.
	State string
	Since time.Time
}

// Deps are what the commands read and act on. Every field but Observer
// may be nil: a server without policies has no cache, queues or policy.
type Deps struct {
	Observer *observe.Observer
	Cache    *cache.Group
	// L2 says Redis is configured as the cache's second tier.
	L2     bool
	Queues *executor.Queues
	Pools  map[string]Pool // by backend name
	Policy *policy.Set
	// Clients lists the client sessions.
	Clients func() []Client
	// Reload reads the configuration file again and puts its policies in
	// force; nil when the server runs without a file.
	Reload func() error
	// Started is when the counts began.
	Started time.Time
}

// Run runs c.
func Run(ctx context.Context, d *Deps, c Command) (*Result, error) {
	switch c.Op {
	case ShowStats:
		return d.stats(), nil
	case ShowQueries:
		return d.queries(c.By, c.Limit), nil
	case ShowCaches:
		return d.caches(), nil
	case ShowPolicies:
		return d.policies(), nil
	case ShowQueues:
		return d.queues(), nil
	case ShowPools:
		return d.pools(), nil
	case ShowClients:
		return d.clients(), nil
	case ShowErrors:
		return d.recentErrors(), nil
	case ShowHelp:
		return help(), nil
	case InvalidateTable, InvalidateDashboard, InvalidateAll:
		return d.invalidate(ctx, c)
	case Reload:
		return d.reload()
	}
	return nil, syntaxError(fmt.Sprintf("unknown admin command %d", c.Op))
}

func show(cols ...Column) *Result { return &Result{Columns: cols, Rows: [][]any{}, Tag: "SHOW"} }

// orNull is s, or NULL when it is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func round(f float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(f*p) / p
}

func seconds(d time.Duration) float64 { return round(d.Seconds(), 3) }

func millis(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func (d *Deps) stats() *Result {
	t := d.Observer.Totals()
	r := show(
		Column{"requests", Int}, Column{"hit_l1", Int}, Column{"hit_l2", Int}, Column{"miss", Int},
		Column{"collapsed", Int}, Column{"stale", Int}, Column{"bypass", Int}, Column{"error", Int},
		Column{"hits", Int}, Column{"hit_ratio", Float}, Column{"saved_s", Float}, Column{"timeouts", Int},
		Column{"fills", Int}, Column{"fill_errors", Int}, Column{"invalidations", Int}, Column{"since", Time},
	)
	row := []any{t.Requests}
	for _, o := range []string{"hit_l1", "hit_l2", "miss", "collapsed", "stale", "bypass", "error"} {
		row = append(row, t.ByOutcome[o])
	}
	row = append(row, t.Hits, round(t.HitRatio, 4), seconds(t.Saved), t.Timeouts)
	if d.Cache != nil {
		st := d.Cache.Stats()
		row = append(row, int64(st.Fills), int64(st.FillErrors), int64(st.Invalidations))
	} else {
		row = append(row, nil, nil, nil)
	}
	r.Rows = append(r.Rows, append(row, d.Started))
	return r
}

func (d *Deps) queries(by string, limit int) *Result {
	if limit <= 0 {
		limit = 50
	}
	r := show(
		Column{"shape", Text}, Column{"dashboard", Text}, Column{"rule", Text}, Column{"requests", Int},
		Column{"hits", Int}, Column{"hit_ratio", Float}, Column{"runs", Int}, Column{"errors", Int},
		Column{"mean_ms", Float}, Column{"p95_ms", Float}, Column{"saved_s", Float}, Column{"last_seen", Time},
		Column{"last_error", Text}, Column{"sql", Text},
	)
	for _, s := range d.Observer.TopShapes(cmp.Or(by, observe.ByRequests), limit) {
		r.Rows = append(r.Rows, []any{
			s.Shape, orNull(s.Dashboard), orNull(s.Rule), s.Requests, s.Hits, round(s.HitRatio, 4), s.Runs, s.Errors,
			millis(s.Mean), millis(s.P95), seconds(s.Saved), s.LastSeen, orNull(s.LastError), orNull(s.SQL),
		})
	}
	return r
}

func (d *Deps) caches() *Result {
	r := show(
		Column{"tier", Text}, Column{"state", Text}, Column{"entries", Int}, Column{"bytes", Int},
		Column{"hits", Int}, Column{"misses", Int}, Column{"evictions", Int}, Column{"errors", Int},
	)
	if d.Cache == nil {
		r.Rows = append(r.Rows, []any{"l1", "off", nil, nil, nil, nil, nil, nil}, []any{"l2", "off", nil, nil, nil, nil, nil, nil})
		return r
	}
	st, l1 := d.Cache.Stats(), d.Cache.L1Stats()
	// L1 misses are the lookups it could not answer fresh: answered by
	// Redis, by a fill, or by another request's fill.
	r.Rows = append(r.Rows, []any{"l1", "on", int64(l1.Entries), l1.Bytes, int64(st.L1Hits),
		int64(st.L2Hits + st.Misses + st.Collapsed), int64(l1.Evictions), nil})
	switch {
	case !d.L2:
		r.Rows = append(r.Rows, []any{"l2", "off", nil, nil, nil, nil, nil, nil})
	default:
		state := "ok"
		if d.Cache.L2Suspended() {
			state = "suspended"
		}
		// Redis keeps its own counts of entries and evictions.
		r.Rows = append(r.Rows, []any{"l2", state, nil, nil, int64(st.L2Hits), int64(st.Misses), nil, int64(st.L2Errors)})
	}
	return r
}

func (d *Deps) policies() *Result {
	r := show(
		Column{"position", Int}, Column{"name", Text}, Column{"match", Text}, Column{"cache", Bool},
		Column{"ttl", Interval}, Column{"stale_ttl", Interval}, Column{"timeout", Interval}, Column{"queue", Text}, Column{"shared", Bool},
	)
	if d.Policy == nil {
		return r
	}
	for i, p := range d.Policy.Rules() {
		var timeout any
		if p.Timeout > 0 {
			timeout = p.Timeout
		}
		r.Rows = append(r.Rows, []any{int64(i + 1), p.Name, describeMatch(&p.Match), p.Cache, p.TTL, p.StaleTTL, timeout, orNull(p.Queue), p.Shared})
	}
	return r
}

// describeMatch writes the patterns of m as the configuration names them;
// "*" for the match of everything.
func describeMatch(m *policy.Match) string {
	var parts []string
	glob := func(key string, g policy.Glob) {
		if s := g.String(); s != "" && s != "*" {
			parts = append(parts, key+"="+s)
		}
	}
	globs := func(key string, gs []policy.Glob) {
		if len(gs) == 0 {
			return
		}
		ss := make([]string, len(gs))
		for i, g := range gs {
			ss[i] = g.String()
		}
		parts = append(parts, key+"=["+strings.Join(ss, ",")+"]")
	}
	glob("dashboard", m.Dashboard)
	glob("chart", m.Chart)
	glob("user", m.User)
	glob("database", m.Database)
	glob("application_name", m.ApplicationName)
	glob("tool", m.Tool)
	glob("shape", m.Shape)
	globs("tables", m.Tables)
	globs("tables_all", m.TablesAll)
	if m.SQL != nil {
		parts = append(parts, "sql=/"+m.SQL.String()+"/")
	}
	if len(parts) == 0 {
		return "*"
	}
	return strings.Join(parts, " ")
}

func (d *Deps) queues() *Result {
	r := show(Column{"backend", Text}, Column{"queue", Text}, Column{"workers", Int}, Column{"busy", Int}, Column{"waiting", Int})
	for _, q := range d.Queues.Each() {
		r.Rows = append(r.Rows, []any{q.Backend, q.Queue, int64(q.Workers), int64(q.Busy), int64(q.Waiting)})
	}
	return r
}

func (d *Deps) pools() *Result {
	r := show(Column{"backend", Text}, Column{"busy", Int}, Column{"idle", Int}, Column{"waiting", Int}, Column{"max", Int})
	names := make([]string, 0, len(d.Pools))
	for name := range d.Pools {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		st := d.Pools[name].Stats()
		r.Rows = append(r.Rows, []any{name, int64(st.Open - st.Idle), int64(st.Idle), int64(st.Waiting), int64(st.Max)})
	}
	return r
}

func (d *Deps) clients() *Result {
	r := show(
		Column{"pid", Int}, Column{"user", Text}, Column{"database", Text}, Column{"application_name", Text},
		Column{"client_addr", Text}, Column{"state", Text}, Column{"connected_since", Time},
	)
	if d.Clients == nil {
		return r
	}
	cs := d.Clients()
	slices.SortFunc(cs, func(a, b Client) int { return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.PID, b.PID)) })
	for _, c := range cs {
		r.Rows = append(r.Rows, []any{int64(c.PID), c.User, c.Database, orNull(c.ApplicationName), orNull(c.Addr), c.State, c.Since})
	}
	return r
}

func (d *Deps) recentErrors() *Result {
	r := show(
		Column{"time", Time}, Column{"user", Text}, Column{"database", Text}, Column{"dashboard", Text},
		Column{"shape", Text}, Column{"sqlstate", Text}, Column{"message", Text},
	)
	for _, e := range d.Observer.RecentErrors() {
		var shape any
		if e.Shape != 0 {
			shape = fmt.Sprintf("%016x", e.Shape)
		}
		r.Rows = append(r.Rows, []any{e.Time, e.User, e.Database, orNull(e.Dashboard), shape, e.SQLState, e.Message})
	}
	return r
}

func help() *Result {
	r := show(Column{"command", Text}, Column{"description", Text})
	for _, c := range commands {
		r.Rows = append(r.Rows, []any{c.syntax, c.help})
	}
	return r
}

func (d *Deps) invalidate(ctx context.Context, c Command) (*Result, error) {
	if d.Cache == nil {
		return nil, &Error{Code: CodeNotInPrerequisite, Message: "nothing is cached: the configuration has no policies"}
	}
	var err error
	switch c.Op {
	case InvalidateTable:
		err = d.Cache.InvalidateTables(ctx, c.Arg)
	case InvalidateDashboard:
		err = d.Cache.InvalidateLabel(ctx, "dashboard", c.Arg)
	default:
		err = d.Cache.InvalidateAll(ctx)
	}
	res := &Result{Tag: "INVALIDATE"}
	switch {
	case errors.Is(err, cache.ErrInvalidationPending):
		res.Notice = "dropped here; Redis could not be told yet, so the other replicas will hear of it when it can (answers from Redis are not used until then)"
	case err != nil:
		return nil, err
	}
	d.Observer.Invalidated("admin")
	return res, nil
}

func (d *Deps) reload() (*Result, error) {
	if d.Reload == nil {
		return nil, &Error{Code: CodeNotInPrerequisite, Message: "nothing to reload: the server runs without a configuration file, or without policies",
			Hint: "Start it with serve --config FILE and a policies section."}
	}
	if err := d.Reload(); err != nil {
		return nil, &Error{Code: CodeConfigFileError, Message: "the configuration was not reloaded: " + err.Error(), Hint: "The policies in force are unchanged."}
	}
	return &Result{Tag: "RELOAD"}, nil
}
