// Package postgres connects sqlcached to PostgreSQL and wire-compatible
// warehouses (Redshift, Greenplum, Timescale, CockroachDB).
//
// Connections are opened with pgconn, which handles the warehouse's TLS and
// authentication, and then taken over (hijacked): from then on the proxy
// speaks the protocol on them itself, relaying its clients' messages byte
// for byte and reading answers as the wire carries them. A Pool bounds how
// many are open per backend and hands them to sessions one transaction at a
// time, as pgbouncer's transaction pooling does.
package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sqlcached/sqlcached/internal/mono"
	"github.com/sqlcached/sqlcached/internal/nbio"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/incident"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Errors returned by Pool.
var (
	// ErrPoolTimeout is returned when no connection became free within
	// Config.MaxWait. Clients see SQLSTATE 53300.
	ErrPoolTimeout = errors.New("postgres: timed out waiting for a warehouse connection")
	// ErrPoolClosed is returned by Acquire after Close.
	ErrPoolClosed = errors.New("postgres: pool closed")
)

// Config configures a Pool.
type Config struct {
	// DSN is a libpq connection string or URL. A user and password in it
	// are used for every connection; otherwise each Login's are.
	DSN string
	// MaxConns bounds the connections open at once, for all logins
	// together. Defaults to 20.
	MaxConns int
	// MaxWait bounds how long Acquire waits for a connection when MaxConns
	// are busy. Defaults to 30s.
	MaxWait time.Duration
	// IdleTimeout closes connections idle for longer. 0 keeps them.
	IdleTimeout time.Duration
	// ConnectTimeout bounds opening one connection. Defaults to 10s.
	ConnectTimeout time.Duration
	// MaxMessageBytes bounds one message read from the warehouse.
	// Defaults to 1GiB, PostgreSQL's own bound on a field.
	MaxMessageBytes int
	// LabelSetting, when set, carries a request's Dashboard to the
	// warehouse as that custom setting (SET sqlcached.dashboard = '...'),
	// applied with the request's other settings: the adapter in front of
	// a warehouse that tags queries reads it there.
	LabelSetting string

	// Name names the warehouse in the log ("warehouse <Name> failing").
	// If empty, it defaults to the DSN's host:port.
	Name string
	// Logger receives the lines about the warehouse refusing connections:
	// an error when connecting first fails, a line with the count of
	// failed attempts when a connection opens again, at most a reminder a
	// minute in between; never a line per attempt. If nil, it defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Login is whom a connection is opened as.
type Login struct {
	User     string
	Password string
	Database string
}

// Pool is a bounded set of warehouse connections, shared by every session
// of one backend.
type Pool struct {
	cfg  Config
	base *pgconn.Config

	mu   sync.Mutex // protects the fields below
	idle map[Login]*idleConns
	// last is the login whose idle connections were last looked up, and
	// lastIdle those connections: sessions of one login, the common
	// case, find them without hashing the login.
	last     Login
	lastIdle *idleConns
	nidle    int
	total    int
	waiters  []*waiter
	closed   bool
	params   map[string]string // the first connection's ParameterStatus values

	fixedUser bool // the DSN names the user and password

	incident *incident.Incident // "warehouse <Name>"

	stop chan struct{}
	done chan struct{}
}

// idleConns are the idle connections of one login, the most recently
// released last.
type idleConns struct{ conns []*Conn }

// len returns how many connections l holds; a nil l holds none.
func (l *idleConns) len() int {
	if l == nil {
		return 0
	}
	return len(l.conns)
}

// idleOf returns login's idle connections; p.mu is held. When login has
// no list, add makes one; otherwise idleOf returns nil: only a release
// makes a list, so logins that never had a connection leave nothing
// behind. reap drops lists left empty.
func (p *Pool) idleOf(login Login, add bool) *idleConns {
	if p.lastIdle != nil && p.last == login {
		return p.lastIdle
	}
	l := p.idle[login]
	if l == nil {
		if !add {
			return nil
		}
		l = &idleConns{}
		p.idle[login] = l
	}
	p.last, p.lastIdle = login, l
	return l
}

type waiter struct {
	login Login
	ch    chan *Conn // receives a connection, or nil: a free slot to connect in
}

// NewPool checks cfg and returns a pool; no connection is opened yet.
func NewPool(cfg Config) (*Pool, error) {
	base, err := pgconn.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxConns < 0:
		return nil, errors.New("postgres: MaxConns must not be negative")
	case cfg.MaxConns == 0:
		cfg.MaxConns = 20
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 30
	}
	if cfg.Name == "" {
		cfg.Name = net.JoinHostPort(base.Host, strconv.Itoa(int(base.Port)))
	}
	p := &Pool{cfg: cfg, base: base, fixedUser: dsnHasUser(cfg.DSN), idle: map[Login]*idleConns{}, stop: make(chan struct{}), done: make(chan struct{})}
	p.incident = incident.New(cfg.Logger, slog.LevelError, "warehouse "+cfg.Name)
	go p.reap()
	return p, nil
}

