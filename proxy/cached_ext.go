package proxy

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// The cached read path of the extended protocol. A session without a
// warehouse connection holds back a batch that may be answered from the
// cache — [Parse] Bind [Describe portal] Execute Sync — instead of
// attaching at its first message. At Sync, a cacheable statement is
// answered from the cache: ParseComplete, BindComplete, the stored
// RowDescription (when described), DataRows, CommandComplete and
// ReadyForQuery. Anything else, at any point (another message, a statement
// that is not cacheable, a fill that fails), releases the held messages to
// the warehouse in order, as if they had never been held.

// held is a batch held back for the cache.
type held struct {
	msgs [][]byte // copies of the client's messages, in order

	parse     *stmt // the batch's Parse, if any
	parseName string
	st        *stmt // the statement bound
	portal    string

	paramFormats  []int16
	params        [][]byte
	resultFormats []int16

	bound, described, executed bool
	maxRows                    int32 // the Execute's row limit
	flushed                    bool  // the batch ends with Flush, not Sync: no ReadyForQuery

	// tx is a transaction statement leading the batch: BEGIN (READ
	// COMMITTED), answered by the proxy and sent to the warehouse only when
	// needed, as drivers with autocommit off send it in front of each
	// transaction's first query; or COMMIT or ROLLBACK of such a
	// transaction.
	tx                                         *fingerprint.Transaction
	txQuery                                    string
	txStmt                                     *stmt // a named transaction statement to register
	txName                                     string
	txParsed, txBound, txDescribed, txExecuted bool
}

// holdable reports whether a new batch may be held.
func (c *conn) holdable() bool {
	return !c.replaying && c.cacheOK()
}

// hold takes an extended-protocol message into the held batch. It returns
// true when the message was taken (or answered the batch); false when the
// caller must handle it the usual way (held messages, if any, have been
// released to the warehouse by then).
func (c *conn) hold(typ byte, msg []byte) (bool, error) {
	if c.held == nil {
		if (typ != 'P' && typ != 'B') || !c.holdable() {
			return false, nil
		}
		c.held = &held{}
	}
	h := c.held
	if typ == 'X' {
		c.held = nil // the client leaves: nothing was sent for the batch
		return false, nil
	}
	cp := append([]byte(nil), msg...)
	var ok bool
	switch {
	case h.tx != nil && !h.txExecuted || len(h.msgs) == 0 && c.holdTx(h, typ, cp):
		if !c.holdTxStep(h, typ, cp) {
			return false, c.releaseHeld()
		}
		h.msgs = append(h.msgs, cp)
		return true, nil
	case h.tx != nil && (h.tx.Op != fingerprint.TxBegin || typ == 'S' && h.parse == nil && !h.bound):
		// COMMIT or ROLLBACK, or BEGIN alone: only Sync may follow.
		if typ == 'S' {
			return c.serveTx(h)
		}
		return false, c.releaseHeld()
	}
	switch typ {
	case 'P':
		ok = h.parse == nil && !h.bound && c.holdParse(h, cp)
	case 'B':
		ok = !h.bound && c.holdBind(h, cp)
	case 'D':
		s := pgwire.NewScanner(pgwire.Body(cp))
		what, name := s.Byte(), s.CString()
		ok = s.Err == nil && h.bound && !h.executed && !h.described && what == 'P' && string(name) == h.portal
		h.described = ok
	case 'E':
		s := pgwire.NewScanner(pgwire.Body(cp))
		name, maxRows := s.CString(), s.Int32()
		ok = s.Err == nil && h.bound && !h.executed && string(name) == h.portal
		h.executed, h.maxRows = ok, maxRows
	case 'S', 'H':
		// At Sync, or at a Flush (pg-cursor binds and describes a portal,
		// flushes, reads it in pieces with Execute and Flush, and syncs
		// at the end): the portal is answered from the cache.
		if h.executed || typ == 'H' && h.bound {
			h.flushed = typ == 'H'
			return c.serveHeld(h)
		}
	}
	if !ok {
		return false, c.releaseHeld()
	}
	h.msgs = append(h.msgs, cp)
	return true, nil
}

