package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a private Redis server on a free loopback port in a temporary
// directory, without persistence.
type Redis struct {
	Addr string // "127.0.0.1:PORT"
	Dir  string // working directory, holding redis.conf and redis.log

	bin      string
	conf     []string // lines appended to redis.conf: a cluster node's, a replica's, a sentinel's
	sentinel bool     // run as a sentinel (redis-server redis.conf --sentinel)

	mu       sync.Mutex // protects proc and confAddr
	proc     *process
	confAddr string // the address redis.conf was written for
}

// URL returns the server's URL for database db, redis://127.0.0.1:PORT/DB.
func (r *Redis) URL(db int) string {
	return fmt.Sprintf("redis://%s/%d", r.Addr, db)
}

// LogFile returns the path of the server's log.
func (r *Redis) LogFile() string { return filepath.Join(r.Dir, "redis.log") }

// Kill kills the server (SIGKILL) and waits until it has exited. Its data is
// lost. Killing a stopped server does nothing.
func (r *Redis) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.exited() {
		return nil
	}
	if err := r.proc.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return r.proc.wait(stopTimeout)
}

// Start starts a killed server again on the same port, empty, and waits
// until it answers PING.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && !r.proc.exited() {
		return errors.New("testenv: redis is already running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.startLocked()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Pause stops the server (SIGSTOP) without closing its connections: clients
// see a Redis that accepts and then never answers, as a hung one would.
func (r *Redis) Pause() error { return r.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (r *Redis) Resume() error { return r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.exited() {
		return errors.New("testenv: redis is not running")
	}
	return r.proc.signal(sig)
}

// startLocked writes the configuration, starts redis-server and waits until
// it answers PING. r.mu is held. The configuration is written once per
// address, so that what the server rewrites in it (a sentinel's view of its
// master and replicas) survives a restart.
func (r *Redis) startLocked() error {
	confPath := filepath.Join(r.Dir, "redis.conf")
	if r.confAddr != r.Addr {
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
		if err := os.WriteFile(confPath, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			return err
		}
		r.confAddr = r.Addr
	}
	args := []string{confPath}
	if r.sentinel {
		args = append(args, "--sentinel")
	}
	proc, err := spawn(exec.Command(r.bin, args...))
	if err != nil {
		return fmt.Errorf("testenv: starting redis-server: %w", err)
	}
	r.proc = proc
	if err := r.waitReady(); err != nil {
		_ = proc.signal(syscall.SIGKILL)
		_ = proc.wait(stopTimeout)
		return fmt.Errorf("testenv: redis on %s: %w\n--- %s (tail) ---\n%s", r.Addr, err, r.LogFile(), logTail(r.LogFile()))
	}
	return nil
}

// waitReady waits until the server answers PING, or exits.
func (r *Redis) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if r.proc.exited() {
			return fmt.Errorf("redis-server exited: %v", r.proc.err)
		}
		if lastErr = ping(r.Addr); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %v", startTimeout, lastErr)
}

// ping sends a RESP PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
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

// destroy kills the server and removes its directory.
func (r *Redis) destroy() error {
	_ = r.Resume() // a stopped process cannot be reaped until it runs
	err := r.Kill()
	if rerr := os.RemoveAll(r.Dir); err == nil {
		err = rerr
	}
	return err
}

// NewRedis starts a dedicated server for one test, killed and removed when
// the test ends. Use it for tests that kill, restart or pause the server.
func NewRedis(t testing.TB) *Redis { return dedicated(t, "redis", startRedis) }

var sharedRedis shared[*Redis]

// SharedRedis returns the test binary's shared server, started on first use.
// Tests must not kill or pause it, and should keep to their own keys (or
// their own database number). Main stops it after the last test.
func SharedRedis(t testing.TB) *Redis { return sharedRedis.get(t, startRedis) }

// startRedis starts a server on a free port in a directory of its own,
// trying other ports if one is taken meanwhile.
func startRedis() (*Redis, error) {
	dir, err := makeDir("redis", owner{})
	if err != nil {
		return nil, err
	}
	r, err := startRedisIn(dir, redisSpec{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// redisSpec says how a server differs from a plain one.
type redisSpec struct {
	sentinel bool
	// conf returns the lines added to redis.conf for one attempt; it may
	// take free ports of its own (a cluster node's bus port).
	conf func() ([]string, error)
}

// startRedisIn starts a server as spec says on a free port in dir, which
// must exist, trying other ports if one is taken meanwhile.
func startRedisIn(dir string, spec redisSpec) (*Redis, error) {
	bin, err := lookBinary("SQLCACHED_REDIS_SERVER", "redis-server", "/usr/bin/redis-server")
	if err != nil {
		return nil, err
	}
	r := &Redis{Dir: dir, bin: bin, sentinel: spec.sentinel}
	for attempt := 0; ; attempt++ {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if spec.conf != nil {
			if r.conf, err = spec.conf(); err != nil {
				break
			}
		}
		r.mu.Lock()
		r.confAddr = "" // a new attempt, a new configuration
		err = r.startLocked()
		r.mu.Unlock()
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}
