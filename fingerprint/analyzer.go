package fingerprint

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/zeebo/xxh3"
)

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("fingerprint: invalid config")

// Defaults for Config's zero values.
const (
	DefaultMemoEntries     = 8192
	DefaultMemoMaxSQLBytes = 16 << 10
	DefaultMemoBytes       = 64 << 20
)

// Config configures an Analyzer. The zero value is ready to use.
type Config struct {
	// MemoEntries bounds how many distinct texts keep their analysis, so
	// that a dashboard's repeat costs a map look-up, not a parse. If 0, it
	// defaults to DefaultMemoEntries; a negative value turns memoisation
	// off. Size it above the number of distinct statements your dashboards
	// send in one TTL.
	MemoEntries int
	// MemoMaxSQLBytes is the longest text memoised; longer ones are
	// analysed every time (they rarely repeat byte for byte: generated IN
	// lists, one-off exports). If 0, it defaults to DefaultMemoMaxSQLBytes.
	MemoMaxSQLBytes int
	// MemoBytes bounds the memo's memory, counted as text and normalised
	// text bytes plus a fixed overhead per entry. If 0, it defaults to
	// DefaultMemoBytes.
	MemoBytes int
	// Volatility gives the volatility of functions, read from the
	// warehouse catalog (pg_proc.provolatile). If nil, the built-in list
	// (BuiltinVolatility) is used. The analyzer does not modify the map;
	// the caller must not modify it afterwards either: replace it with
	// SetVolatility.
	Volatility VolatilityMap
}

// Analyzer analyses SQL texts and memoises the answers by exact text. It is
// safe for concurrent use.
type Analyzer struct {
	maxSQL int
	vol    atomic.Pointer[VolatilityMap]
	gen    atomic.Uint64 // bumped by SetVolatility
	memo   *memo         // nil when memoisation is off

	calls, parses atomic.Uint64
}

// AnalyzerStats count an Analyzer's work.
type AnalyzerStats struct {
	Calls  uint64 // Analyze calls
	Parses uint64 // texts analysed anew: the calls the memo did not answer
}

// Stats returns the analyzer's counters.
func (z *Analyzer) Stats() AnalyzerStats {
	return AnalyzerStats{Calls: z.calls.Load(), Parses: z.parses.Load()}
}

// New returns an Analyzer for cfg.
func New(cfg Config) (*Analyzer, error) {
	switch {
	case cfg.MemoMaxSQLBytes < 0:
		return nil, fmt.Errorf("%w: MemoMaxSQLBytes %d is negative", ErrConfig, cfg.MemoMaxSQLBytes)
	case cfg.MemoBytes < 0:
		return nil, fmt.Errorf("%w: MemoBytes %d is negative", ErrConfig, cfg.MemoBytes)
	}
	if cfg.MemoEntries == 0 {
		cfg.MemoEntries = DefaultMemoEntries
	}
	if cfg.MemoMaxSQLBytes == 0 {
		cfg.MemoMaxSQLBytes = DefaultMemoMaxSQLBytes
	}
	if cfg.MemoBytes == 0 {
		cfg.MemoBytes = DefaultMemoBytes
	}
	if cfg.MemoEntries > 0 && cfg.MemoBytes < cfg.MemoMaxSQLBytes*2 {
		return nil, fmt.Errorf("%w: MemoBytes %d cannot hold one entry of MemoMaxSQLBytes %d", ErrConfig, cfg.MemoBytes, cfg.MemoMaxSQLBytes)
	}
	z := &Analyzer{maxSQL: cfg.MemoMaxSQLBytes}
	z.SetVolatility(cfg.Volatility)
	if cfg.MemoEntries > 0 {
		z.memo = newMemo(cfg.MemoEntries, cfg.MemoBytes)
	}
	return z, nil
}

// SetVolatility replaces the volatility map, for example after the
// executor re-read the catalog following DDL. Memoised analyses that
// consulted the old map are dropped. nil restores the built-in list.
func (z *Analyzer) SetVolatility(m VolatilityMap) {
	if m == nil {
		m = builtin
	}
	z.vol.Store(&m)
	z.gen.Add(1)
	if z.memo != nil {
		z.memo.dropVolatilityDependent()
	}
}

// TempTables is the set of temporary tables a session created, by name
// as the analysis reports unqualified tables (lower-case unless quoted).
// The proxy keeps it from the CreatesTemp of the statements it relays.
type TempTables map[string]bool

// Analyze returns the analysis of sql. The result is shared: do not modify
// it. A memo hit costs a map look-up and no allocation.
func (z *Analyzer) Analyze(sql string) *Analysis {
	z.calls.Add(1)
	if z.memo == nil || len(sql) > z.maxSQL {
		z.parses.Add(1)
		return analyze(sql, *z.vol.Load())
	}
	h := xxh3.HashString(sql)
	if a := z.memo.get(h, sql); a != nil {
		return a
	}
	z.parses.Add(1)
	gen := z.gen.Load()
	a := analyze(sql, *z.vol.Load())
	z.memo.put(h, sql, a, func() bool { return z.gen.Load() == gen })
	return a
}

// Memoised returns the memoised analysis of sql, or nil when there is
// none: it never parses.
func (z *Analyzer) Memoised(sql string) *Analysis {
	if z.memo == nil || len(sql) > z.maxSQL {
		return nil
	}
	return z.memo.get(xxh3.HashString(sql), sql)
}

// LexShape returns the lexical shape of sql, as Analysis.LexShape, from
// the lexer alone: much cheaper than an analysis.
func LexShape(sql string) uint64 {
	var buf [64]token
	toks, _ := lex(sql, buf[:0])
	return xxh3.Hash(shapeText(sql, toks))
}

