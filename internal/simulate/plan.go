package simulate

import (
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// stepKind is what the cache does with a statement.
type stepKind uint8

const (
	stepBypass stepKind = iota // to the warehouse, uncached
	stepWrite                  // to the warehouse, then invalidates the tables it wrote
	stepLookup                 // looked up, and filled on a miss
)

// step is a statement decided by the read path: what a simulation of any
// L1 size needs of it.
type step struct {
	kind     stepKind
	key      fingerprint.Key
	ttl      time.Duration // freshness, by the asking statement's rule
	stale    time.Duration // stale_ttl
	ahead    time.Duration // refresh_ahead
	keep     time.Duration // how long the entry stays in L1
	maxEntry int64
	size     int64
	tables   []string // read (a lookup) or written (a write), as entries are indexed
	lexShape uint64   // admission judges shapes by it
	shape    int      // index into the planner's shapes
}

// shapeInfo describes a statement shape for the report.
type shapeInfo struct {
	id     uint64
	sample string
	reason string // why it is not cached, "" when it is
}

// session is what the proxy follows of a client session that changes how
// its later statements are decided.
type session struct {
	inTx, txWrote, txNoCache bool
	pinned                   bool
	settings                 map[string]string // key settings, as the SQL that applies them
	dashboard, chart         string            // SET sqlcached.dashboard / chart
}

// planner decides each record with the read path's own steps, in the
// order the records started.
type planner struct {
	rules    *policy.Set
	cfg      *config.Config // nil: no backends configured
	analyzer *fingerprint.Analyzer
	sizes    sizer
	sessions map[string]*session
	shapes   []shapeInfo
	shapeIdx map[uint64]int
}

// sizer estimates the size of an answer in L1.
type sizer struct{ entry, row int64 }

// envelope is the entry's fixed cost besides the answer's rows:
// RowDescription, CommandComplete and the envelope's own fields.
const envelope = 256

func (z sizer) of(r *Record) int64 {
	switch {
	case r.Bytes > 0:
		return r.Bytes
	case r.Rows >= 0:
		return envelope + r.Rows*z.row
	}
	return z.entry
}

// plan decides every record under rules.
func (p *planner) plan(recs []Record) []step {
	p.sessions = map[string]*session{}
	out := make([]step, len(recs))
	for i := range recs {
		out[i] = p.step(&recs[i])
	}
	return out
}

func (p *planner) step(r *Record) step {
	a := p.analyzer.Analyze(r.SQL)
	s := p.sessions[r.Session]
	if s == nil {
		s = &session{settings: map[string]string{}}
		p.sessions[r.Session] = s
	}
	st := p.decide(r, a, s)
	s.follow(a)
	return st
}

// decide is the read path's decision for r, in session s as it was
// before r.
func (p *planner) decide(r *Record, a *fingerprint.Analysis, s *session) step {
	switch a.Kind {
	case fingerprint.KindWrite, fingerprint.KindDDL:
		tables := readpath.BareNames(a.WriteTables)
		if a.Kind == fingerprint.KindDDL {
			tables = append(tables, readpath.CatalogTable)
		}
		return step{kind: stepWrite, tables: tables, shape: p.shape(a, r.SQL, a.Reason)}
	}
	if s.pinned {
		return step{shape: p.shape(a, r.SQL, "session pinned to a warehouse connection")}
	}
	if s.inTx && (s.txWrote || s.txNoCache) {
		return step{shape: p.shape(a, r.SQL, "in a transaction that wrote, or above READ COMMITTED")}
	}
	req := p.request(r, a, s)
	e := readpath.Explain(p.rules, p.analyzer, req)
	d := e.Decision
	if !d.Cache {
		return step{shape: p.shape(a, r.SQL, d.Reason)}
	}
	tables := readpath.BareNames(a.ReadTables)
	if a.ReadsCatalog {
		tables = append(tables, readpath.CatalogTable)
	}
	rule := d.Rule
	maxEntry := int64(rule.MaxEntryBytes)
	if maxEntry <= 0 {
		maxEntry = defaultMaxEntry
	}
	return step{
		kind: stepLookup, key: e.Key.Key(), ttl: d.TTL, stale: rule.StaleTTL, ahead: rule.RefreshAhead,
		keep: max(p.rules.Keep(), d.TTL+rule.StaleTTL), maxEntry: maxEntry, size: p.sizes.of(r),
		tables: tables, lexShape: a.LexShape, shape: p.shape(a, r.SQL, ""),
	}
}

// defaultMaxEntry is cache.DefaultMaxEntryBytes, the bound on an entry
// when neither the rule nor the configuration gives one.
const defaultMaxEntry = 16 << 20

// request is the read path's request for r, as the proxy would build it
// for a client of r's user and database: no result formats or parameter
// types (the log has none), the session's key settings.
func (p *planner) request(r *Record, a *fingerprint.Analysis, s *session) *readpath.Request {
	req := &readpath.Request{
		Backend: "warehouse", Login: executor.Login{User: r.User, Database: r.Database},
		Database: r.Database, ApplicationName: r.ApplicationName, SQL: r.SQL, Analysis: a, Params: r.Params,
		Session: policy.SessionLabels{SetDashboard: s.dashboard, SetChart: s.chart, ApplicationName: r.ApplicationName},
	}
	if req.Session.SetDashboard == "" {
		req.Session.SetDashboard = r.Tag
	}
	if p.cfg != nil {
		if b := p.cfg.BackendFor(r.Database); b != nil {
			req.Backend = b.Name
		}
	}
	if len(s.settings) > 0 {
		req.Settings = s.settings
	}
	return req
}

// shape returns the index of a's shape, noting why it is not cached; sql,
// whitespace collapsed, is the shape's sample if it is the first.
func (p *planner) shape(a *fingerprint.Analysis, sql, reason string) int {
	id := a.ShapeID
	if id == 0 {
		id = a.LexShape
	}
	i, ok := p.shapeIdx[id]
	if !ok {
		i = len(p.shapes)
		p.shapeIdx[id] = i
		p.shapes = append(p.shapes, shapeInfo{id: id, sample: strings.Join(strings.Fields(sql), " "), reason: reason})
	} else if reason == "" {
		p.shapes[i].reason = ""
	}
	return i
}

// follow updates the session with what a's statements do to it.
func (s *session) follow(a *fingerprint.Analysis) {
	if a.Pin != "" {
		s.pinned = true
	}
	for i := range a.Statements {
		st := &a.Statements[i]
		switch {
		case st.Tx != nil:
			s.transaction(st.Tx)
		case st.Set != nil && !st.Set.Local:
			s.set(st.Set)
		case st.Kind == fingerprint.KindWrite || st.Kind == fingerprint.KindDDL:
			s.txWrote = s.inTx
		}
	}
}

func (s *session) transaction(tx *fingerprint.Transaction) {
	switch tx.Op {
	case fingerprint.TxBegin, fingerprint.TxSetTransaction:
		s.inTx = true
		if tx.Isolation == "repeatable read" || tx.Isolation == "serializable" {
			s.txNoCache = true
		}
	case fingerprint.TxCommit, fingerprint.TxRollback, fingerprint.TxCommitPrepared, fingerprint.TxRollbackPrepared, fingerprint.TxPrepare:
		s.inTx, s.txWrote, s.txNoCache = false, false, false
	}
}

func (s *session) set(c *fingerprint.SetCommand) {
	switch {
	case c.Name == "" && c.Reset: // RESET ALL, DISCARD ALL
		clear(s.settings)
		s.dashboard, s.chart = "", ""
	case c.Name == "sqlcached.dashboard":
		s.dashboard = c.Value
	case c.Name == "sqlcached.chart":
		s.chart = c.Value
	case !c.Key:
	case c.Reset:
		delete(s.settings, c.Name)
	default:
		s.settings[c.Name] = "SET " + c.Name + " = '" + strings.ReplaceAll(c.Value, "'", "''") + "'"
	}
}
