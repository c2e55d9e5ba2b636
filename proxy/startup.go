package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
	"unique"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// authTimeout bounds the startup phase, as PostgreSQL's
// authentication_timeout does.
const authTimeout = 60 * time.Second

// startup runs the startup phase: TLS negotiation, the startup packet,
// authentication, and a first warehouse connection that applies the
// client's settings and tells it the server's parameters.
func (c *conn) startup() error {
	c.since = time.Now()
	_ = c.nc.SetDeadline(time.Now().Add(authTimeout))
	params, err := c.readStartup()
	if err != nil {
		return err
	}
	if params == nil {
		return errCancelRequest
	}
	user := params["user"]
	if user == "" {
		return fatal(CodeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	if _, ok := params["replication"]; ok && params["replication"] != "false" && params["replication"] != "0" {
		return fatal(CodeFeatureNotSupported, "replication connections are not supported")
	}
	database := params["database"]
	if database == "" {
		database = user
	}
	if c.srv.cfg.RequireTLS && !c.tls {
		return fatal(CodeInvalidAuthorization, "SSL connection is required")
	}
	c.user, c.database = user, database
	if c.srv.cfg.Admin != nil && database == AdminDatabase {
		return c.serveAdmin(params)
	}
	c.backend = c.srv.cfg.Route(database)
	if c.backend == nil {
		return fatal(CodeUnknownDatabase, fmt.Sprintf("database %q does not exist", database))
	}
	password, err := c.authenticate(user)
	if err != nil {
		return err
	}
	if err := c.sendAuth(0, nil); err != nil {
		return err
	}
	login := postgres.Login{User: user, Password: password, Database: database}
	if c.backend.Database != "" {
		login.Database = c.backend.Database
	}
	// Sessions of one login share its strings: the pool, which compares
	// logins on every acquire and release, then finds them equal by
	// their pointers.
	c.loginHandle = unique.Make(login)
	c.login = c.loginHandle.Value()
	if err := c.setStartupSettings(params); err != nil {
		return err
	}
	if err := c.srv.register(c); err != nil {
		return err
	}
	c.registered = true
	_ = c.nc.SetDeadline(time.Time{})
	if err := c.greet(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.srv.loadVolatility(ctx, c, false)
	return nil
}

// readStartup reads startup-phase packets until a StartupMessage, and
// returns its parameters. It returns nil parameters when the connection
// was a CancelRequest.
func (c *conn) readStartup() (map[string]string, error) {
	for {
		code, body, err := c.r.NextStartup()
		if err != nil {
			return nil, fatal(CodeProtocolViolation, "invalid startup packet: "+err.Error())
		}
		switch code {
		case pgwire.CancelRequestCode:
			if len(body) >= 8 {
				c.srv.cancel(binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]))
			}
			return nil, nil
		case pgwire.SSLRequestCode:
			if err := c.negotiateTLS(); err != nil {
				return nil, err
			}
			continue
		case pgwire.GSSENCRequestCode:
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return nil, err
			}
			continue
		}
		if code>>16 != 3 {
			return nil, fatal(CodeFeatureNotSupported, fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff))
		}
		params, unknown, err := parseStartupParams(body)
		if err != nil {
			return nil, err
		}
		if code&0xffff != 0 || len(unknown) > 0 {
			if err := c.negotiateVersion(unknown); err != nil {
				return nil, err
			}
		}
		c.r.SetMax(c.srv.cfg.MaxMessageBytes)
		return params, nil
	}
}

