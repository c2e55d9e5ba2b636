package proxy

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// expKind is what answer the proxy awaits from the warehouse for a message
// it sent, or a message of its own to put in the client's stream at that
// point.
type expKind uint8

const (
	exParse          expKind = iota // ParseComplete
	exInjectParse                   // ParseComplete, swallowed: a Parse the proxy added
	exBind                          // BindComplete
	exDescribeStmt                  // ParameterDescription, then RowDescription or NoData
	exDescribePortal                // RowDescription or NoData
	exExecute                       // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
	exClose                         // CloseComplete
	exInjectClose                   // CloseComplete, swallowed
	exSync                          // ReadyForQuery
	exQuery                         // everything up to ReadyForQuery
	exReplay                        // a statement of the session's the client has had an answer to (settings, a lazy BEGIN and what it kept, a cursor declared on the warehouse): swallowed up to ReadyForQuery
	exFail                          // an error the proxy raises: the warehouse's is swallowed, msg sent instead
	exSynthetic                     // no answer awaited: msg goes to the client
	exAbort                         // a statement failing a lazy transaction on the warehouse: swallowed up to ReadyForQuery
	exInjectDescribe                // RowDescription or NoData, swallowed: a Describe the proxy added for a capture
)

// expect is one pending answer.
type expect struct {
	kind expKind
	msg  []byte                // exSynthetic, exFail
	a    *fingerprint.Analysis // exQuery, exExecute: for settings tracking
	st   *stmt                 // exDescribeStmt: whose result type it tells; exInjectDescribe: where it goes
	n    int                   // exQuery: statements completed
	cap  *capture              // exQuery, exExecute: keeps a copy of the answer
	// shift moves the positions of exQuery's errors and notices, by
	// characters: the Query sent was a tail of the client's.
	shift int

	// start is when exQuery's statement (the next one of a Query) or
	// exExecute was sent, and bytes what its answer took so far, for
	// Config.Observe; start is zero when nothing is observed.
	start time.Time
	bytes int64

	// exParse, exInjectParse: what to undo if the Parse is not done.
	name string // client statement name; "\x00" when none
	prev *stmt
	// id is the statement's name on the connection: for exParse and
	// exInjectParse, to undo; for exBind and exDescribeStmt, so that one
	// whose result type changed is prepared again.
	id      string
	unnamed bool
}

func (c *conn) push(e expect) {
	if e.kind == exSynthetic && c.head == len(c.pending) {
		// Nothing awaited before it: it can go out now.
		_ = c.writeClient(e.msg, false)
		return
	}
	if c.head == len(c.pending) {
		c.pending = c.pending[:0]
		c.head = 0
	}
	if e.kind != exSynthetic {
		c.open = true
	}
	c.pending = append(c.pending, e)
}

func (c *conn) pop() {
	c.pending[c.head] = expect{}
	c.head++
}

// drain reads the warehouse's answers to everything sent and relays them
// to the client in order, then flushes the client.
func (c *conn) drain() error {
	watching := false
	for c.head < len(c.pending) {
		it := &c.pending[c.head]
		if it.kind == exSynthetic {
			if err := c.writeClient(it.msg, false); err != nil {
				if watching {
					c.waiting(false)
				}
				return err
			}
			c.pop()
			continue
		}
		if !watching {
			c.waiting(true)
			watching = true
		}
		typ, msg, err := c.sc.R.Next()
		if err != nil {
			if isTimeout(err) {
				// The warehouse is still working: make sure someone
				// still waits for the answer.
				if c.clientGone() {
					c.waiting(false)
					return errClientGone
				}
				// Woken by watchWaits, or by a deadline left
				// from before: the wait starts over without it.
				_ = c.sc.SetReadDeadline(time.Time{})
				watching = false
				continue
			}
			c.waiting(false)
			return c.serverLost(err)
		}
		if err := c.onServer(it, typ, msg); err != nil {
			c.waiting(false)
			return err
		}
	}
	if watching {
		c.waiting(false)
	}
	c.pending = c.pending[:0]
	c.head = 0
	// The client has its answer before the connection goes back.
	err := c.w.Flush()
	c.maybeRelease()
	if err != nil {
		return errClientGone
	}
	return nil
}

// watchInterval is how long the warehouse may be silent before the proxy
// checks that the client has not gone: a client that disconnects during a
// long query has it cancelled within about this long (up to half as long
// again for a session waiting in drain, see watchWaits).
const watchInterval = time.Second

