package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
	"unique"
	"unsafe"

	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// errClientGone ends a session whose client went away or broke the
// protocol beyond an answer.
var errClientGone = errors.New("proxy: client gone")

// errCancelRequest ends a connection that carried a CancelRequest.
var errCancelRequest = errors.New("proxy: cancel request handled")

// conn is one client session. Its goroutine owns every field but sc and
// stopWait, which cancelRunning and abort read under mu; during a COPY
// from the client, the watch of watchCopy writes to the client until it
// is stopped.
type conn struct {
	srv        *Server
	nc         net.Conn
	r          *pgwire.Reader // messages from the client
	w          *bufio.Writer  // messages to the client
	tls        bool
	pid        uint32
	secret     uint32
	registered bool
	since      time.Time // when the client connected

	user, database string
	clientAddr     string // the client's address, for Config.Observe
	backend        *Backend
	login          postgres.Login
	loginHandle    unique.Handle[postgres.Login] // keeps login's strings the ones other sessions of it share

	// Settings. startupSettings come from the startup packet,
	// sqlSettings from SET statements that took effect; settings is
	// their union, each as the SQL that applies it on a connection.
	startupSettings map[string]string
	sqlSettings     map[string]string
	settings        map[string]string
	settingsVersion uint64
	pendingSets     []setChange // SETs of the open transaction, in order
	pendingWrites   []string    // tables the open transaction wrote
	inBlock         bool        // inside BEGIN ... COMMIT on the warehouse
	// eff is the settings with pendingSets applied (see effective), for
	// settingsVersion effVersion.
	eff        map[string]string
	effVersion uint64
	// lazyBegin holds a BEGIN answered by the proxy and not yet sent: the
	// transaction has only read from the cache so far.
	lazyBegin string
	// The open transaction: txBegin is the BEGIN that opened it; txReads
	// says it runs at READ COMMITTED and has only read, so that its reads
	// may still be answered from the cache.
	txBegin string
	txReads bool
	// sessionPool keeps the session's warehouse connection for its life
	// (pool_mode: session).
	sessionPool bool
	held        *held // an extended batch held back for the cache
	// multi is set while the statements of a Query of several are
	// answered: they share an implicit transaction.
	multi bool
	// parsedLocally names the statement of a Parse the proxy answered
	// itself since the warehouse last heard from the batch (see
	// beforeWait).
	parsedLocally string
	// heldCapture stores the answer of a held batch released on a miss.
	heldCapture *heldCapture
	// keySet caches keySettings for settingsVersion keySetVersion.
	keySet        []fingerprint.Setting
	keySetVersion uint64

	// rules are the policy the session last decided under, at
	// settingsVersion rulesVersion; sessionOff says they cache nothing of
	// the session's (see caching).
	rules        *policy.Set
	rulesVersion uint64
	sessionOff   bool
	sessionRule  *policy.Rule // the rule of every statement, when the session decides it
	// labels caches sessionLabels for settingsVersion labelsVersion.
	labels        policy.SessionLabels
	labelsVersion uint64
	labelsOK      bool
	// timedOut is the rule whose timeout cancelled the running statement
	// (see timeout.go); mu protects it, armed, the rule of the statement
	// running, with its deadline armedUntil (on mono.Now), timerOn,
	// whether stmtTimer is set, and timerAt, when it fires. stmtTimer is
	// the session's timer, made once; stopTimer ends a statement's
	// timeout (made once too).
	timedOut   *policy.Rule
	armed      *policy.Rule
	armedUntil time.Duration
	timerOn    bool
	timerAt    time.Duration
	stmtTimer  *time.Timer
	stopTimer  func()
	// readReq and readPlan are the read path's request and plan for the
	// statement being answered (see plan), kept here so that a hit
	// allocates neither.
	readReq   readpath.Request
	readPlan  readpath.Plan
	replaying bool // releasing held messages: do not hold them again

	cursors    map[string]*proxyCursor // cursors answered from the cache, by name
	whCursors  map[string]bool         // cursors the open transaction declared on the warehouse
	savepoints []savepoint             // the open transaction's savepoints
	// lazyLog holds the statements of a lazily begun transaction that
	// the proxy answered and the warehouse must see if the transaction
	// goes there (SETs, savepoints), in order.
	lazyLog []string

	stmts    map[string]*stmt         // the client's prepared statements, by its names
	portals  map[string]*stmt         // open portals, by name
	cportals map[string]*cachedPortal // portals answered from the cache, by name

	mu       sync.Mutex              // protects sc, stopWait, waitFrom and woken
	sc       *postgres.Conn          // the attached warehouse connection, or nil
	stopWait context.CancelCauseFunc // ends the session's wait on the cache, or nil
	// waitFrom is the server's waitTick, plus one, when drain began to
	// wait for the warehouse, 0 when it is not waiting; woken says
	// watchWaits set sc's read deadline to wake it.
	waitFrom int64
	woken    bool

	pending []expect // answers awaited from sc, in order
	head    int      // first pending entry not yet answered
	open    bool     // messages went to sc since its last ReadyForQuery

	txStatus   byte   // status of the last ReadyForQuery sent
	pinned     string // why the session keeps its connection, "" if it does not
	skipping   bool   // an error happened: drop messages until Sync
	inStartup  bool
	startupErr *Error
}

