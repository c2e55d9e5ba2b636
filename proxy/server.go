package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlcached/sqlcached/internal/nbio"

	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/incident"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Backend is a warehouse the proxy relays to.
type Backend struct {
	Name string
	Pool Pool
	// Database is the warehouse database to open; "" uses the name the
	// client asked for.
	Database string
}

// Config configures a Server. cmd/sqlcached fills it from the
// configuration file.
type Config struct {
	// AuthMethod is trust, password, md5 or scram-sha-256. Empty means
	// trust.
	AuthMethod string
	// Users maps user names to passwords. Under password, an empty map
	// passes the client's password through to the warehouse.
	Users map[string]string
	// AllowCleartextWithoutTLS lets the password method run on plain
	// connections.
	AllowCleartextWithoutTLS bool

	// TLS, when set, answers SSLRequest with 'S'. RequireTLS refuses
	// clients that do not ask for it.
	TLS        *tls.Config
	RequireTLS bool

	// Route returns the backend serving a database name, or nil for an
	// unknown database (SQLSTATE 3D000).
	Route func(database string) *Backend

	// MaxClients bounds client connections; one more gets SQLSTATE 53300.
	// Defaults to 1000.
	MaxClients int
	// MaxMessageBytes bounds one message from a client. Defaults to
	// 64MiB.
	MaxMessageBytes int
	// AcquireTimeout bounds the wait for a warehouse connection at
	// startup and before each transaction (the pool's own MaxWait applies
	// too). Defaults to 30s.
	AcquireTimeout time.Duration

	// SessionPooling reports whether a client of user and database keeps
	// one warehouse connection for its whole session (pgbouncer's
	// pool_mode = session) rather than for each transaction; nil: no
	// client does.
	SessionPooling func(user, database string) bool

	// Observe, when set, is told of every statement: its outcome, its
	// time, its rule (see package observe).
	Observe *observe.Observer

	// Reads answers cacheable reads (readpath.Path): it decides, by the
	// policy, what is cached and keys, looks up and fills it; nil
	// relays everything.
	Reads Reads

	// Admin, when set, serves the clients asking for AdminDatabase: its
	// admin users get the admin console, everyone else is refused. nil
	// routes that name as any other.
	Admin Admin

	// Analyzer classifies statements; nil uses the read path's, or
	// fingerprint's default.
	Analyzer *fingerprint.Analyzer
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// Server accepts PostgreSQL clients and relays them to warehouses.
type Server struct {
	cfg   Config
	log   *slog.Logger
	creds credentials

	mu        sync.Mutex // protects the fields below
	listeners map[net.Listener]struct{}
	sessions  map[uint32]*conn   // by the process ID given to the client
	starting  map[*conn]net.Conn // connections before their session is registered, with their sockets
	nclients  int
	closing   bool
	idleDone  chan struct{} // closed when the last session ends during shutdown

	volMu     sync.Mutex // protects volLoaded
	volLoaded bool       // the analyzer has the warehouse's volatility

	// lost follows the warehouse connections sessions lose and the cancel
	// requests that do not reach the warehouse: a line when it starts, a
	// line when sessions attach again, never one per session.
	lost *incident.Incident

	memo memo // what the warehouse answered to SET and SHOW
	// ddlEpoch counts DDL through the proxy: warehouse connections whose
	// prepared statements predate it prepare them again.
	ddlEpoch atomic.Uint64

	shuttingDown atomic.Bool
	wg           sync.WaitGroup // session goroutines

	// waitTick counts the ticks of watchWaits, which runs from the first
	// Serve until stopWatch.
	waitTick  atomic.Int64
	watchOnce sync.Once
	watchCtx  context.Context
	stopWatch context.CancelFunc
}

// NewServer checks cfg and returns a server that is not yet listening.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Route == nil {
		return nil, errors.New("proxy: Config.Route is required")
	}
	switch cfg.AuthMethod {
	case "", AuthTrust, AuthPassword, AuthMD5, AuthSCRAM:
	default:
		return nil, errors.New("proxy: unknown authentication method " + cfg.AuthMethod)
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1000
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 64 << 20
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = 30 * time.Second
	}
	if cfg.Analyzer == nil && cfg.Reads != nil {
		cfg.Analyzer = cfg.Reads.Analyzer()
	}
	if cfg.Analyzer == nil {
		a, err := fingerprint.New(fingerprint.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Analyzer = a
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, log: log, lost: incident.New(log, slog.LevelWarn, "warehouse connections"), listeners: map[net.Listener]struct{}{}, sessions: map[uint32]*conn{}, starting: map[*conn]net.Conn{},
	}
	s.watchCtx, s.stopWatch = context.WithCancel(context.Background())
	return s, nil
}