func (c *conn) holdParse(h *held, msg []byte) bool {
	s := pgwire.NewScanner(pgwire.Body(msg))
	name := s.CString()
	query := s.CString()
	n := s.Int16()
	oids := s.Next(4 * int(n))
	if s.Err != nil || n < 0 || (len(name) > 0 && c.stmts[string(name)] != nil) {
		return false
	}
	st := &stmt{query: string(query), oids: oids, id: c.stmtID(string(name), query, oids)}
	st.analysis = c.srv.cfg.Analyzer.Analyze(st.query)
	if !st.analysis.Cacheable {
		return false
	}
	h.parse, h.parseName = st, string(name)
	return true
}

func (c *conn) holdBind(h *held, msg []byte) bool {
	s := pgwire.NewScanner(pgwire.Body(msg))
	portal := s.CString()
	name := string(s.CString())
	st := c.stmts[name]
	if h.parse != nil && h.parseName == name {
		st = h.parse
	}
	if st == nil || st.analysis == nil || !st.analysis.Cacheable {
		return false
	}
	nf := s.Int16()
	for i := 0; i < int(nf) && s.Err == nil; i++ {
		h.paramFormats = append(h.paramFormats, s.Int16())
	}
	np := s.Int16()
	for i := 0; i < int(np) && s.Err == nil; i++ {
		l := s.Int32()
		if l < 0 {
			h.params = append(h.params, nil)
			continue
		}
		h.params = append(h.params, s.Next(int(l)))
	}
	nr := s.Int16()
	for i := 0; i < int(nr) && s.Err == nil; i++ {
		h.resultFormats = append(h.resultFormats, s.Int16())
	}
	if s.Err != nil || nf < 0 || np < 0 || nr < 0 {
		return false
	}
	h.st, h.portal, h.bound = st, string(portal), true
	return true
}

// holdTx reports whether a Parse starts a transaction statement the proxy
// may answer: BEGIN at READ COMMITTED outside a transaction, COMMIT or
// ROLLBACK of a transaction begun lazily.
func (c *conn) holdTx(h *held, typ byte, msg []byte) bool {
	s := pgwire.NewScanner(pgwire.Body(msg))
	var query string
	switch typ {
	case 'P':
		name := string(s.CString())
		query = string(s.CString())
		n := s.Int16()
		oids := s.Next(4 * int(n))
		if s.Err != nil || n < 0 || (name != "" && c.stmts[name] != nil) || !mayBeTransactionControl(query) {
			return false
		}
		if name != "" {
			// JDBC prepares BEGIN, COMMIT and ROLLBACK as named
			// statements: the client's name is registered when the
			// batch is answered.
			h.txStmt = &stmt{query: query, oids: append([]byte(nil), oids...), id: c.stmtID(name, []byte(query), oids)}
			h.txStmt.analysis = c.srv.cfg.Analyzer.Analyze(query)
			h.txName = name
		}
	case 'B':
		// A statement prepared earlier (pgx prepares BEGIN too).
		s.CString()
		st := c.stmts[string(s.CString())]
		if s.Err != nil || st == nil || !mayBeTransactionControl(st.query) {
			return false
		}
		query = st.query
		h.txParsed = true
	default:
		return false
	}
	tx := c.localTx(query)
	if tx == nil {
		return false
	}
	h.tx = tx
	h.txQuery = query
	return true
}