// stmt is a client's prepared statement.
type stmt struct {
	query    string
	oids     []byte // parameter type OIDs as the Parse carried them
	id       string // the name it is prepared under on warehouse connections
	analysis *fingerprint.Analysis
	// desc is the statement's RowDescription (or NoData) when the client
	// first described it: its result type, which PostgreSQL does not let
	// change under a prepared statement.
	desc []byte
}

// maxPending bounds the answers awaited at once: past it the proxy asks
// the warehouse to flush and reads what it has.
const maxPending = 1024

func (c *conn) serve() {
	defer c.close()
	if err := c.startup(); err != nil {
		if err != errCancelRequest {
			c.sendFatal(err)
		}
		return
	}
	c.txStatus = 'I'
	for {
		if err := c.beforeWait(); err != nil {
			c.sendFatal(err)
			return
		}
		typ, msg, err := c.readClient()
		if err != nil {
			if c.srv.shuttingDown.Load() && isTimeout(err) {
				if c.idle() {
					c.sendFatal(fatal(CodeAdminShutdown, "terminating connection due to administrator command"))
					return
				}
				_ = c.nc.SetReadDeadline(time.Time{})
				continue
			}
			if errors.Is(err, pgwire.ErrTooLarge) || errors.Is(err, pgwire.ErrBadLength) {
				c.sendFatal(err)
			}
			return
		}
		if err := c.handle(typ, msg); err != nil {
			c.sendFatal(err)
			return
		}
		if c.srv.shuttingDown.Load() && c.idle() && c.r.Buffered() == 0 {
			c.sendFatal(fatal(CodeAdminShutdown, "terminating connection due to administrator command"))
			return
		}
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// beforeWait runs when the client has sent nothing more yet, in the
// middle of an extended-protocol batch as between them: what the client
// sent so far goes to the warehouse now, as if the proxy were not there.
// PostgreSQL's statement_timeout runs from a batch's first message to its
// Sync, and fires while the server waits for the rest of a batch: a
// held batch is released, buffered messages are flushed, and a Parse the
// proxy answered itself (the statement was prepared on the connection) is
// stood in for by a Describe of the statement, which starts the timer as
// the Parse would have.
func (c *conn) beforeWait() error {
	if c.r.Buffered() > 0 || (c.held == nil && (c.sc == nil || (c.sc.W.Buffered() == 0 && c.parsedLocally == ""))) {
		return nil
	}
	// Drivers that write each message of a batch apart (node-postgres)
	// are not pausing: what follows arrives at once.
	_ = c.nc.SetReadDeadline(time.Now().Add(pauseAfter))
	err := c.r.Probe()
	c.clearReadDeadline()
	if err == nil || !isTimeout(err) {
		return nil
	}
	if c.held != nil {
		if err := c.releaseHeld(); err != nil {
			return err
		}
	}
	if c.sc == nil {
		return nil
	}
	c.standInForParse()
	if c.sc.W.Buffered() > 0 {
		if err := c.flushServer(); err != nil {
			return c.serverLost(err)
		}
	}
	return nil
}

// clearReadDeadline ends a short wait on the client; during a shutdown
// the read stays woken, as Shutdown left it.
func (c *conn) clearReadDeadline() {
	if c.srv.shuttingDown.Load() {
		_ = c.nc.SetReadDeadline(time.Now())
		return
	}
	_ = c.nc.SetReadDeadline(time.Time{})
}

// pauseAfter is how long a client may be silent in the middle of a batch
// before the proxy takes it as a pause (see beforeWait).
const pauseAfter = 10 * time.Millisecond

// standInForParse sends a Describe of the statement of a Parse the proxy
// answered itself, if the warehouse has heard nothing of the batch since:
// it starts the warehouse's statement timer as the Parse would have. Its
// answer is swallowed.
func (c *conn) standInForParse() {
	if c.parsedLocally == "" {
		return
	}
	c.sendNamed('D', 'S', c.parsedLocally)
	c.push(expect{kind: exInjectDescribe})
}

// readClient reads the client's next message. A session that keeps its
// warehouse connection between messages (pinned, or inside a
// transaction) can hear from the warehouse meanwhile: a NOTIFY for its
// LISTEN, a notice, a FATAL. While it waits, a goroutine watches the
// warehouse connection and wakes it, and what arrived is relayed at once.
func (c *conn) readClient() (byte, []byte, error) {
	for {
		sc, nc := c.sc, c.nc
		if sc == nil || c.head != len(c.pending) || c.r.Buffered() > 0 {
			return c.r.Next()
		}
		_ = sc.SetReadDeadline(time.Time{})
		heard := make(chan bool, 1)
		go func() {
			err := sc.R.Probe()
			woke := err == nil || !isTimeout(err)
			if woke {
				_ = nc.SetReadDeadline(time.Now())
			}
			heard <- woke
		}()
		typ, msg, err := c.r.Next()
		_ = sc.SetReadDeadline(time.Now()) // ends the watch
		woke := <-heard
		_ = sc.SetReadDeadline(time.Time{})
		if !woke {
			return typ, msg, err
		}
		// The wake-up may have come after the client's message: it must
		// not cut the next read short.
		_ = nc.SetReadDeadline(time.Time{})
		if err != nil && !isTimeout(err) {
			return 0, nil, err
		}
		if rerr := c.relayAsync(); rerr != nil {
			c.sendFatal(rerr)
			return 0, nil, errClientGone
		}
		if err == nil {
			return typ, msg, nil // relayAsync left c.r alone: msg is valid
		}
	}
}

// relayAsync relays what the warehouse sent a session that was waiting
// for its client: NotificationResponse, NoticeResponse, ParameterStatus.
// Anything else (a FATAL ErrorResponse) means the connection is ending.
func (c *conn) relayAsync() error {
	sc := c.sc
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = sc.SetReadDeadline(time.Time{}) }()
	for {
		typ, msg, err := c.sc.R.Next()
		if err != nil {
			return c.serverLost(err)
		}
		switch typ {
		case 'A', 'N':
		case 'S':
			c.onParameterStatus(msg)
		default:
			_, text := parseErrorFields(pgwire.Body(msg))
			return c.serverLost(fmt.Errorf("message %q from the warehouse between statements: %s", typ, text))
		}
		if err := c.writeClient(msg, false); err != nil {
			return err
		}
		if c.sc.R.Buffered() == 0 {
			return c.writeClient(nil, true)
		}
	}
}

// idle reports whether the session is between transactions with nothing
// in flight.
func (c *conn) idle() bool {
	return c.txStatus == 'I' && c.sc == nil && c.head == len(c.pending)
}

// handle dispatches one client message. An error ends the session.
func (c *conn) handle(typ byte, msg []byte) error {
	if c.skipping && typ != 'S' && typ != 'X' {
		return nil
	}
	if c.held != nil || typ == 'P' || typ == 'B' {
		if done, err := c.hold(typ, msg); done || err != nil {
			return err
		}
	}
	switch typ {
	case 'Q':
		return c.simpleQuery(msg)
	case 'P':
		return c.parse(msg)
	case 'B':
		return c.bind(msg)
	case 'D':
		return c.describe(msg)
	case 'E':
		return c.execute(msg)
	case 'C':
		return c.closeMsg(msg)
	case 'S':
		return c.sync(msg)
	case 'H':
		return c.flushMsg(msg)
	case 'F':
		return c.functionCall(msg)
	case 'd', 'c', 'f':
		// COPY messages outside COPY: PostgreSQL drops them too.
		return nil
	case 'X':
		return errClientGone
	}
	return fatal(CodeProtocolViolation, fmt.Sprintf("invalid frontend message type %d", typ))
}

// analyze returns the analysis of a statement the session relays, or nil
// when it needs none (see needsAnalysis).
func (c *conn) analyze(sql string) *fingerprint.Analysis {
	if !c.needsAnalysis(sql) {
		return nil
	}
	return c.srv.cfg.Analyzer.Analyze(sql)
}

// needsAnalysis reports whether a statement the session relays is to be
// analysed: always when the session caches, and otherwise as
// relayNeedsAnalysis says.
func (c *conn) needsAnalysis(sql string) bool {
	return c.caching() || c.relayNeedsAnalysis(sql)
}

// relayNeedsAnalysis reports whether a statement of a session that does
// not cache is to be analysed: when it could change session state, write
// (when there is a cache to keep right), or use a cursor the proxy holds.
func (c *conn) relayNeedsAnalysis(sql string) bool {
	switch {
	case len(c.cursors) > 0:
		return true
	case c.srv.cfg.Reads == nil:
		return mayChangeSession(sql)
	}
	return mayChangeSessionOrWrite(sql)
}

// simpleQuery answers a Query message: one or more statements, answered
// up to ReadyForQuery. With a cache, the statements the proxy can answer
// itself (see answerLocally) are answered in order; from the first one
// that needs the warehouse, the rest of the text is relayed.
func (c *conn) simpleQuery(msg []byte) error {
	body := pgwire.Body(msg)
	if len(body) == 0 || body[len(body)-1] != 0 {
		return fatal(CodeProtocolViolation, "invalid query message")
	}
	if !c.caching() {
		// The text is copied only for the analyzer, which may keep it.
		var a *fingerprint.Analysis
		if text := body[:len(body)-1]; c.relayNeedsAnalysis(unsafe.String(unsafe.SliceData(text), len(text))) {
			a = c.srv.cfg.Analyzer.Analyze(string(text))
		}
		if a != nil && len(a.Statements) == 1 && c.deallocate(&a.Statements[0]) {
			return c.writeReady()
		}
		if a != nil {
			c.materializeNamed(a)
		}
		return c.relayQuery(msg, a, nil, 0)
	}
	sql := string(body[:len(body)-1])
	a := c.srv.cfg.Analyzer.Memoised(sql)
	if a == nil {
		if c.unadmitted(sql) {
			return c.relayQuery(msg, nil, nil, 0)
		}
		a = c.srv.cfg.Analyzer.Analyze(sql)
	}
	n, failed, cp, err := c.answerLocally(sql, a)
	shift := 0
	switch {
	case err != nil:
		return err
	case failed || (n == len(a.Statements) && n > 0):
		if c.head < len(c.pending) {
			// The warehouse is making a failed transaction fail too.
			if err := c.flushServer(); err != nil {
				return c.serverLost(err)
			}
			if err := c.drain(); err != nil {
				return err
			}
		}
		return c.writeReady()
	case n > 0:
		shift = utf8.RuneCountInString(sql[:a.Statements[n].Offset])
		sql = sql[a.Statements[n].Offset:]
		a = c.srv.cfg.Analyzer.Analyze(sql)
		var b pgwire.Builder
		b.Begin('Q')
		b.String(sql)
		b.Finish()
		msg = b.B
	}
	if cp == nil && len(a.Statements) == 1 {
		cp = c.learnShow(&a.Statements[0])
	}
	c.materializeNamed(a)
	return c.relayQuery(msg, a, cp, shift)
}

// unadmitted reports whether a Query the analyzer has not seen (a lookup
// by an id that changes every time) is relayed as it is, unparsed: its
// shape is one admission keeps out of the cache, it can neither change
// the session nor write, and it is sent outside any transaction. The
// lexical shape costs a fraction of a parse.
func (c *conn) unadmitted(sql string) bool {
	return c.txStatus == 'I' && c.head == len(c.pending) && len(c.cursors) == 0 &&
		!mayChangeSessionOrWrite(sql) && c.srv.cfg.Reads.Bypassed(sql)
}

// answerLocally answers, in order, the statements of a Query message that
// the proxy can answer itself: transaction control of lazy transactions,
// SETs it keeps, SHOWs it remembers, reads from the cache. It writes their
// answers without ReadyForQuery and returns how many it answered; failed
// says the last one gave the client an error, which ends the message. cp
// is the capture for the first statement not answered, when its answer
// is to be stored as it is relayed.
func (c *conn) answerLocally(sql string, a *fingerprint.Analysis) (n int, failed bool, cp *capture, err error) {
	c.multi = len(a.Statements) > 1
	defer func() { c.multi = false }()
	for ; n < len(a.Statements); n++ {
		st := &a.Statements[n]
		if len(a.Statements) > 1 && !st.Parsed {
			return n, false, nil, nil
		}
		sa, text, shift := a, sql, 0
		if len(a.Statements) > 1 {
			// The statement alone: errors point into the whole text.
			sa, text = c.srv.cfg.Analyzer.Analyze(st.Text), st.Text
			lead := len(sql[st.Offset:]) - len(strings.TrimLeftFunc(sql[st.Offset:], unicode.IsSpace))
			shift = utf8.RuneCountInString(sql[:st.Offset+lead])
		}
		var done bool
		done, failed, cp, err = c.answerStatement(st, sa, text, shift)
		if err != nil || !done {
			return n, false, cp, err
		}
		if failed {
			return n + 1, true, nil, nil
		}
	}
	return n, false, nil, nil
}

// answerStatement answers one statement the proxy can answer itself,
// writing its answer; done is false when it cannot. text is the
// statement's text, which starts shift characters into the client's.
func (c *conn) answerStatement(st *fingerprint.Statement, sa *fingerprint.Analysis, text string, shift int) (done, failed bool, cp *capture, err error) {
	var b pgwire.Builder
	switch {
	case c.txStatus == 'E' && c.lazyBegin != "":
		// Failed while the warehouse could not be reached.
		if tx := c.localTxOf(st); tx != nil && tx.Op != fingerprint.TxBegin {
			b.Begin('C')
			b.String(c.applyLocalTx(tx, st.Text))
			b.Finish()
		} else {
			appendError(&b, errInFailedTx)
			failed = true
		}
	case st.Tx != nil:
		if tx := c.localTxOf(st); tx != nil {
			b.Begin('C')
			b.String(c.applyLocalTx(tx, st.Text))
			b.Finish()
			break
		}
		if done, failed = c.localSavepoint(st, &b); !done {
			return false, false, nil, nil
		}
	case st.Cursor != nil:
		if done, failed = c.localDeclare(st, &b); !done {
			return false, false, nil, nil
		}
	case st.Fetch != nil:
		if !c.localFetch(st, &b) {
			return false, false, nil, nil
		}
	case st.Close != "" || st.CloseAll:
		if !c.localClose(st, &b) {
			return false, false, nil, nil
		}
	case st.Set != nil:
		if !c.localSet(st, &b) {
			return false, false, nil, nil
		}
	case st.Show != "":
		if !c.localShow(st, &b) {
			return false, false, nil, nil
		}
	case st.Deallocate != "":
		return c.deallocate(st), false, nil, nil
	default:
		if !c.cacheOK() {
			return false, false, nil, nil
		}
		return c.cachedRead(text, shift, sa)
	}
	return true, failed, nil, c.writeClient(b.B, false)
}

// deallocate answers a DEALLOCATE of a statement the client prepared with
// Parse, which the proxy owns: prepared under another name on warehouse
// connections, it is the proxy's to forget, and PostgreSQL would find it.
// A statement prepared with SQL PREPARE (which keeps the session on its
// connection) or unknown is the warehouse's to judge.
func (c *conn) deallocate(st *fingerprint.Statement) bool {
	if st.Deallocate == "" || c.stmts[st.Deallocate] == nil || c.txStatus == 'E' || c.stmts[st.Deallocate].id == st.Deallocate {
		return false // prepared under the client's own name (session pooling): the warehouse deallocates it
	}
	delete(c.stmts, st.Deallocate)
	var b pgwire.Builder
	b.Begin('C')
	b.String("DEALLOCATE")
	b.Finish()
	_ = c.writeClient(b.B, false)
	return true
}

// relayQuery sends a Query message to the warehouse and relays its answer
// up to ReadyForQuery. cp, when set, keeps a copy of the answer of its
// single statement; shift is where the text sent starts in the client's,
// in characters.
func (c *conn) relayQuery(msg []byte, a *fingerprint.Analysis, cp *capture, shift int) error {
	if err := c.ensureAttached(); err != nil {
		return c.replyError(err)
	}
	c.pinFor(a)
	c.sendServer(msg)
	c.sc.Unnamed = ""
	it := expect{kind: exQuery, a: a, cap: cp, shift: shift}
	if c.observing() {
		it.start = time.Now()
	}
	c.push(it)
	sql := "" // what relayRule reads only of an analysed statement
	if a != nil {
		sql = string(pgwire.Body(msg)[:len(pgwire.Body(msg))-1])
	}
	defer c.armTimeout(c.relayRule(a, sql))()
	if err := c.sc.FlushBeforeRead(); err != nil {
		return c.serverLost(err)
	}
	return c.drain()
}

// functionCall relays the legacy fastpath FunctionCall message.
func (c *conn) functionCall(msg []byte) error {
	c.txReads = false // a function may write
	if err := c.ensureAttached(); err != nil {
		return c.replyError(err)
	}
	c.sendServer(msg)
	c.push(expect{kind: exQuery})
	if err := c.flushServer(); err != nil {
		return c.serverLost(err)
	}
	return c.drain()
}

// replyError answers a Query the proxy could not relay: the error, then
// ReadyForQuery.
func (c *conn) replyError(err error) error {
	e := toError(err)
	if e.Severity == "FATAL" {
		return e
	}
	var b pgwire.Builder
	appendError(&b, e)
	b.Begin('Z')
	b.Byte(c.txStatus)
	b.Finish()
	return c.writeClient(b.B, true)
}

func (c *conn) pinFor(a *fingerprint.Analysis) {
	if a != nil && a.Pin != "" && c.pinned == "" {
		c.pinned = a.Pin
		c.srv.log.Debug("session pinned to its warehouse connection", "pid", c.pid, "reason", a.Pin)
	}
}

// ensureAttached gives the session a warehouse connection if it has none.
func (c *conn) ensureAttached() error {
	if c.sc != nil {
		return nil
	}
	if sc := c.backend.Pool.TryAcquire(c.login); sc != nil {
		// An idle connection: no wait to bound.
		c.attachConn(sc)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.AcquireTimeout)
		err := connectFailed(c.attach(ctx))
		cancel()
		if err != nil {
			return err
		}
	}
	c.beginOnWarehouse()
	return nil
}