// watchWaits wakes the sessions that have waited for their warehouse for
// watchInterval or more, so that they check that their client is still
// there (see drain), until ctx ends. One watch for all sessions: a
// statement costs no timer of its own.
func (s *Server) watchWaits(ctx context.Context) {
	t := time.NewTicker(watchInterval / 2)
	defer t.Stop()
	var sessions []*conn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tick := s.waitTick.Add(1)
		s.mu.Lock()
		for _, c := range s.sessions {
			sessions = append(sessions, c)
		}
		s.mu.Unlock()
		for _, c := range sessions {
			c.wakeIfWaiting(tick)
		}
		clear(sessions)
		sessions = sessions[:0]
	}
}

// Serve accepts connections on l until Shutdown or Close, and returns
// ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	s.watchOnce.Do(func() { go s.watchWaits(s.watchCtx) })
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go s.handle(nc)
	}
}

func (s *Server) handle(nc net.Conn) {
	defer s.wg.Done()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	nc = nbio.Wrap(nc)
	c := &conn{
		srv: s,
		nc:  nc,
		r:   pgwire.NewReader(nc, 16<<10, pgwire.MaxStartupBytes),
		w:   bufio.NewWriterSize(nc, 16<<10),
	}
	if s.cfg.Observe != nil {
		c.clientAddr = nc.RemoteAddr().String()
	}
	// Until it is registered, the connection is only known here: Shutdown
	// and Close must be able to end it.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.starting[c] = nc
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.starting, c)
		s.mu.Unlock()
	}()
	c.serve()
}

// register gives c a process ID and secret for CancelRequest and counts it
// against MaxClients.
func (s *Server) register(c *conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return fatal(CodeAdminShutdown, "the proxy is shutting down")
	}
	if s.nclients >= s.cfg.MaxClients {
		return fatal(CodeTooManyConnections, "sorry, too many clients already")
	}
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x3fffffff
		if _, taken := s.sessions[pid]; pid != 0 && !taken {
			c.pid, c.secret = pid, binary.BigEndian.Uint32(b[4:])
			break
		}
	}
	s.sessions[c.pid] = c
	delete(s.starting, c)
	s.nclients++
	return nil
}

// rekey gives a session the process ID pid (its warehouse backend's, in
// session pooling) when no other session has it.
func (s *Server) rekey(c *conn, pid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.sessions[pid]; taken || pid == 0 || s.sessions[c.pid] != c {
		return
	}
	delete(s.sessions, c.pid)
	c.pid = pid
	s.sessions[pid] = c
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[c.pid] != c {
		return
	}
	delete(s.sessions, c.pid)
	s.nclients--
	if s.nclients == 0 && s.idleDone != nil {
		close(s.idleDone)
		s.idleDone = nil
	}
}

// cancel handles a CancelRequest: it cancels the statement the session
// with that key is running on the warehouse, if any.
func (s *Server) cancel(pid, secret uint32) {
	s.mu.Lock()
	c := s.sessions[pid]
	s.mu.Unlock()
	if c == nil || c.secret != secret {
		return
	}
	c.cancelRunning()
}

// Clients returns the number of client sessions.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nclients
}

// Shutdown stops accepting connections, closes idle sessions, lets running
// statements and open transactions finish until ctx is done, then closes
// what is left. It returns ctx.Err() if sessions had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shuttingDown.Store(true)
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		_ = l.Close()
	}
	done := make(chan struct{})
	if s.nclients == 0 {
		close(done)
	} else {
		s.idleDone = done
	}
	sessions := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		sessions = append(sessions, c)
	}
	s.closeStarting()
	s.mu.Unlock()
	// Wake every session blocked reading its client: an idle one ends
	// itself, a busy one goes on until its transaction ends.
	for _, c := range sessions {
		_ = c.nc.SetReadDeadline(time.Now())
	}
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.closeAll()
	}
	s.wg.Wait()
	s.stopWatch()
	return err
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.shuttingDown.Store(true)
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		_ = l.Close()
	}
	s.mu.Unlock()
	s.closeAll()
	s.wg.Wait()
	s.stopWatch()
	return nil
}

// closeStarting closes the connections still in their startup phase: a
// server going away has no session to give them. s.mu is held.
func (s *Server) closeStarting() {
	for _, nc := range s.starting {
		_ = nc.Close()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	sessions := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		sessions = append(sessions, c)
	}
	s.closeStarting()
	s.mu.Unlock()
	for _, c := range sessions {
		c.abort()
	}
}
