package servers

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RedisConfig says how to run a redis-server.
type RedisConfig struct {
	// Path is redis-server; default: $SQLCACHED_REDIS_SERVER,
	// /usr/bin/redis-server, or redis-server on $PATH.
	Path string
	// Dir holds redis.conf, redis.log and whatever the server writes. It
	// must exist and belong to Account.
	Dir string
	// Account runs the server; nil: the current user.
	Account *Account
	// Sentinel runs the server as a sentinel (redis-server redis.conf
	// --sentinel).
	Sentinel bool
	// Conf are lines added to redis.conf after its defaults (loopback
	// only, no persistence, protected mode off), which they override: a
	// replica's "replicaof HOST PORT", a sentinel's "sentinel monitor
	// ...", "maxmemory 1gb".
	Conf []string
	// PortConf, if set, returns more lines for each port tried; it may
	// take free ports of its own (a cluster node's bus port).
	PortConf func() ([]string, error)
}

// Redis is a redis-server that StartRedis started, on a loopback port.
type Redis struct {
	Addr string // "127.0.0.1:PORT"
	Dir  string // working directory, holding redis.conf and redis.log

	path     string
	account  *Account
	sentinel bool
	conf     []string // the lines after the defaults, for this address
	confAddr string   // the address redis.conf was written for; guarded by life.mu

	life life // its process across stops and starts
}

// StartRedis starts the server c describes on a free port, trying others
// if one is taken meanwhile, and waits until it answers PING.
func StartRedis(ctx context.Context, c RedisConfig) (*Redis, error) {
	r := &Redis{Dir: c.Dir, path: c.Path, account: c.Account, sentinel: c.Sentinel, life: life{what: "redis"}}
	if r.path == "" {
		var err error
		if r.path, err = LookBinary("SQLCACHED_REDIS_SERVER", "redis-server", "/usr/bin/redis-server"); err != nil {
			return nil, err
		}
	}
	err := r.life.startFirst(ctx, func(ctx context.Context, port int) error {
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.conf, r.confAddr = c.Conf, "" // a new port, a new configuration
		if c.PortConf != nil {
			more, err := c.PortConf()
			if err != nil {
				return err
			}
			r.conf = append(r.conf[:len(r.conf):len(r.conf)], more...)
		}
		return r.startLocked(ctx)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// URL returns the server's URL for database db, redis://127.0.0.1:PORT/DB.
func (r *Redis) URL(db int) string {
	return fmt.Sprintf("redis://%s/%d", r.Addr, db)
}

// LogFile returns the path of the server's log.
func (r *Redis) LogFile() string { return filepath.Join(r.Dir, "redis.log") }

// Running reports whether the server is up: started, and neither stopped
// nor killed since. A paused server is running.
func (r *Redis) Running() bool { return r.life.running() }

// Start starts a stopped or killed server again on the same port, empty,
// and waits until it answers PING.
func (r *Redis) Start(ctx context.Context) error { return r.life.startAgain(ctx, r.startLocked) }

// Stop shuts the server down (SIGTERM) and waits until it has exited.
// Stopping a stopped server does nothing.
func (r *Redis) Stop() error { return r.life.stop(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits until it has exited. Its data
// is lost. Killing a stopped server does nothing.
func (r *Redis) Kill() error { return r.life.stop(syscall.SIGKILL) }

// Pause stops the server (SIGSTOP) without closing its connections:
// clients see a Redis that accepts and then never answers, as a hung one
// would.
func (r *Redis) Pause() error { return r.Signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (r *Redis) Resume() error { return r.Signal(syscall.SIGCONT) }

// Signal sends sig to the running server; one that is not running is an
// error.
func (r *Redis) Signal(sig syscall.Signal) error { return r.life.signal(sig) }

// startLocked writes the configuration, starts redis-server and waits
// until it answers PING. r.life.mu is held. The configuration is written
// once per address, so that what the server rewrites in it (a sentinel's
// view of its master and replicas) survives a restart.
func (r *Redis) startLocked(ctx context.Context) error {
	confPath := filepath.Join(r.Dir, "redis.conf")
	if r.confAddr != r.Addr {
		if err := r.writeConf(confPath); err != nil {
			return err
		}
		r.confAddr = r.Addr
	}
	args := []string{confPath}
	if r.sentinel {
		args = append(args, "--sentinel")
	}
	c := Command{Name: "redis-server", Path: r.path, Args: args, Dir: r.Dir, Account: r.account, Log: r.LogFile()}
	proc, err := launch(ctx, c, func(ctx context.Context) error { return pingRedis(ctx, r.Addr) }, syscall.SIGKILL)
	if err != nil {
		return fmt.Errorf("servers: redis on %s: %w", r.Addr, err)
	}
	r.life.proc = proc
	return nil
}

// writeConf writes redis.conf for r.Addr: the defaults, then r.conf.
func (r *Redis) writeConf(path string) error {
	_, port, _ := net.SplitHostPort(r.Addr)
	lines := []string{
		"port " + port,
		"bind 127.0.0.1",
		"dir " + r.Dir,
		`save ""`,
		"appendonly no",
		"protected-mode no",
		"daemonize no",
		"logfile " + r.LogFile(),
	}
	lines = append(append(lines, r.conf...), "")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		return err
	}
	return r.account.Chown(path)
}

// pingRedis sends a RESP PING to the server at addr and expects +PONG.
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(deadline)
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
