package cache

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// twoGroups returns two Groups sharing one Redis namespace, as two proxy
// replicas would.
func twoGroups(t *testing.T, r *testenv.Redis) (a, b *Group) {
	t.Helper()
	l2 := l2Config(t, r)
	a = newGroup(t, Config{L2: l2})
	bl2 := *l2
	b = newGroup(t, Config{L2: &bl2})
	return a, b
}

// waitWrites waits until g has written n entries to Redis.
func waitWrites(t *testing.T, g *Group, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.Stats().L2Writes < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d L2 writes: %+v", n, g.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestL2HitFillsL1(t *testing.T) {
	t.Parallel()
	a, b := twoGroups(t, testenv.SharedRedis(t))
	f := newFiller("shared answer")
	req := Request{Key: keyOf("q"), TTL: time.Hour, Tables: []string{"orders"}, Labels: []Label{{"dashboard", "sales"}}}

	wantStatus(t, mustGet(t, a, req, f), Miss, "shared answer")
	waitWrites(t, a, 1)
	r := mustGet(t, b, req, f)
	wantStatus(t, r, HitL2, "shared answer")
	if r.Entry.Tables[0] != "orders" || r.Entry.Labels[0] != (Label{"dashboard", "sales"}) {
		t.Errorf("entry from L2 = %+v", r.Entry)
	}
	wantStatus(t, mustGet(t, b, req, f), HitL1, "shared answer")
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1", got)
	}
}

