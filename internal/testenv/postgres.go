package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SuperUser and SuperPassword are the PostgreSQL superuser's name and password on every server
// testenv starts.
const (
	SuperUser     = "postgres"
	SuperPassword = "postgres"
)

// postgresqlConf is appended to the postgresql.conf initdb writes. The port,
// the listen address and the socket directory are given on the command line,
// so that one data directory template serves every server.
const postgresqlConf = `
# testenv
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
`

// pgHBAConf lets the superuser in without a password over the unix socket
// (for tooling) and requires SCRAM passwords over TCP, as a warehouse would.
const pgHBAConf = `# testenv
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
`

// Timeouts for server life-cycle steps, generous because tests run with
// -race on a shared two-core machine.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

// PG is a private PostgreSQL server on a free loopback port in a temporary
// directory. Its superuser is "postgres" with password "postgres"; TCP
// connections authenticate with SCRAM-SHA-256. pg_stat_statements is loaded
// and created in the postgres database and in template1, so every database a
// test creates has it.
type PG struct {
	Host string // "127.0.0.1"
	Port int
	Dir  string // data directory

	base  string // holds Dir, the unix socket and postgres.log
	bin   string // directory of the PostgreSQL binaries
	owner owner

	mu   sync.Mutex // protects proc
	proc *process   // nil before the first start
}

// DSN returns a URL that connects to database as the superuser over TCP.
func (p *PG) DSN(database string) string {
	return p.DSNUser(SuperUser, SuperPassword, database)
}

// DSNUser returns a URL that connects to database as user with password over TCP.
func (p *PG) DSNUser(user, password, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     p.Addr(),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Addr returns the server's TCP address, "127.0.0.1:PORT".
func (p *PG) Addr() string {
	return net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
}

// SocketDir returns the directory holding the server's unix socket, where
// the superuser may connect without a password (host=SocketDir()).
func (p *PG) SocketDir() string { return p.base }

// LogFile returns the path of the server's log.
func (p *PG) LogFile() string { return filepath.Join(p.base, "postgres.log") }

// Stop shuts the server down fast (SIGINT: sessions are ended, a checkpoint
// is written) and waits until it has exited. Stopping a stopped server does nothing.
func (p *PG) Stop() error {
	return p.shutdown(syscall.SIGINT)
}

// Kill shuts the server down immediately (SIGQUIT: no checkpoint, crash
// recovery on the next start), as a crash would, and waits until it has exited.
func (p *PG) Kill() error {
	return p.shutdown(syscall.SIGQUIT)
}

func (p *PG) shutdown(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil || p.proc.exited() {
		return nil
	}
	if err := p.proc.signal(sig); err != nil {
		return err
	}
	return p.proc.wait(stopTimeout)
}

// Start starts a stopped server again on the same port and data directory
// and waits until it accepts connections.
func (p *PG) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && !p.proc.exited() {
		return errors.New("testenv: postgres is already running")
	}
	// The port may be held for a moment by another test binary probing for
	// a free one; keep trying the same port for a while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.startLocked()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Restart stops the server (fast) and starts it again on the same port.
func (p *PG) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start()
}

// startLocked starts postgres on p.Port and waits until it accepts
// connections. p.mu is held.
func (p *PG) startLocked() error {
	logf, err := os.OpenFile(p.LogFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", p.Dir,
		"-p", strconv.Itoa(p.Port),
		"-k", p.base,
		"-c", "listen_addresses="+p.Host,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.owner.cred}
	proc, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("testenv: starting postgres: %w", err)
	}
	p.proc = proc
	if err := p.waitReady(); err != nil {
		_ = proc.signal(syscall.SIGQUIT)
		_ = proc.wait(stopTimeout)
		return fmt.Errorf("testenv: postgres on port %d: %w\n--- %s (tail) ---\n%s", p.Port, err, p.LogFile(), logTail(p.LogFile()))
	}
	return nil
}

