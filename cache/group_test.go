package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFillThenHitL1(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	f := newFiller("answer")
	req := request("q", time.Minute)

	wantStatus(t, mustGet(t, g, req, f), Miss, "answer")
	r := mustGet(t, g, req, f)
	wantStatus(t, r, HitL1, "answer")
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1", got)
	}
	if r.Entry.Key != req.Key || r.Entry.Rows != 1 {
		t.Errorf("entry key/rows = %v/%d, want %v/1", r.Entry.Key, r.Entry.Rows, req.Key)
	}
	if s := g.Stats(); s.L1Hits != 1 || s.Misses != 1 || s.Fills != 1 {
		t.Errorf("stats = %+v, want 1 L1 hit, 1 miss, 1 fill", s)
	}
}

func TestConcurrentColdGetsFillOnce(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	f := newFiller("answer")
	f.gate = make(chan struct{})
	req := request("cold", time.Minute)

	const n = 500
	var wg sync.WaitGroup
	statuses := make([]Status, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r, err := g.Get(context.Background(), req, f)
			statuses[i], errs[i] = r.Status, err
		})
	}
	eventually(t, "the fill to start", func() bool { return f.fills() > 0 })
	time.Sleep(20 * time.Millisecond) // let the others join; those that come later hit L1
	close(f.gate)
	wg.Wait()

	if got := f.fills(); got != 1 {
		t.Fatalf("fills = %d, want 1", got)
	}
	count := map[Status]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		count[statuses[i]]++
	}
	if count[Miss] != 1 || count[Shared]+count[HitL1] != n-1 {
		t.Errorf("statuses = %v, want 1 miss and %d shared or L1 hits", count, n-1)
	}
}

func TestCancelledWaiterReturnsAtOnceAndFillLands(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	f := newFiller("slow answer")
	f.gate = make(chan struct{})
	req := request("slow", time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.Get(ctx, req, f)
		done <- err
	}()
	eventually(t, "the fill to start", func() bool { return f.fills() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Get = %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled Get still waiting for the fill")
	}

	close(f.gate)
	eventually(t, "the fill to land in L1", func() bool { return g.getL1(req.Key) != nil })
	wantStatus(t, mustGet(t, g, req, f), HitL1, "slow answer")
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1", got)
	}
}

func TestFreshnessIsJudgedByTheRequest(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	f := newFiller("v1")
	short := request("q", time.Minute)
	long := request("q", time.Hour)

	mustGet(t, g, short, f)
	clk.Advance(5 * time.Minute)
	r := mustGet(t, g, long, f)
	wantStatus(t, r, HitL1, "v1")
	if r.Age != 5*time.Minute {
		t.Errorf("age = %v, want 5m", r.Age)
	}
	f.setPayload("v2")
	wantStatus(t, mustGet(t, g, short, f), Miss, "v2")
}

func TestStaleWhileRevalidateRefreshesOnce(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	f := newFiller("v1")
	req := request("dash", time.Minute)
	req.StaleTTL = time.Minute

	mustGet(t, g, req, f)
	clk.Advance(30 * time.Second)
	wantStatus(t, mustGet(t, g, req, f), HitL1, "v1")

	clk.Advance(60 * time.Second) // 90s: stale, servable
	f.setPayload("v2")
	f.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r := mustGet(t, g, req, f)
			wantStatus(t, r, Stale, "v1")
			if r.Age != 90*time.Second {
				t.Errorf("age = %v, want 90s", r.Age)
			}
		})
	}
	wg.Wait()
	eventually(t, "the refresh to start", func() bool { return f.fills() == 2 })
	time.Sleep(20 * time.Millisecond)
	if got := f.fills(); got != 2 {
		t.Fatalf("fills = %d, want 2 (one refresh)", got)
	}
	close(f.gate)
	eventually(t, "the refresh to land", func() bool {
		e := g.getL1(req.Key)
		return e != nil && string(e.Payload) == "v2"
	})
	wantStatus(t, mustGet(t, g, req, f), HitL1, "v2")
	if s := g.Stats(); s.Stale != 100 || s.Refreshes != 1 {
		t.Errorf("stats = %+v, want 100 stale, 1 refresh", s)
	}
}

func TestStaleIfErrorWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	f := newFiller("v1")
	req := request("report", time.Minute)
	req.StaleTTL = time.Minute
	req.StaleIfError = time.Hour

	mustGet(t, g, req, f)
	clk.Advance(10 * time.Minute) // past stale, within stale-if-error
	warehouseDown := errors.New("warehouse down")
	f.setErr(warehouseDown)
	r := mustGet(t, g, req, f)
	wantStatus(t, r, StaleIfError, "v1")
	if !errors.Is(r.FillErr, warehouseDown) || r.Age != 10*time.Minute {
		t.Errorf("FillErr, Age = %v, %v; want %v, 10m", r.FillErr, r.Age, warehouseDown)
	}

	clk.Advance(time.Hour)
	if _, err := g.Get(context.Background(), req, f); !errors.Is(err, warehouseDown) {
		t.Errorf("Get past stale-if-error = %v, want %v", err, warehouseDown)
	}
	if s := g.Stats(); s.StaleIfError != 1 || s.FillErrors != 2 {
		t.Errorf("stats = %+v, want 1 stale-if-error, 2 fill errors", s)
	}
}

func TestFillErrorWithoutEntryIsReturned(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	f := newFiller("")
	boom := errors.New("boom")
	f.setErr(boom)
	if _, err := g.Get(context.Background(), request("q", time.Minute), f); !errors.Is(err, boom) {
		t.Errorf("Get = %v, want %v", err, boom)
	}
}

func TestTooLargeIsRemembered(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now, TooLargeTTL: time.Minute})
	f := newFiller("")
	f.setErr(ErrTooLarge)
	req := request("huge", time.Hour)

	for range 3 {
		if _, err := g.Get(context.Background(), req, f); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Get = %v, want ErrTooLarge", err)
		}
	}
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1", got)
	}
	clk.Advance(time.Minute)
	f.setErr(nil)
	f.setPayload("small now")
	wantStatus(t, mustGet(t, g, req, f), Miss, "small now")
	if s := g.Stats(); s.TooLarge != 3 {
		t.Errorf("TooLarge = %d, want 3", s.TooLarge)
	}
}

func TestEntryOverMaxEntryBytesIsServedNotCached(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{MaxEntryBytes: 1024})
	big := strings.Repeat("x", 2000)
	f := newFiller(big)
	req := request("big", time.Hour)

	wantStatus(t, mustGet(t, g, req, f), Miss, big)
	if _, err := g.Get(context.Background(), req, f); !errors.Is(err, ErrTooLarge) {
		t.Errorf("second Get = %v, want ErrTooLarge", err)
	}
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1", got)
	}
}

func TestInvalidateInProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sales := Request{Key: keyOf("sales"), TTL: time.Hour, Tables: []string{"public.orders"}, Labels: []Label{{"dashboard", "sales"}}}
	stock := Request{Key: keyOf("stock"), TTL: time.Hour, Tables: []string{"public.items"}, Labels: []Label{{"dashboard", "ops"}}}
	tests := []struct {
		name         string
		invalidate   func(g *Group) error
		sales, stock Status // the next Get's status
	}{
		{"table", func(g *Group) error { return g.InvalidateTables(ctx, "public.orders") }, Miss, HitL1},
		{"other table", func(g *Group) error { return g.InvalidateTables(ctx, "public.customers") }, HitL1, HitL1},
		{"label", func(g *Group) error { return g.InvalidateLabel(ctx, "dashboard", "ops") }, HitL1, Miss},
		{"all", func(g *Group) error { return g.InvalidateAll(ctx) }, Miss, Miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGroup(t, Config{})
			f := newFiller("v")
			mustGet(t, g, sales, f)
			mustGet(t, g, stock, f)
			if err := tt.invalidate(g); err != nil {
				t.Fatal(err)
			}
			if r := mustGet(t, g, sales, f); r.Status != tt.sales {
				t.Errorf("sales: %v, want %v", r.Status, tt.sales)
			}
			if r := mustGet(t, g, stock, f); r.Status != tt.stock {
				t.Errorf("stock: %v, want %v", r.Status, tt.stock)
			}
		})
	}
}

