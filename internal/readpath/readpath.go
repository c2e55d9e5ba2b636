// Package readpath turns a request for a statement's answer into a cache
// lookup, the same way for every frontend: the simple and the extended
// protocol of the PostgreSQL wire, and the HTTP query API.
//
// The steps are one function each: Analyse (what the statement is), Decide
// (its labels, the rule that matches it, and whether its shape is admitted
// to the cache), Key (everything that can change the answer's bytes), and
// Get (look up L1 then L2, collapse concurrent misses, fill through the
// warehouse under the rule's timeout, store). Plan runs the first three.
// A frontend that holds a warehouse connection of its own (a transaction
// begun on the warehouse) uses Lookup and Store instead of Get: it takes
// hits, and its misses run on its connection.
package readpath

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/pgformat"
	"github.com/sqlcached/sqlcached/policy"
)

// Request is one statement a frontend wants answered.
type Request struct {
	// Backend names the warehouse in keys; Warehouse runs misses there.
	Backend   string
	Warehouse executor.Warehouse
	// Login is whom the statement runs as, and the warehouse database.
	Login executor.Login
	// Database is the database the client asked for, as rules see it.
	Database        string
	ApplicationName string
	// Session holds the labels the session set outside the statement.
	Session policy.SessionLabels

	SQL string
	// Analysis is SQL's, when the frontend has it already; nil: the read
	// path analyses SQL.
	Analysis *fingerprint.Analysis

	// Statement names SQL prepared on the warehouse (see
	// executor.Request.Statement); "" runs it unnamed.
	Statement     string
	ParamOIDs     []uint32
	ParamFormats  []int16
	Params        [][]byte
	ResultFormats []int16

	// Settings are the session settings in force, each as the SQL that
	// applies it; KeySettings are those that change answers, sorted by
	// name (nil: taken from Settings).
	Settings    map[string]string
	KeySettings []fingerprint.Setting
	// ExactFloats says the session's float output round-trips, so that a
	// binary answer may be converted from a cached text one.
	ExactFloats bool
}

// Plan is what the read path makes of a request before looking it up.
type Plan struct {
	Analysis *fingerprint.Analysis
	Labels   policy.Labels
	Decision policy.Decision
	// Key and Entry are set when Decision.Cache is true.
	Key   fingerprint.Key
	Entry cache.Request
}

// Config configures a Path.
type Config struct {
	Cache    *cache.Group
	Policy   *policy.Set
	Analyzer *fingerprint.Analyzer // nil: fingerprint's default
	// Queues are where misses run, by backend and the rule's queue; nil
	// (or a queue missing) runs them directly on the warehouse.
	Queues *executor.Queues
	// Observe, when set, is told of every run on a warehouse and every
	// invalidation.
	Observe *observe.Observer
}

// Path is the read path. It is safe for concurrent use.
type Path struct {
	observe  *observe.Observer
	queues   *executor.Queues
	cache    *cache.Group
	analyzer *fingerprint.Analyzer
	rules    atomic.Pointer[policy.Set]
	admit    *policy.Admission
}

// New returns a read path over cfg.Cache under cfg.Policy.
func New(cfg Config) (*Path, error) {
	if cfg.Cache == nil {
		return nil, errors.New("readpath: a cache is required")
	}
	p := &Path{cache: cfg.Cache, analyzer: cfg.Analyzer, queues: cfg.Queues, observe: cfg.Observe, admit: policy.NewAdmission()}
	if p.analyzer == nil {
		a, err := fingerprint.New(fingerprint.Config{})
		if err != nil {
			return nil, err
		}
		p.analyzer = a
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New()
	}
	p.rules.Store(cfg.Policy)
	return p, nil
}

// Analyzer returns the analyzer the path uses.
func (p *Path) Analyzer() *fingerprint.Analyzer { return p.analyzer }

// Policy returns the rules in force.
func (p *Path) Policy() *policy.Set { return p.rules.Load() }

// SetPolicy puts rules in force for the next request; requests already
// decided keep theirs.
func (p *Path) SetPolicy(s *policy.Set) { p.rules.Store(s) }

// ForSession returns the rule deciding every statement of a session, when
// the session alone decides it (see policy.Set.ForSession).
func (p *Path) ForSession(user, database, app string) (*policy.Rule, bool) {
	return p.Policy().ForSession(user, database, app)
}

