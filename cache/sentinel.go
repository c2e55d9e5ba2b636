package cache

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// sentinelPing is how long the subscription to a sentinel may stay silent
// before it is pinged; a sentinel that does not answer the ping within as
// long again is left for the next one.
const sentinelPing = 3 * time.Second

// sentinel is the master of a Sentinel setup as a Group follows it, and the
// client of that master.
//
// go-redis's failover client is not used: it follows the master through a
// sentinel of its own, and moves its command connections, not a
// subscription, when it hears of a switch. A Group that heard of the switch
// before it would send its reads and invalidations to the former master,
// which still takes writes until the sentinels demote it and then loses
// them; a subscription would stay there, where nobody publishes any more.
// Here one subscription to a sentinel (see Group.followMaster) names the
// master for everything: the client dials the address it last named, and a
// switch replaces the client, so that no command and no subscription goes
// to the former master after it.
type sentinel struct {
	opt   *redis.FailoverOptions // from the configuration, bounds set
	addrs []string               // the sentinels

	mu     sync.Mutex    // protects the fields below
	master string        // host:port; empty until a sentinel names it
	rdb    *redis.Client // dials master; replaced at each switch
}

func newSentinel(o *redis.FailoverOptions) *sentinel {
	s := &sentinel{opt: o, addrs: slices.Clone(o.SentinelAddrs)}
	s.rdb = s.newClient()
	return s
}

// newClient returns a client whose connections dial the master's address
// of the moment.
func (s *sentinel) newClient() *redis.Client {
	o := s.masterOptions(s.opt.MasterName)
	dial := redis.NewDialer(o)
	o.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) {
		addr := s.masterAddr()
		if addr == "" {
			return nil, errors.New("cache: no sentinel has named the master yet")
		}
		return dial(ctx, network, addr)
	}
	return redis.NewClient(o)
}

// masterOptions are the options of a client of the master at addr: the
// configured credentials, database, TLS, pool and bounds, as go-redis's
// failover client would have them.
func (s *sentinel) masterOptions(addr string) *redis.Options {
	o := s.opt
	return &redis.Options{
		Addr:                     addr,
		ClientName:               o.ClientName,
		Protocol:                 o.Protocol,
		Username:                 o.Username,
		Password:                 o.Password,
		DB:                       o.DB,
		TLSConfig:                o.TLSConfig,
		MaxRetries:               o.MaxRetries,
		MinRetryBackoff:          o.MinRetryBackoff,
		MaxRetryBackoff:          o.MaxRetryBackoff,
		DialTimeout:              o.DialTimeout,
		DialerRetries:            o.DialerRetries,
		DialerRetryTimeout:       o.DialerRetryTimeout,
		ReadTimeout:              o.ReadTimeout,
		WriteTimeout:             o.WriteTimeout,
		ContextTimeoutEnabled:    o.ContextTimeoutEnabled,
		PoolFIFO:                 o.PoolFIFO,
		PoolSize:                 o.PoolSize,
		PoolTimeout:              o.PoolTimeout,
		MaxConcurrentDials:       o.MaxConcurrentDials,
		MinIdleConns:             o.MinIdleConns,
		MaxIdleConns:             o.MaxIdleConns,
		MaxActiveConns:           o.MaxActiveConns,
		ConnMaxIdleTime:          o.ConnMaxIdleTime,
		ConnMaxLifetime:          o.ConnMaxLifetime,
		ConnMaxLifetimeJitter:    o.ConnMaxLifetimeJitter,
		PipelinePoolSize:         o.PipelinePoolSize,
		PipelineReadBufferSize:   o.PipelineReadBufferSize,
		PipelineWriteBufferSize:  o.PipelineWriteBufferSize,
		DisableIdentity:          o.DisableIdentity,
		IdentitySuffix:           o.IdentitySuffix,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// sentinelOptions are the options of a client of the sentinel at addr,
// with the sentinels' credentials, as go-redis's failover client has them.
func (s *sentinel) sentinelOptions(addr string) *redis.Options {
	o := s.masterOptions(addr)
	o.Username, o.Password, o.DB = s.opt.SentinelUsername, s.opt.SentinelPassword, 0
	return o
}

func (s *sentinel) masterAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master
}

func (s *sentinel) client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rdb
}

