package proxy_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a proxy in front of a private database of the test PostgreSQL.
type env struct {
	PG       *testenv.PG
	Database string
	Server   *proxy.Server
	Pool     *postgres.Pool
	Cache    *cache.Group   // with envOptions.cache
	Reads    *readpath.Path // with envOptions.cache
	Addr     string         // the proxy's address
	Port     int
}

type envOptions struct {
	pg       *testenv.PG
	maxConns int
	maxWait  time.Duration
	mutate   func(*proxy.Config)
	// cache turns the answer cache on, with L1 and the shared Redis as L2,
	// and rule (default: cache for a minute) for every statement.
	cache bool
	rule  *policy.Rule
	// rules replaces rule: the policy, with its label sources.
	rules *policy.Set
	// queues are where misses run (default: straight on the pool).
	queues *executor.Queues
	// database reuses a database (a second proxy in front of the first's);
	// redis is the L2 server (default: the shared one).
	database string
	redis    *testenv.Redis
}

// newEnv starts a proxy for one test: trust authentication for the
// superuser, relaying to a fresh database.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	pg := o.pg
	if pg == nil {
		pg = testenv.SharedPostgreSQL(t)
	}
	db := o.database
	if db == "" {
		db = pg.NewDatabase(t)
	}
	if o.maxConns == 0 {
		o.maxConns = 10
	}
	if o.maxWait == 0 {
		o.maxWait = 30 * time.Second
	}
	pool, err := postgres.NewPool(postgres.Config{
		DSN:      fmt.Sprintf("postgres://%s/%s?sslmode=disable", pg.Addr(), db),
		MaxConns: o.maxConns,
		MaxWait:  o.maxWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxy.Config{
		AuthMethod:     proxy.AuthTrust,
		Users:          map[string]string{testenv.SuperUser: testenv.SuperPassword},
		AcquireTimeout: o.maxWait,
		Route: func(database string) *proxy.Backend {
			if database != db {
				return nil
			}
			return &proxy.Backend{Name: "pg", Pool: pool}
		},
	}
	var group *cache.Group
	var reads *readpath.Path
	if o.cache {
		redis := o.redis
		if redis == nil {
			redis = testenv.SharedRedis(t)
		}
		g, err := cache.New(cache.Config{L2: &cache.L2Config{URL: redis.URL(0), Namespace: "t" + db}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		rules := o.rules
		if rules == nil {
			rule := policy.Rule{Name: "test", Cache: true, TTL: time.Minute, Timeout: 30 * time.Second, MaxEntryBytes: 16 << 20, CacheTimeFunctions: true}
			if o.rule != nil {
				rule = *o.rule
			}
			rules = policy.New(rule)
		}
		group, reads = g, newReadsQ(t, g, rules, o.queues)
		cfg.Reads = reads
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	srv, err := proxy.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != proxy.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		pool.Close()
	})
	return &env{PG: pg, Database: db, Server: srv, Pool: pool, Cache: group, Reads: reads, Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port}
}

// newReads returns a read path over g under rules.
func newReads(t testing.TB, g *cache.Group, rules *policy.Set) *readpath.Path {
	t.Helper()
	return newReadsQ(t, g, rules, nil)
}

// newReadsQ returns a read path over g under rules, its misses run on
// queues.
func newReadsQ(t testing.TB, g *cache.Group, rules *policy.Set, queues *executor.Queues) *readpath.Path {
	t.Helper()
	reads, err := readpath.New(readpath.Config{Cache: g, Policy: rules, Queues: queues})
	if err != nil {
		t.Fatal(err)
	}
	return reads
}

// cachedTwins starts a proxy with the cache on and a direct twin database,
// both with schema, for tests that compare what a client gets through the
// proxy with what it gets from PostgreSQL.
func cachedTwins(t *testing.T, schema string) (*env, clientTarget) {
	t.Helper()
	e := newEnv(t, envOptions{cache: true})
	direct := e.twin(t)
	for _, db := range []string{e.Database, direct.Database} {
		e.PG.Exec(t, db, schema)
	}
	return e, direct
}

// DSN is a client DSN for the proxy.
func (e *env) DSN() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, e.Addr, e.Database)
}

// DirectDSN is the same database without the proxy.
func (e *env) DirectDSN() string { return e.PG.DSN(e.Database) }

func (e *env) connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
