package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/policy"
)

// The extended query protocol. The proxy owns its clients' prepared
// statements: each is prepared on a warehouse connection under a name
// derived from its text and parameter types ("sqlcached_" and 32 hex
// digits), the first time a connection needs it. A client's unnamed
// statement stays unnamed on the warehouse and is parsed again when the
// connection's unnamed slot holds another. Portals live inside one
// transaction, on one connection, and keep the client's names.

// statementID names a statement on warehouse connections. SHA-256 keeps
// sessions that share connections (a DSN with a fixed user) from
// colliding on purpose.
func statementID(query []byte, oids []byte) string {
	h := sha256.New()
	h.Write(query)
	h.Write([]byte{0})
	h.Write(oids)
	sum := h.Sum(nil)
	return "sqlcached_" + hex.EncodeToString(sum[:16])
}

// stmtID is the name a client's statement is prepared under on warehouse
// connections: in session pooling the client's own name (the connection
// is the session's alone, and pg_prepared_statements shows what the client
// prepared); otherwise, and for the unnamed statement, statementID.
func (c *conn) stmtID(name string, query, oids []byte) string {
	if c.sessionPool && name != "" {
		return name
	}
	return statementID(query, oids)
}

// extendedAttach attaches for an extended-protocol message; on failure the
// client gets the error and the rest of the batch is skipped.
func (c *conn) extendedAttach() (bool, error) {
	if err := c.ensureAttached(); err != nil {
		e := toError(err)
		if e.Severity == "FATAL" {
			return false, e
		}
		c.skipping = true
		return false, c.writeClient(errorBytes(e), true)
	}
	return true, nil
}

// proxyError raises an error in the middle of a batch the way the
// warehouse would: the client sees err, and the warehouse is made to fail
// too (a Bind of a statement that cannot exist), so that it rolls back and
// skips to Sync exactly as for its own errors.
func (c *conn) proxyError(e *Error) {
	var b pgwire.Builder
	b.Begin('B')
	b.String("")
	b.String("sqlcached-error")
	b.Int16(0)
	b.Int16(0)
	b.Int16(0)
	b.Finish()
	c.sendServer(b.B)
	c.push(expect{kind: exFail, msg: errorBytes(e)})
	c.skipping = true
}

func (c *conn) parse(msg []byte) error {
	s := pgwire.NewScanner(pgwire.Body(msg))
	name := string(s.CString())
	rest := s.Rest()
	query := s.CString()
	n := s.Int16()
	oids := s.Next(4 * int(n))
	if s.Err != nil || n < 0 {
		return fatal(CodeProtocolViolation, "invalid Parse message")
	}
	if ok, err := c.extendedAttach(); !ok {
		return err
	}
	c.preparedCurrent()
	if c.stmts == nil {
		c.stmts = map[string]*stmt{}
	}
	prev := c.stmts[name]
	if name != "" && prev != nil {
		c.proxyError(newError(CodeDuplicateStatement, fmt.Sprintf("prepared statement %q already exists", name)))
		return nil
	}
	st := &stmt{query: string(query), oids: append([]byte(nil), oids...), id: c.stmtID(name, query, oids)}
	st.analysis = c.analyze(st.query)
	if st.analysis != nil {
		c.materializeNamed(st.analysis) // FETCH of a cursor the proxy holds: the warehouse takes it
	}
	c.stmts[name] = st
	undo := expect{kind: exParse, name: name, prev: prev, id: st.id, unnamed: name == ""}
	if name == "" {
		c.sendServer(msg)
		c.sc.Unnamed = st.id
		c.push(undo)
		return nil
	}
	if c.sc.Prepared[st.id] {
		c.push(expect{kind: exSynthetic, msg: parseComplete})
		c.parsedLocally = st.id
		return nil
	}
	c.parsedLocally = ""
	c.sc.Prepared[st.id] = true
	c.closeStale(st.id)
	var b pgwire.Builder
	b.Begin('P')
	b.String(st.id)
	b.Bytes(rest)
	b.Finish()
	c.sendServer(b.B)
	c.push(undo)
	return nil
}

var (
	parseComplete = []byte{'1', 0, 0, 0, 4}
	closeComplete = []byte{'3', 0, 0, 0, 4}
)

