package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// AdminDatabase is the database name that opens the admin console instead
// of a warehouse (internal/config reserves it).
const AdminDatabase = "sqlcached"

// Admin runs the admin console's commands. The proxy authenticates a
// client asking for AdminDatabase as any other, then lets only the users
// IsAdmin accepts in; each Query they send is given to Exec.
type Admin interface {
	IsAdmin(user string) bool
	// Exec runs one command for user. An *Error (or any error, as
	// XX000) goes to the client as an ErrorResponse; the session goes on.
	Exec(ctx context.Context, user, sql string) (*AdminAnswer, error)
}

// AdminAnswer is what a console command answers: a table, possibly of no
// columns, sent as PostgreSQL would send it.
type AdminAnswer struct {
	Columns []AdminColumn
	Rows    [][]*string // text forms; nil is NULL
	Tag     string      // the CommandComplete tag: SHOW, INVALIDATE, RELOAD
	Notice  string      // sent first as a NoticeResponse, when set
}

// AdminColumn is a column of an AdminAnswer.
type AdminColumn struct {
	Name    string
	TypeOID uint32
	Size    int16 // the type's size; -1 for variable length
}

// adminCommandTimeout bounds one console command.
const adminCommandTimeout = time.Minute

// serveAdmin runs a session of the admin console, from authentication to
// its end; it returns errClientGone when the client leaves.
func (c *conn) serveAdmin(params map[string]string) error {
	cfg := &c.srv.cfg
	if _, err := c.authenticate(c.user); err != nil {
		return err
	}
	if cfg.AuthMethod == AuthPassword && len(cfg.Users) == 0 {
		return fatal(CodeInvalidAuthorization, "the admin console needs auth.users: passwords passed through to the warehouse are not checked by the proxy")
	}
	if !cfg.Admin.IsAdmin(c.user) {
		return fatal(CodeInvalidAuthorization, fmt.Sprintf("user %q is not allowed to use the admin console (database %q): not in auth.admin_users", c.user, AdminDatabase))
	}
	if err := c.sendAuth(0, nil); err != nil {
		return err
	}
	if err := c.setStartupSettings(params); err != nil {
		return err
	}
	if err := c.srv.register(c); err != nil {
		return err
	}
	c.registered = true
	_ = c.nc.SetDeadline(time.Time{})
	if err := c.greetAdmin(params["application_name"]); err != nil {
		return err
	}
	for {
		typ, msg, err := c.r.Next()
		switch {
		case err != nil && c.srv.shuttingDown.Load() && isTimeout(err):
			return fatal(CodeAdminShutdown, "terminating connection due to administrator command")
		case errors.Is(err, pgwire.ErrTooLarge), errors.Is(err, pgwire.ErrBadLength):
			return err
		case err != nil || typ == 'X':
			return errClientGone
		}
		if err := c.adminMessage(typ, msg); err != nil {
			return err
		}
		if c.srv.shuttingDown.Load() {
			return fatal(CodeAdminShutdown, "terminating connection due to administrator command")
		}
	}
}