// waiting notes that drain begins (on) or stops waiting for the
// warehouse's answers. A wait that watchWaits cut short by the connection's
// read deadline ends here too: the deadline is cleared.
func (c *conn) waiting(on bool) {
	c.mu.Lock()
	c.waitFrom = 0
	if on {
		c.waitFrom = c.srv.waitTick.Load() + 1
	}
	sc, woken := c.sc, c.woken
	c.woken = false
	c.mu.Unlock()
	if woken && sc != nil {
		_ = sc.SetReadDeadline(time.Time{})
	}
}

// wakeIfWaiting wakes drain, by the warehouse connection's read deadline,
// when it has been waiting for watchInterval or more: it began before the
// tick two before this one. A session whose lock is held (a cancel request
// under way, up to seconds) is passed over until the next tick, so that
// one session cannot hold up the watch of all the others.
func (c *conn) wakeIfWaiting(tick int64) {
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.waitFrom == 0 || c.woken || c.sc == nil || tick+1-c.waitFrom < 3 {
		return
	}
	c.woken = true
	_ = c.sc.SetReadDeadline(time.Now())
}

// clientGone reports whether the client closed its connection, without
// consuming what it may have sent.
func (c *conn) clientGone() bool {
	// A deadline already past would fail the read before it looks at
	// the socket; a moment ahead lets a pending EOF show.
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	err := c.r.Probe()
	c.clearReadDeadline()
	return err != nil && !isTimeout(err)
}

// completes reports whether a message of type typ is the last answer to
// an entry of kind k.
func completes(k expKind, typ byte) bool {
	switch k {
	case exParse, exInjectParse:
		return typ == '1'
	case exBind:
		return typ == '2'
	case exDescribeStmt, exDescribePortal, exInjectDescribe:
		return typ == 'T' || typ == 'n'
	case exExecute:
		return typ == 'C' || typ == 'I' || typ == 's'
	case exClose, exInjectClose:
		return typ == '3'
	}
	return false
}

// onServer handles one message from the warehouse while it answers it.
func (c *conn) onServer(it *expect, typ byte, msg []byte) error {
	if it.shift != 0 && (typ == 'E' || typ == 'N') {
		msg = shiftPosition(msg, it.shift)
	}
	switch typ {
	case 'E':
		return c.onError(it, msg)
	case 'Z':
		return c.onReady(it, msg)
	case 'S':
		c.onParameterStatus(msg)
		if it.kind == exReplay {
			return nil
		}
		return c.writeClient(msg, false)
	case 'C':
		if it.kind != exReplay {
			c.onCommandComplete(it, msg)
			if !it.start.IsZero() {
				c.observeRelay(it, msg)
			}
		}
	case 'G':
		if err := c.writeClient(msg, true); err != nil {
			return err
		}
		// copyIn watches the warehouse itself while the client sends.
		c.waiting(false)
		err := c.copyIn()
		c.waiting(true)
		return err
	}
	if !it.start.IsZero() {
		it.bytes += int64(len(msg))
	}
	if it.cap != nil && it.cap.take(typ, msg) {
		it.cap = nil
	}
	if it.st != nil && (typ == 'T' || typ == 'n') {
		if it.kind == exInjectDescribe || it.st.desc == nil {
			it.st.desc = append([]byte(nil), msg...)
		}
	}
	swallow := it.kind == exReplay || it.kind == exAbort || it.kind == exInjectDescribe ||
		(it.kind == exInjectParse && typ == '1') || (it.kind == exInjectClose && typ == '3')
	if !swallow {
		if err := c.writeClient(msg, false); err != nil {
			return err
		}
	}
	if completes(it.kind, typ) {
		c.pop()
	}
	return nil
}

