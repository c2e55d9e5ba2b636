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

// Pgpool is a pgpool-II in raw mode (one backend, no replication) with its
// in-memory query cache on, in front of one PostgreSQL.
type Pgpool struct {
	Endpoint // where it accepts connections
	proc     *Proc
}

// PgpoolConfig says how to set up a pgpool-II.
type PgpoolConfig struct {
	// Path is the pgpool binary; default: $SQLCACHED_PGPOOL,
	// /usr/sbin/pgpool, or pgpool on $PATH.
	Path string
	// Dir holds its configuration, sockets, pid file and log; it must
	// exist.
	Dir      string
	Backend  Endpoint // the PostgreSQL, which must trust connections from 127.0.0.1
	Database string   // the database StartPgpool connects to to see it is up
	Account  *Account // runs pgpool; nil: the current user
	// Children is num_init_children: the most clients served at once.
	Children int
	// CacheSize is memqcache_total_size, such as "256MB".
	CacheSize string
	// Expire is memqcache_expire in seconds; 0: answers never expire.
	Expire int
	// MaxCache is memqcache_maxcache, the largest answer cached ("" for
	// pgpool's default, 400kB).
	MaxCache string
}

// pgpoolConf returns pgpool.conf for c listening on port, with pcpPort
// for its control port: raw mode, trust through pool_hba.conf, one
// connection per child (max_pool 1) kept across clients
// (connection_cache), no load balancing, health checks or watchdog, and
// the shared-memory query cache.
func pgpoolConf(c PgpoolConfig, port, pcpPort int) string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	lines := []string{
		"# Written by sqlcached's internal/servers.",
		"backend_clustering_mode = 'raw'",
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", port),
		"socket_dir = " + q(c.Dir),
		"pcp_listen_addresses = '127.0.0.1'",
		fmt.Sprintf("pcp_port = %d", pcpPort),
		"pcp_socket_dir = " + q(c.Dir),
		"backend_hostname0 = " + q(c.Backend.Host),
		fmt.Sprintf("backend_port0 = %d", c.Backend.Port),
		"backend_weight0 = 1",
		"backend_flag0 = 'DISALLOW_TO_FAILOVER'",
		"enable_pool_hba = on",
		"pool_passwd = " + q(filepath.Join(c.Dir, "pool_passwd")),
		"allow_clear_text_frontend_auth = off",
		fmt.Sprintf("num_init_children = %d", c.Children),
		"max_pool = 1",
		"reserved_connections = 0",
		"child_life_time = 0",
		"child_max_connections = 0",
		"connection_life_time = 0",
		"client_idle_limit = 0",
		"connection_cache = on",
		"load_balance_mode = off",
		"health_check_period = 0",
		"sr_check_period = 0",
		"failover_on_backend_error = off",
		"failover_on_backend_shutdown = off",
		"use_watchdog = off",
		"log_destination = 'stderr'",
		"logging_collector = off",
		"log_min_messages = warning",
		"log_connections = off",
		"log_statement = off",
		"pid_file_name = " + q(filepath.Join(c.Dir, "pgpool.pid")),
		"logdir = " + q(c.Dir),
		"wd_ipc_socket_dir = " + q(c.Dir),
		"memory_cache_enabled = on",
		"memqcache_method = 'shmem'",
		"memqcache_total_size = " + q(c.CacheSize),
		"memqcache_max_num_cache = 100000",
		fmt.Sprintf("memqcache_expire = %d", c.Expire),
		"memqcache_auto_cache_invalidation = on",
		"memqcache_oiddir = " + q(filepath.Join(c.Dir, "oiddir")),
	}
	if c.MaxCache != "" {
		lines = append(lines, "memqcache_maxcache = "+q(c.MaxCache))
	}
	return strings.Join(lines, "\n") + "\n"
}

// StartPgpool writes pgpool.conf, pool_hba.conf (trust from 127.0.0.1),
// an empty pool_passwd and pcp.conf, and starts pgpool in the foreground
// (-n) as c.Account on a free port of 127.0.0.1, and waits until it
// answers a query. Defaults: 40 children, a 256MB cache.
func StartPgpool(ctx context.Context, c PgpoolConfig) (*Pgpool, error) {
	if c.Path == "" {
		var err error
		if c.Path, err = LookBinary("SQLCACHED_PGPOOL", "pgpool", "/usr/sbin/pgpool"); err != nil {
			return nil, err
		}
	}
	if c.Children == 0 {
		c.Children = 40
	}
	if c.CacheSize == "" {
		c.CacheSize = "256MB"
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	pcpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"pgpool.conf":   pgpoolConf(c, port, pcpPort),
		"pool_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
		"pool_passwd":   "",
		"pcp.conf":      "",
	}
	for name, text := range files {
		p := filepath.Join(c.Dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return nil, err
		}
		if err := c.Account.Chown(p); err != nil {
			return nil, err
		}
	}
	oid := filepath.Join(c.Dir, "oiddir")
	if err := os.MkdirAll(oid, 0o755); err != nil {
		return nil, err
	}
	if err := c.Account.Chown(oid); err != nil {
		return nil, err
	}
	p := &Pgpool{Endpoint: Endpoint{Host: "127.0.0.1", Port: port}}
	cmd := Command{
		Name: "pgpool", Path: c.Path, Dir: c.Dir, Account: c.Account, Log: filepath.Join(c.Dir, "pgpool.log"),
		Args: []string{"-n",
			"-f", filepath.Join(c.Dir, "pgpool.conf"),
			"-a", filepath.Join(c.Dir, "pool_hba.conf"),
			"-F", filepath.Join(c.Dir, "pcp.conf"),
			"-k", filepath.Join(c.Dir, "pgpoolkey")},
	}
	dsn := p.DSN("postgres", c.Database)
	p.proc, err = launch(ctx, cmd, func(ctx context.Context) error { return PingPostgres(ctx, dsn) }, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("servers: pgpool on port %d: %w", port, err)
	}
	return p, nil
}

// Stop shuts pgpool down in fast mode (SIGINT) and kills what is left of
// its process group.
func (p *Pgpool) Stop() error {
	return p.proc.Stop(syscall.SIGINT, 15*time.Second)
}