// prepared makes sure st is prepared on the attached connection and
// returns the name to use there. A named statement the client has
// described, prepared again on a connection after its tables changed,
// must keep its result type: PostgreSQL refuses a prepared statement
// whose result type changed (0A000), and so does the proxy, with ok
// false once it has raised that error.
func (c *conn) prepared(st *stmt, unnamed bool) (name string, ok bool, err error) {
	if unnamed {
		if c.sc.Unnamed != st.id {
			c.injectParse("", st)
			c.sc.Unnamed = st.id
		}
		return "", true, nil
	}
	if c.sc.Prepared[st.id] {
		return st.id, true, nil
	}
	c.injectParse(st.id, st)
	c.sc.Prepared[st.id] = true
	if st.desc == nil || !fixedResult(st.analysis, st.query) {
		return st.id, true, nil
	}
	// Ask the fresh statement's result type before anything runs it.
	want := st.desc
	now := &stmt{}
	c.sendNamed('D', 'S', st.id)
	c.push(expect{kind: exInjectDescribe, st: now})
	c.sendServer(flushMessage)
	if err := c.flushServer(); err != nil {
		return "", false, c.serverLost(err)
	}
	if err := c.drain(); err != nil || c.skipping {
		return "", false, err // the Parse failed: the client has the error
	}
	if !bytes.Equal(now.desc, want) {
		c.proxyError(newError(CodeFeatureNotSupported, "cached plan must not change result type"))
		return "", false, nil
	}
	return st.id, true, nil
}

func (c *conn) injectParse(name string, st *stmt) {
	c.closeStale(name)
	var b pgwire.Builder
	b.Begin('P')
	b.String(name)
	b.String(st.query)
	b.Int16(int16(len(st.oids) / 4))
	b.Bytes(st.oids)
	b.Finish()
	c.sendServer(b.B)
	c.push(expect{kind: exInjectParse, name: "\x00", id: st.id, unnamed: name == ""})
}

// fixedResult reports whether PostgreSQL holds a prepared statement to the
// result type it had when prepared: planned statements do (SELECT, VALUES,
// and INSERT, UPDATE, DELETE, MERGE with RETURNING); utility statements
// (FETCH, SHOW, EXPLAIN) learn theirs when they run.
func fixedResult(a *fingerprint.Analysis, sql string) bool {
	if a == nil {
		// Relayed unanalysed (a session that does not cache): by its
		// first word.
		return plannedText(sql)
	}
	if len(a.Statements) != 1 {
		return false
	}
	switch a.Statements[0].Command {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE":
		return true
	}
	return false
}

// closeStale closes a statement the warehouse refused because its result
// type changed (see onError), before it is prepared again under its name.
func (c *conn) closeStale(name string) {
	if name == "" || !c.sc.Stale[name] {
		return
	}
	delete(c.sc.Stale, name)
	c.sendNamed('C', 'S', name)
	c.push(expect{kind: exInjectClose})
}

// unknownStatement is PostgreSQL's error for a statement name it does not
// know.
func unknownStatement(name string) *Error {
	if name == "" {
		return newError(CodeInvalidSQLStatement, "unnamed prepared statement does not exist")
	}
	return newError(CodeInvalidSQLStatement, fmt.Sprintf("prepared statement %q does not exist", name))
}

func (c *conn) bind(msg []byte) error {
	s := pgwire.NewScanner(pgwire.Body(msg))
	portal := s.CString()
	name := s.CString()
	rest := s.Rest()
	if s.Err != nil {
		return fatal(CodeProtocolViolation, "invalid Bind message")
	}
	delete(c.cportals, string(portal))
	if ok, err := c.extendedAttach(); !ok {
		return err
	}
	st := c.stmts[string(name)]
	if st == nil {
		c.proxyError(unknownStatement(string(name)))
		return nil
	}
	if st.analysis == nil && len(c.cursors) > 0 {
		st.analysis = c.srv.cfg.Analyzer.Analyze(st.query) // prepared while the session did not cache
	}
	if st.analysis != nil {
		c.materializeNamed(st.analysis) // a FETCH prepared before its cursor was declared
	}
	server, ok, err := c.prepared(st, len(name) == 0)
	if !ok {
		return err
	}
	c.sendBind(portal, server, rest)
	c.push(expect{kind: exBind, id: server})
	if c.portals == nil {
		c.portals = map[string]*stmt{}
	}
	c.portals[string(portal)] = st
	return nil
}

// sendBind sends the warehouse a Bind of portal to its statement server,
// rest being the client's Bind after the statement name: written into
// the connection's buffer as it is built.
func (c *conn) sendBind(portal []byte, server string, rest []byte) {
	w := c.sc.W
	var head [5]byte
	head[0] = 'B'
	binary.BigEndian.PutUint32(head[1:], uint32(4+len(portal)+1+len(server)+1+len(rest)))
	_, _ = w.Write(head[:]) // a write error shows on the next flush
	_, _ = w.Write(portal)
	_ = w.WriteByte(0)
	_, _ = w.WriteString(server)
	_ = w.WriteByte(0)
	_, _ = w.Write(rest)
	c.parsedLocally = ""
}

