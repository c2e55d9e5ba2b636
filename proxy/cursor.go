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

// maxCursors bounds the cursors the proxy holds for a session (each keeps
// its answer alive); beyond, cursors are declared on the warehouse.
const maxCursors = 64

// proxyCursor is a cursor whose rows come from a cached answer. Its
// position is PostgreSQL's: 0 before the first row, n+1 after the last,
// else on row pos.
type proxyCursor struct {
	declare string // the DECLARE statement, to declare it on the warehouse
	desc    []byte // RowDescription
	rows    []byte // every DataRow of the answer
	offs    []int  // where each row starts in rows, then len(rows)
	pos     int64
	scroll  bool // declared SCROLL: every direction is the proxy's to answer
	hold    bool
	inTx    bool // declared in the open transaction
	depth   int  // savepoints open when it was declared
}

func newProxyCursor(declare string, p *cachedPortal, scroll, hold bool) *proxyCursor {
	pc := &proxyCursor{declare: declare, desc: p.desc, rows: p.rows, scroll: scroll, hold: hold}
	for off := 0; off < len(p.rows); off += 1 + int(binary.BigEndian.Uint32(p.rows[off+1:off+5])) {
		pc.offs = append(pc.offs, off)
	}
	pc.offs = append(pc.offs, len(p.rows))
	return pc
}

// n is the number of rows.
func (pc *proxyCursor) n() int64 { return int64(len(pc.offs) - 1) }

// forward reads up to count rows forward (-1: all; 0: none, and no
// move), appending them to out when emit, as PostgreSQL's PortalRunSelect
// does.
func (pc *proxyCursor) forward(count int64, emit bool, out []byte) ([]byte, int64) {
	n := pc.n()
	if pc.pos > n || count == 0 {
		return out, 0
	}
	first, last := pc.pos+1, n
	if count > 0 && first+count-1 < n {
		last = first + count - 1
	}
	k := max(last-first+1, 0)
	if emit && k > 0 {
		out = append(out, pc.rows[pc.offs[first-1]:pc.offs[last]]...)
	}
	if count < 0 || k < count {
		pc.pos = n + 1
	} else {
		pc.pos = last
	}
	return out, k
}

// backward reads up to count rows backward (-1: all; 0: none), the
// nearest first.
func (pc *proxyCursor) backward(count int64, emit bool, out []byte) ([]byte, int64) {
	if pc.pos == 0 || count == 0 {
		return out, 0
	}
	top := min(pc.pos-1, pc.n())
	bottom := int64(1)
	if count > 0 {
		bottom = max(top-count+1, 1)
	}
	k := max(top-bottom+1, 0)
	for r := top; emit && r >= bottom; r-- {
		out = append(out, pc.rows[pc.offs[r-1]:pc.offs[r]]...)
	}
	if count < 0 || k < count {
		pc.pos = 0
	} else {
		pc.pos = bottom
	}
	return out, k
}

// fetch carries out a FETCH (emit) or MOVE as PostgreSQL's
// DoPortalRunFetch does, returning the rows and their count.
func (pc *proxyCursor) fetch(f *fingerprint.Fetch, emit bool, out []byte) ([]byte, int64) {
	dir, count := f.Direction, f.Count
	if f.All {
		count = -1
	}
	switch {
	case dir == fingerprint.FetchForward && !f.All && count < 0:
		dir, count = fingerprint.FetchBackward, -count
	case dir == fingerprint.FetchBackward && !f.All && count < 0:
		dir, count = fingerprint.FetchForward, -count
	case dir == fingerprint.FetchAbsolute && count > 0:
		pc.pos = 0
		pc.forward(count-1, false, nil)
		return pc.forward(1, emit, out)
	case dir == fingerprint.FetchAbsolute && count < 0:
		pc.forward(-1, false, nil)
		pc.backward(-count-1, false, nil)
		return pc.backward(1, emit, out)
	case dir == fingerprint.FetchAbsolute:
		pc.pos = 0
		return out, 0
	case dir == fingerprint.FetchRelative && count > 0:
		pc.forward(count-1, false, nil)
		return pc.forward(1, emit, out)
	case dir == fingerprint.FetchRelative && count < 0:
		pc.backward(-count-1, false, nil)
		return pc.backward(1, emit, out)
	case dir == fingerprint.FetchRelative:
		dir = fingerprint.FetchForward
	}
	if count == 0 {
		// The current row again, if the cursor is on one.
		onRow := pc.pos >= 1 && pc.pos <= pc.n()
		if !emit {
			if onRow {
				return out, 1
			}
			return out, 0
		}
		if !onRow {
			return out, 0
		}
		pc.backward(1, false, nil)
		return pc.forward(1, emit, out)
	}
	if dir == fingerprint.FetchBackward {
		return pc.backward(count, emit, out)
	}
	return pc.forward(count, emit, out)
}