// holdTxStep takes the Parse, Bind and Execute of the transaction
// statement.
func (c *conn) holdTxStep(h *held, typ byte, msg []byte) bool {
	s := pgwire.NewScanner(pgwire.Body(msg))
	switch {
	case typ == 'P' && !h.txParsed:
		h.txParsed = true
		return true
	case typ == 'B' && h.txParsed && !h.txBound:
		portal := s.CString()
		h.txBound = s.Err == nil && len(portal) == 0
		return h.txBound
	case typ == 'D' && h.txBound && !h.txDescribed:
		what, portal := s.Byte(), s.CString()
		h.txDescribed = s.Err == nil && what == 'P' && len(portal) == 0
		return h.txDescribed
	case typ == 'E' && h.txBound && !h.txExecuted:
		portal := s.CString()
		h.txExecuted = s.Err == nil && len(portal) == 0
		return h.txExecuted
	}
	return false
}

// txAnswer is what the warehouse would answer the held transaction
// statement's Parse, Bind and Execute.
func (c *conn) txAnswer(b *pgwire.Builder, h *held, tag string) {
	if h.txStmt != nil {
		if c.stmts == nil {
			c.stmts = map[string]*stmt{}
		}
		c.stmts[h.txName] = h.txStmt
	}
	if h.txParsed && len(h.msgs) > 0 && h.msgs[0][0] == 'P' {
		b.B = append(b.B, parseComplete...)
	}
	b.B = append(b.B, bindComplete...)
	if h.txDescribed {
		b.B = append(b.B, noData...)
	}
	b.Begin('C')
	b.String(tag)
	b.Finish()
}

// serveTx answers a batch of a transaction statement alone: BEGIN, or
// COMMIT or ROLLBACK of a lazily begun transaction.
func (c *conn) serveTx(h *held) (bool, error) {
	c.held = nil
	var b pgwire.Builder
	c.txAnswer(&b, h, c.applyLocalTx(h.tx, h.txQuery))
	b.Begin('Z')
	b.Byte(c.txStatus)
	b.Finish()
	return true, c.writeClient(b.B, true)
}

// releaseHeld sends the held messages to the warehouse the usual way.
func (c *conn) releaseHeld() error {
	h := c.held
	c.held = nil
	if h == nil {
		return nil
	}
	c.replaying = true
	defer func() { c.replaying = false }()
	for _, m := range h.msgs {
		if err := c.handle(m[0], m); err != nil {
			return err
		}
	}
	return nil
}

// serveHeld answers a held batch at its Sync from the cache, or releases
// it when it cannot.
func (c *conn) serveHeld(h *held) (bool, error) {
	a := h.st.analysis
	oids := make([]uint32, len(h.st.oids)/4)
	for i := range oids {
		oids[i] = binary.BigEndian.Uint32(h.st.oids[4*i:])
	}
	bound := boundParams{statement: h.st.id, oids: oids, formats: h.paramFormats, values: h.params, resultFormats: h.resultFormats}
	start := time.Now()
	req, pl, ok := c.plan(h.st.query, a, bound)
	if !ok {
		return false, c.releaseHeld()
	}
	res, cp, err := c.read(req, pl)
	if cp != nil && h.maxRows <= 0 {
		// Inside a transaction begun on the warehouse, or in session
		// pooling: misses run on the session's connection.
		c.heldCapture = &heldCapture{portal: h.portal, described: h.described, cap: cp}
	}
	if err == nil && res.Entry == nil || err != nil && !proxyAnswers(err) {
		// Not cached, too large, or failing: the warehouse answers,
		// errors and all (PostgreSQL's own 0A000 for a prepared
		// statement whose result changed, ...).
		err := c.releaseHeld()
		c.heldCapture = nil
		return false, err
	}
	switch {
	case errors.Is(err, errClientGone):
		return true, err
	case err != nil:
		// A cancel, a timeout, a full queue: the proxy's to answer, after what the
		// batch's BEGIN, Parse and Bind would have answered.
		c.observeRead(start, pl, res, err)
		c.held = nil
		b := c.heldPrefix(h)
		if err := c.writeClient(b.B, false); err != nil {
			return true, err
		}
		if err := c.failStatement(err, 0); err != nil {
			return true, err
		}
		if c.head < len(c.pending) {
			if err := c.flushServer(); err != nil {
				return true, c.serverLost(err)
			}
			if err := c.drain(); err != nil {
				return true, err
			}
		}
		if h.flushed {
			c.skipping = true // to the client's Sync, as after any error
			return true, c.w.Flush()
		}
		return true, c.writeReady()
	}
	err = c.answerHeld(h, res)
	c.observeRead(start, pl, res, nil)
	return true, err
}

