package proxy

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Cursors answered from the cache. psqlODBC with UseDeclareFetch=1
// (Tableau, Excel) reads every result through a cursor:
//
//	BEGIN;declare "SQL_CUR0x…" cursor with hold for SELECT …;fetch 100 in "SQL_CUR0x…"
//	SAVEPOINT _EXEC_SVP_0x…;fetch 100 in "SQL_CUR0x…"
//	fetch 100 in "SQL_CUR0x…"
//	close "SQL_CUR0x…"
//	COMMIT
//
// A DECLARE of a cacheable query is answered by the proxy from the
// query's cached answer (a miss fills it as any read): the cursor lives in
// the proxy, and FETCH and MOVE forward read its rows as PostgreSQL would
// give them, RowDescription and tags included. What the proxy cannot
// answer of such a cursor (FETCH BACKWARD, ABSOLUTE, a statement that
// names it sent to the warehouse) first declares the cursor on the
// warehouse and moves it to where the client is, then goes there.
//
// Savepoints of a lazily begun transaction are kept the same way, so that
// psqlODBC's statement savepoints do not send the transaction to the
// warehouse.

// proxyCursor is a cursor whose rows come from a cached answer.
type proxyCursor struct {
	declare string // the DECLARE statement, to declare it on the warehouse
	desc    []byte // RowDescription
	rows    []byte // DataRows not yet read
	pos     int64  // rows read so far
	hold    bool
	inTx    bool // declared in the open transaction
	depth   int  // savepoints open when it was declared
}

// savepoint is one open savepoint of the transaction.
type savepoint struct {
	name string
	sets int // len(pendingSets) when it was set
}

// localDeclare answers a DECLARE CURSOR of a cacheable query from the
// cache.
func (c *conn) localDeclare(st *fingerprint.Statement, b *pgwire.Builder) (done, failed bool) {
	cur := st.Cursor
	if cur.Binary || cur.Query == "" || (c.txStatus != 'T' && !cur.Hold) || !c.cacheOK() {
		return false, false
	}
	if c.cursors[cur.Name] != nil {
		appendError(b, newError(CodeDuplicateCursor, fmt.Sprintf("cursor %q already exists", cur.Name)))
		c.failLazyTx()
		return true, true
	}
	a := c.srv.cfg.Analyzer.Analyze(cur.Query)
	r, ok := c.cachedRule(a)
	if !ok {
		return false, false
	}
	res, ok := c.cachedAnswer(cur.Query, a, r)
	if !ok {
		return false, false // the warehouse declares it, errors and all
	}
	c.srv.admit.record(a, res.Status)
	p := newCachedPortal(res.Entry.Payload)
	if c.cursors == nil {
		c.cursors = map[string]*proxyCursor{}
	}
	c.cursors[cur.Name] = &proxyCursor{declare: st.Text, desc: p.desc, rows: p.rows, hold: cur.Hold,
		inTx: c.txStatus == 'T', depth: len(c.savepoints)}
	b.Begin('C')
	b.String("DECLARE CURSOR")
	b.Finish()
	return true, false
}

// localFetch answers FETCH and MOVE forward of a cursor the proxy holds.
func (c *conn) localFetch(st *fingerprint.Statement, b *pgwire.Builder) bool {
	f := st.Fetch
	pc := c.cursors[f.Name]
	if pc == nil || c.txStatus == 'E' {
		return false
	}
	if !f.Forward {
		c.materializeCursor(f.Name) // the warehouse answers the rest
		return false
	}
	n, end := int64(0), 0
	for end < len(pc.rows) && (f.Count < 0 || n < f.Count) {
		end += 1 + int(binary.BigEndian.Uint32(pc.rows[end+1:end+5]))
		n++
	}
	tag := "MOVE "
	if !f.Move {
		tag = "FETCH "
		b.B = append(b.B, pc.desc...)
		b.B = append(b.B, pc.rows[:end]...)
	}
	pc.rows, pc.pos = pc.rows[end:], pc.pos+n
	b.Begin('C')
	b.String(tag + strconv.FormatInt(n, 10))
	b.Finish()
	return true
}

// localClose answers CLOSE of a cursor the proxy holds, and CLOSE ALL when
// no cursor can exist on the warehouse.
func (c *conn) localClose(st *fingerprint.Statement, b *pgwire.Builder) bool {
	switch {
	case c.txStatus == 'E':
		return false
	case st.CloseAll:
		clear(c.cursors)
		if c.sc != nil {
			return false // the warehouse closes its own too
		}
		b.Begin('C')
		b.String("CLOSE CURSOR ALL")
		b.Finish()
		return true
	case c.cursors[st.Close] != nil:
		delete(c.cursors, st.Close)
		b.Begin('C')
		b.String("CLOSE CURSOR")
		b.Finish()
		return true
	}
	return false
}

