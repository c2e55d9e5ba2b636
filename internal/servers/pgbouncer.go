package servers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Pgbouncer is a pgbouncer in transaction pooling mode in front of one
// PostgreSQL database.
type Pgbouncer struct {
	Endpoint // where it accepts connections
	proc     *Proc
}

// PgbouncerConfig says how to set up a pgbouncer.
type PgbouncerConfig struct {
	// Path is the pgbouncer binary; default: $SQLCACHED_PGBOUNCER,
	// /usr/sbin/pgbouncer, or pgbouncer on $PATH.
	Path string
	// Dir holds its configuration, user list and log; it must exist.
	Dir        string
	Backend    Endpoint // the PostgreSQL, which must trust the user postgres
	Database   string   // the one database pgbouncer serves
	PoolSize   int      // default_pool_size
	MaxClients int      // max_client_conn
	Account    *Account // runs pgbouncer; nil: the current user
	// ExtraConfig are more "key = value" lines for [pgbouncer].
	ExtraConfig []string
}

// StartPgbouncer writes pgbouncer.ini and starts pgbouncer on a free port
// of 127.0.0.1, with trust authentication, no unix socket and
// pool_mode=transaction, and waits until it answers a query.
func StartPgbouncer(ctx context.Context, c PgbouncerConfig) (*Pgbouncer, error) {
	if c.Path == "" {
		var err error
		if c.Path, err = LookBinary("SQLCACHED_PGBOUNCER", "pgbouncer", "/usr/sbin/pgbouncer"); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	iniPath, err := writePgbouncerConf(c, port)
	if err != nil {
		return nil, err
	}
	b := &Pgbouncer{Endpoint: Endpoint{Host: "127.0.0.1", Port: port}}
	cmd := Command{
		Name: "pgbouncer", Path: c.Path, Args: []string{iniPath},
		Dir: c.Dir, Account: c.Account, Log: filepath.Join(c.Dir, "pgbouncer.out"),
	}
	dsn := b.DSN("postgres", c.Database)
	b.proc, err = launch(ctx, cmd, func(ctx context.Context) error { return PingPostgres(ctx, dsn) }, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("servers: pgbouncer on port %d: %w\n--- pgbouncer.log (tail) ---\n%s",
			port, err, LogTail(filepath.Join(c.Dir, "pgbouncer.log")))
	}
	return b, nil
}

// writePgbouncerConf writes pgbouncer.ini and its user list for c and
// port, creates the log pgbouncer appends to, and returns the ini's path.
func writePgbouncerConf(c PgbouncerConfig, port int) (string, error) {
	userlist := filepath.Join(c.Dir, "userlist.txt")
	if err := os.WriteFile(userlist, []byte("\"postgres\" \"\"\n"), 0o644); err != nil {
		return "", err
	}
	logPath := filepath.Join(c.Dir, "pgbouncer.log")
	ini := []string{
		"[databases]",
		fmt.Sprintf("%s = host=%s port=%d dbname=%s", c.Database, c.Backend.Host, c.Backend.Port, c.Database),
		"",
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + userlist,
		"pool_mode = transaction",
		fmt.Sprintf("default_pool_size = %d", c.PoolSize),
		fmt.Sprintf("max_client_conn = %d", c.MaxClients),
		"ignore_startup_parameters = extra_float_digits",
		"log_connections = 0",
		"log_disconnections = 0",
		"logfile = " + logPath,
	}
	ini = append(ini, c.ExtraConfig...)
	iniPath := filepath.Join(c.Dir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(strings.Join(ini, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	if _, err := os.Stat(logPath); os.IsNotExist(err) {
		if err := os.WriteFile(logPath, nil, 0o644); err != nil {
			return "", err
		}
	}
	for _, p := range []string{c.Dir, logPath} {
		if err := c.Account.Chown(p); err != nil {
			return "", err
		}
	}
	return iniPath, nil
}

// Stop shuts pgbouncer down at once (SIGTERM) and kills what is left.
func (b *Pgbouncer) Stop() error {
	return b.proc.Stop(syscall.SIGTERM, 10*time.Second)
}