func (c *conn) describe(msg []byte) error {
	s := pgwire.NewScanner(pgwire.Body(msg))
	what := s.Byte()
	name := s.CString()
	if s.Err != nil || (what != 'S' && what != 'P') {
		return fatal(CodeProtocolViolation, "invalid Describe message")
	}
	if what == 'P' && c.cachedPortalMessage('D', string(name), 0) {
		return nil
	}
	if ok, err := c.extendedAttach(); !ok {
		return err
	}
	if what == 'P' {
		c.sendServer(msg)
		c.push(expect{kind: exDescribePortal, cap: c.captureFor('D', string(name))})
		return nil
	}
	st := c.stmts[string(name)]
	if st == nil {
		c.proxyError(unknownStatement(string(name)))
		return nil
	}
	server, ok, err := c.prepared(st, len(name) == 0)
	if !ok {
		return err
	}
	c.sendNamed('D', 'S', server)
	c.push(expect{kind: exDescribeStmt, st: st, id: server})
	return nil
}

func (c *conn) execute(msg []byte) error {
	s := pgwire.NewScanner(pgwire.Body(msg))
	portal := s.CString()
	maxRows := s.Int32()
	if s.Err != nil {
		return fatal(CodeProtocolViolation, "invalid Execute message")
	}
	if c.cachedPortalMessage('E', string(portal), maxRows) {
		return nil
	}
	if ok, err := c.extendedAttach(); !ok {
		return err
	}
	it := expect{kind: exExecute, cap: c.captureFor('E', string(portal))}
	if c.observing() {
		it.start = time.Now()
	}
	if st := c.portals[string(portal)]; st != nil {
		it.a = st.analysis
		c.pinFor(st.analysis)
	}
	c.sendServer(msg)
	c.push(it)
	return c.boundPending()
}

// boundPending keeps the answers awaited within maxPending: past it, the
// warehouse is asked to flush and what it has is relayed.
func (c *conn) boundPending() error {
	if len(c.pending)-c.head < maxPending {
		return nil
	}
	c.sendServer(flushMessage)
	if err := c.flushServer(); err != nil {
		return c.serverLost(err)
	}
	return c.drain()
}

func (c *conn) closeMsg(msg []byte) error {
	s := pgwire.NewScanner(pgwire.Body(msg))
	what := s.Byte()
	name := s.CString()
	if s.Err != nil || (what != 'S' && what != 'P') {
		return fatal(CodeProtocolViolation, "invalid Close message")
	}
	if what == 'P' && c.cachedPortalMessage('C', string(name), 0) {
		return nil
	}
	if what == 'S' {
		st := c.stmts[string(name)]
		delete(c.stmts, string(name))
		if c.sessionPool && st != nil && st.id == string(name) && c.sc != nil && c.sc.Prepared[st.id] {
			// Prepared under the client's own name: it goes.
			delete(c.sc.Prepared, st.id)
			c.sendServer(msg)
			c.push(expect{kind: exClose})
			return nil
		}
		// Otherwise the statement stays prepared on warehouse
		// connections, where other sessions may use it; only the
		// client's name goes.
		c.push(expect{kind: exSynthetic, msg: closeComplete})
		return nil
	}
	if c.sc == nil {
		// No transaction, so no portal: closing one that does not exist
		// is not an error.
		delete(c.portals, string(name))
		c.push(expect{kind: exSynthetic, msg: closeComplete})
		return nil
	}
	delete(c.portals, string(name))
	c.sendServer(msg)
	c.push(expect{kind: exClose})
	return nil
}

func (c *conn) sync(msg []byte) error {
	c.skipping = false
	if c.txStatus == 'I' {
		clear(c.cportals) // the implicit transaction ends
	}
	if c.sc == nil {
		// Nothing ran on the warehouse since the last Sync.
		var b pgwire.Builder
		b.Begin('Z')
		b.Byte(c.txStatus)
		b.Finish()
		c.push(expect{kind: exSynthetic, msg: b.B})
		return c.w.Flush()
	}
	c.sendServer(msg)
	c.push(expect{kind: exSync})
	defer c.armTimeout(c.batchRule())()
	if err := c.sc.FlushBeforeRead(); err != nil {
		return c.serverLost(err)
	}
	return c.drain()
}

// batchRule returns the rule whose timeout covers the Executes awaiting
// their answers: the first one's (a batch of one statement is the common
// case).
func (c *conn) batchRule() *policy.Rule {
	for i := c.head; i < len(c.pending); i++ {
		if it := &c.pending[i]; it.kind == exExecute {
			sql := ""
			if it.a != nil {
				sql = it.a.Normalized
			}
			return c.relayRule(it.a, sql)
		}
	}
	return nil
}

func (c *conn) flushMsg(msg []byte) error {
	if c.sc == nil {
		return c.w.Flush()
	}
	c.standInForParse()
	c.sendServer(msg)
	if err := c.flushServer(); err != nil {
		return c.serverLost(err)
	}
	return c.drain()
}