// materializeCursor declares a proxy cursor on the warehouse, moved to
// where the client has read it, and forgets it: statements about it go to
// the warehouse from then on. It reports whether it could.
func (c *conn) materializeCursor(name string) bool {
	pc := c.cursors[name]
	if pc == nil {
		return false
	}
	if err := c.ensureAttached(); err != nil {
		return false
	}
	delete(c.cursors, name)
	c.sendReplay(pc.declare)
	if pc.pos > 0 {
		c.sendReplay("MOVE FORWARD " + strconv.FormatInt(pc.pos, 10) + " IN " + quoteIdent(name))
	}
	if pc.hold {
		c.pinned = "WITH HOLD cursor"
	}
	return true
}

// materializeNamed declares on the warehouse the proxy cursors that the
// statements of a text sent there name.
func (c *conn) materializeNamed(a *fingerprint.Analysis) {
	if len(c.cursors) == 0 {
		return
	}
	for i := range a.Statements {
		st := &a.Statements[i]
		switch {
		case st.Fetch != nil:
			c.materializeCursor(st.Fetch.Name)
		case st.Close != "":
			c.materializeCursor(st.Close)
		case st.CloseAll:
			for name := range c.cursors {
				c.materializeCursor(name)
			}
		}
	}
}

// endCursors closes the proxy cursors the end of a transaction closes:
// all but WITH HOLD ones at COMMIT, and at ROLLBACK also the WITH HOLD
// ones it declared.
func (c *conn) endCursors(committed bool) {
	for name, pc := range c.cursors {
		if !pc.hold || (!committed && pc.inTx) {
			delete(c.cursors, name)
			continue
		}
		pc.inTx = false
	}
}

// localSavepoint answers SAVEPOINT, RELEASE and ROLLBACK TO in a lazily
// begun transaction; the warehouse gets them, in order, if the
// transaction goes there.
func (c *conn) localSavepoint(st *fingerprint.Statement, b *pgwire.Builder) (done, failed bool) {
	tx := st.Tx
	if c.lazyBegin == "" || c.txStatus != 'T' || c.sc != nil {
		return false, false
	}
	switch tx.Op {
	case fingerprint.TxSavepoint:
		c.savepoints = append(c.savepoints, savepoint{name: tx.Savepoint, sets: len(c.pendingSets)})
		b.Begin('C')
		b.String("SAVEPOINT")
		b.Finish()
	case fingerprint.TxRelease, fingerprint.TxRollbackTo:
		i := c.findSavepoint(tx.Savepoint)
		if i < 0 {
			appendError(b, newError(CodeNoSavepoint, fmt.Sprintf("savepoint %q does not exist", tx.Savepoint)))
			c.failLazyTx()
			return true, true
		}
		tag := "RELEASE"
		if tx.Op == fingerprint.TxRollbackTo {
			tag = "ROLLBACK"
		}
		c.toSavepoint(i, tx.Op == fingerprint.TxRollbackTo)
		b.Begin('C')
		b.String(tag)
		b.Finish()
	default:
		return false, false
	}
	c.lazyLog = append(c.lazyLog, st.Text)
	return true, false
}

// findSavepoint returns the index of the innermost open savepoint named
// name, or -1.
func (c *conn) findSavepoint(name string) int {
	for i := len(c.savepoints) - 1; i >= 0; i-- {
		if c.savepoints[i].name == name {
			return i
		}
	}
	return -1
}

// toSavepoint follows RELEASE (rollback false) or ROLLBACK TO (true) of
// savepoint i: the savepoints after it end (RELEASE ends it too); ROLLBACK
// TO undoes the SETs and closes the cursors since.
func (c *conn) toSavepoint(i int, rollback bool) {
	sp := c.savepoints[i]
	if !rollback {
		c.savepoints = c.savepoints[:i]
		return
	}
	c.savepoints = c.savepoints[:i+1]
	if len(c.pendingSets) > sp.sets {
		c.pendingSets = c.pendingSets[:sp.sets]
		c.settingsVersion++
	}
	for name, pc := range c.cursors {
		if pc.inTx && pc.depth > i {
			delete(c.cursors, name)
		}
	}
}

// onSavepoint follows a savepoint statement the warehouse carried out.
func (c *conn) onSavepoint(tx *fingerprint.Transaction) {
	switch tx.Op {
	case fingerprint.TxSavepoint:
		c.savepoints = append(c.savepoints, savepoint{name: tx.Savepoint, sets: len(c.pendingSets)})
	case fingerprint.TxRelease, fingerprint.TxRollbackTo:
		if i := c.findSavepoint(tx.Savepoint); i >= 0 {
			c.toSavepoint(i, tx.Op == fingerprint.TxRollbackTo)
		}
	}
}

// quoteIdent quotes an identifier for SQL.
func quoteIdent(s string) string {
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return string(append(b, '"'))
}