// attach acquires a warehouse connection and brings its settings in line
// with the session's; the replay's answers are read with the next drain.
func (c *conn) attach(ctx context.Context) error {
	sc, err := c.backend.Pool.Acquire(ctx, c.login)
	if err != nil {
		return err
	}
	c.attachConn(sc)
	return nil
}

// attachConn makes sc the session's warehouse connection (see attach).
func (c *conn) attachConn(sc *postgres.Conn) {
	c.srv.lost.OK()
	c.mu.Lock()
	c.sc = sc
	c.mu.Unlock()
	c.preparedCurrent()
	if len(sc.Prepared) > postgres.MaxPrepared {
		c.closePrepared(sc)
	}
	c.syncSettings()
}

// preparedCurrent closes the statements prepared on the attached
// connection before DDL through the proxy, so that they are prepared again
// when used, as a client's new Parse would be. A session holding its
// connection (a transaction, session pooling) checks at each Parse.
func (c *conn) preparedCurrent() {
	sc := c.sc
	if epoch := c.srv.ddlEpoch.Load(); sc.PreparedEpoch != epoch {
		sc.PreparedEpoch = epoch
		if len(sc.Prepared) > 0 {
			c.closePrepared(sc)
		}
	}
}

// closePrepared closes the statements the proxy prepared on sc.
func (c *conn) closePrepared(sc *postgres.Conn) {
	for name := range sc.Prepared {
		c.sendNamed('C', 'S', name)
		c.push(expect{kind: exInjectClose})
	}
	clear(sc.Prepared)
	clear(sc.Stale)
	c.sendServer(flushMessage)
}

