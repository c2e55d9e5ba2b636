package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// clusterMasters is the number of masters of a RedisCluster.
const clusterMasters = 3

// RedisCluster is a Redis Cluster of three masters without replicas, created
// with redis-cli --cluster create. Each node is a Redis on free loopback
// ports (client and cluster bus) in a directory under Dir, without
// persistence.
type RedisCluster struct {
	Nodes []*Redis // the masters, each holding a third of the slots
	Dir   string   // holds the nodes' directories and create.log, redis-cli's output
}

// Addrs returns the nodes' addresses, "127.0.0.1:PORT", the seed nodes of a
// cluster client.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL returns the cluster's URL as go-redis's ParseClusterURL reads it:
// redis://FIRST?addr=SECOND&addr=THIRD.
func (c *RedisCluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr
	for i, n := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr
	}
	return u
}

// CreateLog returns the path of redis-cli --cluster create's output.
func (c *RedisCluster) CreateLog() string { return filepath.Join(c.Dir, "create.log") }

// WaitOK waits until every running node says cluster_state:ok and knows
// every other node, or a minute passes.
func (c *RedisCluster) WaitOK() error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for {
		if last = c.checkOK(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: redis cluster not ok after %v: %w\n%s", startTimeout, last, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOK returns why the cluster is not ok yet, or nil.
func (c *RedisCluster) checkOK() error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := redisText(n.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		f := infoFields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != "16384" || f["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: cluster_state:%s cluster_slots_ok:%s cluster_known_nodes:%s",
				n.Addr, f["cluster_state"], f["cluster_slots_ok"], f["cluster_known_nodes"])
		}
	}
	return nil
}

// logs returns the tail of redis-cli's output and of every node's log.
func (c *RedisCluster) logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", c.CreateLog(), servers.LogTail(c.CreateLog()))
	b.WriteString(redisLogs(c.Nodes))
	return b.String()
}

// destroy kills every node and removes the cluster's directory.
func (c *RedisCluster) destroy() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.destroy())
	}
	errs = append(errs, os.RemoveAll(c.Dir))
	return errors.Join(errs...)
}

// NewRedisCluster starts a dedicated cluster for one test, killed and
// removed when the test ends. Use it for tests that kill, restart or pause
// a node.
func NewRedisCluster(t testing.TB) *RedisCluster {
	return dedicated(t, "redis cluster", startRedisCluster)
}

var sharedCluster shared[*RedisCluster]

// SharedRedisCluster returns the test binary's shared cluster, started on
// first use. Tests must not kill or pause its nodes, and should keep to
// their own keys. Main stops it after the last test.
func SharedRedisCluster(t testing.TB) *RedisCluster {
	return sharedCluster.get(t, startRedisCluster)
}

// startRedisCluster starts three cluster-enabled servers, joins them into a
// cluster with redis-cli and waits until every node says it is ok.
func startRedisCluster() (*RedisCluster, error) {
	cli, err := redisCLI()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir("redis-cluster", nil)
	if err != nil {
		return nil, err
	}
	c := &RedisCluster{Dir: dir}
	fail := func(err error) (*RedisCluster, error) {
		if derr := c.destroy(); derr != nil {
			err = fmt.Errorf("%w (and removing it: %v)", err, derr)
		}
		return nil, err
	}
	for i := range clusterMasters {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return fail(err)
		}
		// The bus port is a free port of its own: the default, the client
		// port plus 10000, may be taken or beyond 65535.
		n, err := startRedisIn(nodeDir, servers.RedisConfig{PortConf: func() ([]string, error) {
			bus, err := servers.FreePort()
			if err != nil {
				return nil, err
			}
			return []string{
				"cluster-enabled yes",
				"cluster-config-file nodes.conf",
				"cluster-port " + strconv.Itoa(bus),
			}, nil
		}})
		if err != nil {
			return fail(fmt.Errorf("testenv: redis cluster node %d: %w", i, err))
		}
		c.Nodes = append(c.Nodes, n)
	}

	out, err := os.Create(c.CreateLog())
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	cancel()
	out.Close()
	if err != nil {
		return fail(fmt.Errorf("testenv: redis-cli --cluster create: %w\n%s", err, c.logs()))
	}
	if err := c.WaitOK(); err != nil {
		return fail(err)
	}
	return c, nil
}

// redisCLI finds redis-cli: $SQLCACHED_REDIS_CLI, beside redis-server, then
// on $PATH.
func redisCLI() (string, error) {
	var candidates []string
	if server, err := servers.LookBinary("SQLCACHED_REDIS_SERVER", "redis-server", "/usr/bin/redis-server"); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(server), "redis-cli"))
	}
	return servers.LookBinary("SQLCACHED_REDIS_CLI", "redis-cli", candidates...)
}

// redisLogs returns the tail of each server's log.
func redisLogs(rs []*Redis) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", r.LogFile(), servers.LogTail(r.LogFile()))
	}
	return b.String()
}

// redisCommand sends one command to the server at addr on a connection of
// its own (RESP2, no retries) and returns its reply.
func redisCommand(addr string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    2 * time.Second,
		PoolSize:        1,
	})
	defer c.Close()
	return c.Do(context.Background(), args...).Result()
}

// redisText sends a command whose reply is a string (INFO, CLUSTER INFO).
func redisText(addr string, args ...any) (string, error) {
	v, err := redisCommand(addr, args...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%v answered %T, not a string", args, v)
	}
	return s, nil
}

// infoFields parses the "field:value" lines of INFO and CLUSTER INFO.
func infoFields(info string) map[string]string {
	m := make(map[string]string)
	for line := range strings.SplitSeq(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}
