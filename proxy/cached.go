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

// cacheable reports whether the session may answer sql from the cache, and
// returns its analysis and rule.
func (c *conn) cacheable(sql string) (*fingerprint.Analysis, Rule, bool) {
	cfg := &c.srv.cfg
	if cfg.Cache == nil || cfg.Rules == nil || c.sc != nil || c.pinned != "" || (c.txStatus != 'I' && c.lazyBegin == "") {
		return nil, Rule{}, false
	}
	a := cfg.Analyzer.Analyze(sql)
	if !a.Cacheable || len(a.Statements) != 1 {
		return a, Rule{}, false
	}
	r := c.rule(a)
	if !r.Cache || r.TTL <= 0 || c.srv.admit.bypassed(a) {
		return a, r, false
	}
	return a, r, true
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
	for name, sql := range c.settings {
		if fingerprint.IsKeySetting(name) {
			out = append(out, fingerprint.Setting{Name: name, Value: sql})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.keySet, c.keySetVersion = out, c.settingsVersion
	return out
}

// cachedQuery answers a simple query through the cache. It returns false
// when the answer is too large to cache: the caller relays it instead.
func (c *conn) cachedQuery(sql string, a *fingerprint.Analysis, r Rule) (bool, error) {
	req := c.cacheRequest(c.cacheKey(a, r, boundParams{}), a, r)
	res, err := c.cacheGet(req, func() cache.Filler {
		return c.filler(&executor.Request{Login: executor.Login(c.login), SQL: sql, Settings: c.settings, MaxBytes: r.MaxEntryBytes}, r)
	})
	if errors.Is(err, cache.ErrTooLarge) {
		return false, nil
	}
	if err != nil {
		return true, c.replyError(err)
	}
	c.srv.admit.record(a, res.Status)
	return true, c.writeHit(nil, res, true)
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

// writeHit sends a cached answer: a notice when it is served because the
// warehouse failed, what the protocol wants in front of it (ParseComplete,
// BindComplete), the stored bytes as they are (without their
// RowDescription when the client did not ask to describe), and
// ReadyForQuery.
func (c *conn) writeHit(prefix []byte, res cache.Result, describe bool) error {
	if res.Status == cache.StaleIfError {
		if err := c.writeClient(staleNotice(res), false); err != nil {
			return err
		}
	}
	if err := c.writeClient(prefix, false); err != nil {
		return err
	}
	payload := res.Entry.Payload
	if !describe && len(payload) > 5 && (payload[0] == 'T' || payload[0] == 'n') {
		payload = payload[1+int(binary.BigEndian.Uint32(payload[1:5])):]
	}
	if err := c.writeClient(payload, false); err != nil {
		return err
	}
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
		// DDL may have created or changed functions.
		c.srv.loadVolatility(ctx, c, true)
	}
	c.pendingWrites = nil
}

// catalogTable is the name under which answers that read the system
// catalogs are indexed, and which DDL invalidates: after CREATE TABLE
// through the proxy, \dt shows the new table at once.
const catalogTable = "pg_catalog"

// readsCatalog reports whether an analysis reads system catalogs.
func readsCatalog(a *fingerprint.Analysis) bool {
	for _, t := range a.ReadTables {
		if strings.HasPrefix(t, "pg_catalog.") || strings.HasPrefix(t, "information_schema.") || strings.HasPrefix(t, "pg_") {
			return true
		}
	}
	return false
}

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

// Transactions that only read. Drivers such as psycopg2 wrap every SELECT
// in BEGIN ... COMMIT. The proxy answers a plain BEGIN (READ COMMITTED)
// itself and sends it to the warehouse only when a statement needs the
// warehouse; until then reads are answered from the cache, and COMMIT or
// ROLLBACK of such a transaction is answered by the proxy too.

// transactionLocally answers BEGIN, COMMIT and ROLLBACK without the
// warehouse where it can.
func (c *conn) transactionLocally(sql string) (bool, error) {
	if c.srv.cfg.Cache == nil || c.sc != nil || c.pinned != "" {
		return false, nil
	}
	tx := c.localTx(sql)
	if tx == nil {
		return false, nil
	}
	c.applyLocalTx(tx, sql)
	var b pgwire.Builder
	b.Begin('C')
	b.String(txTag(tx.Op))
	b.Finish()
	b.Begin('Z')
	b.Byte(c.txStatus)
	b.Finish()
	return true, c.writeClient(b.B, true)
}

// localTx returns the transaction statement sql is when the proxy may
// answer it itself: BEGIN at READ COMMITTED outside a transaction, COMMIT
// or ROLLBACK (without AND CHAIN) of a transaction begun lazily; nil
// otherwise.
func (c *conn) localTx(sql string) *fingerprint.Transaction {
	if !mayBeTransactionControl(sql) {
		return nil
	}
	a := c.srv.cfg.Analyzer.Analyze(sql)
	if len(a.Statements) != 1 || a.Statements[0].Tx == nil {
		return nil
	}
	tx := a.Statements[0].Tx
	switch {
	case tx.Op == fingerprint.TxBegin && c.txStatus == 'I' && readCommitted(tx.Isolation, c.settings):
	case (tx.Op == fingerprint.TxCommit || tx.Op == fingerprint.TxRollback) && c.lazyBegin != "" && !tx.Chain:
	default:
		return nil
	}
	return tx
}

// applyLocalTx records a transaction statement the proxy answered: BEGIN
// opens a lazy transaction, COMMIT and ROLLBACK end it.
func (c *conn) applyLocalTx(tx *fingerprint.Transaction, sql string) {
	if tx.Op == fingerprint.TxBegin {
		c.lazyBegin, c.txStatus = sql, 'T'
		return
	}
	c.lazyBegin, c.txStatus = "", 'I'
}

// txTag is the command tag of a transaction statement.
func txTag(op fingerprint.TxOp) string {
	switch op {
	case fingerprint.TxCommit:
		return "COMMIT"
	case fingerprint.TxRollback:
		return "ROLLBACK"
	}
	return "BEGIN"
}

// readCommitted reports whether a transaction begun with isolation (""
// when BEGIN names none) runs at READ COMMITTED.
func readCommitted(isolation string, settings map[string]string) bool {
	if isolation == "" {
		sql, ok := settings["default_transaction_isolation"]
		if !ok {
			return true
		}
		return strings.Contains(strings.ToLower(sql), "read committed")
	}
	return isolation == "read committed"
}

// mayBeTransactionControl is a cheap screen before analysis.
func mayBeTransactionControl(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n;")
	for _, w := range []string{"begin", "start", "commit", "end", "rollback", "abort"} {
		if hasPrefixFold(s, w) {
			return true
		}
	}
	return false
}

// beginOnWarehouse sends a BEGIN the proxy answered earlier, now that a
// statement needs the warehouse; its answers are swallowed.
func (c *conn) beginOnWarehouse() {
	if c.lazyBegin == "" {
		return
	}
	var b pgwire.Builder
	b.Begin('Q')
	b.String(c.lazyBegin)
	b.Finish()
	c.sendServer(b.B)
	c.push(expect{kind: exReplay})
	c.sc.Unnamed = ""
	c.lazyBegin = ""
	c.inBlock = true
}
