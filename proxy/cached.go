package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// The cached read path. A simple-protocol statement that the analyzer
// calls cacheable, from a session that holds no warehouse connection and
// is not pinned, is answered through the cache Group: the stored bytes
// (RowDescription, DataRows, CommandComplete) followed by ReadyForQuery.
// A miss runs once per key on the backend's executor, detached from the
// client, under the rule's timeout.

// cacheOK reports whether the session's next statement may be answered
// from the cache: the session caches (see caching), no answer is awaited
// from the warehouse, and it is outside a transaction or in a READ
// COMMITTED one that has only read.
func (c *conn) cacheOK() bool {
	return c.caching() && c.head == len(c.pending) && (c.txStatus == 'I' || c.txReads)
}

// caching reports whether any statement of the session may be answered
// from the cache: a read path is configured, nothing ties the session to
// its connection, and the rules do not say from the session alone (user,
// database, application_name) that nothing of it is cached. A session
// that does not cache relays its statements without parsing them, as
// pgbouncer would (see screen.go). The decision is taken again after a
// reload of the rules or a change of settings, at a point where nothing
// is under way: outside transactions, with no cursor open.
func (c *conn) caching() bool {
	reads := c.srv.cfg.Reads
	if reads == nil || c.pinned != "" {
		return false
	}
	if set := reads.Policy(); set != c.rules || c.rulesVersion != c.settingsVersion {
		if c.rules != nil && (c.txStatus != 'I' || c.lazyBegin != "" || len(c.cursors) > 0) {
			return !c.sessionOff
		}
		r, decided := set.ForSession(c.user, c.database, c.applicationName())
		c.sessionOff = decided && (r == nil || !r.Cache || r.TTL <= 0)
		c.sessionRule = nil
		if decided {
			c.sessionRule = r
		}
		c.rules, c.rulesVersion = set, c.settingsVersion
	}
	return !c.sessionOff
}

// plan asks the read path what it makes of a statement the session may
// answer from the cache (sql, analysed as a), with the parameters and
// formats the extended protocol adds (none for a simple query), and
// returns the request and plan, kept in the session. ok is false when the
// answer is not cached.
func (c *conn) plan(sql string, a *fingerprint.Analysis, p boundParams) (*readpath.Request, *readpath.Plan, bool) {
	req := &c.readReq
	labels := c.sessionLabels()
	*req = readpath.Request{
		Backend: c.backend.Name, Warehouse: c.backend.Pool, Login: executor.Login(c.login),
		Database: c.database, ApplicationName: labels.ApplicationName, Session: labels,
		SQL: sql, Analysis: a, Statement: p.statement, ParamOIDs: p.oids, ParamFormats: p.formats,
		Params: p.values, ResultFormats: p.resultFormats, Settings: c.effective(), KeySettings: c.keySettings(),
	}
	if slices.Contains(p.resultFormats, 1) {
		req.ExactFloats = c.exactFloats()
	}
	c.readPlan = c.srv.cfg.Reads.Plan(req)
	return req, &c.readPlan, c.readPlan.Decision.Cache
}

// What the extended protocol adds to a request: nothing for a simple
// query.
type boundParams struct {
	statement     string // the warehouse's name for the prepared statement
	oids          []uint32
	formats       []int16
	values        [][]byte
	resultFormats []int16
}

// applicationName returns the session's application_name in force.
func (c *conn) applicationName() string {
	return c.settingValue(c.effective()["application_name"])
}

// settingValue returns the value a kept SET sets (see
// readpath.SettingValue).
func (c *conn) settingValue(sql string) string {
	return readpath.SettingValue(c.srv.cfg.Analyzer, sql)
}

// sessionLabels returns the labels the session gave itself: SET
// sqlcached.dashboard (or chart), and the same in its startup options,
// and its application_name; kept for the settings' version.
func (c *conn) sessionLabels() policy.SessionLabels {
	if c.labelsOK && c.labelsVersion == c.settingsVersion {
		return c.labels
	}
	eff := c.effective()
	l := policy.SessionLabels{
		StartupDashboard: c.settingValue(c.startupSettings[policy.DashboardSetting]),
		StartupChart:     c.settingValue(c.startupSettings[policy.ChartSetting]),
		ApplicationName:  c.settingValue(eff["application_name"]),
	}
	if sql := eff[policy.DashboardSetting]; sql != c.startupSettings[policy.DashboardSetting] {
		l.SetDashboard = c.settingValue(sql)
	}
	if sql := eff[policy.ChartSetting]; sql != c.startupSettings[policy.ChartSetting] {
		l.SetChart = c.settingValue(sql)
	}
	c.labels, c.labelsVersion, c.labelsOK = l, c.settingsVersion, true
	return l
}