// answerHeld answers a held batch with a cached answer: what the warehouse
// would answer its transaction statement, Parse and Bind, then the answer
// (in pieces when the Execute has a row limit) and ReadyForQuery.
func (c *conn) answerHeld(h *held, res cache.Result) error {
	c.held = nil
	b := c.heldPrefix(h)
	if h.maxRows <= 0 && c.txStatus == 'I' && !h.flushed {
		return c.writeHit(b.B, res, h.described)
	}
	p := newCachedPortal(res.Entry.Payload)
	if h.described {
		b.B = append(b.B, p.desc...)
	}
	if res.Status == cache.StaleIfError {
		b.B = append(b.B, staleNotice(res)...)
	}
	if h.executed {
		b.B = append(b.B, p.run(h.maxRows)...)
	}
	if h.flushed || c.txStatus != 'I' {
		// The portal lives on: to the Sync that ends the implicit
		// transaction, or to the end of the explicit one.
		c.keepPortal(h.portal, p)
	}
	if h.flushed {
		return c.writeClient(b.B, true)
	}
	if err := c.writeClient(b.B, false); err != nil {
		return err
	}
	return c.writeReady()
}

// heldPrefix applies what a held batch does before its Execute — its
// transaction statement, its Parse — and returns what the warehouse
// would have answered them and the Bind.
func (c *conn) heldPrefix(h *held) pgwire.Builder {
	var b pgwire.Builder
	if h.tx != nil {
		c.txAnswer(&b, h, c.applyLocalTx(h.tx, h.txQuery))
	}
	if h.parse != nil {
		if c.stmts == nil {
			c.stmts = map[string]*stmt{}
		}
		h.parse.oids = append([]byte(nil), h.parse.oids...)
		c.stmts[h.parseName] = h.parse
		b.B = append(b.B, parseComplete...)
	}
	b.B = append(b.B, bindComplete...)
	return b
}

var (
	bindComplete = []byte{'2', 0, 0, 0, 4}
	noData       = []byte{'n', 0, 0, 0, 4}
)

// exactFloats reports whether the session's float output round-trips:
// extra_float_digits of 3, or of 1 or more from PostgreSQL 12 on. The
// value is the one PostgreSQL's parser reads from the session's SET.
func (c *conn) exactFloats() bool {
	sql, ok := c.effective()["extra_float_digits"]
	if !ok {
		return false // the warehouse's default, which the proxy cannot see
	}
	a := c.srv.cfg.Analyzer.Analyze(sql)
	if !a.Parsed || len(a.Statements) != 1 {
		return false
	}
	set := a.Statements[0].Set
	if set == nil || set.Name != "extra_float_digits" || set.Reset {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(set.Value))
	switch {
	case err != nil || n < 1:
		return false
	case n >= 3:
		return true
	}
	major, _, _ := strings.Cut(c.backend.Pool.ServerParams()["server_version"], ".")
	m, err := strconv.Atoi(major)
	return err == nil && m >= 12
}

// heldCapture stores the answer of a held batch released to the
// warehouse on a miss, as it passes: the Execute of portal gets cap; when
// the batch did not describe the portal, the proxy describes it for the
// capture, and swallows the description.
type heldCapture struct {
	portal    string
	described bool
	cap       *capture
}

