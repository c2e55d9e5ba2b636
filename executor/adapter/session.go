package adapter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// SQLSTATE codes the adapter answers with itself.
const (
	codeProtocolViolation = "08P01"
	codeFeatureNotSupport = "0A000"
	codeTooManySessions   = "53300"
	codeProgramLimit      = "54000"
	codeQueryCanceled     = "57014"
	codeAdminShutdown     = "57P01"
	codeInFailedTx        = "25P02"
	codeNoActiveTx        = "25P01"
	codeActiveTx          = "25001"
	codeUnknownStatement  = "26000"
	codeUnknownPortal     = "34000"
	codeDuplicateStmt     = "42P05"
	codeDuplicateCursor   = "42P03"
	codeUnknownCursor     = "34000"
	codeUnknownSetting    = "42704"
	codeSyntax            = "42601"
	codeNoSavepoint       = "3B001"
	codeInternal          = "XX000"
)

func pgErr(code, msg string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg}
}

// session is one client connection.
type session struct {
	srv *Server
	nc  net.Conn
	r   *pgwire.Reader
	w   *bufio.Writer
	out pgwire.Builder // messages waiting to be written

	pid, key uint32
	user     string
	database string

	set     settings
	initial settings // as the session started: what RESET ALL goes back to
	txSet   settings // as the transaction block began: what ROLLBACK goes back to
	tx      byte     // transaction status: 'I', 'T' or 'E'
	mark    []savepoint
	// wrote says a statement of the open transaction block changed data:
	// ROLLBACK cannot undo it, and says so.
	wrote bool

	stmts   map[string]*prepared
	portals map[string]*portal
	cursors map[string]*cursor

	// label is the dashboard label of the statement running, from its
	// comments.
	label string

	// skipping is set after an error in the extended protocol: messages
	// are discarded until Sync.
	skipping bool

	runMu     sync.Mutex // protects the fields below
	runCancel context.CancelFunc
	canceled  bool // the running statement was canceled on request
}

// savepoint is a SAVEPOINT of the open transaction block, with the
// settings to go back to.
type savepoint struct {
	name string
	set  settings
}

func (s *Server) serveConn(nc net.Conn) {
	ss := &session{
		srv: s, nc: nc,
		r:  pgwire.NewReader(nc, 16<<10, s.cfg.MaxMessageBytes),
		w:  bufio.NewWriterSize(nc, 32<<10),
		tx: 'I',
	}
	if !ss.startup() {
		return
	}
	defer s.unregister(ss)
	defer ss.cancelRunning(false)
	if err := ss.loop(); err != nil && !errors.Is(err, errTerminate) {
		s.log.Debug("adapter session ended", "pid", ss.pid, "err", err)
	}
}

var errTerminate = errors.New("adapter: client terminated the session")

