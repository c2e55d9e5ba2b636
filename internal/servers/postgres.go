package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Endpoint is where a server accepts PostgreSQL connections over TCP.
type Endpoint struct {
	Host string
	Port int
}

// Addr returns "host:port".
func (e Endpoint) Addr() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// DSN returns a URL for user and database at the endpoint, without a
// password, as a server that trusts its clients takes.
func (e Endpoint) DSN(user, database string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", user, e.Addr(), database)
}

// InitConfig says how InitDB makes a data directory.
type InitConfig struct {
	Bin string // directory of initdb; default: PostgresBinDir()
	// Dir is the data directory to make. Its parent must exist and belong
	// to Account.
	Dir string
	// Account owns the data directory and runs initdb; nil: the current
	// user.
	Account *Account
	// SuperUser is the superuser's name; default "postgres".
	SuperUser string
	// Password is the superuser's password. With one, connections over
	// TCP authenticate with SCRAM-SHA-256; without, they are trusted.
	// Connections over the unix socket are trusted either way.
	Password string
	// Conf is appended to the postgresql.conf initdb writes.
	Conf string
	// HBA, if set, replaces the pg_hba.conf initdb writes.
	HBA string
}

// InitDB makes a data directory as c says: UTF8, locale C, without
// instructions or syncing to disk.
func InitDB(ctx context.Context, c InitConfig) error {
	if c.Bin == "" {
		var err error
		if c.Bin, err = PostgresBinDir(); err != nil {
			return err
		}
	}
	if c.SuperUser == "" {
		c.SuperUser = "postgres"
	}
	args := []string{"-D", c.Dir, "-U", c.SuperUser, "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"}
	if c.Password == "" {
		args = append(args, "--auth=trust")
	} else {
		pwfile, err := writePasswordFile(filepath.Dir(c.Dir), c.Password, c.Account)
		if err != nil {
			return err
		}
		defer os.Remove(pwfile)
		args = append(args, "--pwfile="+pwfile, "--auth-local=trust", "--auth-host=scram-sha-256")
	}
	if _, err := Run(ctx, c.Account, filepath.Dir(c.Dir), filepath.Join(c.Bin, "initdb"), args...); err != nil {
		return fmt.Errorf("servers: initdb: %w", err)
	}
	if c.Conf != "" {
		if err := appendFile(filepath.Join(c.Dir, "postgresql.conf"), c.Conf); err != nil {
			return err
		}
	}
	if c.HBA != "" {
		// WriteFile keeps the existing file's owner and mode.
		return os.WriteFile(filepath.Join(c.Dir, "pg_hba.conf"), []byte(c.HBA), 0o600)
	}
	return nil
}

