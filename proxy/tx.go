package proxy

import (
	"maps"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Transactions that only read, and the session settings inside them.
//
// Drivers such as psycopg2 (Superset) and JDBC with autocommit off wrap
// every SELECT in BEGIN ... COMMIT or ROLLBACK, and tools send SETs inside
// those transactions (Superset's `set search_path = "public"` prequery).
// With a cache configured, the proxy answers a BEGIN at READ COMMITTED
// itself and sends it to the warehouse only when a statement needs the
// warehouse (a lazy BEGIN). Until then:
//
//   - reads are answered from the cache;
//   - SET, RESET and SET LOCAL of settings the proxy follows are kept by
//     the proxy as PostgreSQL keeps them: they change the key of the
//     statements after them, ROLLBACK undoes them, COMMIT keeps all but SET
//     LOCAL. The proxy answers one itself once the warehouse has accepted
//     the same SET from the same login (a value it has not seen goes to the
//     warehouse, which judges it); a SET of a setting the warehouse reports
//     in ParameterStatus always goes there;
//   - SHOW of a setting is answered with the bytes the warehouse gave the
//     last time the same setting was shown in the same state;
//   - COMMIT and ROLLBACK are answered by the proxy.
//
// When a statement needs the warehouse, BEGIN and the kept SETs are sent
// first, in order. A READ COMMITTED transaction that has only read stays
// cacheable after that (txReads): a hit is written as bytes, and a miss
// runs on the transaction's own connection, where a pg_terminate_backend of
// the pid it reported reaches it, and its answer is stored as it passes.

// setChange is a SET, RESET or DISCARD ALL of the open transaction.
type setChange struct {
	cmd  *fingerprint.SetCommand
	text string
	sent bool // it ran on the attached warehouse connection
}

// effective returns the settings in force for the session's next
// statement: its own, with the open transaction's SETs (SET LOCAL too)
// applied in order, each as the SQL that applies it outside a transaction.
// The map is shared: do not modify it.
func (c *conn) effective() map[string]string {
	if len(c.pendingSets) == 0 {
		return c.settings
	}
	if c.eff != nil && c.effVersion == c.settingsVersion {
		return c.eff
	}
	m := maps.Clone(c.settings)
	for _, ch := range c.pendingSets {
		switch {
		case ch.cmd.Name == "":
			// RESET ALL or DISCARD ALL: back to the startup settings.
			m = maps.Clone(c.startupSettings)
		case ch.cmd.Reset:
			if sql, ok := c.startupSettings[ch.cmd.Name]; ok {
				m[ch.cmd.Name] = sql
			} else {
				delete(m, ch.cmd.Name)
			}
		default:
			for _, s := range settingsOf(ch) {
				m[s[0]] = s[1]
			}
		}
	}
	c.eff, c.effVersion = m, c.settingsVersion
	return m
}

// settingsOf returns what a SET the session kept sets, by name: the
// setting and the SQL that applies it outside a transaction. SET SESSION
// CHARACTERISTICS of several characteristics sets each of their
// settings.
func settingsOf(ch setChange) [][2]string {
	tx := ch.cmd.Characteristics
	if tx == nil || ch.cmd.Name != "session characteristics" {
		return [][2]string{{ch.cmd.Name, sessionForm(ch.text)}}
	}
	var out [][2]string
	add := func(name, value string) {
		out = append(out, [2]string{name, "SET " + name + " = " + quoteLiteral(value)})
	}
	if tx.Isolation != "" {
		add("default_transaction_isolation", tx.Isolation)
	}
	switch {
	case tx.ReadOnly:
		add("default_transaction_read_only", "on")
	case tx.ReadWrite:
		add("default_transaction_read_only", "off")
	}
	switch {
	case tx.Deferrable:
		add("default_transaction_deferrable", "on")
	case tx.NotDeferrable:
		add("default_transaction_deferrable", "off")
	}
	return out
}

// setLocalWord finds the LOCAL of a SET LOCAL, after any leading comments.
var setLocalWord = regexp.MustCompile(`(?is)^((?:\s+|/\*.*?\*/|--[^\n]*\n)*set\s+)local\s+`)

// sessionForm is a SET statement as it applies outside a transaction: SET
// LOCAL loses its LOCAL.
func sessionForm(text string) string {
	if m := setLocalWord.FindStringSubmatchIndex(text); m != nil {
		return text[:m[3]] + text[m[1]:]
	}
	return text
}

// addPendingSet records a SET of the open transaction.
func (c *conn) addPendingSet(ch setChange) {
	c.pendingSets = append(c.pendingSets, ch)
	c.settingsVersion++
}

// dropPendingSets forgets the open transaction's SETs: it rolled back.
func (c *conn) dropPendingSets() {
	if len(c.pendingSets) > 0 {
		c.pendingSets = nil
		c.settingsVersion++
	}
}

// endTx forgets what the proxy knew of a transaction that ended.
func (c *conn) endTx() {
	c.txReads = false
	c.txBegin = ""
	c.lazyBegin = ""
	c.lazyLog = nil
	c.savepoints = nil
	clear(c.cportals)
	clear(c.whCursors)
}

// readsOnly reports whether a statement that ran inside a READ COMMITTED
// transaction leaves it a transaction that has only read: its later reads
// may still be answered from the cache.
func (c *conn) readsOnly(st *fingerprint.Statement) bool {
	if st.Cursor != nil {
		// A cursor runs its query: it reads only if the query does.
		a := c.srv.cfg.Analyzer.Analyze(st.Cursor.Query)
		return len(a.Statements) == 1 && a.Statements[0].Kind == fingerprint.KindRead && c.readsOnly(&a.Statements[0])
	}
	switch st.Kind {
	case fingerprint.KindRead:
		return !strings.HasPrefix(st.Reason, fingerprint.ReasonVolatile) && st.Reason != fingerprint.ReasonLocking
	case fingerprint.KindSession:
		return st.Set != nil && st.Set.Known && st.Set.Name != ""
	case fingerprint.KindUtility:
		switch st.Command {
		case "SHOW", "FETCH", "CLOSE PORTAL":
			return true
		}
	case fingerprint.KindTransaction:
		// Savepoints: a transaction that only read still only reads.
		switch st.Tx.Op {
		case fingerprint.TxSavepoint, fingerprint.TxRelease, fingerprint.TxRollbackTo:
			return true
		}
	}
	return false
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
	if len(a.Statements) != 1 {
		return nil
	}
	return c.localTxOf(&a.Statements[0])
}

// localTxOf is localTx for a statement already analysed.
func (c *conn) localTxOf(st *fingerprint.Statement) *fingerprint.Transaction {
	tx := st.Tx
	if tx == nil || !c.caching() {
		return nil
	}
	switch {
	case tx.Op == fingerprint.TxBegin && c.txStatus == 'I' && c.sc == nil && readCommitted(tx.Isolation, c.effective()):
	case (tx.Op == fingerprint.TxCommit || tx.Op == fingerprint.TxRollback) && c.lazyBegin != "" && !tx.Chain:
	default:
		return nil
	}
	return tx
}

// applyLocalTx records a transaction statement the proxy answered: BEGIN
// opens a lazy transaction, COMMIT keeps its SETs, ROLLBACK drops them.
// It returns the command tag PostgreSQL would give.
func (c *conn) applyLocalTx(tx *fingerprint.Transaction, sql string) string {
	switch {
	case tx.Op == fingerprint.TxBegin:
		c.lazyBegin, c.txBegin, c.txStatus, c.txReads = sql, sql, 'T', true
		return "BEGIN"
	case tx.Op == fingerprint.TxCommit && c.txStatus == 'T':
		c.applySets()
		c.endCursors(true)
		c.endTx()
		c.txStatus = 'I'
		return "COMMIT"
	}
	// ROLLBACK, or COMMIT of a failed transaction, which rolls back.
	c.dropPendingSets()
	c.endCursors(false)
	c.endTx()
	c.txStatus = 'I'
	return "ROLLBACK"
}

// readCommitted reports whether a transaction begun with isolation (""
// when BEGIN names none) runs at READ COMMITTED, which READ UNCOMMITTED is
// in PostgreSQL. settings are the session's, where SET SESSION
// CHARACTERISTICS and default_transaction_isolation give the default.
func readCommitted(isolation string, settings map[string]string) bool {
	if isolation == "" {
		sql := strings.ToLower(settings["default_transaction_isolation"])
		return !strings.Contains(sql, "repeatable") && !strings.Contains(sql, "serializable")
	}
	return isolation == "read committed" || isolation == "read uncommitted"
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

// beginOnWarehouse sends a BEGIN the proxy answered earlier, and the SETs
// and savepoints it kept since, in order, now that a statement needs the
// warehouse; their answers are swallowed.
func (c *conn) beginOnWarehouse() {
	if c.lazyBegin == "" {
		return
	}
	c.sendReplay(c.lazyBegin)
	c.lazyBegin = ""
	c.inBlock = true
	for _, sql := range c.lazyLog {
		c.sendReplay(sql)
	}
	c.lazyLog = nil
	for i := range c.pendingSets {
		c.pendingSets[i].sent = true
	}
	if c.txStatus == 'E' {
		// It failed while the warehouse could not be reached.
		c.sendAbort()
	}
}

// sendReplay sends a statement of the session's own whose answer the
// client has had from the proxy already: it is swallowed.
func (c *conn) sendReplay(sql string) {
	var b pgwire.Builder
	b.Begin('Q')
	b.String(sql)
	b.Finish()
	c.sendServer(b.B)
	c.push(expect{kind: exReplay})
	c.sc.Unnamed = ""
}

// failTx makes the session's transaction fail, after a statement the
// proxy answered for it failed (the fill's error, a cancel, a duplicate
// cursor): the warehouse is made to fail it too (and to begin it first,
// when it was begun lazily), so that what follows gets the answers of an
// aborted transaction (25P02 until ROLLBACK) from the warehouse itself.
// When the warehouse cannot be reached the transaction is marked failed
// in the proxy. Outside a transaction there is nothing to fail.
func (c *conn) failTx() {
	if c.txStatus != 'T' {
		return
	}
	c.txReads = false
	if err := c.ensureAttached(); err != nil {
		c.txStatus = 'E'
		return
	}
	c.sendAbort()
}

// sendAbort makes the transaction on the attached connection fail; its
// answer is swallowed.
func (c *conn) sendAbort() {
	var b pgwire.Builder
	b.Begin('Q')
	// A syntax error: it aborts the transaction and leaves no trace in
	// pg_stat_statements.
	b.String("sqlcached_abort_failed_transaction")
	b.Finish()
	c.sendServer(b.B)
	c.push(expect{kind: exAbort})
	c.txStatus = 'E'
}

// errInFailedTx is PostgreSQL's answer to a statement of a failed
// transaction.
var errInFailedTx = newError(CodeInFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block")

// The proxy's memory of what the warehouse answered to SET and SHOW, per
// backend, database and login: a SET it accepted once it accepts again,
// and a SHOW in the same state gives the same bytes.

// maxLazyLog bounds the statements a lazily begun transaction keeps for
// the warehouse; past it, the transaction goes to the warehouse.
const maxLazyLog = 256

// maxMemo bounds each memo; past it, the memo starts again.
const maxMemo = 4096

// showMemoAge is how long a remembered answer is used: a default or a
// permission changed on the warehouse (ALTER ROLE ... SET) shows within
// this long.
const showMemoAge = 5 * time.Minute

type memo struct {
	mu    sync.Mutex // protects sets and shows
	sets  map[string]time.Time
	shows map[string]showAnswer
}

// maxMemoText is the longest SET or SHOW text remembered.
const maxMemoText = 4096

type showAnswer struct {
	wire []byte // RowDescription, DataRow, CommandComplete
	at   time.Time
}

func (m *memo) acceptedSet(key string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.sets[key]
	return ok && now.Sub(at) <= showMemoAge
}

func (m *memo) acceptSet(key string, now time.Time) {
	if len(key) > maxMemoText {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sets == nil || len(m.sets) >= maxMemo {
		m.sets = map[string]time.Time{}
	}
	m.sets[key] = now
}

func (m *memo) show(key string, now time.Time) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.shows[key]
	if !ok || now.Sub(a.at) > showMemoAge {
		return nil
	}
	return a.wire
}

func (m *memo) keepShow(key string, wire []byte, now time.Time) {
	if len(key) > maxMemoText {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shows == nil || len(m.shows) >= maxMemo {
		m.shows = map[string]showAnswer{}
	}
	m.shows[key] = showAnswer{wire: wire, at: now}
}

// forget drops every remembered answer: DDL may have changed defaults.
func (m *memo) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets, m.shows = nil, nil
}

// memoKey names the state a SET or SHOW is judged in: backend, database,
// login, the session's role, and what is asked.
func (c *conn) memoKey(what string) string {
	eff := c.effective()
	return strings.Join([]string{c.backend.Name, c.login.Database, c.user, eff["role"], eff["session_authorization"], what}, "\x00")
}

// reportedSetting reports whether the warehouse tells clients of changes
// to the setting in ParameterStatus messages: those SETs always go to the
// warehouse, whose messages the client must see. The warehouse reported
// every such setting when the connection started.
func (c *conn) reportedSetting(name string) bool {
	if name == "role" || name == "session_authorization" {
		return true // they change is_superuser
	}
	for p := range c.backend.Pool.ServerParams() {
		if strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}

// localSet answers a SET, RESET or SET LOCAL the proxy may keep itself (see
// the package comment above), appending its answer to b.
func (c *conn) localSet(st *fingerprint.Statement, b *pgwire.Builder) bool {
	set := st.Set
	if set == nil || !set.Known || set.Name == "" || c.sc != nil || !c.caching() {
		return false
	}
	inLazy := c.lazyBegin != "" && c.txStatus == 'T'
	if !inLazy && (c.txStatus != 'I' || set.Local || c.multi) {
		// SET LOCAL outside a transaction warns: the warehouse says so.
		// In a Query of several statements outside a transaction, a
		// SET belongs to the implicit transaction, which a later
		// statement's error rolls back.
		return false
	}
	if c.reportedSetting(set.Name) {
		return false
	}
	if !set.Reset && !c.srv.memo.acceptedSet(c.memoKey(sessionForm(st.Normalized)), time.Now()) {
		return false
	}
	if inLazy && len(c.lazyLog) >= maxLazyLog {
		return false // the warehouse takes the transaction from here
	}
	c.addPendingSet(setChange{cmd: set, text: st.Text})
	if inLazy {
		c.lazyLog = append(c.lazyLog, st.Text)
	} else {
		c.applySets()
	}
	b.Begin('C')
	b.String(st.Command)
	b.Finish()
	return true
}

// learnSet remembers a SET the warehouse accepted, so that the next one
// from the same login may be answered by the proxy.
func (c *conn) learnSet(st *fingerprint.Statement) {
	if st.Set == nil || !st.Set.Known || st.Set.Reset || st.Set.Name == "" || c.reportedSetting(st.Set.Name) {
		return
	}
	c.srv.memo.acceptSet(c.memoKey(sessionForm(st.Normalized)), time.Now())
}

// showKey returns the memo key of a SHOW in the session's state, or false
// when the proxy cannot tell that state.
func (c *conn) showKey(st *fingerprint.Statement) (string, bool) {
	name := st.Show
	if name == "" || name == "all" || c.pinned != "" || (c.txStatus != 'I' && !c.txReads) {
		return "", false
	}
	eff := c.effective()
	var src string
	switch name {
	case "transaction_isolation", "transaction_read_only", "transaction_deferrable":
		// The open transaction's BEGIN and the session's defaults.
		src = strings.Join([]string{c.txBegin, eff["default_transaction_isolation"], eff["default_transaction_read_only"],
			eff["default_transaction_deferrable"]}, "\x00")
		if c.txStatus != 'I' {
			src = "in transaction\x00" + src
		}
	default:
		src = eff[name]
	}
	return c.memoKey("SHOW " + name + "\x00" + src), true
}

// localShow answers a SHOW with the bytes the warehouse gave in the same
// state, appending them to b.
func (c *conn) localShow(st *fingerprint.Statement, b *pgwire.Builder) bool {
	key, ok := c.showKey(st)
	if !ok {
		return false
	}
	wire := c.srv.memo.show(key, time.Now())
	if wire == nil {
		return false
	}
	b.B = append(b.B, wire...)
	return true
}

// learnShow returns a capture that remembers the answer of a SHOW relayed
// to the warehouse, or nil.
func (c *conn) learnShow(st *fingerprint.Statement) *capture {
	key, ok := c.showKey(st)
	if !ok || !c.caching() {
		return nil
	}
	m := &c.srv.memo
	return &capture{max: 64 << 10, done: func(wire []byte, _ int) { m.keepShow(key, wire, time.Now()) }}
}

// capture keeps a copy of an answer the warehouse sends the client —
// RowDescription, DataRows, CommandComplete — and hands it to done when it
// is complete, unless it failed or grew past max bytes.
type capture struct {
	buf  []byte
	rows int
	max  int
	over bool
	done func(wire []byte, rows int)
}

// take looks at one message of the answer. It reports whether the answer
// is complete.
func (p *capture) take(typ byte, msg []byte) bool {
	switch typ {
	case 'T', 'D', 'C':
	default:
		return false
	}
	if typ == 'D' {
		p.rows++
	}
	if !p.over {
		if len(p.buf)+len(msg) > p.max {
			p.over, p.buf = true, nil
		} else {
			p.buf = append(p.buf, msg...)
		}
	}
	if typ == 'C' && !p.over {
		p.done(p.buf, p.rows)
	}
	return typ == 'C'
}

// rollbackOnDisconnect makes the session's warehouse connection fit for
// another session when the client leaves inside a transaction: it is
// rolled back, as pgbouncer does. It reports whether the connection is
// clean and may go back to the pool.
func (c *conn) rollbackOnDisconnect() bool {
	sc := c.sc
	if sc == nil || c.pinned != "" || c.head != len(c.pending) {
		return false
	}
	if sc.TxStatus == 'I' {
		return true
	}
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = sc.SetDeadline(time.Time{}) }()
	var b pgwire.Builder
	b.Begin('Q')
	b.String("ROLLBACK")
	b.Finish()
	if _, err := sc.W.Write(b.B); err != nil || sc.W.Flush() != nil {
		return false
	}
	for {
		typ, msg, err := sc.R.Next()
		if err != nil {
			return false
		}
		if typ == 'Z' {
			body := pgwire.Body(msg)
			if len(body) < 1 {
				return false
			}
			sc.TxStatus = body[0]
			return sc.TxStatus == 'I'
		}
	}
}