func TestL2Compression(t *testing.T) {
	t.Parallel()
	rd := testenv.SharedRedis(t)
	a, b := twoGroups(t, rd)
	for _, tt := range []struct {
		name      string
		payload   string
		wantCodec byte
	}{
		{"below threshold", strings.Repeat("s", 1000), codecRaw},
		{"above threshold", strings.Repeat("row,1234,abcd\n", 10000), codecZstd},
	} {
		f := newFiller(tt.payload)
		req := request(tt.name, time.Hour)
		writes := a.Stats().L2Writes
		mustGet(t, a, req, f)
		waitWrites(t, a, writes+1)

		raw, err := a.l2.client.Get(context.Background(), a.l2.entryKey(req.Key)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != tt.wantCodec {
			t.Errorf("%s: codec = %d, want %d", tt.name, raw[0], tt.wantCodec)
		}
		if tt.wantCodec == codecZstd && len(raw) > len(tt.payload)/10 {
			t.Errorf("%s: %d bytes in Redis for a %d-byte payload", tt.name, len(raw), len(tt.payload))
		}
		ttl, err := a.l2.client.TTL(context.Background(), a.l2.entryKey(req.Key)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: Redis TTL = %v, %v; want (0, 1h]", tt.name, ttl, err)
		}
		wantStatus(t, mustGet(t, b, req, f), HitL2, tt.payload)
	}
}

func TestL2ValueOfUnknownVersionIsAMiss(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{L2: l2Config(t, testenv.SharedRedis(t))})
	req := request("q", time.Hour)
	ctx := context.Background()
	for i, v := range [][]byte{{codecRaw, 99, 1, 2, 3}, {7, 1}, {codecZstd, 1, 2, 3}, {codecRaw}} {
		if err := g.l2.client.Set(ctx, g.l2.entryKey(req.Key), v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		f := newFiller("filled")
		wantStatus(t, mustGet(t, g, req, f), Miss, "filled")
		waitWrites(t, g, uint64(i+1)) // before the next SET, not after it
		g.l1.invalidateAll()
	}
	if s := g.Stats(); s.L2Corrupt != 4 {
		t.Errorf("L2Corrupt = %d, want 4", s.L2Corrupt)
	}
}

func TestInvalidationAcrossGroups(t *testing.T) {
	t.Parallel()
	rd := testenv.SharedRedis(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		invalidate func(g *Group) error
	}{
		{"table", func(g *Group) error { return g.InvalidateTables(ctx, "public.orders") }},
		{"label", func(g *Group) error { return g.InvalidateLabel(ctx, "dashboard", "sales") }},
		{"all", func(g *Group) error { return g.InvalidateAll(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := twoGroups(t, rd)
			sales := Request{Key: keyOf("sales"), TTL: time.Hour, Tables: []string{"public.orders"}, Labels: []Label{{"dashboard", "sales"}}}
			f := newFiller("before")
			mustGet(t, a, sales, f)
			waitWrites(t, a, 1)
			wantStatus(t, mustGet(t, b, sales, f), HitL2, "before")
			wantStatus(t, mustGet(t, b, sales, f), HitL1, "before")

			if err := tt.invalidate(a); err != nil {
				t.Fatal(err)
			}
			eventually(t, "B's L1 to hear of it", func() bool { return b.getL1(sales.Key) == nil })
			f.setPayload("after")
			wantStatus(t, mustGet(t, b, sales, f), Miss, "after") // neither B's L1 nor Redis
			// A, its own L1 cleared too, gets what B filled since (from
			// Redis once B's write is there), never the old answer.
			waitWrites(t, b, 1)
			wantStatus(t, mustGet(t, a, sales, f), HitL2, "after")
			if s := b.Stats(); s.Invalidations != 1 {
				t.Errorf("B's invalidations = %d, want 1", s.Invalidations)
			}
		})
	}
}

func TestL2EntryWrittenAfterInvalidationIsNotServed(t *testing.T) {
	t.Parallel()
	a, b := twoGroups(t, testenv.SharedRedis(t))
	ctx := context.Background()
	req := Request{Key: keyOf("q"), TTL: time.Hour, Tables: []string{"orders"}}

	// An entry filled under the generations before the invalidation, whose
	// SET lands after it (the race a writer's check cannot close).
	e := &Entry{Payload: []byte("old"), Key: req.Key, Created: time.Now(), Tables: req.Tables, gens: []uint64{0, 0}}
	if err := b.InvalidateTables(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := a.l2.client.Set(ctx, a.l2.entryKey(req.Key), a.l2.encode(e), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, mustGet(t, a, req, newFiller("new")), Miss, "new")
}

func TestFillStartedBeforeRemoteInvalidationIsNotStored(t *testing.T) {
	t.Parallel()
	a, b := twoGroups(t, testenv.SharedRedis(t))
	req := Request{Key: keyOf("q"), TTL: time.Hour, Tables: []string{"orders"}}
	f := newFiller("before the write")
	f.gate = make(chan struct{})

	done := make(chan Result, 1)
	go func() { done <- mustGet(t, a, req, f) }()
	eventually(t, "the fill to start", func() bool { return f.fills() == 1 })
	if err := b.InvalidateTables(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to hear of it", func() bool { return a.Stats().Invalidations == 1 })
	close(f.gate)
	wantStatus(t, <-done, Miss, "before the write")

	f.gate = nil
	f.setPayload("after the write")
	wantStatus(t, mustGet(t, b, req, f), Miss, "after the write")
	wantStatus(t, mustGet(t, a, req, f), Miss, "after the write")
}

func TestGetsSurviveRedisDeath(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	l2 := l2Config(t, rd)
	l2.Timeout = 50 * time.Millisecond
	l2.BreakerCooldown = 100 * time.Millisecond
	g := newGroup(t, Config{L2: l2})
	f := newFiller("answer")

	var errs, gets atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := request(fmt.Sprintf("w%d-%d", w, i%50), time.Hour)
				if _, err := g.Get(context.Background(), req, f); err != nil {
					errs.Add(1)
				}
				gets.Add(1)
				if i%50 == 49 {
					g.l1.invalidateAll() // keep Redis on the path
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := rd.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := errs.Load(); n != 0 {
		t.Fatalf("%d of %d Gets failed with Redis down", n, gets.Load())
	}
	s := g.Stats()
	if s.L2Errors == 0 || s.BreakerOpened == 0 {
		t.Errorf("stats = %+v, want L2 errors and the breaker opened", s)
	}
	// The breaker closes again and Redis is used: a fill is written and read
	// back from Redis.
	req := request("after the restart", time.Hour)
	eventually(t, "an L2 hit after the restart", func() bool {
		g.l1.invalidateAll()
		r, err := g.Get(context.Background(), req, f)
		return err == nil && r.Status == HitL2
	})
}

func TestHungRedisBoundsGetLatency(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	l2 := l2Config(t, rd)
	l2.Timeout = 150 * time.Millisecond
	g := newGroup(t, Config{L2: l2})
	f := newFiller("answer")
	mustGet(t, g, request("warm", time.Hour), f)

	if err := rd.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rd.Resume(); err != nil {
			t.Error(err)
		}
	}()
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				start := time.Now()
				if _, err := g.Get(context.Background(), request(fmt.Sprintf("%d-%d", w, i), time.Hour), f); err != nil {
					t.Errorf("Get: %v", err)
				}
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The margin is for a loaded machine running other tests beside this
	// one; a Redis call that waited for even twice its timeout would
	// still be over it.
	if limit := l2.Timeout + 140*time.Millisecond; slowest > limit {
		t.Errorf("slowest Get took %v with Redis hung, want at most %v", slowest, limit)
	}
	t.Logf("slowest Get with Redis hung: %v", slowest)
}

func TestWriteQueueDropsWhenFull(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	l2 := l2Config(t, rd)
	l2.Timeout = time.Second
	l2.WriteQueue = 4
	l2.Writers = 1
	g := newGroup(t, Config{L2: l2})
	ctx := context.Background()

	// Writes hang, reads answer: the writer sticks, the queue fills.
	if err := g.l2.client.Do(ctx, "CLIENT", "PAUSE", "2000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	f := newFiller("answer")
	const n = 100
	for i := range n {
		mustGet(t, g, request(fmt.Sprint(i), time.Hour), f)
	}
	s := g.Stats()
	if s.L2WritesDropped < n-8 {
		t.Errorf("dropped %d of %d writes, want at least %d", s.L2WritesDropped, n, n-8)
	}
	if err := g.l2.client.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	rd := testenv.SharedRedis(t)
	before := runtime.NumGoroutine()
	for i := range 3 {
		clk := newClock()
		g, err := New(Config{L2: l2Config(t, rd), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		f := newFiller("v")
		f.gate = make(chan struct{}) // the refresh never finishes by itself
		req := Request{Key: keyOf(fmt.Sprint(i)), TTL: time.Minute, StaleTTL: time.Hour}
		close(f.gate)
		mustGet(t, g, req, f)
		f.gate = make(chan struct{})
		clk.Advance(2 * time.Minute)
		wantStatus(t, mustGet(t, g, req, f), Stale, "v")
		eventually(t, "the refresh to start", func() bool { return f.fills() == 2 })
		if err := g.InvalidateTables(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
		g.Close()
	}
	var after int
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = runtime.NumGoroutine()
		if after <= before || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func BenchmarkGetL2Hit(b *testing.B) {
	rd := testenv.SharedRedis(b)
	l2 := l2Config(b, rd)
	g := newGroup(b, Config{L2: l2})
	req := Request{Key: keyOf("hot"), TTL: time.Hour, Tables: []string{"public.orders"}}
	f := newFiller(strings.Repeat("r", 2<<10))
	if _, err := g.Get(context.Background(), req, f); err != nil {
		b.Fatal(err)
	}
	eventually(b, "the L2 write", func() bool { return g.Stats().L2Writes == 1 })
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.l1.mu.Lock()
		g.l1.deleteLocked(req.Key) // keep the hit in Redis
		g.l1.mu.Unlock()
		r, err := g.Get(ctx, req, f)
		if err != nil || r.Status != HitL2 {
			b.Fatalf("Get = %v, %v", r.Status, err)
		}
	}
}

func TestInvalidationWhileRedisHungReachesOthersLater(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	a, b := twoGroups(t, rd)
	ctx := context.Background()
	req := Request{Key: keyOf("q"), TTL: time.Hour, Tables: []string{"orders"}}
	f := newFiller("before")
	mustGet(t, a, req, f)
	waitWrites(t, a, 1)
	wantStatus(t, mustGet(t, b, req, f), HitL2, "before")

	if err := rd.Pause(); err != nil {
		t.Fatal(err)
	}
	err := a.InvalidateTables(ctx, "orders")
	if resumeErr := rd.Resume(); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	if err == nil {
		t.Fatal("InvalidateTables with Redis hung succeeded, want an error")
	}
	f.setPayload("after")
	wantStatus(t, mustGet(t, a, req, f), Miss, "after") // A's L1 at once; Redis skipped while pending

	eventually(t, "the retried invalidation to reach B", func() bool { return b.getL1(req.Key) == nil })
	eventually(t, "A's pending invalidation to clear", func() bool { return !a.pending.any() })
	b.l1.invalidateAll()
	if r := mustGet(t, b, req, f); r.Status == HitL2 && string(r.Entry.Payload) == "before" {
		t.Errorf("B served the invalidated entry from Redis")
	}
}

func TestClientModes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  L2Config
		want string
	}{
		{L2Config{URL: "redis://127.0.0.1:6379/2"}, "*redis.Client"},
		{L2Config{Addrs: []string{"127.0.0.1:6379"}}, "*redis.Client"},
		{L2Config{Addrs: []string{"a:7000", "b:7000"}, Mode: ModeCluster}, "*redis.ClusterClient"},
		{L2Config{URL: "redis://a:7000?addr=b:7000", Mode: ModeCluster}, "*redis.ClusterClient"},
		{L2Config{Addrs: []string{"a:26379"}, Mode: ModeSentinel, MasterName: "mymaster"}, "<nil>"}, // see sentinel
	} {
		cfg, err := tt.cfg.withDefaults()
		if err != nil {
			t.Fatalf("%+v: %v", tt.cfg, err)
		}
		c, sent, err := newClient(&cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tt.cfg, err)
		}
		if got := fmt.Sprintf("%T", c); got != tt.want {
			t.Errorf("%+v: client %s, want %s", tt.cfg, got, tt.want)
		}
		if (sent != nil) != (cfg.Mode == ModeSentinel) {
			t.Errorf("%+v: master follower %v in mode %s", tt.cfg, sent, cfg.Mode)
		}
		if c != nil {
			c.Close()
		}
		if sent != nil {
			sent.close()
		}
	}
	cfg := L2Config{URL: "redis://a:26379?master_name=m&replica_only=true", Mode: ModeSentinel}
	if _, _, err := newClient(&cfg); err == nil {
		t.Errorf("%+v: no error", cfg)
	}
}

func TestL1DroppedWhenInvalidationsMayHaveBeenMissed(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	g := newGroup(t, Config{L2: l2Config(t, rd)})
	req := request("q", time.Hour)
	mustGet(t, g, req, newFiller("v"))
	if g.getL1(req.Key) == nil {
		t.Fatal("entry not in L1")
	}
	// While Redis is away, another replica's invalidation would be lost.
	if err := rd.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "L1 to be dropped on resubscription", func() bool { return g.getL1(req.Key) == nil })
}

// TestDerivedEntryIsNoFresherInRedisThanItsSource: an answer derived from
// an L1 entry (the same statement in another result format) keeps the
// source's Redis generations. When the source's table was invalidated in
// Redis before the derivation and this process has not yet heard (the
// message is in flight), the derived answer must not become a valid Redis
// entry for the other processes.
func TestDerivedEntryIsNoFresherInRedisThanItsSource(t *testing.T) {
	t.Parallel()
	a, b := twoGroups(t, testenv.SharedRedis(t))
	text := Request{Key: keyOf("text"), TTL: time.Hour, Tables: []string{"orders"}}
	binary := Request{Key: keyOf("binary"), TTL: time.Hour, Tables: []string{"orders"}}
	mustGet(t, a, text, newFiller("old rows"))
	waitWrites(t, a, 1)
	// Another process's write moved the table's generation; its message
	// has not reached A.
	ctx := context.Background()
	if err := a.l2.rdb().Incr(ctx, a.l2.genKey("t:orders")).Err(); err != nil {
		t.Fatal(err)
	}
	derive := FillFunc(func(context.Context) (*Entry, error) {
		src, ok := a.Peek(text)
		if !ok {
			t.Fatal("the source left A's L1")
		}
		return src.Entry.Derive([]byte("old rows, binary")), nil
	})
	wantStatus(t, mustGet(t, a, binary, derive), Miss, "old rows, binary")
	// A's writer takes the derived entry off its queue: written, or
	// skipped because its generations are behind Redis's.
	eventually(t, "A's writer to handle the derived entry", func() bool {
		st := a.Stats()
		return st.L2Writes+st.StoreSkipped >= 2
	})
	r := mustGet(t, b, binary, newFiller("new rows, binary"))
	if r.Status == HitL2 {
		t.Fatalf("B served the derived answer from Redis: %q", r.Entry.Payload)
	}
	wantStatus(t, r, Miss, "new rows, binary")
}