// AnalyzeSession is Analyze for a session that created temporary tables:
// a statement naming one of them, unqualified, is not cacheable. With no
// temporary tables it is exactly Analyze.
func (z *Analyzer) AnalyzeSession(sql string, temp TempTables) *Analysis {
	return withTemps(z.Analyze(sql), temp)
}

// Analyze analyses sql with the built-in volatility list and no memo.
func Analyze(sql string) *Analysis {
	return analyze(sql, builtin)
}

// withTemps returns a, or a copy of it that is not cacheable when one of
// its cacheable statements names a table in temp.
func withTemps(a *Analysis, temp TempTables) *Analysis {
	if len(temp) == 0 || !a.tempSensitive {
		return a
	}
	var c *Analysis
	for i := range a.Statements {
		s := &a.Statements[i]
		if !s.Cacheable {
			continue
		}
		for _, t := range s.unqualified {
			if !temp[t] {
				continue
			}
			if c == nil {
				c = new(Analysis)
				*c = *a
				c.Statements = append([]Statement(nil), a.Statements...)
			}
			c.Statements[i].Cacheable = false
			c.Statements[i].Reason = ReasonTemp + " " + t
			break
		}
	}
	if c == nil {
		return a
	}
	c.Cacheable, c.Reason = true, ""
	for i := range c.Statements {
		if !c.Statements[i].Cacheable {
			c.Cacheable, c.Reason = false, c.Statements[i].Reason
			break
		}
	}
	return c
}

// analyze does the work behind Analyze: lex once for labels and key text,
// parse with PostgreSQL's parser, fall back to the lexer when it refuses.
func analyze(sql string, vol VolatilityMap) *Analysis {
	if strings.IndexByte(sql, 0) >= 0 {
		// The protocol cannot carry a NUL inside a query, and the parser
		// would stop reading at it: refuse rather than misjudge.
		a := &Analysis{Normalized: sql, Statements: []Statement{{
			Kind: KindUnknown, Command: "UNKNOWN", Text: sql, Normalized: sql, Reason: ReasonNUL,
		}}}
		a.ShapeID = xxh3.HashString(sql)
		a.finish()
		return a
	}
	toks, flags := lex(sql, make([]token, 0, len(sql)/4+8))
	sure := flags&unsure == 0
	a := &Analysis{}
	a.Labels, a.Hints = parseLabels(sql, toks)
	tree, err := pg_query.Parse(sql)
	if err == nil {
		a.Parsed = true
		a.Statements, a.volatilityDependent = analyzeParsed(sql, toks, tree, vol, sure)
		if fp, err := pg_query.FingerprintToUInt64(sql); err == nil {
			a.ShapeID = fp
		}
	} else {
		a.ParseError = err.Error()
		a.Statements = analyzeFallback(sql, toks, vol, sure)
		a.volatilityDependent = true
	}
	a.LexShape = xxh3.Hash(shapeText(sql, toks))
	if a.ShapeID == 0 {
		a.ShapeID = a.LexShape
	}
	if !sure {
		a.Normalized = rawNormalized(sql)
	}
	a.finish()
	return a
}

// memo is a bounded map from exact SQL text to its analysis, split into
// shards with their own lock and least-recently-used list.
type memo struct {
	shards [memoShards]memoShard
}

const memoShards = 16

// entryOverhead approximates an entry's memory beyond its texts.
const entryOverhead = 512

type memoShard struct {
	mu         sync.Mutex // protects the fields below
	m          map[uint64]*memoEntry
	head       memoEntry // sentinel of the LRU ring: head.next is the most recent
	bytes      int
	maxEntries int
	maxBytes   int
}

type memoEntry struct {
	hash       uint64
	sql        string
	a          *Analysis
	size       int
	prev, next *memoEntry
}

func newMemo(entries, bytes int) *memo {
	m := &memo{}
	perEntries := max(1, entries/memoShards)
	perBytes := max(1, bytes/memoShards)
	for i := range m.shards {
		s := &m.shards[i]
		s.m = make(map[uint64]*memoEntry)
		s.head.next, s.head.prev = &s.head, &s.head
		s.maxEntries, s.maxBytes = perEntries, perBytes
	}
	return m
}

func (m *memo) shard(h uint64) *memoShard { return &m.shards[h>>60] }

func (m *memo) get(h uint64, sql string) *Analysis {
	s := m.shard(h)
	s.mu.Lock()
	e := s.m[h]
	if e == nil || e.sql != sql {
		s.mu.Unlock()
		return nil
	}
	s.unlink(e)
	s.pushFront(e)
	a := e.a
	s.mu.Unlock()
	return a
}

// put stores a, unless valid reports that the volatility map changed
// since a was computed.
func (m *memo) put(h uint64, sql string, a *Analysis, valid func() bool) {
	s := m.shard(h)
	e := &memoEntry{hash: h, sql: sql, a: a, size: len(sql) + len(a.Normalized) + entryOverhead}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.volatilityDependent && !valid() {
		return
	}
	if old := s.m[h]; old != nil {
		s.remove(old)
	}
	s.m[h] = e
	s.pushFront(e)
	s.bytes += e.size
	for (len(s.m) > s.maxEntries || s.bytes > s.maxBytes) && s.head.prev != e {
		s.remove(s.head.prev)
	}
}

func (m *memo) dropVolatilityDependent() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for e := s.head.next; e != &s.head; {
			next := e.next
			if e.a.volatilityDependent {
				s.remove(e)
			}
			e = next
		}
		s.mu.Unlock()
	}
}

func (m *memo) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *memoShard) pushFront(e *memoEntry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *memoShard) unlink(e *memoEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (s *memoShard) remove(e *memoEntry) {
	s.unlink(e)
	delete(s.m, e.hash)
	s.bytes -= e.size
}