// FixedUser reports whether the DSN names the user every connection uses.
func (p *Pool) FixedUser() bool { return p.fixedUser }

// TryAcquire returns an idle connection opened as login, or nil at once
// when there is none: it neither waits nor opens one. A connection the
// warehouse ended while it sat idle is dropped on the way.
func (p *Pool) TryAcquire(login Login) *Conn {
	for {
		p.mu.Lock()
		var c *Conn
		if !p.closed {
			c = p.popIdle(login)
		}
		p.mu.Unlock() // the check is a system call: not under the lock
		if c == nil {
			return nil
		}
		if c.fresh() || !c.gone() {
			p.incident.OK() // a live connection: the warehouse is up
			return c
		}
		// Ended while idle (pg_terminate_backend, a restart): its
		// FATAL or its end is waiting on the socket.
		p.Destroy(c)
	}
}

// Acquire returns a connection opened as login, waiting at most MaxWait
// (and ctx) for one when MaxConns are in use.
func (p *Pool) Acquire(ctx context.Context, login Login) (*Conn, error) {
	for {
		if c := p.TryAcquire(login); c != nil {
			return c, nil
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if p.idleOf(login, false).len() == 0 {
			break // with p.mu held
		}
		p.mu.Unlock() // one came back meanwhile
	}
	if p.total < p.cfg.MaxConns {
		p.total++
		p.mu.Unlock()
		return p.open(ctx, login)
	}
	if old := p.popOldestIdle(); old != nil {
		// Every slot is taken, some by idle connections of other logins:
		// close one and open ours in its slot.
		p.mu.Unlock()
		old.close()
		return p.open(ctx, login)
	}
	w := &waiter{login: login, ch: make(chan *Conn, 1)}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	return p.wait(ctx, w)
}

func (p *Pool) wait(ctx context.Context, w *waiter) (*Conn, error) {
	t := time.NewTimer(p.cfg.MaxWait)
	defer t.Stop()
	var err error
	select {
	case c := <-w.ch:
		return p.granted(ctx, w, c)
	case <-ctx.Done():
		err = ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			// The caller's own bound on waiting ran out: the same answer.
			err = ErrPoolTimeout
		}
	case <-t.C:
		err = ErrPoolTimeout
	}
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	// A grant raced with the timeout: pass it on.
	c := <-w.ch
	if c != nil {
		p.Release(c)
	} else {
		p.freeSlot()
	}
	return nil, err
}

func (p *Pool) granted(ctx context.Context, w *waiter, c *Conn) (*Conn, error) {
	if c != nil {
		p.incident.OK() // a connection that served its last user: the warehouse is up
		return c, nil
	}
	return p.open(ctx, w.login)
}

