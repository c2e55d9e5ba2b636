package proxy_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

// TestSlowRedisCostsAtMostItsTimeout: a Redis that hangs (paused, so that
// connections are accepted and never answered) is never an error for
// clients and costs a request at most the L2 timeout. While it hangs, L1
// hits are answered at once; a miss waits for Redis at most the timeout
// before the warehouse answers it, and once the breaker has opened it does
// not wait at all; a write commits and the next read sees it. A second
// proxy with an empty L1 fares the same. Once Redis answers again, the two
// proxies share answers through it again, and an invalidation made while
// it hung reaches it.
func TestSlowRedisCostsAtMostItsTimeout(t *testing.T) {
	const (
		timeout  = 200 * time.Millisecond // the L2 timeout
		failures = 5                      // the breaker's threshold
		// margin is what a request may take beyond the L2 timeout and the
		// warehouse's own time: the proxy's work and scheduling on a
		// loaded machine under the race detector.
		margin = 150 * time.Millisecond
	)
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	rd := testenv.NewRedis(t)
	pg.Exec(t, db, `create table items (k int, v int);
		insert into items select g, g % 997 from generate_series(1, 20000) g;
		create table prices (id int primary key, price int);
		insert into prices values (1, 10), (2, 20)`)
	newProxy := func() (*env, *cache.Group) {
		var g *cache.Group
		e := newEnv(t, envOptions{pg: pg, database: db, mutate: func(c *proxy.Config) {
			var err error
			g, err = cache.New(cache.Config{L2: &cache.L2Config{
				URL:             rd.URL(0),
				Namespace:       "t" + db,
				Timeout:         timeout,
				BreakerFailures: failures,
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Close)
			rule := policy.Rule{Name: "test", Cache: true, TTL: time.Minute, Timeout: 30 * time.Second, MaxEntryBytes: 16 << 20}
			c.Reads = newReads(t, g, policy.New(rule))
		}})
		return e, g
	}
	a, ga := newProxy()
	b, gb := newProxy()
	ca := a.connect(t)
	direct := pg.Connect(t, db)
	ctx := ctxT(t)
	// B's L1 stays empty until Redis hangs; its warehouse connection is
	// opened and has read the table before, through a statement it does
	// not cache (random() is volatile), so that the warehouse's time
	// measured on the direct connection, as warm, is B's too.
	if _, err := b.connect(t).Exec(ctx, "select count(*) from items where random() >= 0", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}

	// query runs sql (answering one integer) as a client would, failing
	// the test on any error.
	query := func(c *pgx.Conn, sql string) (int64, time.Duration) {
		t.Helper()
		start := time.Now()
		var v int64
		err := c.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&v)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v, d
	}
	exec := func(c *pgx.Conn, sql string) time.Duration {
		t.Helper()
		start := time.Now()
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return d
	}
	// within fails the test when a request took longer than the L2
	// timeout on top of what the warehouse itself took (own).
	within := func(who, what string, d, own time.Duration) {
		t.Helper()
		if limit := timeout + own + margin; d > limit {
			t.Errorf("%s: %s took %v with Redis hung, want at most %v (L2 timeout %v, warehouse %v, margin %v)",
				who, what, d, limit, timeout, own, margin)
		}
	}
	// hit runs sql, answered from L1, and checks it is well under the
	// timeout.
	var slowestHit time.Duration
	hit := func(who string, c *pgx.Conn, sql string, want int64) {
		t.Helper()
		got, d := query(c, sql)
		if got != want {
			t.Errorf("%s: %s answered %d, want %d", who, sql, got, want)
		}
		if d > timeout/2 {
			t.Errorf("%s: the cached answer to %s took %v with Redis hung, want under %v", who, sql, d, timeout/2)
		}
		slowestHit = max(slowestHit, d)
	}
	// miss runs sql, not cached on this proxy, and checks that it took at
	// most the timeout more than the warehouse takes for it, measured
	// directly just before. It returns both durations.
	miss := func(who string, c *pgx.Conn, sql string) (d, own time.Duration) {
		t.Helper()
		want, own := query(direct, sql)
		got, d := query(c, sql)
		if got != want {
			t.Errorf("%s: %s answered %d, want %d", who, sql, got, want)
		}
		within(who, "the cold query "+sql, d, own)
		return d, own
	}
	// writeThenRead updates a price through c and reads it back through
	// c, the old answer being cached there.
	writeThenRead := func(who string, c *pgx.Conn, id, old, price int64) {
		t.Helper()
		sql := fmt.Sprintf("select price from prices where id = %d", id)
		hit(who, c, sql, old)
		own := exec(direct, fmt.Sprintf("update prices set price = price where id = %d", id))
		dw := exec(c, fmt.Sprintf("update prices set price = %d where id = %d", price, id))
		within(who, "the UPDATE", dw, own)
		_, own = query(direct, sql)
		got, dr := query(c, sql)
		if got != price {
			t.Errorf("%s: after the UPDATE %s answered %d, want %d", who, sql, got, price)
		}
		within(who, "the read after the UPDATE", dr, own)
		t.Logf("%s: UPDATE %v, the read after it %v", who, dw, dr)
	}
	// colds runs n cold queries and returns the time they took through the
	// proxy and on the warehouse directly.
	colds := func(who string, c *pgx.Conn, from, n int) (total, own time.Duration, each []string) {
		t.Helper()
		for i := from; i < from+n; i++ {
			d, o := miss(who, c, fmt.Sprintf("select sum(v) from items where k %% 1000 = %d", i))
			total, own, each = total+d, own+o, append(each, fmt.Sprintf("%v (warehouse %v)", d.Round(time.Millisecond/10), o.Round(time.Millisecond/10)))
		}
		return total, own, each
	}
	// noWait runs 30 cold queries and checks that, together, they did not
	// wait for Redis, which would cost 30 timeouts; why says what spares
	// them the wait.
	noWait := func(who, why string, c *pgx.Conn, from int) {
		t.Helper()
		const n = 30
		total, own, _ := colds(who, c, from, n)
		if waited := total - own; waited > n*timeout/4 {
			t.Errorf("%s: %d cold queries took %v, %v more than on the warehouse, %s; want under %v (waiting for Redis costs %v each)",
				who, n, total, waited, why, n*timeout/4, timeout)
		}
		t.Logf("%s: %d cold queries, %s: %v in all (warehouse %v), %v each on average", who, n, why, total, own, total/n)
	}

	// Warm: answers cached by A, in its L1 and in Redis.
	hot := map[string]int64{}
	for i := range 3 {
		sql := fmt.Sprintf("select max(v) from items where k %% 7 = %d", i)
		v, _ := query(ca, sql)
		hot[sql] = v
	}
	if v, _ := query(ca, "select price from prices where id = 1"); v != 10 {
		t.Fatalf("price 1 is %d, want 10", v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ga.Stats().L2Writes < uint64(len(hot)+1) {
		if time.Now().After(deadline) {
			t.Fatalf("the warm answers did not reach Redis: %+v", ga.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}

	if !redisAnswers(rd.Addr, time.Second) {
		t.Fatal("Redis does not answer PING before the pause")
	}
	if err := rd.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			_ = rd.Resume()
		}
	}()
	if redisAnswers(rd.Addr, 2*timeout) {
		t.Fatal("Redis still answers PING once paused")
	}

	// A: its L1 answers; misses wait for Redis until the breaker opens,
	// then not at all; a write is seen by the next read.
	for range 3 {
		for sql, want := range hot {
			hit("A", ca, sql, want)
		}
	}
	// Meanwhile another client of A, a dashboard's other panels, gets
	// its cached answers without waiting behind the misses.
	panels := a.connect(t)
	stop := make(chan struct{})
	type panelsResult struct {
		n       int
		slowest time.Duration
		err     error
	}
	done := make(chan panelsResult, 1)
	go func() {
		var r panelsResult
		defer func() { done <- r }()
		for {
			for sql, want := range hot {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				var v int64
				if err := panels.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != want {
					r.err = fmt.Errorf("%s: %d, %v (want %d)", sql, v, err, want)
					return
				}
				r.slowest, r.n = max(r.slowest, time.Since(start)), r.n+1
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	_, _, first := colds("A", ca, 0, failures)
	close(stop)
	r := <-done
	switch {
	case r.err != nil:
		t.Errorf("A: a cached answer while other queries waited for Redis: %v", r.err)
	case r.n == 0:
		t.Errorf("A: no cached answer while other queries waited for Redis")
	case r.slowest > timeout/2:
		t.Errorf("A: the slowest of %d cached answers while other queries waited for Redis took %v, want under %v", r.n, r.slowest, timeout/2)
	}
	slowestHit = max(slowestHit, r.slowest)
	t.Logf("A: cold queries before the breaker opened: %v; meanwhile %d cached answers, the slowest %v", first, r.n, r.slowest)
	noWait("A", "the breaker open", ca, 100)
	writeThenRead("A", ca, 1, 10, 11)

	// B, whose L1 is cold, and a client that connects to it now: Redis
	// holds A's answers but does not answer. B writes first, while its
	// breaker is still closed: the commit's invalidation meets the hung
	// Redis. From then on B leaves Redis alone until the invalidation
	// reaches it.
	start := time.Now()
	dc, err := pgx.Connect(ctx, b.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	own := time.Since(start)
	dc.Close(ctx)
	start = time.Now()
	cb := b.connect(t)
	d := time.Since(start)
	within("B", "connecting", d, own)
	t.Logf("B: a client connected in %v (directly %v)", d, own)
	d, own = miss("B", cb, "select price from prices where id = 2")
	t.Logf("B: a cold query, breaker closed: %v (warehouse %v)", d, own)
	writeThenRead("B", cb, 2, 20, 21)
	for sql := range hot {
		d, own := miss("B", cb, sql)
		t.Logf("B: a cold query whose answer the hung Redis holds: %v (warehouse %v)", d, own)
	}
	noWait("B", "an invalidation pending", cb, 200)
	for sql, want := range hot {
		hit("B", cb, sql, want)
	}
	t.Logf("slowest L1 hit with Redis hung: %v", slowestHit)

	if err := rd.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	resumed := time.Now()

	// Redis is used again, both ways: an answer one proxy caches is a hit
	// on the other, the warehouse running it once. The breakers let a
	// probe through after their cooldown.
	shared := func(from, to *pgx.Conn, fromGroup *cache.Group, op string) {
		t.Helper()
		like := "select count(*) " + op + " $1 from items"
		deadline := time.Now().Add(20 * time.Second)
		for i := int64(1); ; i++ {
			sql := fmt.Sprintf("select count(*) %s %d from items", op, i)
			want := 20000 + i
			if op == "-" {
				want = 20000 - i
			}
			before := pg.Calls(t, db, like)
			writes := fromGroup.Stats().L2Writes
			if v, _ := query(from, sql); v != want {
				t.Fatalf("%s answered %d, want %d", sql, v, want)
			}
			for wait := time.Now().Add(time.Second); fromGroup.Stats().L2Writes == writes && time.Now().Before(wait); {
				time.Sleep(10 * time.Millisecond)
			}
			if v, _ := query(to, sql); v != want {
				t.Fatalf("through the other proxy, %s answered %d, want %d", sql, v, want)
			}
			if n := pg.Calls(t, db, like) - before; n == 1 {
				t.Logf("%q shared through Redis %v after the resume", sql, time.Since(resumed).Round(time.Millisecond))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v after Redis resumed, an answer cached by one proxy still runs again on the warehouse for the other", time.Since(resumed))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	shared(ca, cb, ga, "+")
	shared(cb, ca, gb, "-")

	// B never read price 1. Redis holds A's answer from before the pause,
	// and A's UPDATE, made while Redis hung, has reached it since.
	if v, _ := query(cb, "select price from prices where id = 1"); v != 11 {
		t.Errorf("after Redis resumed, B answered price 1 = %d (the answer from before A's UPDATE), want 11", v)
	}
}

// redisAnswers reports whether the Redis at addr answers PING within wait.
func redisAnswers(addr string, wait time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return false
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return false
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, len("+PONG\r\n"))
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "+PONG\r\n"
}