// writePasswordFile writes password to a new file in dir that acct can
// read, for initdb --pwfile.
func writePasswordFile(dir, password string, acct *Account) (string, error) {
	f, err := os.CreateTemp(dir, "pwfile-")
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(password + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = acct.Chown(f.Name())
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// appendFile appends text to the file at path, which must exist.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PostgresConfig says how to run a PostgreSQL server on a data directory
// that InitDB made.
type PostgresConfig struct {
	Bin string // directory of postgres; default: PostgresBinDir()
	Dir string // the data directory
	// Account runs postgres and must own Dir; nil: the current user.
	Account *Account
	// SuperUser is whom Start connects as, over the unix socket, to see
	// that the server accepts connections; pg_hba.conf must trust it
	// there. Default "postgres".
	SuperUser string
	// Host is listen_addresses; default "127.0.0.1".
	Host string
	// Port is the TCP port; default: a free one, and up to two others if
	// another process takes it before the server binds it.
	Port int
	// SocketDir holds the unix socket; default: the parent of Dir.
	SocketDir string
	// LogFile is where the server logs; default: postgres.log in the
	// parent of Dir.
	LogFile string
	// Settings ("name=value") are passed to postgres with -c, after the
	// listen address and the port; they override postgresql.conf.
	Settings []string
}

// Postgres is a PostgreSQL server that StartPostgres started. Its data
// survives Stop, Kill and Start.
type Postgres struct {
	Endpoint        // where it accepts TCP connections
	Dir      string // the data directory

	bin       string
	account   *Account
	superUser string
	socketDir string
	logFile   string
	settings  []string

	life life // its postmaster across stops and starts
}

// StartPostgres starts the server c describes and waits until it accepts
// connections.
func StartPostgres(ctx context.Context, c PostgresConfig) (*Postgres, error) {
	p := &Postgres{
		Endpoint: Endpoint{Host: c.Host, Port: c.Port}, Dir: c.Dir,
		bin: c.Bin, account: c.Account, superUser: c.SuperUser,
		socketDir: c.SocketDir, logFile: c.LogFile, settings: c.Settings,
		life: life{what: "postgres"},
	}
	if p.bin == "" {
		var err error
		if p.bin, err = PostgresBinDir(); err != nil {
			return nil, err
		}
	}
	if p.Host == "" {
		p.Host = "127.0.0.1"
	}
	if p.superUser == "" {
		p.superUser = "postgres"
	}
	if p.socketDir == "" {
		p.socketDir = filepath.Dir(p.Dir)
	}
	if p.logFile == "" {
		p.logFile = filepath.Join(filepath.Dir(p.Dir), "postgres.log")
	}
	var err error
	if p.Port != 0 {
		err = p.Start(ctx)
	} else {
		err = p.life.startFirst(ctx, func(ctx context.Context, port int) error {
			p.Port = port
			return p.startLocked(ctx)
		})
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// SocketDir returns the directory of the server's unix socket, where the
// superuser connects without a password (host=SocketDir()).
func (p *Postgres) SocketDir() string { return p.socketDir }

// LogFile returns the path of the server's log.
func (p *Postgres) LogFile() string { return p.logFile }

// Running reports whether the server is up: started, and neither stopped
// nor killed since.
func (p *Postgres) Running() bool { return p.life.running() }

// Start starts a stopped server again on the same port and data directory
// and waits until it accepts connections.
func (p *Postgres) Start(ctx context.Context) error { return p.life.startAgain(ctx, p.startLocked) }

// Stop shuts the server down fast (SIGINT: sessions are ended, a
// checkpoint is written) and waits until it has exited. Stopping a stopped
// server does nothing.
func (p *Postgres) Stop() error { return p.life.stop(syscall.SIGINT) }

// Kill shuts the server down at once (SIGQUIT: no checkpoint, crash
// recovery on the next start), as a crash would, and waits until it has
// exited.
func (p *Postgres) Kill() error { return p.life.stop(syscall.SIGQUIT) }

// Restart stops the server (fast) and starts it again on the same port.
func (p *Postgres) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start(ctx)
}

// startLocked starts postgres on p.Port and waits until it accepts
// connections over the unix socket. p.life.mu is held.
func (p *Postgres) startLocked(ctx context.Context) error {
	args := []string{"-D", p.Dir, "-p", strconv.Itoa(p.Port), "-k", p.socketDir, "-c", "listen_addresses=" + p.Host}
	for _, s := range p.settings {
		args = append(args, "-c", s)
	}
	c := Command{
		Name: "postgres", Path: filepath.Join(p.bin, "postgres"), Args: args,
		Dir: p.Dir, Account: p.account, Log: p.logFile,
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable",
		quoteValue(p.socketDir), p.Port, quoteValue(p.superUser))
	proc, err := launch(ctx, c, func(ctx context.Context) error { return PingPostgres(ctx, dsn) }, syscall.SIGQUIT)
	if err != nil {
		return fmt.Errorf("servers: postgres on port %d: %w", p.Port, err)
	}
	p.life.proc = proc
	return nil
}

// quoteValue quotes a value of a keyword/value connection string.
func quoteValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// PingPostgres connects to the server connString names (anything speaking
// PostgreSQL's protocol: PostgreSQL, a pooler, sqlcached) and runs
// SELECT 1.
func PingPostgres(ctx context.Context, connString string) error {
	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	return err
}
