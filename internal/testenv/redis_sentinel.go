package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// RedisSentinel is a Redis master, one replica of it, and sentinels
// monitoring the master under MasterName. Each is a Redis on a free loopback
// port in a directory under Dir, without persistence.
type RedisSentinel struct {
	MasterName string
	Servers    []*Redis // the master as started, then its replica; after a failover, see Master
	Sentinels  []*Redis
	Dir        string // holds every process's directory
}

// SentinelAddrs returns the sentinels' addresses, "127.0.0.1:PORT", the
// addresses a failover client is given.
func (s *RedisSentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr
	}
	return addrs
}

// MasterAddr returns the master's address as the first sentinel that answers
// reports it.
func (s *RedisSentinel) MasterAddr() (string, error) {
	var errs []error
	for _, n := range s.Sentinels {
		addr, err := sentinelMaster(n.Addr, s.MasterName)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", n.Addr, err))
	}
	return "", fmt.Errorf("testenv: no sentinel reports master %q: %w", s.MasterName, errors.Join(errs...))
}

// Master returns the server the sentinels report as master, and the other.
func (s *RedisSentinel) Master() (master, replica *Redis, err error) {
	addr, err := s.MasterAddr()
	if err != nil {
		return nil, nil, err
	}
	switch addr {
	case s.Servers[0].Addr:
		return s.Servers[0], s.Servers[1], nil
	case s.Servers[1].Addr:
		return s.Servers[1], s.Servers[0], nil
	}
	return nil, nil, fmt.Errorf("testenv: sentinels report master %s, neither of %s and %s", addr, s.Servers[0].Addr, s.Servers[1].Addr)
}

// Failover makes the replica the master with SENTINEL FAILOVER, sent to the
// first sentinel, and waits until the roles are swapped: every sentinel
// reports the new master, and the former master, turned into its replica by
// the sentinels, has its link up. The sentinels wait about ten seconds
// before turning a former master that still runs into a replica, and so does
// Failover. The sentinels may learn of the new replica's link a few seconds
// later still: call WaitReady before another failover.
func (s *RedisSentinel) Failover() error {
	master, replica, err := s.Master()
	if err != nil {
		return err
	}
	if _, err := redisCommand(s.Sentinels[0].Addr, "SENTINEL", "FAILOVER", s.MasterName); err != nil {
		return fmt.Errorf("testenv: SENTINEL FAILOVER %s: %w", s.MasterName, err)
	}
	return s.wait(replica, master, false, fmt.Sprintf("failover from %s to %s", master.Addr, replica.Addr))
}

// KillMaster kills the master (SIGKILL) and waits until every sentinel
// reports its replica as the master and the replica has taken the role. The
// sentinels wait five seconds without an answer before they agree that the
// master is down, so KillMaster takes several seconds. The killed server
// stays down; Start brings it back, empty, and the sentinels then make it a
// replica of the new master.
func (s *RedisSentinel) KillMaster() error {
	master, replica, err := s.Master()
	if err != nil {
		return err
	}
	if err := master.Kill(); err != nil {
		return err
	}
	return s.wait(replica, nil, false, fmt.Sprintf("failover from %s, killed, to %s", master.Addr, replica.Addr))
}

// WaitReady waits until every sentinel reports the current master, knows
// its replica as up and, with several sentinels, knows the others; and
// until the replica's link to the master is up.
func (s *RedisSentinel) WaitReady() error {
	master, replica, err := s.Master()
	if err != nil {
		return err
	}
	return s.wait(master, replica, true, "sentinel setup")
}

// wait waits until the setup is whole with master and replica, or a minute
// passes. A nil replica is not checked (it is down). knowReplica asks also
// that every sentinel has seen the replica's link up, which it learns only
// every ten seconds.
func (s *RedisSentinel) wait(master, replica *Redis, knowReplica bool, what string) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for {
		if last = s.check(master, replica, knowReplica); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v: %w\n%s", what, startTimeout, last, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// check returns why the setup is not whole yet with master and replica, or
// nil.
func (s *RedisSentinel) check(master, replica *Redis, knowReplica bool) error {
	for _, sn := range s.Sentinels {
		addr, err := sentinelMaster(sn.Addr, s.MasterName)
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", sn.Addr, err)
		}
		if addr != master.Addr {
			return fmt.Errorf("sentinel %s reports master %s, want %s", sn.Addr, addr, master.Addr)
		}
		m, err := redisCommand(sn.Addr, "SENTINEL", "MASTER", s.MasterName)
		if err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL MASTER: %w", sn.Addr, err)
		}
		mf := pairs(m)
		if mf["flags"] != "master" || mf["num-other-sentinels"] != strconv.Itoa(len(s.Sentinels)-1) {
			return fmt.Errorf("sentinel %s: master flags %q, %s other sentinels", sn.Addr, mf["flags"], mf["num-other-sentinels"])
		}
		if !knowReplica || replica == nil {
			continue
		}
		rs, err := redisCommand(sn.Addr, "SENTINEL", "REPLICAS", s.MasterName)
		if err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", sn.Addr, err)
		}
		known := false
		list, _ := rs.([]any)
		for _, r := range list {
			rf := pairs(r)
			if net.JoinHostPort(rf["ip"], rf["port"]) == replica.Addr && rf["flags"] == "slave" && rf["master-link-status"] == "ok" {
				known = true
			}
		}
		if !known {
			return fmt.Errorf("sentinel %s does not know %s as a replica with its link up: %v", sn.Addr, replica.Addr, rs)
		}
	}
	info, err := redisText(master.Addr, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("master %s: %w", master.Addr, err)
	}
	if role := infoFields(info)["role"]; role != "master" {
		return fmt.Errorf("master %s has role %s", master.Addr, role)
	}
	if replica == nil {
		return nil
	}
	info, err = redisText(replica.Addr, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("replica %s: %w", replica.Addr, err)
	}
	f := infoFields(info)
	if f["role"] != "slave" || net.JoinHostPort(f["master_host"], f["master_port"]) != master.Addr || f["master_link_status"] != "up" {
		return fmt.Errorf("replica %s: role:%s master %s:%s master_link_status:%s", replica.Addr, f["role"], f["master_host"], f["master_port"], f["master_link_status"])
	}
	return nil
}