func TestFillStartedBeforeInvalidationIsNotStored(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	f := newFiller("before the write")
	f.gate = make(chan struct{})
	req := Request{Key: keyOf("q"), TTL: time.Hour, Tables: []string{"orders"}}

	done := make(chan Result, 1)
	go func() { done <- mustGet(t, g, req, f) }()
	eventually(t, "the fill to start", func() bool { return f.fills() == 1 })
	if err := g.InvalidateTables(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	close(f.gate)
	wantStatus(t, <-done, Miss, "before the write") // its caller still gets it

	f.gate = nil
	f.setPayload("after the write")
	wantStatus(t, mustGet(t, g, req, f), Miss, "after the write")
	if s := g.Stats(); s.StoreSkipped != 1 {
		t.Errorf("StoreSkipped = %d, want 1", s.StoreSkipped)
	}
}

func TestEvictedEntriesLeaveTheIndex(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{L1MaxBytes: 64 << 10, MaxEntryBytes: 8 << 10})
	f := newFiller(strings.Repeat("x", 4<<10))
	for i := range 200 {
		req := Request{Key: keyOf(string(rune(i))), TTL: time.Hour, Tables: []string{"t"}}
		mustGet(t, g, req, f)
	}
	g.l1.c.Wait()
	g.l1.mu.Lock()
	g.l1.catchUpLocked()
	indexed := len(g.l1.all)
	g.l1.mu.Unlock()
	if indexed > 16 {
		t.Errorf("index holds %d entries, L1 has room for at most 16", indexed)
	}
}

func TestRequestWithoutTTLIsNotCacheable(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	if _, err := g.Get(context.Background(), Request{Key: keyOf("q")}, newFiller("v")); !errors.Is(err, ErrNotCacheable) {
		t.Errorf("Get = %v, want ErrNotCacheable", err)
	}
}

