package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"

	"github.com/sqlcached/sqlcached/internal/incident"
)

// Codecs: the first byte of a value in Redis, before the envelope.
const (
	codecRaw  = 0
	codecZstd = 1
)

// allName is the generation name moved by InvalidateAll. Other names start
// with "t:" or "l:".
const allName = "all"

// What a Redis outage affects, as counted by the l2's incident.
const (
	readsWithoutRedis = "reads served without Redis"
	writesDropped     = "writes to Redis dropped"
	invalidationsLate = "invalidations not shared at once (retried until Redis took them)"
	invalidationRetry = "" // the retries of pending invalidations: not counted
)

// opOf names the kind of Redis call that affects what when it fails.
func opOf(what string) string {
	switch what {
	case readsWithoutRedis:
		return "get"
	case writesDropped:
		return "set"
	}
	return "delete"
}

// l2 is the Redis tier. Every call is bounded by timeout and goes through
// the breaker; a failure is counted and reported as a miss, and its outcome
// reported to the incident, which logs an outage once when it starts and
// once when a call succeeds again.
type l2 struct {
	client   redis.UniversalClient // nil in sentinel mode: see rdb
	sentinel *sentinel             // nil unless in sentinel mode
	ns       string                // "<Namespace>:v1:"
	timeout  time.Duration
	compress int
	maxTTL   time.Duration
	maxEntry int
	stats    *counters
	breaker  breaker
	incident *incident.Incident // "redis"
	onCall   func(op string, d time.Duration, failed bool)

	enc *zstd.Encoder
	dec *zstd.Decoder

	queue chan *Entry // stores waiting for a writer
}

func newL2(cfg *L2Config, maxEntry int, now func() time.Time, stats *counters, log *slog.Logger, onCall func(op string, d time.Duration, failed bool)) (*l2, error) {
	quietRedisLog.Do(func() { redis.SetLogger(redisLog{}) })
	client, sent, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	closeClients := func() {
		if client != nil {
			client.Close()
		}
		if sent != nil {
			sent.close()
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(cfg.Writers))
	if err != nil {
		closeClients()
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(maxEntry)), zstd.WithDecoderConcurrency(2))
	if err != nil {
		closeClients()
		return nil, err
	}
	return &l2{
		onCall:   onCall,
		client:   client,
		sentinel: sent,
		ns:       cfg.Namespace + ":v1:",
		timeout:  cfg.Timeout,
		compress: cfg.CompressAbove,
		maxTTL:   cfg.MaxTTL,
		maxEntry: maxEntry,
		stats:    stats,
		breaker:  breaker{threshold: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown, now: now},
		incident: incident.New(log, slog.LevelWarn, "redis"),
		enc:      enc,
		dec:      dec,
		queue:    make(chan *Entry, cfg.WriteQueue),
	}, nil
}

// quietRedisLog moves go-redis's own lines, one per failed dial while Redis
// is down, to debug level: the l2's incident reports the outage. go-redis
// has one logger per process, so this is done once, by the first Group
// with an L2.
var quietRedisLog sync.Once

// redisLog writes go-redis's lines to slog.Default() at debug level.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	if l := slog.Default(); l.Enabled(ctx, slog.LevelDebug) {
		l.DebugContext(ctx, fmt.Sprintf(format, v...), "from", "go-redis")
	}
}