var flushMessage = []byte{'H', 0, 0, 0, 4}

// detach gives the warehouse connection back to the pool, or closes it when
// it cannot be reused.
func (c *conn) detach(destroy bool) {
	c.mu.Lock()
	sc := c.sc
	c.sc = nil
	c.mu.Unlock()
	if sc == nil {
		return
	}
	c.pending = c.pending[:0]
	c.head = 0
	c.open = false
	if destroy || c.pinned != "" || sc.TxStatus != 'I' || sc.Broken {
		c.backend.Pool.Destroy(sc)
		return
	}
	c.backend.Pool.Release(sc)
}

// maybeRelease detaches after a transaction ended, unless the session is
// pinned or more answers are awaited.
func (c *conn) maybeRelease() {
	if c.sc != nil && !c.open && !c.inStartup && c.pinned == "" && !c.sessionPool && c.sc.TxStatus == 'I' && c.head == len(c.pending) {
		c.detach(false)
	}
}

// sendNamed sends the warehouse a Describe ('D') or Close ('C') of the
// statement ('S') or portal ('P') called name.
func (c *conn) sendNamed(typ, what byte, name string) {
	var b pgwire.Builder
	b.Begin(typ)
	b.Byte(what)
	b.String(name)
	b.Finish()
	c.sendServer(b.B)
}