// Analyse returns the analysis of req's SQL.
func (p *Path) Analyse(req *Request) *fingerprint.Analysis {
	if req.Analysis == nil {
		req.Analysis = p.analyzer.Analyze(req.SQL)
	}
	return req.Analysis
}

// Decide resolves a's labels and rule for req, and keeps shapes whose
// answers are never reused out of the cache.
func (p *Path) Decide(req *Request, a *fingerprint.Analysis) (policy.Labels, policy.Decision) {
	return decide(p.Policy(), p.admit, req, a)
}

func decide(rules *policy.Set, admit *policy.Admission, req *Request, a *fingerprint.Analysis) (policy.Labels, policy.Decision) {
	labels := rules.Labels(a, req.Session)
	d := rules.Decide(&policy.Input{
		User: req.Login.User, Database: req.Database, ApplicationName: req.ApplicationName,
		Labels: labels, Analysis: a, SQL: req.SQL,
	})
	if d.Cache && admit != nil && admit.Bypassed(a.LexShape) {
		d.Cache, d.Reason = false, ReasonAdmission
	}
	return labels, d
}

// Bypassed reports whether sql's shape is kept out of the cache for now
// (see policy.Admission), from its text alone, without analysing it: a
// frontend may then relay it as it relays what no rule caches.
func (p *Path) Bypassed(sql string) bool {
	return p.admit.Bypassed(fingerprint.LexShape(sql))
}

// Rule returns the rule that covers req (analysed as a), whether or not
// its answer is cached: its timeout bounds the statement even when it is
// relayed.
func (p *Path) Rule(req *Request, a *fingerprint.Analysis) *policy.Rule {
	rules := p.Policy()
	return rules.Find(&policy.Input{
		User: req.Login.User, Database: req.Database, ApplicationName: req.ApplicationName,
		Labels: rules.Labels(a, req.Session), Analysis: a, SQL: req.SQL,
	})
}

// ReasonAdmission is why a statement whose shape was found not to repeat
// is not cached.
const ReasonAdmission = "its shape's answers are rarely asked for again (admission)"

// Key returns the key of req's answer: backend, database, user (unless
// the decision shares the answer), the normalised text, parameters and
// formats, and the settings that change answers.
func (p *Path) Key(req *Request, a *fingerprint.Analysis, d policy.Decision) fingerprint.Key {
	return KeyInput(req, a, d).Key()
}

// KeyInput returns the components of req's key.
func KeyInput(req *Request, a *fingerprint.Analysis, d policy.Decision) fingerprint.KeyInput {
	settings := req.KeySettings
	if settings == nil {
		settings = KeySettings(nil, req.Settings, nil)
	}
	return fingerprint.KeyInput{
		Backend:       req.Backend,
		Database:      req.Login.Database,
		User:          req.Login.User,
		Shared:        d.Shared,
		Normalized:    a.Normalized,
		ParamOIDs:     req.ParamOIDs,
		ParamFormats:  req.ParamFormats,
		Params:        req.Params,
		ResultFormats: req.ResultFormats,
		Settings:      settings,
	}
}

