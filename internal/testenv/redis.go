package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// Redis is a private Redis server on a free loopback port in a temporary
// directory, without persistence.
//
// Addr and Dir (its working directory, holding redis.conf and redis.log),
// and URL, LogFile, Kill, Pause and Resume, are the embedded server's.
type Redis struct {
	*servers.Redis
}

// Start starts a killed server again on the same port, empty, and waits
// until it answers PING.
func (r *Redis) Start() error { return r.Redis.Start(context.Background()) }

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

// startRedis starts a server in a directory of its own.
func startRedis() (*Redis, error) {
	dir, err := makeDir("redis", nil)
	if err != nil {
		return nil, err
	}
	r, err := startRedisIn(dir, servers.RedisConfig{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// startRedisIn starts a server as c says (a cluster node, a replica, a
// sentinel) in dir, which must exist, on a free port.
func startRedisIn(dir string, c servers.RedisConfig) (*Redis, error) {
	c.Dir = dir
	r, err := servers.StartRedis(context.Background(), c)
	if err != nil {
		return nil, err
	}
	return &Redis{r}, nil
}