// onError relays a warehouse error and, as the warehouse does, drops what
// was awaited up to the next Sync.
func (c *conn) onError(it *expect, msg []byte) error {
	if sev := errorSeverity(pgwire.Body(msg)); sev == "FATAL" || sev == "PANIC" {
		// The warehouse is ending this connection (a restart, an
		// administrator's command): the session goes on with another, as
		// after a connection that broke, unless what it owned lived on
		// that connection; then it ends with the warehouse's own words.
		_, text := parseErrorFields(pgwire.Body(msg))
		err := c.serverLost(errors.New(text))
		var e *Error
		if errors.As(err, &e) && e.Severity == "FATAL" {
			return &relayedFatal{msg: append([]byte(nil), msg...)}
		}
		return err
	}
	it.cap = nil
	if (it.kind == exBind || it.kind == exDescribeStmt) && it.id != "" && c.sc != nil {
		if code, _ := parseErrorFields(pgwire.Body(msg)); code == CodeFeatureNotSupported {
			// "cached plan must not change result type": the statement
			// was prepared here before its tables changed. Prepare it
			// again the next time it is needed.
			delete(c.sc.Prepared, it.id)
			if c.sc.Stale == nil {
				c.sc.Stale = map[string]bool{}
			}
			c.sc.Stale[it.id] = true
		}
	}
	if !c.inBlock {
		// The implicit transaction is rolled back.
		c.dropPendingSets()
		c.pendingWrites = nil
	}
	c.txReads = false
	switch it.kind {
	case exAbort:
		return nil
	case exQuery:
		if te := c.timeoutError(codeOf(msg)); te != nil {
			msg = te
		}
		if !it.start.IsZero() {
			c.observeRelay(it, msg)
		}
		return c.writeClient(msg, false) // ReadyForQuery ends it
	case exReplay:
		code, text := parseErrorFields(pgwire.Body(msg))
		c.sc.Broken = true
		clear(c.sc.Settings)
		if c.inStartup {
			c.startupErr = fatal(code, text)
		} else {
			c.srv.log.Warn("applying session settings on a warehouse connection failed", "pid", c.pid, "code", code, "err", text)
		}
		return nil
	case exFail:
		if err := c.writeClient(it.msg, false); err != nil {
			return err
		}
	default:
		if te := c.timeoutError(codeOf(msg)); te != nil && it.kind == exExecute {
			msg = te
		}
		if !it.start.IsZero() {
			c.observeRelay(it, msg)
		}
		if err := c.writeClient(msg, false); err != nil {
			return err
		}
	}
	for c.head < len(c.pending) && c.pending[c.head].kind != exSync {
		c.undo(&c.pending[c.head])
		c.pop()
	}
	if c.head == len(c.pending) {
		// The client's Sync is still to come: the warehouse ignores what
		// comes before it, and so must the proxy, or it would await
		// answers that never come.
		c.skipping = true
	}
	return nil
}

// undo reverts what the proxy recorded for a message the warehouse did not
// carry out.
func (c *conn) undo(it *expect) {
	if it.kind != exParse && it.kind != exInjectParse {
		return
	}
	if c.sc != nil {
		if it.unnamed {
			c.sc.Unnamed = ""
		} else {
			delete(c.sc.Prepared, it.id)
		}
	}
	if it.kind == exParse && it.name != "\x00" {
		if it.prev != nil {
			c.stmts[it.name] = it.prev
		} else {
			delete(c.stmts, it.name)
		}
	}
}

func (c *conn) onReady(it *expect, msg []byte) error {
	body := pgwire.Body(msg)
	if len(body) < 1 {
		return c.serverLost(errors.New("malformed ReadyForQuery from the warehouse"))
	}
	status := body[0]
	c.sc.TxStatus = status
	kind := it.kind
	c.pop() // it is cleared
	if c.head == len(c.pending) {
		c.open = false
	}
	if kind == exReplay {
		return nil
	}
	c.txStatus = status
	if status == 'I' {
		c.inBlock = false
		c.applySets()
		clear(c.portals)
		c.endCursors(true) // any end of a transaction closes its cursors without HOLD
		c.endTx()
	} else {
		c.inBlock = true
	}
	if kind == exAbort {
		return nil // the client has had its answer from the proxy
	}
	return c.writeClient(msg, false)
}

func (c *conn) onParameterStatus(msg []byte) {
	s := pgwire.NewScanner(pgwire.Body(msg))
	name, value := s.CString(), s.CString()
	if s.Err == nil {
		c.sc.Params[string(name)] = string(value)
	}
}

// selectTag starts the command tag of a SELECT.
var selectTag = []byte("SELECT ")