func (c *conn) negotiateTLS() error {
	if c.tls {
		return fatal(CodeProtocolViolation, "SSLRequest after TLS was established")
	}
	if c.srv.cfg.TLS == nil {
		_, err := c.nc.Write([]byte{'N'})
		return err
	}
	if c.r.Buffered() > 0 {
		// Bytes sent after SSLRequest and before the handshake could be
		// injected by anyone on the path.
		return fatal(CodeProtocolViolation, "received unencrypted data after SSL request")
	}
	if _, err := c.nc.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(c.nc, c.srv.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.nc = tc
	c.tls = true
	c.r = pgwire.NewReader(tc, 16<<10, pgwire.MaxStartupBytes)
	c.w.Reset(tc)
	return nil
}

// negotiateVersion answers a client asking for a newer minor version or
// protocol options with NegotiateProtocolVersion, as PostgreSQL does.
func (c *conn) negotiateVersion(unknown []string) error {
	var b pgwire.Builder
	b.Begin('v')
	b.Int32(0)
	b.Int32(int32(len(unknown)))
	for _, o := range unknown {
		b.String(o)
	}
	b.Finish()
	_, err := c.w.Write(b.B)
	return err
}

func parseStartupParams(body []byte) (map[string]string, []string, error) {
	params := map[string]string{}
	var unknown []string
	s := pgwire.NewScanner(body)
	for {
		k := s.CString()
		if s.Err != nil {
			return nil, nil, fatal(CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if len(k) == 0 {
			break
		}
		v := s.CString()
		if s.Err != nil {
			return nil, nil, fatal(CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if strings.HasPrefix(string(k), "_pq_.") {
			unknown = append(unknown, string(k))
			continue
		}
		params[string(k)] = string(v)
	}
	sort.Strings(unknown)
	return params, unknown, nil
}

// setStartupSettings turns the startup parameters that are settings
// (everything but user, database, replication and options, plus the -c
// settings inside options) into the session's settings.
func (c *conn) setStartupSettings(params map[string]string) error {
	c.startupSettings = map[string]string{}
	for k, v := range params {
		switch k {
		case "user", "database", "replication":
			continue
		case "options":
			opts, err := parseOptions(v)
			if err != nil {
				return err
			}
			for ok, ov := range opts {
				c.startupSettings[strings.ToLower(ok)] = setSQL(ok, ov)
			}
			continue
		}
		c.startupSettings[strings.ToLower(k)] = setSQL(k, v)
	}
	c.rebuildSettings()
	return nil
}

// parseOptions reads the command-line options PostgreSQL accepts in the
// startup packet: -c name=value and --name=value, backslash escaping
// spaces.
func parseOptions(s string) (map[string]string, error) {
	var words []string
	var cur strings.Builder
	esc, in := false, false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc, in = true, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(w, "-c"):
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			return nil, fatal(CodeProtocolViolation, fmt.Sprintf("invalid command-line argument for server process: %s", w))
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fatal(CodeProtocolViolation, fmt.Sprintf("invalid command-line argument for server process: %s", w))
		}
		out[strings.ReplaceAll(name, "-", "_")] = value
	}
	return out, nil
}

// greet opens the session's first warehouse connection, applies its
// settings there (so that bad ones fail the login as they would on the
// warehouse), and sends the client the warehouse's parameters, its key
// and ReadyForQuery.
func (c *conn) greet() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.AcquireTimeout)
	defer cancel()
	params, err := c.startupParams(ctx)
	if err != nil {
		return err
	}
	if c.sessionPool && c.sc != nil {
		// The session keeps this backend: its pid is the client's, so
		// that pg_terminate_backend of it reaches the session.
		c.srv.rekey(c, c.sc.PID)
	}
	var b pgwire.Builder
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.Begin('S')
		b.String(k)
		b.String(params[k])
		b.Finish()
	}
	b.Begin('K')
	b.Int32(int32(c.pid))
	b.Int32(int32(c.secret))
	b.Finish()
	b.Begin('Z')
	b.Byte('I')
	b.Finish()
	if _, err := c.w.Write(b.B); err != nil {
		return err
	}
	return c.w.Flush()
}

// startupParams applies the session's settings on a warehouse connection
// and returns the ParameterStatus values the warehouse reports for them.
// When every connection stays busy past the wait bound, the values come
// from an earlier connection with the client's own settings laid over
// them, so that a login does not fail because the warehouse is busy.
func (c *conn) startupParams(ctx context.Context) (map[string]string, error) {
	c.sessionPool = c.srv.cfg.SessionPooling != nil && c.srv.cfg.SessionPooling(c.user, c.database)
	c.inStartup = true
	err := c.attach(ctx)
	if errors.Is(err, postgres.ErrPoolTimeout) || c.unreachableWithCache(err) {
		c.inStartup = false
		if known := c.backend.Pool.ServerParams(); known != nil {
			return c.overlayParams(known), nil
		}
	}
	if err == nil {
		err = c.flushServer()
	}
	if err == nil {
		err = c.drain()
	}
	c.inStartup = false
	if err != nil {
		c.detach(true)
		e := *toError(err)
		e.Severity = "FATAL"
		return nil, &e
	}
	if c.startupErr != nil {
		c.detach(true)
		return nil, c.startupErr
	}
	params := maps.Clone(c.sc.Params)
	c.maybeRelease()
	return params, nil
}

// overlayParams lays the client's startup settings over a warehouse's
// reported parameters.
func (c *conn) overlayParams(known map[string]string) map[string]string {
	out := maps.Clone(known)
	for name := range known {
		sql, ok := c.startupSettings[strings.ToLower(name)]
		if !ok {
			continue
		}
		_, v, _ := strings.Cut(sql, " = '")
		v = strings.ReplaceAll(strings.TrimSuffix(v, "'"), "''", "'")
		if strings.EqualFold(name, "client_encoding") {
			v = strings.ToUpper(strings.ReplaceAll(v, "-", ""))
		}
		out[name] = v
	}
	return out
}

// unreachableWithCache reports whether a login may go on without the
// warehouse, which cannot be reached: the cache may still answer the
// session's dashboards (stale-if-error), and the proxy checked the
// password itself.
func (c *conn) unreachableWithCache(err error) bool {
	if err == nil || !c.caching() || (c.srv.cfg.AuthMethod == AuthPassword && len(c.srv.cfg.Users) == 0) {
		return false
	}
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) && !errors.As(err, &pe)
}