// waitReady waits until the server answers a query over TCP, or exits.
func (p *PG) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if p.proc.exited() {
			return fmt.Errorf("postgres exited: %v", p.proc.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgconn.Connect(ctx, p.DSN("postgres"))
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %v", startTimeout, lastErr)
}

// destroy stops the server at once and removes its directory.
func (p *PG) destroy() error {
	err := p.Kill()
	if rerr := os.RemoveAll(p.base); err == nil {
		err = rerr
	}
	return err
}

// Exec runs sql (one or more statements, simple protocol) in database as the
// superuser, failing t on error. Call it from the test's goroutine.
func (p *PG) Exec(t testing.TB, database, sql string) {
	t.Helper()
	if err := p.exec(database, sql); err != nil {
		t.Fatalf("testenv: %s: %v", abbreviate(sql), err)
	}
}

func (p *PG) exec(database, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.DSN(database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql).ReadAll()
	return err
}

// Connect opens a pgx connection to database as the superuser, closed when
// the test ends.
func (p *PG) Connect(t testing.TB, database string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN(database))
	if err != nil {
		t.Fatalf("testenv: connecting to %s: %v", database, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateDatabase creates database name, dropped (WITH (FORCE)) when the test
// ends. Use UniqueName or NewDatabase for a name no other test uses.
func (p *PG) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	ident := pgx.Identifier{name}.Sanitize()
	p.Exec(t, "postgres", "CREATE DATABASE "+ident)
	t.Cleanup(func() {
		if err := p.exec("postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: dropping database %s: %v", name, err)
		}
	})
}

// NewDatabase creates a database with a unique name for this test, dropped
// when the test ends, and returns its name.
func (p *PG) NewDatabase(t testing.TB) string {
	t.Helper()
	name := UniqueName(t)
	p.CreateDatabase(t, name)
	return name
}

// Calls returns how many times statements in database whose normalised text
// (as pg_stat_statements shows it, constants as $1...) matches the LIKE
// pattern have been executed, counted by pg_stat_statements. It is how tests
// measure warehouse work where it happens.
func (p *PG) Calls(t testing.TB, database, like string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(s.calls), 0)::bigint
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.query LIKE $2`, database, like).Scan(&n)
	if err != nil {
		t.Fatalf("testenv: reading pg_stat_statements: %v", err)
	}
	return n
}

// ResetStatements clears pg_stat_statements for the whole server. Tests on
// a shared server should prefer Calls on their own database.
func (p *PG) ResetStatements(t testing.TB) {
	t.Helper()
	p.Exec(t, "postgres", "SELECT pg_stat_statements_reset()")
}

var nameSeq atomic.Int64

var notIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// UniqueName returns a lower-case identifier derived from the test's name,
// unique within the test binary and short enough (at most 63 bytes) to name
// a database, role or table.
func UniqueName(t testing.TB) string {
	base := notIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	base = strings.Trim(strings.TrimPrefix(base, "test"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("t_%s_%d", base, nameSeq.Add(1))
}

// NewPostgreSQL starts a dedicated server for one test, stopped and removed
// when the test ends. Use it for tests that stop, kill or restart the server.
func NewPostgreSQL(t testing.TB) *PG { return dedicated(t, "postgres", startPostgreSQL) }

var sharedPG shared[*PG]

// SharedPostgreSQL returns the test binary's shared server, started on first
// use. Tests must not stop or restart it; they should work in their own
// database (NewDatabase). Main stops it after the last test.
func SharedPostgreSQL(t testing.TB) *PG { return sharedPG.get(t, startPostgreSQL) }

// startPostgreSQL creates a server from the template data directory and
// starts it on a free port, trying other ports if one is taken meanwhile.
func startPostgreSQL() (*PG, error) {
	tmpl, err := pgTemplate()
	if err != nil {
		return nil, err
	}
	base, err := makeDir("pg", tmpl.owner)
	if err != nil {
		return nil, err
	}
	p := &PG{Host: "127.0.0.1", Dir: filepath.Join(base, "data"), base: base, bin: tmpl.bin, owner: tmpl.owner}
	if out, err := exec.Command("cp", "-a", tmpl.dir, p.Dir).CombinedOutput(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("testenv: copying data directory: %v: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		if p.Port, err = freePort(); err != nil {
			break
		}
		p.mu.Lock()
		err = p.startLocked()
		p.mu.Unlock()
		if err == nil || attempt == 2 {
			break
		}
	}
	if err == nil {
		err = p.exec("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	if err == nil {
		err = p.exec("template1", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	if err != nil {
		p.destroy()
		return nil, err
	}
	return p, nil
}

// template is an initialised data directory that new servers copy, which is
// much faster than running initdb for each.
type template struct {
	dir   string // the data directory
	bin   string
	owner owner
}

var (
	tmplOnce sync.Once
	tmpl     template
	tmplErr  error
)

func pgTemplate() (template, error) {
	tmplOnce.Do(func() {
		tmpl, tmplErr = makeTemplate()
		if tmplErr == nil {
			atExit(func() error { return os.RemoveAll(filepath.Dir(tmpl.dir)) })
		}
	})
	return tmpl, tmplErr
}

func makeTemplate() (template, error) {
	bin, err := pgBinDir()
	if err != nil {
		return template{}, err
	}
	o, err := serverOwner()
	if err != nil {
		return template{}, err
	}
	base, err := makeDir("pgtemplate", o)
	if err != nil {
		return template{}, err
	}
	tm := template{dir: filepath.Join(base, "data"), bin: bin, owner: o}
	if err := initdb(tm, base); err != nil {
		os.RemoveAll(base)
		return template{}, err
	}
	return tm, nil
}

// initdb initialises tm.dir with the superuser password and testenv's
// configuration.
func initdb(tm template, base string) error {
	pwfile := filepath.Join(base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(SuperPassword+"\n"), 0o600); err != nil {
		return err
	}
	if err := tm.owner.chownAll(pwfile); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(tm.bin, "initdb"),
		"-D", tm.dir, "-U", SuperUser, "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
		"--auth-local=trust", "--auth-host=scram-sha-256")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: tm.owner.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	conf, err := os.OpenFile(filepath.Join(tm.dir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := conf.WriteString(postgresqlConf); err != nil {
		conf.Close()
		return err
	}
	if err := conf.Close(); err != nil {
		return err
	}
	// WriteFile keeps the existing file's owner and mode.
	return os.WriteFile(filepath.Join(tm.dir, "pg_hba.conf"), []byte(pgHBAConf), 0o600)
}

// pgBinDir finds the directory of initdb and postgres: $SQLCACHED_PG_BIN,
// the newest /usr/lib/postgresql/N/bin (Debian), or the directory of
// postgres on $PATH.
func pgBinDir() (string, error) {
	if v := os.Getenv("SQLCACHED_PG_BIN"); v != "" {
		return v, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := lookBinary("SQLCACHED_PG_BIN", "postgres")
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// pgVersion returns N from /usr/lib/postgresql/N/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// abbreviate shortens SQL for error messages.
func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 80 {
		return sql[:77] + "..."
	}
	return sql
}