// onCommandComplete follows transactions and session settings through the
// command tags of what the client ran.
func (c *conn) onCommandComplete(it *expect, msg []byte) {
	body := pgwire.Body(msg)
	var st *fingerprint.Statement
	if it.a != nil {
		i := 0
		if it.kind == exQuery {
			i = it.n
			it.n++
		}
		if i < len(it.a.Statements) {
			st = &it.a.Statements[i]
		}
	}
	if st != nil && len(st.WriteTables) > 0 {
		c.pendingWrites = append(c.pendingWrites, st.WriteTables...)
	}
	if st != nil && (st.Kind == fingerprint.KindDDL || st.Kind == fingerprint.KindUnknown) {
		c.pendingWrites = append(c.pendingWrites, catalogTable)
	}
	if c.txReads && (st == nil || !c.readsOnly(st)) {
		c.txReads = false
	}
	if st != nil && st.Tx != nil {
		switch st.Tx.Op {
		case fingerprint.TxSavepoint, fingerprint.TxRelease, fingerprint.TxRollbackTo:
			// ROLLBACK TO's tag is ROLLBACK: it does not end the
			// transaction.
			c.onSavepoint(st.Tx)
			return
		}
	}
	if bytes.HasPrefix(body, selectTag) {
		return // the commonest tag, and none of those below
	}
	tag := string(bytes.TrimRight(body, "\x00"))
	switch {
	case tag == "BEGIN" || tag == "START TRANSACTION":
		c.inBlock = true
		if st != nil && st.Tx != nil {
			c.txBegin = st.Text
			c.txReads = readCommitted(st.Tx.Isolation, c.effective())
		}
	case tag == "COMMIT":
		c.inBlock = false
		c.applySets()
		c.endCursors(true)
	case tag == "ROLLBACK":
		c.inBlock = false
		c.dropPendingSets()
		c.endCursors(false)
		c.pendingWrites = nil
	case tag == "DECLARE CURSOR" && st != nil && st.Cursor != nil:
		if c.whCursors == nil {
			c.whCursors = map[string]bool{}
		}
		c.whCursors[st.Cursor.Name] = true
	case tag == "CLOSE CURSOR" && st != nil:
		delete(c.whCursors, st.Close)
	case tag == "CLOSE CURSOR ALL":
		clear(c.whCursors)
	case tag == "DEALLOCATE" && st != nil && st.Deallocate != "":
		delete(c.stmts, st.Deallocate)
		delete(c.sc.Prepared, st.Deallocate)
	case tag == "DEALLOCATE ALL":
		clear(c.sc.Prepared)
		clear(c.sc.Stale)
		c.sc.Unnamed = ""
		clear(c.stmts)
	case tag == "SET" || tag == "RESET" || tag == "DISCARD ALL":
		if st != nil && st.Set != nil && (!st.Set.Local || c.inBlock) {
			// SET LOCAL lasts until the transaction ends, outside one
			// not at all.
			c.addPendingSet(setChange{cmd: st.Set, text: st.Text, sent: true})
			c.learnSet(st)
		} else if st == nil || st.Set == nil {
			// A setting the proxy could not read: keep the connection.
			c.pinned = "unrecognised " + strings.ToLower(tag)
		}
	}
}

// applySets makes the SETs of a committed transaction the session's.
func (c *conn) applySets() {
	c.invalidateWrites()
	if len(c.pendingSets) == 0 {
		return
	}
	if c.sqlSettings == nil {
		c.sqlSettings = map[string]string{}
	}
	// sc's own settings change only by the SETs that ran on it; the
	// session's by all of them. SET LOCAL ended with the transaction.
	sc := c.sc
	for _, ch := range c.pendingSets {
		if ch.cmd.Local {
			continue
		}
		var scSettings map[string]string
		if sc != nil && ch.sent {
			scSettings = sc.Settings
		}
		switch {
		case ch.cmd.Name == "":
			// RESET ALL or DISCARD ALL: the connection is back at its own
			// defaults; DISCARD ALL also dropped every prepared statement.
			clear(c.sqlSettings)
			clear(scSettings)
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ch.text)), "DISCARD") {
				clear(c.cursors)
			}
			if sc != nil && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ch.text)), "DISCARD") {
				clear(sc.Prepared)
				clear(sc.Stale)
				sc.Unnamed = ""
				clear(c.stmts)
				c.pinned = ""
			}
		case ch.cmd.Reset:
			delete(c.sqlSettings, ch.cmd.Name)
			delete(scSettings, ch.cmd.Name)
		default:
			for _, s := range settingsOf(ch) {
				c.sqlSettings[s[0]] = s[1]
				if scSettings != nil {
					scSettings[s[0]] = s[1]
				}
			}
		}
	}
	c.pendingSets = nil
	c.rebuildSettings()
	if sc != nil {
		sc.SettingsOwner = nil // compare again on the next attach
	}
}

func (c *conn) rebuildSettings() {
	m := make(map[string]string, len(c.startupSettings)+len(c.sqlSettings))
	for k, v := range c.startupSettings {
		m[k] = v
	}
	for k, v := range c.sqlSettings {
		m[k] = v
	}
	c.settings = m
	c.settingsVersion++
}