// logs returns the tail of every process's log.
func (s *RedisSentinel) logs() string {
	return redisLogs(append(append([]*Redis(nil), s.Servers...), s.Sentinels...))
}

// destroy kills every process and removes the setup's directory.
func (s *RedisSentinel) destroy() error {
	var errs []error
	for _, n := range append(append([]*Redis(nil), s.Sentinels...), s.Servers...) {
		errs = append(errs, n.destroy())
	}
	errs = append(errs, os.RemoveAll(s.Dir))
	return errors.Join(errs...)
}

// NewRedisSentinel starts a master, its replica and sentinels (1 or 3)
// monitoring it, for one test; they are killed and removed when the test
// ends. It returns once the setup is ready (see WaitReady).
func NewRedisSentinel(t testing.TB, sentinels int) *RedisSentinel {
	t.Helper()
	return dedicated(t, "redis sentinel setup", func() (*RedisSentinel, error) { return startRedisSentinel(sentinels) })
}

// sentinelMasterName is the name the sentinels monitor the master under.
const sentinelMasterName = "sqlcached-test"

func startRedisSentinel(sentinels int) (*RedisSentinel, error) {
	if sentinels != 1 && sentinels != 3 {
		return nil, fmt.Errorf("testenv: %d sentinels, want 1 or 3", sentinels)
	}
	dir, err := makeDir("redis-sentinel", nil)
	if err != nil {
		return nil, err
	}
	s := &RedisSentinel{MasterName: sentinelMasterName, Dir: dir}
	fail := func(err error) (*RedisSentinel, error) {
		if derr := s.destroy(); derr != nil {
			err = fmt.Errorf("%w (and removing it: %v)", err, derr)
		}
		return nil, err
	}
	start := func(name string, c servers.RedisConfig) (*Redis, error) {
		sub := filepath.Join(dir, name)
		if err := os.Mkdir(sub, 0o700); err != nil {
			return nil, err
		}
		r, err := startRedisIn(sub, c)
		if err != nil {
			return nil, fmt.Errorf("testenv: redis %s: %w", name, err)
		}
		return r, nil
	}
	// Full resynchronisations start at once rather than after the default
	// five seconds of waiting for more replicas.
	replConf := []string{"repl-diskless-sync yes", "repl-diskless-sync-delay 0"}
	master, err := start("master", servers.RedisConfig{Conf: replConf})
	if err != nil {
		return fail(err)
	}
	s.Servers = append(s.Servers, master)
	host, port, _ := net.SplitHostPort(master.Addr)
	replica, err := start("replica", servers.RedisConfig{Conf: append([]string{"replicaof " + host + " " + port}, replConf...)})
	if err != nil {
		return fail(err)
	}
	s.Servers = append(s.Servers, replica)

	// A master is down after 5s without an answer: long enough that a
	// loaded machine does not fail it over by itself, short enough for a
	// test that kills it.
	name := s.MasterName
	conf := []string{
		fmt.Sprintf("sentinel monitor %s %s %s %d", name, host, port, sentinels/2+1),
		fmt.Sprintf("sentinel down-after-milliseconds %s 5000", name),
		fmt.Sprintf("sentinel failover-timeout %s 20000", name),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}
	for i := range sentinels {
		sn, err := start(fmt.Sprintf("sentinel%d", i), servers.RedisConfig{Sentinel: true, Conf: conf})
		if err != nil {
			return fail(err)
		}
		s.Sentinels = append(s.Sentinels, sn)
	}
	if err := s.wait(master, replica, true, "sentinel setup"); err != nil {
		return fail(err)
	}
	return s, nil
}

// sentinelMaster asks the sentinel at addr for the address of master name.
func sentinelMaster(addr, name string) (string, error) {
	v, err := redisCommand(addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
	if err != nil {
		return "", err
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME answered %v", v)
	}
	return net.JoinHostPort(fmt.Sprint(hp[0]), fmt.Sprint(hp[1])), nil
}

// pairs turns a RESP2 reply of alternating fields and values into a map.
func pairs(v any) map[string]string {
	m := make(map[string]string)
	list, _ := v.([]any)
	for i := 0; i+1 < len(list); i += 2 {
		m[fmt.Sprint(list[i])] = fmt.Sprint(list[i+1])
	}
	return m
}
