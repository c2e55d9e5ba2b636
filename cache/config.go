package cache

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Group. The zero value of each field means its default;
// New validates the rest.
type Config struct {
	// L1MaxBytes bounds the in-process cache, counted as encoded entry bytes.
	// If zero, it defaults to 256 MiB. Size it to the hot set of a replica:
	// a dashboard's worth of answers for every active dashboard.
	L1MaxBytes int64

	// MaxEntryBytes is the largest entry the Group stores. A fill that
	// returns a larger entry is answered but not cached, and the key is
	// remembered as too large (see TooLargeTTL). If zero, it defaults to
	// 16 MiB. It also bounds the decompressed size of an L2 entry.
	MaxEntryBytes int

	// TooLargeTTL is how long a key stays known as too large, so that Gets
	// return ErrTooLarge at once without a fill. If zero, it defaults to one
	// minute; keep it short: the answer may shrink.
	TooLargeTTL time.Duration

	// TooLargeKeys bounds how many too-large keys are remembered. If zero, it
	// defaults to 10000.
	TooLargeKeys int

	// MaxRefreshes bounds the background refreshes started by stale hits
	// that may run at once; a stale hit beyond it is served without starting
	// one. If zero, it defaults to 64.
	MaxRefreshes int

	// L2 configures the shared Redis tier. If nil, the Group is L1 only.
	L2 *L2Config

	// Logger receives the lines about Redis: one when it starts failing,
	// one when it recovers with counts of what its failure affected (reads
	// served without it, writes dropped, invalidations it did not take at
	// once), and a reminder at most once a minute in between; never a line
	// per call. If nil, it defaults to slog.Default(). go-redis's own lines
	// (a line per failed dial) go to slog.Default() at debug level.
	Logger *slog.Logger

	// OnL2Call, when set, is told of every call to Redis: its op (get,
	// set, delete: a read, a write, an invalidation), how long it took and
	// whether it failed. It must not block.
	OnL2Call func(op string, d time.Duration, failed bool)
	// OnRemoteInvalidation, when set, is called for each invalidation
	// another process sent. It must not block.
	OnRemoteInvalidation func()

	// Now returns the current time. If nil, it defaults to time.Now. Tests
	// inject a clock to drive freshness windows; ristretto's and Redis's own
	// expiry still run on real time.
	Now func() time.Time
}

// Modes of L2Config.Mode.
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// L2Config configures the Redis tier shared by every replica.
type L2Config struct {
	// URL is a redis:// or rediss:// URL (redis://user:pass@host:6379/1).
	// With Mode "cluster" it may name several nodes (?addr=host2:6379), with
	// Mode "sentinel" it names the sentinels and ?master_name= (the options
	// that route commands to replicas are refused: the cache uses the master
	// only). Either URL or Addrs must be set, not both.
	URL string
	// Addrs are host:port pairs: the server, the cluster's seed nodes or the
	// sentinels, depending on Mode.
	Addrs []string
	// Mode is "standalone", "sentinel" or "cluster". If empty, it defaults to
	// "standalone".
	Mode string
	// MasterName is the Sentinel master's name; required in sentinel mode
	// unless the URL carries master_name.
	MasterName string
	// Username, Password and DB apply with Addrs; a URL carries its own.
	Username string
	Password string
	DB       int

	// Namespace prefixes every Redis key and the invalidation channel
	// ("<Namespace>:v1:e:<hex key>"). Groups that share a Namespace on one
	// Redis share the cache. If empty, it defaults to "sqlcached".
	Namespace string

	// Timeout bounds every Redis call, dial and pool wait included. A call
	// slower than this counts as a miss, never as an error. If zero, it
	// defaults to 50ms: well above a healthy Redis's latency, well below a
	// warehouse query.
	Timeout time.Duration

	// CompressAbove is the encoded size above which entries are compressed
	// with zstd in Redis. If zero, it defaults to 4 KiB; negative disables
	// compression.
	CompressAbove int

	// WriteQueue bounds the stores waiting to be written to Redis; a store
	// that finds it full is dropped and counted. If zero, it defaults to
	// 1024.
	WriteQueue int
	// Writers is the number of goroutines writing to Redis. If zero, it
	// defaults to 2.
	Writers int

	// BreakerFailures is the number of consecutive failed calls after which
	// the Group stops calling Redis for BreakerCooldown, then lets one probe
	// through. If zero, they default to 5 and 5s.
	BreakerFailures int
	BreakerCooldown time.Duration

	// MaxTTL caps the lifetime of an entry in Redis, and the generation
	// counters live a little longer than it (see doc.go). If zero, it
	// defaults to 7 days.
	MaxTTL time.Duration
}