// captureFor returns the capture for a Describe ('D') or Execute ('E') of
// portal, if the held batch being released asked for one, sending the
// Describe the capture needs ahead of an Execute that had none.
func (c *conn) captureFor(typ byte, portal string) *capture {
	hc := c.heldCapture
	if hc == nil || hc.portal != portal {
		return nil
	}
	if typ == 'E' {
		c.heldCapture = nil
		if !hc.described {
			c.sendNamed('D', 'P', portal)
			c.push(expect{kind: exInjectDescribe, cap: hc.cap})
		}
	}
	return hc.cap
}

// cachedPortal is a portal whose answer came from the cache: Execute
// messages with a row limit are answered from it in pieces, suspended and
// resumed as the warehouse would (see run). It lives as the warehouse's
// portal would: to the end of the transaction, or of the Sync outside
// one, or until closed or bound again.
type cachedPortal struct {
	desc  []byte // RowDescription or NoData, for Describe
	rows  []byte // the DataRows not yet sent
	depth int    // savepoints open when it was bound
}

// newCachedPortal makes a portal of a stored answer: RowDescription,
// DataRows, CommandComplete. The portal shares the answer's bytes.
func newCachedPortal(payload []byte) *cachedPortal {
	p := &cachedPortal{desc: noData}
	if len(payload) > 5 && (payload[0] == 'T' || payload[0] == 'n') {
		n := 1 + int(binary.BigEndian.Uint32(payload[1:5]))
		p.desc, payload = payload[:n], payload[n:]
	}
	end := 0
	for end+5 <= len(payload) && payload[end] == 'D' {
		end += 1 + int(binary.BigEndian.Uint32(payload[end+1:end+5]))
	}
	p.rows = payload[:end]
	return p
}

// run answers an Execute of the portal with a row limit (0: none): up to
// maxRows DataRows, then PortalSuspended when the limit was reached, or
// CommandComplete with the rows of this Execute when they ran out — as
// PostgreSQL does, which suspends a portal whose last row filled the limit
// exactly and completes it with SELECT 0 at the next Execute.
func (p *cachedPortal) run(maxRows int32) []byte {
	n, end := 0, 0
	for end < len(p.rows) && (maxRows <= 0 || n < int(maxRows)) {
		end += 1 + int(binary.BigEndian.Uint32(p.rows[end+1:end+5]))
		n++
	}
	out := append([]byte(nil), p.rows[:end]...)
	p.rows = p.rows[end:]
	if maxRows > 0 && n == int(maxRows) {
		return append(out, portalSuspended...)
	}
	var b pgwire.Builder
	b.B = out
	b.Begin('C')
	b.String("SELECT " + strconv.Itoa(n))
	b.Finish()
	return b.B
}

var portalSuspended = []byte{'s', 0, 0, 0, 4}

// cachedPortalMessage answers Describe, Execute and Close of a portal
// answered from the cache; false when name is not one.
func (c *conn) cachedPortalMessage(typ byte, name string, maxRows int32) bool {
	p := c.cportals[name]
	if p == nil {
		return false
	}
	if c.txStatus == 'E' {
		c.failedTxMessage()
		return true
	}
	switch typ {
	case 'D':
		c.push(expect{kind: exSynthetic, msg: p.desc})
	case 'E':
		c.push(expect{kind: exSynthetic, msg: p.run(maxRows)})
	case 'C':
		delete(c.cportals, name)
		c.push(expect{kind: exSynthetic, msg: closeComplete})
	}
	return true
}

// failedTxMessage answers an extended-protocol message in a failed
// transaction as PostgreSQL does: 25P02, and the rest to Sync is skipped.
func (c *conn) failedTxMessage() {
	if c.sc != nil {
		c.proxyError(errInFailedTx)
		return
	}
	c.push(expect{kind: exSynthetic, msg: errorBytes(errInFailedTx)})
	c.skipping = true
}

// keepPortal registers a portal answered from the cache.
func (c *conn) keepPortal(name string, p *cachedPortal) {
	p.depth = len(c.savepoints)
	if c.cportals == nil {
		c.cportals = map[string]*cachedPortal{}
	}
	c.cportals[name] = p
}
