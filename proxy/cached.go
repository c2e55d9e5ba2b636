package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// The cached read path. A simple-protocol statement that the analyzer
// calls cacheable, from a session that holds no warehouse connection and
// is not pinned, is answered through the cache Group: the stored bytes
// (RowDescription, DataRows, CommandComplete) followed by ReadyForQuery.
// A miss runs once per key on the backend's executor, detached from the
// client, under the rule's timeout.

// Rule says how answers to a statement are cached. It comes from the
// policy.
type Rule struct {
	Name         string
	Cache        bool
	TTL          time.Duration
	StaleTTL     time.Duration
	StaleIfError time.Duration
	Timeout      time.Duration
	// Shared gives one answer to every user; statements that depend on
	// the user are never shared, whatever the rule says.
	Shared        bool
	MaxEntryBytes int
}

// RuleInput is what a policy matches on.
type RuleInput struct {
	Analysis        *fingerprint.Analysis
	User            string
	Database        string
	ApplicationName string
}

// cacheOK reports whether the session's next statement may be answered
// from the cache: a cache and rules are configured, nothing ties the
// session to its connection, no answer is awaited from the warehouse, and
// it is outside a transaction or in a READ COMMITTED one that has only
// read.
func (c *conn) cacheOK() bool {
	cfg := &c.srv.cfg
	return cfg.Cache != nil && cfg.Rules != nil && c.pinned == "" && c.head == len(c.pending) &&
		(c.txStatus == 'I' || c.txReads)
}

// cachedRule returns the rule of a statement the session may answer from
// the cache, or false when it may not.
func (c *conn) cachedRule(a *fingerprint.Analysis) (Rule, bool) {
	if !a.Cacheable || len(a.Statements) != 1 || !c.cacheOK() {
		return Rule{}, false
	}
	r := c.rule(a)
	if !r.Cache || r.TTL <= 0 || c.srv.admit.bypassed(a) {
		return r, false
	}
	return r, true
}

// rule asks the policy how a's answers are cached for this session.
func (c *conn) rule(a *fingerprint.Analysis) Rule {
	return c.srv.cfg.Rules(RuleInput{Analysis: a, User: c.user, Database: c.database, ApplicationName: c.applicationName()})
}

func (c *conn) applicationName() string {
	sql := c.settings["application_name"]
	_, v, ok := strings.Cut(sql, "= '")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(strings.TrimSuffix(v, "'"), "''", "'")
}

// cacheKey computes the key of sql for this session.
// What the extended protocol adds to a key: nothing for a simple query.
type boundParams struct {
	oids          []uint32
	formats       []int16
	values        [][]byte
	resultFormats []int16
}

func (c *conn) cacheKey(a *fingerprint.Analysis, r Rule, p boundParams) cache.Key {
	in := fingerprint.KeyInput{
		Backend:       c.backend.Name,
		Database:      c.login.Database,
		User:          c.user,
		Shared:        r.Shared && !a.PerUser,
		Normalized:    a.Normalized,
		ParamOIDs:     p.oids,
		ParamFormats:  p.formats,
		Params:        p.values,
		ResultFormats: p.resultFormats,
		Settings:      c.keySettings(),
	}
	return cache.Key(fingerprint.KeyOf(in))
}