// startup reads the startup phase; it reports whether a session began.
func (ss *session) startup() bool {
	ss.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer ss.nc.SetDeadline(time.Time{})
	for {
		code, body, err := ss.r.NextStartup()
		if err != nil {
			return false
		}
		switch code {
		case pgwire.SSLRequestCode, pgwire.GSSENCRequestCode:
			if _, err := ss.nc.Write([]byte{'N'}); err != nil {
				return false
			}
			continue
		case pgwire.CancelRequestCode:
			if len(body) >= 8 {
				if t := ss.srv.session(binary.BigEndian.Uint32(body)); t != nil && t.key == binary.BigEndian.Uint32(body[4:]) {
					t.cancelRunning(true)
				}
			}
			return false
		}
		if code>>16 != 3 {
			ss.fatal(codeProtocolViolation, "unsupported frontend protocol")
			return false
		}
		params := map[string]string{}
		sc := pgwire.NewScanner(body)
		for {
			k := sc.CString()
			if sc.Err != nil || len(k) == 0 {
				break
			}
			params[string(k)] = string(sc.CString())
		}
		ss.user = params["user"]
		ss.database = cmpOr(params["database"], ss.user)
		if ss.user == "" {
			ss.fatal("28000", "no PostgreSQL user name specified in startup packet")
			return false
		}
		if !ss.srv.register(ss) {
			ss.fatal(codeTooManySessions, "sorry, too many clients already")
			return false
		}
		ss.set = ss.srv.startupSettings(params, ss.user)
		ss.initial = ss.set.clone()
		b := &ss.out
		b.Begin('R')
		b.Int32(0)
		b.Finish()
		for _, name := range reported {
			b.Begin('S')
			b.String(canonical(name))
			b.String(ss.set.get(ss.srv, name))
			b.Finish()
		}
		b.Begin('K')
		b.Int32(int32(ss.pid))
		b.Int32(int32(ss.key))
		b.Finish()
		ss.ready()
		if err := ss.flush(); err != nil {
			ss.srv.unregister(ss)
			return false
		}
		return true
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fatal writes a FATAL error; the session ends after it.
func (ss *session) fatal(code, msg string) {
	ss.out.PgError(&pgconn.PgError{Severity: "FATAL", Code: code, Message: msg})
	ss.flush()
}

func (ss *session) flush() error {
	if len(ss.out.B) > 0 {
		if _, err := ss.w.Write(ss.out.B); err != nil {
			return err
		}
		ss.out.B = ss.out.B[:0]
	}
	return ss.w.Flush()
}

// ready appends ReadyForQuery.
func (ss *session) ready() {
	ss.out.Begin('Z')
	ss.out.Byte(ss.tx)
	ss.out.Finish()
}

// loop serves messages until the client leaves.
func (ss *session) loop() error {
	for {
		if ss.r.Buffered() == 0 || len(ss.out.B) > 64<<10 {
			if err := ss.flush(); err != nil {
				return err
			}
		}
		typ, msg, err := ss.r.Next()
		if err != nil {
			if errors.Is(err, pgwire.ErrTooLarge) {
				ss.fatal(codeProgramLimit, "message too large")
			}
			return err
		}
		body := pgwire.Body(msg)
		if ss.skipping && typ != 'S' && typ != 'X' {
			continue
		}
		switch typ {
		case 'Q':
			ss.simpleQuery(string(trimNul(body)))
			ss.ready()
		case 'P':
			ss.parse(body)
		case 'B':
			ss.bind(body)
		case 'D':
			ss.describe(body)
		case 'E':
			ss.execute(body)
		case 'C':
			ss.closeMsg(body)
		case 'S':
			ss.skipping = false
			ss.dropUnnamedPortal()
			ss.ready()
		case 'H':
			if err := ss.flush(); err != nil {
				return err
			}
		case 'X':
			ss.flush()
			return errTerminate
		case 'F':
			ss.fail(pgErr(codeFeatureNotSupport, "the function call protocol is not supported by the "+ss.srv.cfg.Name+" warehouse"))
		case 'd', 'c', 'f':
			// COPY data after a refused COPY: nothing to do.
		default:
			ss.fatal(codeProtocolViolation, "invalid frontend message type "+string(rune(typ)))
			return errors.New("adapter: protocol violation")
		}
	}
}

func trimNul(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// fail reports err to the client: an ErrorResponse, the transaction block
// aborted, and in the extended protocol everything up to Sync skipped.
func (ss *session) fail(err error) {
	ss.out.PgError(ss.toPgError(err))
	if ss.tx == 'T' {
		ss.tx = 'E'
	}
	ss.skipping = true
}

func (ss *session) toPgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ss.srv.ctx.Err() != nil {
			return &pgconn.PgError{Severity: "FATAL", Code: codeAdminShutdown, Message: "terminating connection due to administrator command"}
		}
		return pgErr(codeQueryCanceled, "canceling statement due to user request")
	case errors.Is(err, errTooLarge):
		return pgErr(codeProgramLimit, err.Error())
	}
	return pgErr(codeInternal, err.Error())
}

// run runs f as the session's statement: a CancelRequest or
// pg_cancel_backend ends its context.
func (ss *session) run(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ss.srv.ctx)
	ss.runMu.Lock()
	ss.runCancel, ss.canceled = cancel, false
	ss.runMu.Unlock()
	err := f(ctx)
	ss.runMu.Lock()
	ss.runCancel = nil
	canceled := ss.canceled
	ss.runMu.Unlock()
	cancel()
	if err != nil && canceled && ctx.Err() != nil {
		return pgErr(codeQueryCanceled, "canceling statement due to user request")
	}
	return err
}

// cancelRunning cancels the statement running, if any; requested says a
// client asked for it.
func (ss *session) cancelRunning(requested bool) {
	ss.runMu.Lock()
	defer ss.runMu.Unlock()
	if ss.runCancel != nil {
		ss.canceled = ss.canceled || requested
		ss.runCancel()
	}
}

// terminate ends the session as pg_terminate_backend does.
func (ss *session) terminate() {
	ss.cancelRunning(true)
	ss.nc.Close()
}

// dropUnnamedPortal ends the unnamed portal at the end of an implicit
// transaction, as PostgreSQL does at Sync.
func (ss *session) dropUnnamedPortal() {
	if ss.tx == 'I' {
		delete(ss.portals, "")
	}
}

// settingName lower-cases a setting's name as PostgreSQL does.
func settingName(s string) string { return strings.ToLower(s) }