// open connects in a slot already counted in total.
func (p *Pool) open(ctx context.Context, login Login) (*Conn, error) {
	c, err := p.connect(ctx, login)
	if err != nil {
		p.freeSlot()
		return nil, err
	}
	p.mu.Lock()
	if p.params == nil {
		// A copy: the connection's own map changes as it is used.
		p.params = maps.Clone(c.Params)
	}
	p.mu.Unlock()
	return c, nil
}

// freeSlot gives a slot that no connection holds to a waiter, or drops it.
func (p *Pool) freeSlot() {
	p.mu.Lock()
	if len(p.waiters) > 0 && !p.closed {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w.ch <- nil
		return
	}
	p.total--
	p.mu.Unlock()
}

// Release returns a connection that is idle (outside a transaction, every
// answer read) for reuse. A broken one is closed instead.
func (p *Pool) Release(c *Conn) {
	if c.Broken || c.TxStatus != 'I' || c.W.Buffered() > 0 || c.out.queued() {
		// Bytes not sent yet would bring answers the next user does
		// not await.
		p.Destroy(c)
		return
	}
	c.lastUsed = mono.Now()
	// A deadline its last user left (the relay watches its client with
	// one) would cut the next user's reads short.
	_ = c.netConn.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.Destroy(c)
		return
	}
	for i, w := range p.waiters {
		if w.login == c.Login {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			w.ch <- c
			return
		}
	}
	if len(p.waiters) > 0 {
		// Waiters for other logins only: give the slot to the first.
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		c.close()
		w.ch <- nil
		return
	}
	l := p.idleOf(c.Login, true)
	l.conns = append(l.conns, c)
	p.nidle++
	p.mu.Unlock()
}

// Destroy closes a connection and frees its slot.
func (p *Pool) Destroy(c *Conn) {
	c.close()
	p.freeSlot()
}

func (p *Pool) popIdle(login Login) *Conn {
	l := p.idleOf(login, false)
	n := l.len()
	if n == 0 {
		return nil
	}
	c := l.conns[n-1]
	l.conns[n-1] = nil
	l.conns = l.conns[:n-1]
	p.nidle--
	return c
}

func (p *Pool) popOldestIdle() *Conn {
	if p.nidle == 0 {
		return nil
	}
	var oldest *idleConns
	for _, l := range p.idle {
		if len(l.conns) > 0 && (oldest == nil || l.conns[0].lastUsed < oldest.conns[0].lastUsed) {
			oldest = l
		}
	}
	c := oldest.conns[0]
	n := copy(oldest.conns, oldest.conns[1:])
	oldest.conns[n] = nil
	oldest.conns = oldest.conns[:n]
	p.nidle--
	return c
}

// Stats is a snapshot of the pool.
type Stats struct {
	Open, Idle, Waiting, Max int
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Open: p.total, Idle: p.nidle, Waiting: len(p.waiters), Max: p.cfg.MaxConns}
}

// ServerParams returns the ParameterStatus values the warehouse reported
// when the first connection started, or nil before one was opened. The
// map is shared and never changes: do not modify it.
func (p *Pool) ServerParams() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

// Ping checks that the warehouse accepts connections. An authentication
// failure still means it is reachable.
func (p *Pool) Ping(ctx context.Context) error {
	cfg := p.base.Copy()
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	p.report(caller, err, "")
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil
		}
		return err
	}
	return c.Close(ctx)
}

// What a warehouse refusing connections affects, as counted by the
// incident.
const connectsFailed = "connection attempts failed"

// report tells the pool's incident how an attempt to connect for the
// caller's ctx ended, counting what it affected when it failed. The
// warehouse answering, even with an error of the login's (a wrong password,
// a missing database), is a success; the caller giving up is neither.
func (p *Pool) report(ctx context.Context, err error, what string) {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		p.incident.OK()
	case errors.As(err, &pe) && !refusing(pe):
		p.incident.OK()
	case ctx.Err() != nil:
	default:
		p.incident.Fail(err, what)
	}
}

// refusing reports whether the warehouse's error at connect time says it
// takes no connections now: too many of them (class 53), or shutting down,
// starting up or in recovery (class 57).
func refusing(pe *pgconn.PgError) bool {
	return strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "57")
}