// keySettings returns the session settings that change answers, sorted.
func (c *conn) keySettings() []fingerprint.Setting {
	if c.keySet != nil && c.keySetVersion == c.settingsVersion {
		return c.keySet
	}
	out := make([]fingerprint.Setting, 0, 8)
	for name, sql := range c.effective() {
		if fingerprint.IsKeySetting(name) {
			out = append(out, fingerprint.Setting{Name: name, Value: sql})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.keySet, c.keySetVersion = out, c.settingsVersion
	return out
}

// cachedRead answers a simple-protocol read from the cache, writing the
// answer without its ReadyForQuery. A session without a warehouse
// connection waits for the cache, which fills a miss through the
// backend's executor; a session holding one (inside a transaction that
// has begun on the warehouse, or in session pooling) takes hits only, and
// its misses run on its own connection: cachedRead then returns the
// capture that stores the relayed answer. failed says the client got an
// error.
func (c *conn) cachedRead(sql string, shift int, a *fingerprint.Analysis, r Rule) (done, failed bool, cp *capture, err error) {
	req := c.cacheRequest(c.cacheKey(a, r, boundParams{}), a, r)
	if c.sc != nil {
		return c.attachedRead(req, a, r)
	}
	res, err := c.cacheGet(req, func() cache.Filler {
		return c.filler(&executor.Request{Login: executor.Login(c.login), SQL: sql, Settings: c.effective(), MaxBytes: r.MaxEntryBytes}, r)
	})
	switch {
	case errors.Is(err, cache.ErrTooLarge):
		return false, false, nil, nil
	case errors.Is(err, errClientGone):
		return true, true, nil, err
	case relayOnError(err):
		// The warehouse refused or failed the statement: it answers it,
		// with the rows it sends before its error, exactly.
		return false, false, nil, nil
	case err != nil:
		return true, true, nil, c.failStatement(err, shift)
	}
	c.srv.admit.record(a, res.Status)
	return true, false, nil, c.writeAnswer(res, true)
}

// cachedAnswer returns the cached answer to a read (filled through the
// executor on a miss, or, for a session holding a warehouse connection,
// hits only), or false when the cache cannot give one: the statement then
// goes to the warehouse, which answers it, errors and all.
func (c *conn) cachedAnswer(sql string, a *fingerprint.Analysis, r Rule) (cache.Result, bool) {
	req := c.cacheRequest(c.cacheKey(a, r, boundParams{}), a, r)
	if c.sc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, _ := c.srv.cfg.Cache.Lookup(ctx, req)
		return res, res.Entry != nil
	}
	res, err := c.cacheGet(req, func() cache.Filler {
		return c.filler(&executor.Request{Login: executor.Login(c.login), SQL: sql, Settings: c.effective(), MaxBytes: r.MaxEntryBytes}, r)
	})
	return res, err == nil
}

// attachedRead looks a read up for a session holding a warehouse
// connection: a hit is written; on a miss the returned capture stores the
// answer the warehouse gives on the session's connection.
func (c *conn) attachedRead(req cache.Request, a *fingerprint.Analysis, r Rule) (bool, bool, *capture, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	res, resv := c.srv.cfg.Cache.Lookup(ctx, req)
	cancel()
	if res.Entry != nil {
		c.srv.admit.record(a, res.Status)
		return true, false, nil, c.writeAnswer(res, true)
	}
	if resv == nil {
		return false, false, nil, nil
	}
	return false, false, c.storeCapture(resv, a, r), nil
}

// storeCapture returns a capture that stores the answer it keeps under
// resv.
func (c *conn) storeCapture(resv *cache.Reservation, a *fingerprint.Analysis, r Rule) *capture {
	group, admit := c.srv.cfg.Cache, c.srv.admit
	max := r.MaxEntryBytes
	if max <= 0 {
		max = 16 << 20
	}
	return &capture{max: max, done: func(wire []byte, rows int) {
		if group.Store(resv, &cache.Entry{Payload: wire, Rows: int64(rows)}) {
			admit.record(a, cache.Miss)
		}
	}}
}

// relayOnError reports whether a fill's error is the warehouse's answer to
// the statement (a syntax error, a division by zero half way through the
// rows): the statement is then sent to the warehouse, whose answer the
// client gets as PostgreSQL gives it, rows before the error included.
// Timeouts, cancels, and a warehouse that cannot be reached are the
// proxy's to answer.
func relayOnError(err error) bool {
	if err == nil {
		return false // the hit path: no error to look into
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case pe.Code == CodeQueryCanceled, strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57P"):
		return false
	}
	return true
}

// failStatement writes the error of a statement the proxy answered for
// the session, its position moved by shift characters; inside a lazily
// begun transaction, the transaction fails with it, as on the warehouse.
func (c *conn) failStatement(err error, shift int) error {
	e := toError(err)
	if e.Severity == "FATAL" {
		return e
	}
	c.failTx()
	return c.writeClient(shiftPosition(errorBytes(e), shift), false)
}

// errCanceledByClient is why a wait on the cache ends on a CancelRequest.
var errCanceledByClient = newError(CodeQueryCanceled, "canceling statement due to user request")

// cacheGet waits for the cache on behalf of the client. The wait, not the
// fill, ends when the client sends a CancelRequest (57014) or goes away
// (watched once the wait has lasted watchInterval); the fill goes on and
// its answer is stored for the next viewer.
func (c *conn) cacheGet(req cache.Request, fill func() cache.Filler) (cache.Result, error) {
	if res, ok := c.srv.cfg.Cache.Peek(req); ok {
		return res, nil // a hit: nothing to wait for, nothing to fill
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	c.mu.Lock()
	c.stopWait = cancel
	c.mu.Unlock()
	done, exited := make(chan struct{}), make(chan struct{})
	watch := time.AfterFunc(watchInterval, func() {
		defer close(exited)
		for !c.clientGone() {
			select {
			case <-done:
				return
			case <-time.After(watchInterval):
			}
		}
		cancel(errClientGone)
	})
	res, err := c.srv.cfg.Cache.Get(ctx, req, fill())
	close(done)
	if !watch.Stop() {
		<-exited // the watcher reads the client: let it finish first
	}
	c.mu.Lock()
	c.stopWait = nil
	c.mu.Unlock()
	switch {
	case err == nil:
	case context.Cause(ctx) != nil && ctx.Err() != nil:
		err = context.Cause(ctx)
	case errors.Is(err, context.DeadlineExceeded):
		err = newError(CodeQueryCanceled, "canceling statement due to statement timeout")
	}
	return res, err
}

// writeHit sends a cached answer: what the protocol wants in front of it
// (ParseComplete, BindComplete), the answer (see writeAnswer) and
// ReadyForQuery.
func (c *conn) writeHit(prefix []byte, res cache.Result, describe bool) error {
	if err := c.writeClient(prefix, false); err != nil {
		return err
	}
	if err := c.writeAnswer(res, describe); err != nil {
		return err
	}
	return c.writeReady()
}

// writeAnswer writes a cached answer: a notice when it is served because
// the warehouse failed, then the stored bytes as they are (without their
// RowDescription when the client did not ask to describe).
func (c *conn) writeAnswer(res cache.Result, describe bool) error {
	if res.Status == cache.StaleIfError {
		if err := c.writeClient(staleNotice(res), false); err != nil {
			return err
		}
	}
	payload := res.Entry.Payload
	if !describe {
		payload = withoutDescription(payload)
	}
	return c.writeClient(payload, false)
}

// withoutDescription drops the RowDescription (or NoData) that starts a
// stored answer.
func withoutDescription(payload []byte) []byte {
	if len(payload) > 5 && (payload[0] == 'T' || payload[0] == 'n') {
		return payload[1+int(binary.BigEndian.Uint32(payload[1:5])):]
	}
	return payload
}

// writeReady writes ReadyForQuery with the session's transaction status
// and flushes.
func (c *conn) writeReady() error {
	z := [6]byte{'Z', 0, 0, 0, 5, c.txStatus}
	return c.writeClient(z[:], true)
}

// staleNotice tells the client it got an old answer because the warehouse
// failed.
func staleNotice(res cache.Result) []byte {
	msg := fmt.Sprintf("serving a cached answer %s old: the warehouse failed: %v", res.Age.Round(time.Second), res.FillErr)
	var b pgwire.Builder
	b.Begin('N')
	for _, f := range [][2]string{{"S", "WARNING"}, {"V", "WARNING"}, {"C", "01000"}, {"M", msg}} {
		b.Byte(f[0][0])
		b.String(f[1])
	}
	b.Byte(0)
	b.Finish()
	return b.B
}

func labelsOf(a *fingerprint.Analysis) []cache.Label {
	var out []cache.Label
	if a.Labels.Dashboard != "" {
		out = append(out, cache.Label{Name: "dashboard", Value: a.Labels.Dashboard})
	}
	if a.Labels.Chart != "" {
		out = append(out, cache.Label{Name: "chart", Value: a.Labels.Chart})
	}
	return out
}

// bareNames drops schema qualifiers: answers are indexed, and writes
// invalidate, by table name alone, so that "orders" read under a
// search_path and "public.orders" written meet. Names shared by tables of
// several schemas invalidate each other, which costs a refill, never a
// stale answer.
func bareNames(tables []string) []string {
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

// invalidateWrites drops the cached answers that read the tables written
// by a transaction that just committed.
func (c *conn) invalidateWrites() {
	if slices.Contains(c.pendingWrites, catalogTable) {
		c.srv.ddlEpoch.Add(1) // prepared statements are prepared again
	}
	if len(c.pendingWrites) == 0 || c.srv.cfg.Cache == nil {
		c.pendingWrites = nil
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.srv.cfg.Cache.InvalidateTables(ctx, bareNames(c.pendingWrites)...); err != nil {
		c.srv.log.Warn("invalidation did not reach every cache tier", "err", err)
	}
	if slices.Contains(c.pendingWrites, catalogTable) {
		// DDL may have created or changed functions, and defaults.
		c.srv.loadVolatility(ctx, c, true)
		c.srv.memo.forget()
	}
	c.pendingWrites = nil
}

// catalogTable is the name under which answers that read the system
// catalogs are indexed, and which DDL invalidates: after CREATE TABLE
// through the proxy, \dt shows the new table at once.
const catalogTable = "pg_catalog"

// loadVolatility reads function volatility from the session's warehouse
// into the analyzer, once, or again when force is set (after DDL).
func (s *Server) loadVolatility(ctx context.Context, c *conn, force bool) {
	if s.cfg.Cache == nil {
		return
	}
	s.volMu.Lock()
	defer s.volMu.Unlock()
	if s.volLoaded && !force {
		return
	}
	m, err := c.backend.Pool.Volatility(ctx, executor.Login(c.login))
	if err != nil {
		s.log.Warn("reading function volatility from the warehouse failed; using the built-in list", "err", err)
		return
	}
	vm := make(fingerprint.VolatilityMap, len(m))
	for k, v := range m {
		vm[k] = fingerprint.Volatility(v)
	}
	s.cfg.Analyzer.SetVolatility(vm)
	s.volLoaded = true
}