// setMaster records addr as the master's address. When it replaces another
// (the master switched), it also replaces the client and returns the former
// one, for the caller to close. It is called by one goroutine at a time.
func (s *sentinel) setMaster(addr string) (former *redis.Client) {
	prev := s.masterAddr()
	if prev == addr {
		return nil
	}
	var rdb *redis.Client
	if prev != "" {
		rdb = s.newClient()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.master = addr
	if rdb != nil {
		former, s.rdb = s.rdb, rdb
	}
	return former
}

// resolve asks the sentinels in turn for the master's address until one
// answers or ctx ends.
func (s *sentinel) resolve(ctx context.Context) {
	for _, addr := range s.addrs {
		c := redis.NewSentinelClient(s.sentinelOptions(addr))
		hp, err := c.GetMasterAddrByName(ctx, s.opt.MasterName).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			s.setMaster(net.JoinHostPort(hp[0], hp[1]))
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (s *sentinel) close() { s.client().Close() }

// followMaster follows the master's switches until Close, subscribed to
// one sentinel at a time and moving to the next when it fails.
func (g *Group) followMaster() {
	s := g.l2.sentinel
	for i := 0; ; i++ {
		g.followSentinel(s.addrs[i%len(s.addrs)])
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// followSentinel follows the master's switches as the sentinel at addr
// announces them ("+switch-master"), until it fails or Close. Each time the
// subscription is confirmed or answers a ping, the sentinel is asked for the
// master's address, so that a switch announced while it was down is not
// missed.
func (g *Group) followSentinel(addr string) {
	s := g.l2.sentinel
	c := redis.NewSentinelClient(s.sentinelOptions(addr))
	defer c.Close()
	ps := c.Subscribe(g.ctx)
	defer ps.Close()
	ctx, cancel := context.WithTimeout(g.ctx, g.l2.timeout)
	err := ps.Subscribe(ctx, "+switch-master")
	cancel()
	if err != nil {
		return
	}
	stop := context.AfterFunc(g.ctx, func() { ps.Close() })
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(g.ctx, sentinelPing)
		if g.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if pinged || !errors.As(err, &ne) || !ne.Timeout() || ps.Ping(g.ctx) != nil {
				return
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription, *redis.Pong:
			ctx, cancel := context.WithTimeout(g.ctx, g.l2.timeout)
			hp, err := c.GetMasterAddrByName(ctx, s.opt.MasterName).Result()
			cancel()
			if err != nil || len(hp) != 2 {
				return
			}
			g.masterIs(net.JoinHostPort(hp[0], hp[1]))
		case *redis.Message:
			// "<master name> <old ip> <old port> <new ip> <new port>"
			f := strings.Fields(m.Payload)
			if len(f) == 5 && f[0] == s.opt.MasterName {
				g.masterIs(net.JoinHostPort(f[3], f[4]))
			}
		}
	}
}

// masterIs records addr as the master's address. When the master switched,
// invalidations may have been lost with the former master, here and in the
// other processes (see doc.go). The Group then drops all of its L1, goes
// over to the new master, subscription included (closing what it had on the
// former one), and there moves the allName generation and tells the other
// processes, as InvalidateAll does: no entry written before reads as valid
// any more, and no L1 keeps one. When Redis does not take it, the move is
// left pending and retried. L1 is dropped again once the generation moved,
// for the entries read from Redis meanwhile.
func (g *Group) masterIs(addr string) {
	names := []string{allName}
	if prev := g.l2.sentinel.masterAddr(); prev != "" && prev != addr {
		// Until the generation has moved on the new master, its entries
		// may be ones whose invalidation was lost: Gets skip Redis while
		// an invalidation is pending.
		g.pending.add(names)
	}
	former := g.l2.sentinel.setMaster(addr)
	if former == nil {
		return
	}
	g.stats.masterSwitches.Add(1)
	g.resetL1()
	g.resubscribe()
	former.Close()
	switch err := g.l2.invalidate(g.ctx, names, g.message(names), invalidationsLate); {
	case err == nil:
		g.pending.done(names)
	case g.ctx.Err() == nil:
		g.stats.pending.Add(1) // left pending: retried until Redis takes it
	}
	g.resetL1()
}