// Defaults.
const (
	DefaultL1MaxBytes      = 256 << 20
	DefaultMaxEntryBytes   = 16 << 20
	DefaultTooLargeTTL     = time.Minute
	DefaultTooLargeKeys    = 10000
	DefaultMaxRefreshes    = 64
	DefaultNamespace       = "sqlcached"
	DefaultTimeout         = 50 * time.Millisecond
	DefaultCompressAbove   = 4 << 10
	DefaultWriteQueue      = 1024
	DefaultWriters         = 2
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
	DefaultMaxTTL          = 7 * 24 * time.Hour
)

// withDefaults returns a copy of c with defaults filled in, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.L1MaxBytes < 0:
		return c, errors.New("cache: L1MaxBytes can't be negative")
	case c.MaxEntryBytes < 0:
		return c, errors.New("cache: MaxEntryBytes can't be negative")
	case c.TooLargeTTL < 0:
		return c, errors.New("cache: TooLargeTTL can't be negative")
	case c.TooLargeKeys < 0:
		return c, errors.New("cache: TooLargeKeys can't be negative")
	case c.MaxRefreshes < 0:
		return c, errors.New("cache: MaxRefreshes can't be negative")
	}
	c.L1MaxBytes = cmp.Or(c.L1MaxBytes, DefaultL1MaxBytes)
	c.MaxEntryBytes = cmp.Or(c.MaxEntryBytes, DefaultMaxEntryBytes)
	c.TooLargeTTL = cmp.Or(c.TooLargeTTL, DefaultTooLargeTTL)
	c.TooLargeKeys = cmp.Or(c.TooLargeKeys, DefaultTooLargeKeys)
	c.MaxRefreshes = cmp.Or(c.MaxRefreshes, DefaultMaxRefreshes)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if int64(c.MaxEntryBytes) > c.L1MaxBytes {
		return c, fmt.Errorf("cache: MaxEntryBytes (%d) is larger than L1MaxBytes (%d)", c.MaxEntryBytes, c.L1MaxBytes)
	}
	if c.L2 != nil {
		l2, err := c.L2.withDefaults()
		if err != nil {
			return c, err
		}
		c.L2 = &l2
	}
	return c, nil
}

func (c L2Config) withDefaults() (L2Config, error) {
	switch {
	case c.URL == "" && len(c.Addrs) == 0:
		return c, errors.New("cache: L2 needs a URL or Addrs")
	case c.URL != "" && len(c.Addrs) > 0:
		return c, errors.New("cache: L2 takes a URL or Addrs, not both")
	case c.Mode != "" && c.Mode != ModeStandalone && c.Mode != ModeSentinel && c.Mode != ModeCluster:
		return c, fmt.Errorf("cache: unknown L2 mode %q", c.Mode)
	case c.Mode == ModeSentinel && c.URL == "" && c.MasterName == "":
		return c, errors.New("cache: sentinel mode needs MasterName")
	case c.Mode != ModeSentinel && c.MasterName != "":
		return c, errors.New("cache: MasterName is for sentinel mode")
	case c.Mode != ModeCluster && c.Mode != ModeSentinel && len(c.Addrs) > 1:
		return c, errors.New("cache: several Addrs need Mode cluster or sentinel")
	case c.Timeout < 0, c.WriteQueue < 0, c.Writers < 0, c.BreakerFailures < 0, c.BreakerCooldown < 0, c.MaxTTL < 0:
		return c, errors.New("cache: L2 durations and sizes can't be negative")
	}
	if c.Mode == "" {
		c.Mode = ModeStandalone
	}
	c.Namespace = cmp.Or(c.Namespace, DefaultNamespace)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.CompressAbove = cmp.Or(c.CompressAbove, DefaultCompressAbove)
	c.WriteQueue = cmp.Or(c.WriteQueue, DefaultWriteQueue)
	c.Writers = cmp.Or(c.Writers, DefaultWriters)
	c.BreakerFailures = cmp.Or(c.BreakerFailures, DefaultBreakerFailures)
	c.BreakerCooldown = cmp.Or(c.BreakerCooldown, DefaultBreakerCooldown)
	c.MaxTTL = cmp.Or(c.MaxTTL, DefaultMaxTTL)
	return c, nil
}