// newClient builds the client for cfg's mode or, in sentinel mode, what
// follows the master the sentinels name (see sentinel). Every layer of
// go-redis gets the same bound: dial, read, write and pool wait, no retries,
// and contexts' deadlines honoured, so that a hung server costs a call at
// most timeout.
func newClient(cfg *L2Config) (redis.UniversalClient, *sentinel, error) {
	t := cfg.Timeout
	switch {
	case cfg.Mode == ModeCluster:
		o := (&redis.UniversalOptions{Addrs: cfg.Addrs, Username: cfg.Username, Password: cfg.Password}).Cluster()
		if cfg.URL != "" {
			var err error
			if o, err = redis.ParseClusterURL(cfg.URL); err != nil {
				return nil, nil, fmt.Errorf("cache: L2 URL: %w", err)
			}
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = t, t, t, t
		o.MaxRetries, o.ContextTimeoutEnabled = -1, true
		return redis.NewClusterClient(o), nil, nil
	case cfg.Mode == ModeSentinel:
		o := (&redis.UniversalOptions{Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB}).Failover()
		if cfg.URL != "" {
			var err error
			if o, err = redis.ParseFailoverURL(cfg.URL); err != nil {
				return nil, nil, fmt.Errorf("cache: L2 URL: %w", err)
			}
			if cfg.MasterName != "" {
				o.MasterName = cfg.MasterName
			}
		}
		if o.ReplicaOnly || o.RouteByLatency || o.RouteRandomly || o.UseDisconnectedReplicas {
			return nil, nil, errors.New("cache: L2 URL: sentinel mode reads and writes the master only")
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = t, t, t, t
		o.MaxRetries, o.ContextTimeoutEnabled = -1, true
		return nil, newSentinel(o), nil
	default:
		o := &redis.Options{Addr: first(cfg.Addrs), Username: cfg.Username, Password: cfg.Password, DB: cfg.DB}
		if cfg.URL != "" {
			var err error
			if o, err = redis.ParseURL(cfg.URL); err != nil {
				return nil, nil, fmt.Errorf("cache: L2 URL: %w", err)
			}
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = t, t, t, t
		o.MaxRetries, o.ContextTimeoutEnabled = -1, true
		return redis.NewClient(o), nil, nil
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// rdb returns the client to use now: in sentinel mode, that of the master
// the sentinels last named.
func (r *l2) rdb() redis.UniversalClient {
	if r.sentinel != nil {
		return r.sentinel.client()
	}
	return r.client
}

func (r *l2) entryKey(k Key) string     { return r.ns + "e:" + k.String() }
func (r *l2) genKey(name string) string { return r.ns + "g:" + name }
func (r *l2) channel() string           { return r.ns + "invalidate" }

// call runs f under the breaker with the timeout. It returns false, having
// counted the failure and what it affected, when Redis is not called or
// fails; ctx ending is not Redis's failure and is not counted against it,
// nor is the client being closed under the call (in sentinel mode, when the
// master switches).
func (r *l2) call(ctx context.Context, what string, f func(ctx context.Context) error) bool {
	allowed, probe := r.breaker.allow()
	if !allowed {
		r.incident.Count(what)
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	start := time.Now()
	err := f(cctx)
	cancel()
	if r.onCall != nil {
		r.onCall(opOf(what), time.Since(start), err != nil)
	}
	if err != nil && (ctx.Err() != nil || errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed)) {
		r.breaker.abandon(probe)
		return false
	}
	if err != nil {
		r.stats.l2Errors.Add(1)
		r.incident.Fail(err, what)
	} else {
		r.incident.OK()
	}
	if r.breaker.done(err == nil, probe) {
		r.stats.breakerOpened.Add(1)
	}
	return err == nil
}

// get reads the value of k and the current generations of names in one
// round trip. raw is nil when Redis has no value; ok is false when Redis
// could not answer.
func (r *l2) get(ctx context.Context, k Key, names []string) (raw []byte, gens []uint64, ok bool) {
	ok = r.call(ctx, readsWithoutRedis, func(ctx context.Context) error {
		pipe := r.rdb().Pipeline()
		val := pipe.Get(ctx, r.entryKey(k))
		cmds := r.queueGens(ctx, pipe, names)
		_, _ = pipe.Exec(ctx)
		var err error
		if raw, err = val.Bytes(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		gens, err = genValues(cmds)
		return err
	})
	return raw, gens, ok
}

// gens reads the current generations of names; what is what its failure
// affects.
func (r *l2) gens(ctx context.Context, names []string, what string) (gens []uint64, ok bool) {
	ok = r.call(ctx, what, func(ctx context.Context) error {
		pipe := r.rdb().Pipeline()
		cmds := r.queueGens(ctx, pipe, names)
		_, _ = pipe.Exec(ctx)
		var err error
		gens, err = genValues(cmds)
		return err
	})
	return gens, ok
}

// queueGens queues one GET per generation rather than an MGET, which a
// cluster would refuse across slots.
func (r *l2) queueGens(ctx context.Context, pipe redis.Pipeliner, names []string) []*redis.StringCmd {
	cmds := make([]*redis.StringCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.Get(ctx, r.genKey(n))
	}
	return cmds
}

func genValues(cmds []*redis.StringCmd) ([]uint64, error) {
	gens := make([]uint64, len(cmds))
	for i, c := range cmds {
		v, err := c.Uint64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		gens[i] = v
	}
	return gens, nil
}

// decode turns a value read from Redis into an entry for k; a value that does
// not decode is counted and read as a miss.
func (r *l2) decode(k Key, raw []byte) *Entry {
	if len(raw) < 2 {
		r.stats.l2Corrupt.Add(1)
		return nil
	}
	body := raw[1:]
	switch raw[0] {
	case codecRaw:
	case codecZstd:
		var err error
		if body, err = r.dec.DecodeAll(body, nil); err != nil {
			r.stats.l2Corrupt.Add(1)
			return nil
		}
	default:
		r.stats.l2Corrupt.Add(1)
		return nil
	}
	e, err := Decode(body)
	if err != nil || e.Key != k || e.gens == nil {
		r.stats.l2Corrupt.Add(1)
		return nil
	}
	return e
}

// encode returns the value of e as stored in Redis.
func (r *l2) encode(e *Entry) []byte {
	if r.compress < 0 || e.Size() <= r.compress {
		return e.Encode(append(make([]byte, 0, 1+e.Size()), codecRaw))
	}
	return r.enc.EncodeAll(e.Encode(make([]byte, 0, e.Size())), []byte{codecZstd})
}

// enqueue hands e to the writers, or drops it when the queue is full.
func (r *l2) enqueue(e *Entry) {
	select {
	case r.queue <- e:
	default:
		r.stats.l2WritesDropped.Add(1)
		r.incident.Count(writesDropped)
	}
}

// writer writes queued entries until ctx ends.
func (r *l2) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.queue:
			r.write(ctx, e)
		}
	}
}

// write stores e unless one of its generations moved since its fill
// started. An invalidation may still land between the check and the SET;
// readers check the generations again (see doc.go).
func (r *l2) write(ctx context.Context, e *Entry) {
	names := remoteNames(e.Tables, e.Labels)
	now, ok := r.gens(ctx, names, writesDropped)
	if !ok {
		r.stats.l2WritesDropped.Add(1)
		return
	}
	if !equalGens(now, e.gens) {
		r.stats.storeSkipped.Add(1)
		return
	}
	val := r.encode(e)
	ttl := min(e.window, r.maxTTL)
	if r.call(ctx, writesDropped, func(ctx context.Context) error {
		return r.rdb().Set(ctx, r.entryKey(e.Key), val, ttl).Err()
	}) {
		r.stats.l2Writes.Add(1)
	} else {
		r.stats.l2WritesDropped.Add(1)
	}
}

// invalidate moves the generations of names in Redis and tells the other
// processes. Generation keys outlive every entry that could have read their
// earlier value (MaxTTL plus a margin). what is what its failure affects.
func (r *l2) invalidate(ctx context.Context, names []string, msg []byte, what string) error {
	var err error
	if r.call(ctx, what, func(ctx context.Context) error {
		pipe := r.rdb().Pipeline()
		for _, n := range names {
			pipe.Incr(ctx, r.genKey(n))
			pipe.Expire(ctx, r.genKey(n), r.maxTTL+time.Hour)
		}
		pipe.Publish(ctx, r.channel(), msg)
		_, err = pipe.Exec(ctx)
		return err
	}) {
		return nil
	}
	if err == nil {
		err = errors.New("redis unavailable")
	}
	return err
}

func equalGens(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (r *l2) close() {
	if r.client != nil {
		r.client.Close()
	}
	if r.sentinel != nil {
		r.sentinel.close()
	}
	r.enc.Close()
	r.dec.Close()
}

// breaker stops calls to Redis after threshold consecutive failures, for
// cooldown, then lets one probe through: its success closes the breaker, its
// failure opens it for another cooldown.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu        sync.Mutex // protects the fields below
	failures  int        // consecutive
	openUntil time.Time
	probing   bool // a probe is out
}

// allow reports whether a call may go to Redis, and whether it is the probe.
func (b *breaker) allow() (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return true, false
	}
	if b.probing || b.now().Before(b.openUntil) {
		return false, false
	}
	b.probing = true
	return true, true
}

// done records a call's outcome and reports whether it opened the breaker.
func (b *breaker) done(ok, probe bool) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if ok {
		b.failures = 0
		return false
	}
	b.failures++
	if b.failures == b.threshold || (probe && b.failures > b.threshold) {
		b.openUntil = b.now().Add(b.cooldown)
		return true
	}
	return false
}

// abandon records a call that ended with its caller, neither success nor
// failure.
func (b *breaker) abandon(probe bool) {
	if probe {
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}