// keySettings returns the session settings that change answers, sorted,
// without those at the value the warehouse's connections report (see
// readpath.KeySettings); kept for the settings' version.
func (c *conn) keySettings() []fingerprint.Setting {
	if c.keySet != nil && c.keySetVersion == c.settingsVersion {
		return c.keySet
	}
	c.keySet = readpath.KeySettings(c.srv.cfg.Analyzer, c.effective(), c.backend.Pool.ServerParams())
	c.keySetVersion = c.settingsVersion
	return c.keySet
}

// cachedRead answers a simple-protocol read from the cache, writing the
// answer without its ReadyForQuery. A session without a warehouse
// connection waits for the cache, which fills a miss through the
// backend's executor; a session holding one (inside a transaction that
// has begun on the warehouse, or in session pooling) takes hits only, and
// its misses run on its own connection: cachedRead then returns the
// capture that stores the relayed answer. failed says the client got an
// error; done false sends the statement to the warehouse.
func (c *conn) cachedRead(sql string, shift int, a *fingerprint.Analysis) (done, failed bool, cp *capture, err error) {
	start := time.Now()
	req, pl, ok := c.plan(sql, a, boundParams{})
	if !ok {
		return false, false, nil, nil
	}
	res, cp, err := c.read(req, pl)
	switch {
	case errors.Is(err, errClientGone):
		return true, true, nil, err
	case err != nil:
		c.observeRead(start, pl, res, err)
		return true, true, nil, c.failStatement(err, shift)
	case res.Entry == nil:
		return false, false, cp, nil
	}
	err = c.writeAnswer(res, true)
	c.observeRead(start, pl, res, nil)
	return true, false, nil, err
}

// read looks a planned statement up. A session without a warehouse
// connection waits for the cache, which fills a miss through the read
// path; a session holding one takes hits only, and gets on a miss the
// capture that stores the answer its connection gets. No answer and no
// error sends the statement to the warehouse, which answers it, errors
// and all (the warehouse failed it, or it is too large to keep); an error
// is the proxy's to send (a timeout, a cancel, the client gone).
func (c *conn) read(req *readpath.Request, pl *readpath.Plan) (cache.Result, *capture, error) {
	reads := c.srv.cfg.Reads
	if c.sc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, resv := reads.Lookup(ctx, pl)
		cancel()
		if res.Entry != nil || resv == nil {
			return res, nil, nil
		}
		return cache.Result{}, c.storeCapture(resv, pl), nil
	}
	res, err := c.cacheGet(req, pl)
	if errors.Is(err, cache.ErrTooLarge) || relayOnError(err) {
		return cache.Result{}, nil, nil
	}
	return res, nil, err
}

// storeCapture returns a capture that stores the answer it keeps under
// resv.
func (c *conn) storeCapture(resv *cache.Reservation, pl *readpath.Plan) *capture {
	reads, plan := c.srv.cfg.Reads, *pl
	max := plan.Decision.Rule.MaxEntryBytes
	if max <= 0 {
		max = 16 << 20
	}
	return &capture{max: max, done: func(wire []byte, rows int) { reads.Store(resv, &plan, wire, rows) }}
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

// proxyAnswers reports whether err is the proxy's to answer rather than
// the warehouse's: a CancelRequest, the client gone, the rule's timeout, a
// full queue.
func proxyAnswers(err error) bool {
	if errors.Is(err, errClientGone) {
		return true
	}
	code := toError(err).Code
	return code == CodeQueryCanceled || code == CodeInsufficientResources
}

// errCanceledByClient is why a wait on the cache ends on a CancelRequest.
var errCanceledByClient = newError(CodeQueryCanceled, "canceling statement due to user request")

// cacheGet waits for the cache on behalf of the client. The wait, not the
// fill, ends when the client sends a CancelRequest (57014) or goes away
// (watched once the wait has lasted watchInterval); the fill goes on and
// its answer is stored for the next viewer.
func (c *conn) cacheGet(req *readpath.Request, pl *readpath.Plan) (cache.Result, error) {
	reads := c.srv.cfg.Reads
	if res, ok := reads.Peek(pl); ok {
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
	res, err := reads.Get(ctx, req, pl)
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
		err = toError(err) // the rule's timeout, named
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

// invalidateWrites drops the cached answers that read the tables written
// by a transaction that just committed.
func (c *conn) invalidateWrites() {
	if slices.Contains(c.pendingWrites, catalogTable) {
		c.srv.ddlEpoch.Add(1) // prepared statements are prepared again
	}
	if len(c.pendingWrites) == 0 || c.srv.cfg.Reads == nil {
		c.pendingWrites = nil
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Redis not taking the invalidation is the cache's to report, once per
	// outage rather than once per write; it retries until Redis takes it.
	err := c.srv.cfg.Reads.Invalidate(ctx, c.pendingWrites...)
	if err != nil && !errors.Is(err, cache.ErrInvalidationPending) {
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
const catalogTable = readpath.CatalogTable

// loadVolatility reads function volatility from the session's warehouse
// into the analyzer, once, or again when force is set (after DDL).
func (s *Server) loadVolatility(ctx context.Context, c *conn, force bool) {
	if s.cfg.Reads == nil {
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