func (c *conn) sendServer(msg []byte) {
	_, _ = c.sc.W.Write(msg) // a write error shows on the next flush
	c.parsedLocally = ""
}

func (c *conn) flushServer() error {
	if c.sc == nil {
		return nil
	}
	return c.sc.W.Flush()
}

// writeClient writes bytes to the client, flushing when asked.
func (c *conn) writeClient(b []byte, flush bool) error {
	if _, err := c.w.Write(b); err != nil {
		return errClientGone
	}
	if flush {
		if err := c.w.Flush(); err != nil {
			return errClientGone
		}
	}
	return nil
}

// sendFatal tells the client why the session ends, when it is still there.
func (c *conn) sendFatal(err error) {
	if errors.Is(err, errClientGone) {
		return
	}
	var rf *relayedFatal
	if errors.As(err, &rf) {
		_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = c.writeClient(rf.msg, true)
		return
	}
	e := toError(err)
	if e.Severity != "FATAL" {
		e = &Error{Severity: "FATAL", Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint}
	}
	var b pgwire.Builder
	appendError(&b, e)
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = c.writeClient(b.B, true)
}

// close ends the session: a warehouse connection in the middle of
// something is cancelled and closed, an idle one goes back to the pool.
func (c *conn) close() {
	if c.sc != nil {
		busy := c.head < len(c.pending) || c.open
		if busy {
			c.cancelRunning()
		}
		// In session pooling the client had the backend as its own (its
		// pid was the client's): the next client gets a new one, as a
		// new PostgreSQL session would.
		c.detach(busy || c.sessionPool || !c.rollbackOnDisconnect())
	}
	c.stopTimeouts()
	if c.registered {
		c.srv.unregister(c)
	}
	_ = c.nc.Close()
}

// cancelRunning cancels the statement running on the attached connection.
// mu is held until the warehouse has taken the request, so the connection
// cannot pass to another session before the signal lands.
func (c *conn) cancelRunning() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopWait != nil {
		// Waiting on the cache: stop waiting; a fill carries on.
		c.stopWait(errCanceledByClient)
	}
	if c.sc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.sc.Cancel(ctx); err != nil {
		c.srv.lost.Fail(err, "cancel requests that did not reach the warehouse")
	}
}

// abort closes the session's sockets from another goroutine; its own
// goroutine then ends.
func (c *conn) abort() {
	_ = c.nc.Close()
	c.mu.Lock()
	if c.sc != nil {
		c.sc.Close()
	}
	c.mu.Unlock()
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func setSQL(name, value string) string {
	return "SET " + postgres.QuoteName(strings.ToLower(name)) + " = " + quoteLiteral(value)
}