// greetAdmin sends what a PostgreSQL server sends after authentication.
func (c *conn) greetAdmin(app string) error {
	var b pgwire.Builder
	for _, kv := range [][2]string{
		{"application_name", app}, {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"},
		{"IntervalStyle", "postgres"}, {"is_superuser", "off"}, {"server_encoding", "UTF8"},
		{"server_version", "16.0 (sqlcached admin console)"}, {"session_authorization", c.user},
		{"standard_conforming_strings", "on"}, {"TimeZone", "UTC"},
	} {
		b.Begin('S')
		b.String(kv[0])
		b.String(kv[1])
		b.Finish()
	}
	b.Begin('K')
	b.Int32(int32(c.pid))
	b.Int32(int32(c.secret))
	b.Finish()
	return c.adminReady(&b)
}

// adminReady appends ReadyForQuery and sends what b holds.
func (c *conn) adminReady(b *pgwire.Builder) error {
	b.Begin('Z')
	b.Byte('I')
	b.Finish()
	if _, err := c.w.Write(b.B); err != nil {
		return err
	}
	return c.w.Flush()
}

// adminMessage answers one message of a console session. The extended
// protocol is refused: its messages up to Sync get one error.
func (c *conn) adminMessage(typ byte, msg []byte) error {
	var b pgwire.Builder
	switch typ {
	case 'Q':
		s := pgwire.NewScanner(pgwire.Body(msg))
		sql := s.CString()
		if s.Err != nil {
			return fatal(CodeProtocolViolation, "malformed Query message")
		}
		c.adminQuery(&b, string(sql))
		return c.adminReady(&b)
	case 'P', 'B', 'D', 'E', 'C':
		if !c.skipping {
			appendError(&b, newError(CodeFeatureNotSupported, "the admin console speaks the simple query protocol only"))
			c.skipping = true
		}
	case 'S':
		c.skipping = false
		return c.adminReady(&b)
	case 'F':
		appendError(&b, newError(CodeFeatureNotSupported, "the admin console has no functions to call"))
		return c.adminReady(&b)
	case 'H', 'd', 'c', 'f':
	default:
		return fatal(CodeProtocolViolation, fmt.Sprintf("invalid frontend message type %d", typ))
	}
	if len(b.B) == 0 {
		return nil
	}
	if _, err := c.w.Write(b.B); err != nil {
		return err
	}
	return c.w.Flush()
}

// adminQuery appends the answer to one console command.
func (c *conn) adminQuery(b *pgwire.Builder, sql string) {
	if strings.TrimSpace(strings.Trim(strings.TrimSpace(sql), ";")) == "" {
		b.Begin('I')
		b.Finish()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminCommandTimeout)
	defer cancel()
	a, err := c.srv.cfg.Admin.Exec(ctx, c.user, sql)
	if err != nil {
		e := toError(err)
		if e.Severity == "FATAL" {
			e = &Error{Severity: "ERROR", Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint}
		}
		appendError(b, e)
		return
	}
	if a.Notice != "" {
		appendNotice(b, a.Notice)
	}
	if len(a.Columns) > 0 {
		fields := make([]pgwire.Field, len(a.Columns))
		for i, col := range a.Columns {
			fields[i] = pgwire.Field{Name: col.Name, TypeOID: col.TypeOID, Size: col.Size, TypeMod: -1}
		}
		b.RowDescription(fields)
		for _, row := range a.Rows {
			b.Begin('D')
			b.Int16(int16(len(row)))
			for _, v := range row {
				if v == nil {
					b.Int32(-1)
					continue
				}
				b.Int32(int32(len(*v)))
				b.Bytes([]byte(*v))
			}
			b.Finish()
		}
	}
	b.Begin('C')
	b.String(a.Tag)
	b.Finish()
}

// appendNotice appends a NoticeResponse of severity NOTICE.
func appendNotice(b *pgwire.Builder, msg string) {
	b.Begin('N')
	for _, f := range [][2]string{{"S", "NOTICE"}, {"V", "NOTICE"}, {"C", "00000"}, {"M", msg}} {
		b.Byte(f[0][0])
		b.String(f[1])
	}
	b.Byte(0)
	b.Finish()
}

// Session is a client session, as the admin console lists it.
type Session struct {
	PID             uint32
	User, Database  string
	ApplicationName string // as the startup packet gave it
	ClientAddr      string
	// State is "active" while the session holds a warehouse connection
	// (running a statement or inside a transaction), "idle" otherwise,
	// and "console" for an admin console session.
	State string
	Since time.Time // when the client connected
}

// Sessions lists the client sessions past their startup.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.sessions))
	out := make([]Session, 0, len(s.sessions))
	for pid, c := range s.sessions {
		// What is read here was set before the session was registered,
		// under s.mu, and does not change after.
		addr := c.clientAddr
		if addr == "" {
			addr = c.nc.RemoteAddr().String()
		}
		conns = append(conns, c)
		out = append(out, Session{
			PID: pid, User: c.user, Database: c.database, ClientAddr: addr, Since: c.since,
			ApplicationName: c.startupValue("application_name"),
		})
	}
	s.mu.Unlock()
	for i, c := range conns {
		out[i].State = c.sessionState()
	}
	return out
}

// startupValue is the value the startup packet gave a setting; "" for
// none.
func (c *conn) startupValue(name string) string {
	if sql := c.startupSettings[name]; sql != "" {
		return c.settingValue(sql)
	}
	return ""
}

// sessionState says what a session is doing, from another goroutine.
func (c *conn) sessionState() string {
	if c.backend == nil {
		return "console"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sc != nil {
		return "active"
	}
	return "idle"
}