// Close closes idle connections and stops the pool; connections in use are
// closed when they are released.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*Conn
	for _, l := range p.idle {
		all = append(all, l.conns...)
	}
	clear(p.idle)
	p.lastIdle = nil
	p.total -= len(all)
	p.nidle = 0
	ws := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, c := range all {
		c.close()
	}
	for _, w := range ws {
		w.ch <- nil // the waiter's open fails on a closed pool or succeeds once
	}
}

// reap closes connections idle longer than IdleTimeout.
func (p *Pool) reap() {
	defer close(p.done)
	if p.cfg.IdleTimeout <= 0 {
		<-p.stop
		return
	}
	t := time.NewTicker(p.cfg.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		var old []*Conn
		cutoff := mono.Now() - p.cfg.IdleTimeout
		p.mu.Lock()
		for login, l := range p.idle {
			keep := l.conns[:0]
			for _, c := range l.conns {
				if c.lastUsed < cutoff {
					old = append(old, c)
				} else {
					keep = append(keep, c)
				}
			}
			clear(l.conns[len(keep):])
			l.conns = keep
			if len(keep) == 0 {
				delete(p.idle, login)
				if p.lastIdle == l {
					p.last, p.lastIdle = Login{}, nil
				}
			}
		}
		p.nidle -= len(old)
		p.total -= len(old)
		p.mu.Unlock()
		for _, c := range old {
			c.close()
		}
	}
}

func (p *Pool) connect(ctx context.Context, login Login) (*Conn, error) {
	cfg := p.base.Copy()
	if !p.FixedUser() {
		cfg.User = login.User
		cfg.Password = login.Password
	}
	if login.Database != "" {
		cfg.Database = login.Database
	}
	cfg.RuntimeParams = map[string]string{}
	for k, v := range p.base.RuntimeParams {
		cfg.RuntimeParams[k] = v
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	p.report(caller, err, connectsFailed)
	if err != nil {
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	hc.Conn = nbio.Wrap(hc.Conn)
	c := &Conn{
		Login:    login,
		netConn:  hc.Conn,
		R:        pgwire.NewReader(hc.Conn, 32<<10, p.cfg.MaxMessageBytes),
		PID:      hc.PID,
		key:      hc.SecretKey,
		Params:   hc.ParameterStatuses,
		TxStatus: hc.TxStatus,
		Settings: map[string]string{},
		Prepared: map[string]bool{},
		addr:     hc.Conn.RemoteAddr(),
		lastUsed: mono.Now(),
	}
	c.out.nc = hc.Conn
	c.out.nb, _ = hc.Conn.(*nbio.Conn)
	c.W = bufio.NewWriterSize(&c.out, 32<<10)
	return c, nil
}

// FlushBeforeRead sends what W holds, a request whose answer R reads
// next: the read that waits for the answer writes it (see
// nbio.Conn.WriteBeforeRead), which spares the relay a read that could
// only find nothing. W's bytes must ask for an answer (end with a Sync or
// be a Query), or the read could wait for one that was there before.
func (c *Conn) FlushBeforeRead() error {
	c.out.later = c.out.nb != nil
	err := c.W.Flush()
	c.out.later = false
	return err
}

// sink is what W writes to: the connection, or its WriteBeforeRead while
// FlushBeforeRead flushes.
type sink struct {
	nc    net.Conn
	nb    *nbio.Conn // nc, when it is one
	later bool
}

// queued reports whether bytes wait for the next read to send them.
func (s *sink) queued() bool { return s.nb != nil && s.nb.Queued() }

func (s *sink) Write(b []byte) (int, error) {
	if s.later {
		if err := s.nb.WriteBeforeRead(b); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return s.nc.Write(b)
}

// Conn is one warehouse connection taken over from pgconn. It belongs to
// one goroutine at a time: the session that acquired it.
type Conn struct {
	Login Login
	R     *pgwire.Reader // answers from the warehouse
	W     *bufio.Writer  // messages to the warehouse
	PID   uint32
	// Params holds the ParameterStatus values the warehouse reported last.
	Params map[string]string
	// TxStatus is the status of the last ReadyForQuery.
	TxStatus byte
	// Settings are the session settings applied on this connection beyond
	// its defaults, by name: the SQL that applied each.
	Settings map[string]string
	// SettingsOwner and SettingsVersion name the session whose settings
	// were applied last, so that a session coming back skips the compare.
	SettingsOwner   any
	SettingsVersion uint64
	// Prepared holds the names of the statements prepared on this
	// connection by the proxy.
	Prepared map[string]bool
	// Unnamed identifies the statement in the unnamed slot, "" if none.
	Unnamed string
	// PreparedEpoch is the proxy's count of DDL when Prepared was last
	// known to be current.
	PreparedEpoch uint64
	// Stale holds statements the warehouse refused to run because their
	// result type changed: the proxy closes them before preparing them
	// again.
	Stale map[string]bool
	// Broken is set when the connection can no longer be trusted: it is
	// closed instead of reused.
	Broken bool

	netConn  net.Conn
	out      sink
	key      []byte
	addr     net.Addr
	lastUsed time.Duration // when it was last released, on mono.Now
	closeMu  sync.Mutex
	closed   bool
}

// Cancel asks the warehouse to cancel what this connection is running,
// and returns once the warehouse has taken the request.
func (c *Conn) Cancel(ctx context.Context) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, c.addr.Network(), c.addr.String())
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	}
	buf := make([]byte, 12, 12+len(c.key))
	binary.BigEndian.PutUint32(buf[0:], uint32(12+len(c.key)))
	binary.BigEndian.PutUint32(buf[4:], pgwire.CancelRequestCode)
	binary.BigEndian.PutUint32(buf[8:], c.PID)
	buf = append(buf, c.key...)
	if _, err := nc.Write(buf); err != nil {
		return err
	}
	// The postmaster closes the connection once it has signalled the
	// backend.
	var one [1]byte
	_, _ = nc.Read(one[:])
	return nil
}

