package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sqlcached/sqlcached/internal/servers"
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

// PG is a private PostgreSQL server on a free loopback port in a temporary
// directory. Its superuser is "postgres" with password "postgres"; TCP
// connections authenticate with SCRAM-SHA-256. pg_stat_statements is loaded
// and created in the postgres database and in template1, so every database a
// test creates has it.
//
// Host, Port and Dir (the data directory), and Addr, SocketDir, LogFile,
// Stop and Kill, are the embedded server's.
type PG struct {
	*servers.Postgres
	base string // holds Dir, the unix socket and postgres.log
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

// Start starts a stopped server again on the same port and data directory
// and waits until it accepts connections.
func (p *PG) Start() error { return p.Postgres.Start(context.Background()) }

// Restart stops the server (fast) and starts it again on the same port.
func (p *PG) Restart() error { return p.Postgres.Restart(context.Background()) }

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
// starts it on a free port.
func startPostgreSQL() (*PG, error) {
	tmpl, err := pgTemplate()
	if err != nil {
		return nil, err
	}
	base, err := makeDir("pg", tmpl.account)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(base, "data")
	if out, err := exec.Command("cp", "-a", tmpl.dir, data).CombinedOutput(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("testenv: copying data directory: %v: %s", err, out)
	}
	srv, err := servers.StartPostgres(context.Background(), servers.PostgresConfig{
		Bin: tmpl.bin, Dir: data, Account: tmpl.account, SuperUser: SuperUser,
	})
	if err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	p := &PG{Postgres: srv, base: base}
	err = p.exec("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
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
	dir     string // the data directory
	bin     string
	account *servers.Account
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

// makeTemplate runs initdb with the superuser password and testenv's
// configuration.
func makeTemplate() (template, error) {
	bin, err := servers.PostgresBinDir()
	if err != nil {
		return template{}, err
	}
	acct, err := servers.ServerAccount()
	if err != nil {
		return template{}, err
	}
	base, err := makeDir("pgtemplate", acct)
	if err != nil {
		return template{}, err
	}
	tm := template{dir: filepath.Join(base, "data"), bin: bin, account: acct}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err = servers.InitDB(ctx, servers.InitConfig{
		Bin: bin, Dir: tm.dir, Account: acct,
		SuperUser: SuperUser, Password: SuperPassword,
		Conf: postgresqlConf, HBA: pgHBAConf,
	})
	if err != nil {
		os.RemoveAll(base)
		return template{}, err
	}
	return tm, nil
}

// abbreviate shortens SQL for error messages.
func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 80 {
		return sql[:77] + "..."
	}
	return sql
}