// KeySettings returns the settings of a session that change answers,
// sorted by name. A setting whose value is the one the warehouse's
// connections report for it (ParameterStatus: client_encoding, DateStyle,
// TimeZone, ...; nil: none known) is left out: it changes nothing, and so
// a psql session, which sends client_encoding=UTF8, shares its answers
// with pgx and the HTTP API, which send none. a reads the values of SETs
// not in the form the proxy writes (nil: only that form is read).
func KeySettings(a *fingerprint.Analyzer, settings, reported map[string]string) []fingerprint.Setting {
	out := make([]fingerprint.Setting, 0, 8)
	for name, sql := range settings {
		if fingerprint.IsKeySetting(name) && !isReported(a, reported, name, sql) {
			out = append(out, fingerprint.Setting{Name: name, Value: sql})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isReported reports whether sql sets name to the value reported.
func isReported(a *fingerprint.Analyzer, reported map[string]string, name, sql string) bool {
	for rname, v := range reported {
		if !strings.EqualFold(rname, name) {
			continue
		}
		set := SettingValue(a, sql)
		if name == "client_encoding" {
			norm := func(e string) string { return strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(e)) }
			return set != "" && norm(set) == norm(v)
		}
		return set != "" && set == v
	}
	return false
}

// SettingValue returns the value a kept SET sets: read straight from the
// form the proxy writes itself (SET name = 'value'), or from a's analysis
// of the client's own text (SET name TO value, ...).
func SettingValue(a *fingerprint.Analyzer, sql string) string {
	if sql == "" {
		return ""
	}
	if _, v, ok := strings.Cut(sql, " = '"); ok && strings.HasPrefix(sql, "SET ") && strings.HasSuffix(v, "'") {
		v = v[:len(v)-1]
		if !strings.Contains(strings.ReplaceAll(v, "''", ""), "'") {
			return strings.ReplaceAll(v, "''", "'")
		}
	}
	if a == nil {
		return ""
	}
	an := a.Analyze(sql)
	if len(an.Statements) != 1 || an.Statements[0].Set == nil {
		return ""
	}
	return an.Statements[0].Set.Value
}

// Plan analyses req, decides it and, when its answer is cached, keys it.
func (p *Path) Plan(req *Request) Plan {
	a := p.Analyse(req)
	var pl Plan
	pl.Analysis = a
	if !a.Cacheable || len(a.Statements) != 1 {
		// No rule can cache it: no need to match them (Explain does).
		pl.Decision.Reason = a.Reason
		if a.Cacheable {
			pl.Decision.Reason = policy.ReasonSeveral
		}
		return pl
	}
	pl.Labels, pl.Decision = p.Decide(req, a)
	if !pl.Decision.Cache {
		return pl
	}
	pl.Key = p.Key(req, a, pl.Decision)
	pl.Entry = entryRequest(cache.Key(pl.Key), a, pl.Labels, pl.Decision)
	pl.Entry.Keep = p.Policy().Keep()
	return pl
}

// CatalogTable is the name under which answers that read the system
// catalogs are indexed, and which DDL invalidates.
const CatalogTable = "pg_catalog"

// entryRequest is the cache's view of a planned statement.
func entryRequest(key cache.Key, a *fingerprint.Analysis, l policy.Labels, d policy.Decision) cache.Request {
	tables := BareNames(a.ReadTables)
	if a.ReadsCatalog {
		tables = append(tables, CatalogTable)
	}
	r := d.Rule
	req := cache.Request{
		Key: key, TTL: d.TTL, StaleTTL: r.StaleTTL, StaleIfError: r.StaleIfError, Tables: tables,
		RefreshAhead: r.RefreshAhead, CancelAbandoned: r.CancelAbandoned,
	}
	if l.Dashboard != "" && l.DashboardSource != policy.FromApplicationName {
		// Entries are tagged with the dashboards that say who they are,
		// not with every client program's name.
		req.Labels = append(req.Labels, cache.Label{Name: "dashboard", Value: l.Dashboard})
	}
	if l.Chart != "" {
		req.Labels = append(req.Labels, cache.Label{Name: "chart", Value: l.Chart})
	}
	return req
}

// BareNames drops schema qualifiers: answers are indexed, and writes
// invalidate, by table name alone, so that "orders" read under a
// search_path and "public.orders" written meet. Names shared by tables of
// several schemas invalidate each other, which costs a refill, never a
// stale answer.
func BareNames(tables []string) []string {
	out := make([]string, 0, len(tables))
	for _, t := range tables {
		if i := strings.LastIndexByte(t, '.'); i >= 0 && !strings.Contains(t[i:], `"`) {
			t = t[i+1:]
		} else if i := strings.LastIndex(t, `".`); i >= 0 {
			t = t[i+2:]
		}
		out = append(out, t)
	}
	return out
}

// Peek returns a fresh answer already in L1, without waiting for anything.
func (p *Path) Peek(pl *Plan) (cache.Result, bool) {
	res, ok := p.cache.Peek(pl.Entry)
	if ok {
		p.admit.Record(pl.Analysis.LexShape, true)
	}
	return res, ok
}

// Get returns the answer to a planned request: from L1, L2, a run already
// under way for the same key, or a run on req.Warehouse under the rule's
// timeout, whose answer is stored. The run belongs to no caller: ctx ends
// the wait, not the run. An answer in binary result formats is converted
// from the cached text answer when that is exact (see pgformat).
func (p *Path) Get(ctx context.Context, req *Request, pl *Plan) (cache.Result, error) {
	res, err := p.cache.Get(ctx, pl.Entry, p.filler(req, pl))
	if err == nil {
		p.admit.Record(pl.Analysis.LexShape, res.Status != cache.Miss)
	}
	return res, err
}

// Lookup returns a hit, or on a miss a reservation under which the
// frontend stores the answer its own connection gets (see Store).
func (p *Path) Lookup(ctx context.Context, pl *Plan) (cache.Result, *cache.Reservation) {
	res, resv := p.cache.Lookup(ctx, pl.Entry)
	if res.Entry != nil {
		p.admit.Record(pl.Analysis.LexShape, true)
	}
	return res, resv
}

// Store keeps an answer the frontend got from the warehouse itself under
// a reservation from Lookup.
func (p *Path) Store(resv *cache.Reservation, pl *Plan, wire []byte, rows int) bool {
	if !p.cache.Store(resv, &cache.Entry{Payload: wire, Rows: int64(rows)}) {
		return false
	}
	p.admit.Record(pl.Analysis.LexShape, false)
	return true
}

// Invalidate drops the answers that read tables (schema qualifiers are
// dropped; CatalogTable stands for the system catalogs).
func (p *Path) Invalidate(ctx context.Context, tables ...string) error {
	if p.observe != nil {
		reason := "write"
		if slices.Contains(tables, CatalogTable) {
			reason = "ddl"
		}
		p.observe.Invalidated(reason)
	}
	return p.cache.InvalidateTables(ctx, BareNames(tables)...)
}

// filler runs req on its warehouse, through the rule's queue, under the
// rule's timeout.
func (p *Path) filler(req *Request, pl *Plan) cache.Filler {
	r := pl.Decision.Rule
	ex := &executor.Request{
		Login: req.Login, SQL: req.SQL, Statement: req.Statement, ParamOIDs: req.ParamOIDs,
		ParamFormats: req.ParamFormats, Params: req.Params, ResultFormats: req.ResultFormats,
		Settings: req.Settings, MaxBytes: r.MaxEntryBytes, Dashboard: pl.Labels.Dashboard,
	}
	wh := req.Warehouse
	q := p.queues.Get(req.Backend, r.Queue)
	run := cache.FillFunc(func(ctx context.Context) (*cache.Entry, error) {
		prio := executor.Foreground
		if cache.Background(ctx) {
			prio = executor.Background
		}
		start := time.Now()
		res, err := executor.Run(ctx, q, prio, wh, ex, r.Name, r.Timeout)
		if p.observe != nil {
			f := observe.FillEvent{Backend: req.Backend, Queue: "direct", Rule: r.Name, Err: err != nil}
			if q != nil {
				f.Queue = q.Name()
			}
			if res != nil {
				f.Waited, f.Elapsed = res.Waited, res.Elapsed
			} else {
				f.Elapsed = time.Since(start)
				var te *executor.TimeoutError
				f.TimedOut = errors.As(err, &te)
			}
			p.observe.Fill(f)
		}
		if errors.Is(err, executor.ErrTooLarge) {
			return nil, cache.ErrTooLarge
		}
		if err != nil {
			return nil, err
		}
		return &cache.Entry{Payload: res.Wire, Rows: res.Rows, Cost: res.Elapsed}, nil
	})
	if !slices.Contains(req.ResultFormats, 1) {
		return run
	}
	// The same statement's answer in text, when it is cached, converts.
	text := *req
	text.ResultFormats = nil
	tkey := cache.Key(p.Key(&text, pl.Analysis, pl.Decision))
	treq := pl.Entry
	treq.Key = tkey
	opts := pgformat.Options{ExactFloats: req.ExactFloats}
	formats := req.ResultFormats
	return cache.FillFunc(func(ctx context.Context) (*cache.Entry, error) {
		if t, ok := p.cache.Peek(treq); ok {
			if wire, ok := pgformat.ToBinary(t.Entry.Payload, formats, opts); ok {
				return t.Entry.Derive(wire), nil
			}
		}
		return run.Fill(ctx)
	})
}