// forwardOnly reports whether a FETCH or MOVE only reads on: what a
// cursor not declared SCROLL can always do. Anything else PostgreSQL
// allows it or not by its plan.
func forwardOnly(f *fingerprint.Fetch) bool {
	switch f.Direction {
	case fingerprint.FetchForward:
		return f.All || f.Count > 0
	case fingerprint.FetchRelative:
		return f.Count > 0
	}
	return false
}

// savepoint is one open savepoint of the transaction.
type savepoint struct {
	name  string
	sets  int // len(pendingSets) when it was set
	logAt int // its SAVEPOINT's place in lazyLog, if the proxy answered it
}

// localDeclare answers a DECLARE CURSOR of a cacheable query from the
// cache.
func (c *conn) localDeclare(st *fingerprint.Statement, b *pgwire.Builder) (done, failed bool) {
	cur := st.Cursor
	switch {
	case cur.Binary || cur.Query == "" || !c.cacheOK() || len(c.cursors) >= maxCursors:
		return false, false
	case c.txStatus == 'I' && (!cur.Hold || c.multi):
		// Outside a transaction only a WITH HOLD cursor outlives its
		// statement, and in a Query of several, the implicit
		// transaction's end decides.
		return false, false
	case c.whCursors[cur.Name]:
		return false, false // the warehouse has one of that name: it answers 42P03
	}
	if c.cursors[cur.Name] != nil {
		appendError(b, newError(CodeDuplicateCursor, fmt.Sprintf("cursor %q already exists", cur.Name)))
		c.failTx()
		return true, true
	}
	req, pl, ok := c.plan(cur.Query, c.srv.cfg.Analyzer.Analyze(cur.Query), boundParams{})
	if !ok {
		return false, false
	}
	res, cp, err := c.read(req, pl)
	if res.Entry == nil || cp != nil || err != nil {
		return false, false // the warehouse declares it, errors and all
	}
	p := newCachedPortal(res.Entry.Payload)
	if c.cursors == nil {
		c.cursors = map[string]*proxyCursor{}
	}
	pc := newProxyCursor(st.Text, p, cur.Scroll, cur.Hold)
	pc.inTx, pc.depth = c.txStatus == 'T', len(c.savepoints)
	c.cursors[cur.Name] = pc
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
	if !pc.scroll && !forwardOnly(f) {
		// Backwards, absolute, or re-reading the current row: what
		// PostgreSQL allows a cursor not declared SCROLL depends on its
		// plan.
		c.materializeCursor(f.Name) // the warehouse answers the rest
		return false
	}
	tag := "MOVE "
	if !f.Move {
		tag = "FETCH "
		b.B = append(b.B, pc.desc...)
	}
	var n int64
	b.B, n = pc.fetch(f, !f.Move, b.B)
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
	switch {
	case pc.pos > pc.n():
		c.sendReplay("MOVE FORWARD ALL IN " + quoteIdent(name))
	case pc.pos > 0:
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
	if c.lazyBegin == "" || c.txStatus != 'T' || c.sc != nil || len(c.lazyLog) >= maxLazyLog {
		return false, false
	}
	released := -1 // the log entry of a savepoint released right after it was set
	switch tx.Op {
	case fingerprint.TxSavepoint:
		c.savepoints = append(c.savepoints, savepoint{name: tx.Savepoint, sets: len(c.pendingSets), logAt: len(c.lazyLog)})
		b.Begin('C')
		b.String("SAVEPOINT")
		b.Finish()
	case fingerprint.TxRelease, fingerprint.TxRollbackTo:
		i := c.findSavepoint(tx.Savepoint)
		if i < 0 {
			appendError(b, newError(CodeNoSavepoint, fmt.Sprintf("savepoint %q does not exist", tx.Savepoint)))
			c.failTx()
			return true, true
		}
		tag := "RELEASE"
		if tx.Op == fingerprint.TxRollbackTo {
			tag = "ROLLBACK"
		} else if i == len(c.savepoints)-1 && c.savepoints[i].logAt == len(c.lazyLog)-1 {
			released = c.savepoints[i].logAt
		}
		c.toSavepoint(i, tx.Op == fingerprint.TxRollbackTo)
		b.Begin('C')
		b.String(tag)
		b.Finish()
	default:
		return false, false
	}
	if released >= 0 {
		// psqlODBC's statement savepoint, released with nothing kept in
		// between: the warehouse need not see either.
		c.lazyLog = c.lazyLog[:released]
		return true, false
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
		// What was opened inside the released savepoints belongs to the
		// one around them now.
		c.savepoints = c.savepoints[:i]
		for _, pc := range c.cursors {
			pc.depth = min(pc.depth, i)
		}
		for _, p := range c.cportals {
			p.depth = min(p.depth, i)
		}
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
	for name, p := range c.cportals {
		if p.depth > i {
			delete(c.cportals, name)
		}
	}
}

// onSavepoint follows a savepoint statement the warehouse carried out.
func (c *conn) onSavepoint(tx *fingerprint.Transaction) {
	switch tx.Op {
	case fingerprint.TxSavepoint:
		c.savepoints = append(c.savepoints, savepoint{name: tx.Savepoint, sets: len(c.pendingSets), logAt: -1})
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