func TestGetAfterClose(t *testing.T) {
	t.Parallel()
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close()
	if _, err := g.Get(context.Background(), request("q", time.Minute), newFiller("v")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get = %v, want ErrClosed", err)
	}
	if err := g.InvalidateAll(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("InvalidateAll = %v, want ErrClosed", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{L1MaxBytes: -1},
		{L1MaxBytes: 1 << 20, MaxEntryBytes: 2 << 20},
		{L2: &L2Config{}},
		{L2: &L2Config{URL: "redis://x", Addrs: []string{"x:1"}}},
		{L2: &L2Config{Addrs: []string{"a:1", "b:1"}}},
		{L2: &L2Config{Addrs: []string{"a:1"}, Mode: "sentinel"}},
		{L2: &L2Config{Addrs: []string{"a:1"}, Mode: "ring"}},
		{L2: &L2Config{URL: "http://x"}},
	}
	for _, cfg := range bad {
		if g, err := New(cfg); err == nil {
			g.Close()
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
	cfg, err := Config{L2: &L2Config{URL: "redis://localhost"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.L1MaxBytes != 256<<20 || cfg.MaxEntryBytes != 16<<20 || cfg.L2.Timeout != 50*time.Millisecond ||
		cfg.L2.CompressAbove != 4<<10 || cfg.L2.WriteQueue != 1024 || cfg.L2.Writers != 2 ||
		cfg.L2.BreakerFailures != 5 || cfg.L2.BreakerCooldown != 5*time.Second {
		t.Errorf("defaults = %+v %+v", cfg, *cfg.L2)
	}
}

func BenchmarkGetL1Hit(b *testing.B) {
	g := newGroup(b, Config{})
	req := Request{Key: keyOf("hot"), TTL: time.Hour, Tables: []string{"public.orders"}}
	f := newFiller(strings.Repeat("r", 8<<10))
	if _, err := g.Get(context.Background(), req, f); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := g.Get(ctx, req, f)
		if err != nil || r.Status != HitL1 {
			b.Fatalf("Get = %v, %v", r.Status, err)
		}
	}
}

func BenchmarkGetL1HitParallel(b *testing.B) {
	g := newGroup(b, Config{})
	req := Request{Key: keyOf("hot"), TTL: time.Hour}
	f := newFiller(strings.Repeat("r", 8<<10))
	if _, err := g.Get(context.Background(), req, f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if r, err := g.Get(ctx, req, f); err != nil || r.Status != HitL1 {
				b.Fatalf("Get = %v, %v", r.Status, err)
			}
		}
	})
}

func TestPeekAnswersOnlyFreshL1Hits(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	f := newFiller("answer")
	req := request("peek", time.Minute)
	if _, ok := g.Peek(req); ok {
		t.Fatal("Peek found an answer before any fill")
	}
	wantStatus(t, mustGet(t, g, req, f), Miss, "answer")
	r, ok := g.Peek(req)
	if !ok {
		t.Fatal("Peek missed a fresh entry")
	}
	wantStatus(t, r, HitL1, "answer")
	clk.Advance(2 * time.Minute)
	if _, ok := g.Peek(req); ok {
		t.Fatal("Peek answered an entry past its TTL")
	}
	if got := f.fills(); got != 1 {
		t.Errorf("fills = %d, want 1: Peek never fills", got)
	}
}

// TestFillerMayKeepAnOlderCreated: an answer derived from an older one
// keeps its age, so that deriving never makes an answer fresher than the
// one it came from; a Created in the future is the fill's start.
func TestFillerMayKeepAnOlderCreated(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	req := request("derived", 10*time.Minute)
	old := clk.Now().Add(-8 * time.Minute)
	r := mustGet(t, g, req, FillFunc(func(context.Context) (*Entry, error) {
		return &Entry{Payload: []byte("old"), Created: old}, nil
	}))
	if r.Age != 8*time.Minute || !r.Entry.Created.Equal(old) {
		t.Fatalf("age %v, created %v; want 8m, %v", r.Age, r.Entry.Created, old)
	}
	clk.Advance(3 * time.Minute) // 11 minutes old: past the TTL
	f := newFiller("new")
	wantStatus(t, mustGet(t, g, req, f), Miss, "new")

	future := request("future", 10*time.Minute)
	r = mustGet(t, g, future, FillFunc(func(context.Context) (*Entry, error) {
		return &Entry{Payload: []byte("x"), Created: clk.Now().Add(time.Hour)}, nil
	}))
	if r.Age != 0 {
		t.Fatalf("an entry created in the future has age %v, want 0", r.Age)
	}
}

// TestRefreshAhead: an entry asked for within RefreshAhead of the end of
// its TTL is served at once and refreshed once in the background, so that
// the next ask after the TTL is a hit of the new answer.
func TestRefreshAhead(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	f := newFiller("v1")
	req := request("busy", time.Minute)
	req.RefreshAhead = 10 * time.Second

	mustGet(t, g, req, f)
	clk.Advance(45 * time.Second)
	if _, ok := g.Peek(req); !ok {
		t.Fatal("Peek before the refresh-ahead window missed")
	}
	clk.Advance(10 * time.Second) // 55s: in the window
	if _, ok := g.Peek(req); ok {
		t.Fatal("Peek in the refresh-ahead window hit: Get would not refresh")
	}
	f.setPayload("v2")
	for range 5 {
		wantStatus(t, mustGet(t, g, req, f), HitL1, "v1")
	}
	eventually(t, "one refresh", func() bool { return f.fills() == 2 })
	clk.Advance(10 * time.Second) // 65s: past v1's TTL, v2 is 10s old
	wantStatus(t, mustGet(t, g, req, f), HitL1, "v2")
	if n := f.fills(); n != 2 {
		t.Fatalf("%d fills, want 2", n)
	}
}

// TestBackgroundMarksRefreshes: a Filler can tell a background refresh
// from a fill a caller waits for.
func TestBackgroundMarksRefreshes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := newGroup(t, Config{Now: clk.Now})
	var bg, fg atomic.Int32
	fill := FillFunc(func(ctx context.Context) (*Entry, error) {
		if Background(ctx) {
			bg.Add(1)
		} else {
			fg.Add(1)
		}
		return &Entry{Payload: []byte("x"), Rows: 1}, nil
	})
	req := request("marked", time.Minute)
	req.StaleTTL = time.Minute
	mustGet(t, g, req, fill)
	clk.Advance(90 * time.Second)
	wantStatus(t, mustGet(t, g, req, fill), Stale, "x")
	eventually(t, "the refresh", func() bool { return bg.Load() == 1 })
	if fg.Load() != 1 {
		t.Fatalf("%d foreground fills, want 1", fg.Load())
	}
}

// TestCancelAbandoned: with CancelAbandoned the fill's context ends when
// the last Get waiting for it gives up; without it, the fill goes on.
func TestCancelAbandoned(t *testing.T) {
	t.Parallel()
	g := newGroup(t, Config{})
	for _, abandon := range []bool{true, false} {
		ended := make(chan error, 1)
		release := make(chan struct{})
		fill := FillFunc(func(ctx context.Context) (*Entry, error) {
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			case <-release:
				ended <- nil
				return &Entry{Payload: []byte("x"), Rows: 1}, nil
			}
		})
		req := request(fmt.Sprint("abandoned-", abandon), time.Minute)
		req.CancelAbandoned = abandon
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				if _, err := g.Get(ctx, req, fill); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Get: %v", err)
				}
			})
		}
		wg.Wait()
		if abandon {
			select {
			case err := <-ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("the abandoned fill ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the abandoned fill was not cancelled")
			}
			continue
		}
		select {
		case err := <-ended:
			t.Fatalf("the fill ended (%v) though nobody asked to cancel it", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if err := <-ended; err != nil {
			t.Fatal(err)
		}
		eventually(t, "the answer stored", func() bool { _, ok := g.Peek(req); return ok })
	}
}