// SetDeadline sets the read and write deadline of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.netConn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.netConn.SetReadDeadline(t) }

func (c *Conn) close() {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.netConn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.netConn.Write([]byte{'X', 0, 0, 0, 4})
	_ = c.netConn.Close()
}

// freshFor is how long after its release a connection is handed out
// without asking the kernel whether the warehouse ended it meanwhile. A
// busy pool hands each connection out again within it, and so relays
// each statement with no more system calls than the statement's own; a
// connection ended in that moment fails its next statement as one ended
// during the statement would.
const freshFor = 2 * time.Millisecond

// fresh reports whether c was released less than freshFor ago and holds
// nothing unread.
func (c *Conn) fresh() bool {
	return c.R.Buffered() == 0 && mono.Now()-c.lastUsed < freshFor
}

// gone reports whether an idle connection has been ended by the
// warehouse: an idle connection hears nothing, so anything readable (a
// FATAL ErrorResponse, the end of the stream) means it is over. It costs
// one non-blocking system call.
func (c *Conn) gone() bool {
	if c.R.Buffered() > 0 {
		return true
	}
	sc, ok := c.netConn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	readable := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, errno := peek(fd, b[:])
		readable = errno == 0 && n >= 0 || errno != 0 && errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
		return true // never wait
	})
	return readable
}

// Close closes the connection at once, from any goroutine; the owner then
// destroys it.
func (c *Conn) Close() { c.close() }

// dsnHasUser reports whether the DSN itself names a user (pgconn fills
// one in from the environment or the OS user when it does not).
func dsnHasUser(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return false
		}
		return u.User.Username() != "" || u.Query().Get("user") != ""
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "user=") {
			return true
		}
	}
	return false
}

// String names the connection for logs.
func (c *Conn) String() string { return fmt.Sprintf("pid %d", c.PID) }