// syncSettings sends what makes the attached connection's settings the
// session's: a SET for each that differs, a RESET for each the session
// does not have.
func (c *conn) syncSettings() {
	sc := c.sc
	if sc.SettingsOwner == c && sc.SettingsVersion == c.settingsVersion {
		return
	}
	if sql := sc.SettingsSQL(c.settings); sql != "" {
		c.sendReplay(sql)
	}
	sc.SettingsOwner = c
	sc.SettingsVersion = c.settingsVersion
}

// copyIn relays a client's COPY data to the warehouse until CopyDone or
// CopyFail, or until the warehouse fails the COPY: then the warehouse has
// left copy mode and answered (ErrorResponse, and ReadyForQuery for a
// simple Query), which the caller's drain relays at once, as PostgreSQL
// answers a client still sending; CopyData arriving after that is dropped
// (handle), as PostgreSQL drops it.
func (c *conn) copyIn() error {
	failed, stop := c.watchCopy()
	defer stop()
	for {
		typ, msg, err := c.r.Next()
		if failed.Load() {
			return nil
		}
		if err != nil {
			return errClientGone
		}
		switch typ {
		case 'd':
			c.sendServer(msg)
		case 'c', 'f':
			c.sendServer(msg)
			if err := c.flushServer(); err != nil {
				return c.serverLost(err)
			}
			return nil
		case 'H', 'S':
			// Ignored during COPY, as PostgreSQL does.
		case 'X':
			return errClientGone
		default:
			var b pgwire.Builder
			b.Begin('f')
			b.String("unexpected message type during COPY from stdin")
			b.Finish()
			c.sendServer(b.B)
			if err := c.flushServer(); err != nil {
				return c.serverLost(err)
			}
			return nil
		}
	}
}

// watchCopy watches the warehouse while the client sends COPY data.
// Notices (a trigger's, one per row perhaps) and parameter changes are
// relayed to the client as they come, as PostgreSQL sends them; anything
// else (an ErrorResponse) ends the COPY: failed is set, and the client's
// read is cut short. The watch is the only writer to the client until
// stop, which ends it, returns.
func (c *conn) watchCopy() (failed *atomic.Bool, stop func()) {
	failed = new(atomic.Bool)
	sc, nc := c.sc, c.nc
	_ = sc.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			typ, err := sc.R.PeekType()
			if err != nil && isTimeout(err) {
				return // stopped
			}
			if err == nil && (typ == 'N' || typ == 'S') {
				_, msg, err := sc.R.Next()
				if err == nil && typ == 'S' {
					c.onParameterStatus(msg)
				}
				if err == nil && c.writeClient(msg, true) == nil {
					continue
				}
			}
			failed.Store(true)
			_ = nc.SetReadDeadline(time.Now())
			return
		}
	}()
	return failed, func() {
		_ = sc.SetReadDeadline(time.Now()) // ends the watch
		<-done
		_ = sc.SetReadDeadline(time.Time{})
		c.clearReadDeadline()
	}
}

// serverLost handles a warehouse connection that broke: the client gets
// SQLSTATE 08006 where it awaits an answer, and the session goes on with
// a new connection next time, unless it was inside a transaction, which is
// lost with the connection.
func (c *conn) serverLost(cause error) error {
	c.srv.lost.Fail(cause, "sessions that lost their warehouse connection")
	// A session that owned its connection (a transaction, a pin, session
	// pooling) lost what lived on it: it ends, as a PostgreSQL session
	// would.
	wasIn := c.txStatus != 'I' || c.pinned != "" || c.sessionPool
	syncs := 0
	for i := c.head; i < len(c.pending); i++ {
		if k := c.pending[i].kind; k == exSync || k == exQuery {
			syncs++
		}
	}
	c.detach(true)
	c.dropPendingSets()
	c.inBlock = false
	clear(c.portals)
	c.endTx()
	e := newError(CodeConnectionFailure, "server closed the connection unexpectedly: the warehouse connection was lost")
	if wasIn {
		return fatal(e.Code, e.Message)
	}
	var b pgwire.Builder
	appendError(&b, e)
	for i := 0; i < syncs; i++ {
		b.Begin('Z')
		b.Byte('I')
		b.Finish()
	}
	if syncs == 0 {
		c.skipping = true
	}
	return c.writeClient(b.B, true)
}
