package cache

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// modeL2 returns an L2 configuration for mode in a namespace of its own, as
// l2Config does for a standalone server.
func modeL2(t testing.TB, mode string, addrs []string, masterName string) *L2Config {
	ns := fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), namespaces.Add(1))
	return &L2Config{Mode: mode, Addrs: addrs, MasterName: masterName, Namespace: ns, Timeout: time.Second}
}

// sharedEntry is one request of shareEntries and its filler.
type sharedEntry struct {
	req     Request
	f       *filler
	payload string
}

// table returns the table request i of shareEntries reads.
func table(i, tables int) string { return fmt.Sprintf("public.t%d", i%tables) }

// shareEntries fills n entries through a, request i reading table(i,
// tables), and checks that b answers each from Redis without a fill of its
// own, then from its L1.
func shareEntries(t *testing.T, a, b *Group, n, tables int) []sharedEntry {
	t.Helper()
	entries := make([]sharedEntry, n)
	writes := a.Stats().L2Writes
	for i := range entries {
		e := &entries[i]
		e.payload = fmt.Sprintf("answer %d", i)
		e.f = newFiller(e.payload)
		e.req = Request{Key: keyOf(fmt.Sprint(t.Name(), i)), TTL: time.Hour, Tables: []string{table(i, tables)}}
		wantStatus(t, mustGet(t, a, e.req, e.f), Miss, e.payload)
	}
	waitWrites(t, a, writes+uint64(n))
	for _, e := range entries {
		wantStatus(t, mustGet(t, b, e.req, e.f), HitL2, e.payload)
		wantStatus(t, mustGet(t, b, e.req, e.f), HitL1, e.payload)
		if got := e.f.fills(); got != 1 {
			t.Errorf("%v: %d fills, want 1", e.req.Key, got)
		}
	}
	return entries
}

// checkTableInvalidation invalidates table(1, tables) through a and checks
// that b hears of it: its L1 drops that table's entries and only those, and
// its Redis reads no longer answer them.
func checkTableInvalidation(t *testing.T, a, b *Group, entries []sharedEntry, tables int) {
	t.Helper()
	gone := table(1, tables)
	invalidations := b.Stats().Invalidations
	if err := a.InvalidateTables(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's L1 to drop "+gone+"'s entries", func() bool {
		for _, e := range entries {
			if e.req.Tables[0] == gone && b.getL1(e.req.Key) != nil {
				return false
			}
		}
		return true
	})
	if got := b.Stats().Invalidations; got != invalidations+1 {
		t.Errorf("B's invalidations = %d, want %d", got, invalidations+1)
	}
	for _, e := range entries {
		if e.req.Tables[0] != gone {
			wantStatus(t, mustGet(t, b, e.req, e.f), HitL1, e.payload)
			continue
		}
		// Neither B's L1 nor Redis answers the entry filled before.
		e.f.setPayload("after " + e.payload)
		wantStatus(t, mustGet(t, b, e.req, e.f), Miss, "after "+e.payload)
		if got := e.f.fills(); got != 2 {
			t.Errorf("%v: %d fills, want 2", e.req.Key, got)
		}
		// Nor A's: B's new entry, or A's own fill.
		if r := mustGet(t, a, e.req, e.f); string(r.Entry.Payload) != "after "+e.payload {
			t.Errorf("A answered %q (%v) after the invalidation", r.Entry.Payload, r.Status)
		}
	}
}

// serverKeys returns the keys of the server at addr under namespace ns.
func serverKeys(t *testing.T, addr, ns string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var keys []string
	iter := c.Scan(context.Background(), 0, ns+":*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s: %v", addr, err)
	}
	return keys
}

// entryKeyName is the documented name of an entry's key in Redis.
func entryKeyName(ns string, k Key) string { return ns + ":v1:e:" + k.String() }

func TestClusterGroupsShareEntriesOnEveryMaster(t *testing.T) {
	t.Parallel()
	c := testenv.SharedRedisCluster(t)
	la := modeL2(t, ModeCluster, c.Addrs(), "")
	lb := *la // the other configuration form: one URL naming every seed
	lb.Addrs, lb.URL = nil, c.URL()
	a := newGroup(t, Config{L2: la})
	b := newGroup(t, Config{L2: &lb})

	const n = 300
	entries := shareEntries(t, a, b, n, 10)

	// Each entry is on exactly one master, under its namespaced name, and
	// every master holds some.
	want := make(map[string]bool, n)
	for _, e := range entries {
		want[entryKeyName(la.Namespace, e.req.Key)] = true
	}
	found := make(map[string]string) // key -> node
	for _, addr := range c.Addrs() {
		keys := serverKeys(t, addr, la.Namespace)
		if len(keys) < n/10 {
			t.Errorf("master %s holds %d of %d entries", addr, len(keys), n)
		}
		for _, k := range keys {
			if !want[k] {
				t.Errorf("master %s holds %q, not the key of an entry", addr, k)
			}
			if other, dup := found[k]; dup {
				t.Errorf("%q on %s and %s", k, other, addr)
			}
			found[k] = addr
		}
	}
	if len(found) != n {
		t.Errorf("the masters hold %d of the %d entries", len(found), n)
	}
}

func TestClusterInvalidationReachesOtherGroup(t *testing.T) {
	t.Parallel()
	c := testenv.SharedRedisCluster(t)
	l2 := modeL2(t, ModeCluster, c.Addrs(), "")
	a := newGroup(t, Config{L2: l2})
	bl2 := *l2
	b := newGroup(t, Config{L2: &bl2})

	const n, tables = 120, 4
	entries := shareEntries(t, a, b, n, tables)
	checkTableInvalidation(t, a, b, entries, tables)

	// The generation moved is one key on one master; the entries it
	// invalidated, which every Redis read compared with it, were on the
	// others too.
	gen := l2.Namespace + ":v1:g:t:" + table(1, tables)
	genNode := ""
	for _, addr := range c.Addrs() {
		for _, k := range serverKeys(t, addr, l2.Namespace) {
			if k == gen {
				genNode = addr
			}
		}
	}
	if genNode == "" {
		t.Fatalf("no master holds %q", gen)
	}
	elsewhere := 0
	for _, addr := range c.Addrs() {
		if addr == genNode {
			continue
		}
		for _, k := range serverKeys(t, addr, l2.Namespace) {
			for _, e := range entries {
				if e.req.Tables[0] == table(1, tables) && k == entryKeyName(l2.Namespace, e.req.Key) {
					elsewhere++
				}
			}
		}
	}
	if elsewhere == 0 {
		t.Errorf("every entry of %s is on %s with its generation: the reads never crossed masters", table(1, tables), genNode)
	}
	cc := redis.NewClient(&redis.Options{Addr: genNode})
	defer cc.Close()
	ctx := context.Background()
	if v, err := cc.Get(ctx, gen).Result(); err != nil || v != "1" {
		t.Errorf("%s = %q, %v; want 1", gen, v, err)
	}
	if ttl, err := cc.TTL(ctx, gen).Result(); err != nil || ttl <= DefaultMaxTTL {
		t.Errorf("TTL %s = %v, %v; want more than MaxTTL", gen, ttl, err)
	}
}

func TestSentinelGroupsShareEntriesAndInvalidations(t *testing.T) {
	t.Parallel()
	s := testenv.NewRedisSentinel(t, 1)
	l2 := modeL2(t, ModeSentinel, s.SentinelAddrs(), s.MasterName)
	a := newGroup(t, Config{L2: l2})
	bl2 := *l2
	b := newGroup(t, Config{L2: &bl2})

	const n, tables = 40, 4
	entries := shareEntries(t, a, b, n, tables)
	keys := make(map[string]bool)
	for _, k := range serverKeys(t, s.Servers[0].Addr, l2.Namespace) {
		keys[k] = true
	}
	if len(keys) != n {
		t.Errorf("the master holds %d keys in the namespace, want %d", len(keys), n)
	}
	for _, e := range entries {
		if name := entryKeyName(l2.Namespace, e.req.Key); !keys[name] {
			t.Errorf("the master does not hold %q", name)
		}
	}
	checkTableInvalidation(t, a, b, entries, tables)
}

func TestSentinelFailoverKeepsGetsAnsweringAndSharing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		failover func(s *testenv.RedisSentinel) error
	}{
		{"SENTINEL FAILOVER", (*testenv.RedisSentinel).Failover},
		{"master killed", (*testenv.RedisSentinel).KillMaster},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testSentinelFailover(t, tt.failover)
		})
	}
}

// Bounds of testSentinelFailover: from the moment the sentinels report the
// new master, invalidations through one Group must stop the other serving
// the entry within switchBound, each heard within heardWithin.
const (
	switchBound = 2 * time.Second
	heardWithin = time.Second
)

// testSentinelFailover runs Gets on two Groups while failover makes the
// replica of s the master, and checks that none fails; that, from
// switchBound after the sentinels switched on, every invalidation through A
// stops B serving the entry; that no entry written before the switch is an
// L2 hit after it; that the Groups share entries through the new master;
// and that Close leaves none of their goroutines behind.
func testSentinelFailover(t *testing.T, failover func(s *testenv.RedisSentinel) error) {
	s := testenv.NewRedisSentinel(t, 3)
	l2 := modeL2(t, ModeSentinel, s.SentinelAddrs(), s.MasterName)
	l2.BreakerCooldown = 100 * time.Millisecond
	label := l2.Namespace
	pprof.Do(context.Background(), pprof.Labels(goroutineLabel, label), func(context.Context) {
		a := newGroup(t, Config{L2: l2})
		bl2 := *l2
		b := newGroup(t, Config{L2: &bl2})
		sentinelFailover(t, s, failover, l2, a, b)
		a.Close()
		b.Close()
	})
	if n, stacks := labelledGoroutines(label, 5*time.Second); n > 0 {
		t.Errorf("%d goroutines of the Groups left after Close:\n%s", n, stacks)
	}
}

// sentinelFailover is testSentinelFailover on Groups a and b sharing l2.
func sentinelFailover(t *testing.T, s *testenv.RedisSentinel, failover func(s *testenv.RedisSentinel) error, l2 *L2Config, a, b *Group) {
	ctx := context.Background()

	// Entries cached before the failover, replicated, and in both L1s.
	before := make([]Request, 8)
	for i := range before {
		before[i] = Request{Key: keyOf(fmt.Sprint("before", i)), TTL: time.Hour, Tables: []string{fmt.Sprintf("public.kept%d", i%2)}}
		wantStatus(t, mustGet(t, a, before[i], newFiller("before")), Miss, "before")
	}
	waitWrites(t, a, uint64(len(before)))
	second := redis.NewClient(&redis.Options{Addr: s.Servers[1].Addr}) // the replica, then the master
	defer second.Close()
	eventually(t, "the replica to hold the entries", func() bool {
		for _, req := range before {
			if second.Exists(ctx, entryKeyName(l2.Namespace, req.Key)).Val() != 1 {
				return false
			}
		}
		return true
	})
	for _, req := range before {
		wantStatus(t, mustGet(t, b, req, newFiller("refilled")), HitL2, "before")
		wantStatus(t, mustGet(t, b, req, newFiller("refilled")), HitL1, "before")
	}

	// Gets on both Groups throughout the failover, each going to Redis.
	var errs, gets atomic.Int64
	var mu sync.Mutex // protects statuses
	statuses := make(map[Status]int)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		g := []*Group{a, b}[w%2]
		wg.Go(func() {
			f := newFiller("load")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := Request{Key: keyOf(fmt.Sprint("load", i%20)), TTL: time.Hour, Tables: []string{"public.load"}}
				g.l1.mu.Lock()
				g.l1.deleteLocked(req.Key)
				g.l1.mu.Unlock()
				r, err := g.Get(ctx, req, f)
				gets.Add(1)
				if err != nil {
					errs.Add(1)
				} else {
					mu.Lock()
					statuses[r.Status]++
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopLoad()

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- failover(s) }()
	failoverDone := false
	var failoverErr error
	checkDone := func() {
		if failoverDone {
			return
		}
		select {
		case failoverErr = <-done:
			failoverDone = true
			t.Logf("failover took %v", time.Since(start))
		default:
		}
	}

	// The switch: the first sentinel, which leads a SENTINEL FAILOVER,
	// reports the former replica.
	if !waitFor(time.Minute, func() bool {
		addr, _ := s.MasterAddr()
		return addr == s.Servers[1].Addr
	}) {
		t.Fatalf("the sentinels did not switch to %s", s.Servers[1].Addr)
	}
	switched := time.Now()
	t.Logf("switch after %v", switched.Sub(start))

	// When A and B followed the switch.
	followedCh := make(chan [2]time.Duration, 1)
	stopFollowed := make(chan struct{})
	followed := sync.OnceValue(func() [2]time.Duration {
		close(stopFollowed)
		return <-followedCh
	})
	defer followed()
	go func() {
		followed := [2]time.Duration{-1, -1}
		defer func() { followedCh <- followed }()
		for deadline := time.Now().Add(time.Minute); (followed[0] < 0 || followed[1] < 0) && time.Now().Before(deadline); {
			for i, g := range []*Group{a, b} {
				if followed[i] < 0 && g.Stats().MasterSwitches > 0 {
					followed[i] = time.Since(switched)
				}
			}
			select {
			case <-stopFollowed:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	// Invalidation rounds from the switch until the failover has ended and
	// a few rounds have been heard past switchBound.
	var firstHeard, lastStale time.Duration = -1, -1
	var heardAfter, spoilt int
	var slowest time.Duration // of the rounds heard past switchBound
	for round := 1; ; round++ {
		if round > 1 {
			time.Sleep(20 * time.Millisecond) // a round every 20ms or so is enough to see when invalidations are heard
		}
		checkDone()
		if failoverDone && failoverErr != nil {
			t.Fatal(failoverErr)
		}
		if failoverDone && heardAfter >= 3 {
			break
		}
		if time.Since(switched) > 45*time.Second {
			t.Fatalf("after %d rounds, %d heard past %v", round, heardAfter, switchBound)
		}
		at := time.Since(switched)
		out, took, why := invalidationRound(t, a, b, round)
		switch out {
		case roundHeard:
			if firstHeard < 0 {
				firstHeard = at
			}
			if at > switchBound {
				heardAfter++
				slowest = max(slowest, took)
			}
		case roundSpoilt:
			spoilt++
			t.Logf("round %d at %v tells nothing: %s", round, at.Round(time.Millisecond), why)
		case roundStale:
			lastStale = at
			if at > switchBound {
				t.Errorf("round %d, %v after the switch: %s", round, at.Round(time.Millisecond), why)
			} else {
				t.Logf("round %d, %v after the switch: %s", round, at.Round(time.Millisecond), why)
			}
		}
	}
	stopLoad()
	unheard := "none"
	if lastStale >= 0 {
		unheard = fmt.Sprint("one started ", lastStale.Round(time.Millisecond), " after")
	}
	t.Logf("Groups seen to follow the switch after %v (A) and %v (B); invalidations first heard by a round started %v after the switch; last unheard: %s; %d rounds heard past %v, slowest in %v; %d rounds spoilt by L1 drops or errors",
		followed()[0].Round(time.Millisecond), followed()[1].Round(time.Millisecond), firstHeard.Round(time.Millisecond), unheard, heardAfter, switchBound, slowest.Round(time.Millisecond), spoilt)
	for i, d := range followed() {
		switch {
		case d < 0:
			t.Errorf("Group %c did not follow the switch", 'A'+i)
		case d > switchBound:
			t.Errorf("Group %c followed the switch after %v, want within %v", 'A'+i, d, switchBound)
		}
	}
	if n := errs.Load(); n != 0 {
		t.Errorf("%d of %d Gets failed during the failover", n, gets.Load())
	}
	t.Logf("%d Gets during the failover: %v; stats A %+v, B %+v", gets.Load(), statuses, a.Stats(), b.Stats())
	if master, _, err := s.Master(); err != nil || master != s.Servers[1] {
		t.Fatalf("master after the failover: %v, %v; want the former replica", master, err)
	}

	// The entries cached before are still in Redis, but neither L1 holds
	// them and Redis answers none: B refills each.
	for _, req := range before {
		if second.Exists(ctx, entryKeyName(l2.Namespace, req.Key)).Val() != 1 {
			t.Errorf("the new master lost %v", req.Key)
		}
		if a.getL1(req.Key) != nil || b.getL1(req.Key) != nil {
			t.Errorf("%v is still in an L1 after the failover", req.Key)
		}
		wantStatus(t, mustGet(t, b, req, newFiller("refilled")), Miss, "refilled")
	}

	// Entries filled now reach the new master and the other Group.
	var after Request
	tries := 0
	eventually(t, "an entry filled by A to be an L2 hit on B", func() bool {
		tries++
		after = Request{Key: keyOf(fmt.Sprint("after", tries)), TTL: time.Hour, Tables: []string{"public.kept0"}}
		writes := a.Stats().L2Writes
		wantStatus(t, mustGet(t, a, after, newFiller("after")), Miss, "after")
		if !waitFor(time.Second, func() bool { return a.Stats().L2Writes > writes }) {
			return false
		}
		r := mustGet(t, b, after, newFiller("refilled"))
		return r.Status == HitL2 && string(r.Entry.Payload) == "after"
	})
	if second.Exists(ctx, entryKeyName(l2.Namespace, after.Key)).Val() != 1 {
		t.Errorf("the new master does not hold the entry filled after the failover")
	}
}

// roundOutcome is what invalidationRound saw.
type roundOutcome int

const (
	roundHeard  roundOutcome = iota // B stopped serving the invalidated entry, and only it
	roundSpoilt                     // B's L1 was dropped whole, or the invalidation returned an error
	roundStale                      // the invalidation succeeded and B went on serving the entry
)

// invalidationRound fills two entries of tables of their own through a,
// reads them into b's L1, invalidates one table through a, and reports
// whether b's L1 dropped that entry within heardWithin (and how soon) and
// kept the other, and whether b then refilled it rather than answering the
// invalidated one from Redis.
func invalidationRound(t *testing.T, a, b *Group, round int) (roundOutcome, time.Duration, string) {
	t.Helper()
	x := Request{Key: keyOf(fmt.Sprint("x", round)), TTL: time.Hour, Tables: []string{fmt.Sprintf("public.x%d", round)}}
	y := Request{Key: keyOf(fmt.Sprint("y", round)), TTL: time.Hour, Tables: []string{fmt.Sprintf("public.y%d", round)}}
	fx, fy := newFiller("x"), newFiller("y")
	writes := a.Stats().L2Writes
	mustGet(t, a, x, fx)
	mustGet(t, a, y, fy)
	waitFor(time.Second, func() bool { return a.Stats().L2Writes >= writes+2 })
	mustGet(t, b, x, fx)
	mustGet(t, b, y, fy)
	if b.getL1(x.Key) == nil || b.getL1(y.Key) == nil {
		return roundSpoilt, 0, "B's L1 dropped the entries before the invalidation"
	}
	if err := a.InvalidateTables(context.Background(), x.Tables[0]); err != nil {
		return roundSpoilt, 0, err.Error()
	}
	fx.setPayload("x refilled")
	invalidated := time.Now()
	if !waitFor(heardWithin, func() bool { return b.getL1(x.Key) == nil }) {
		return roundStale, 0, fmt.Sprintf("B's L1 still holds the invalidated entry %v after A's invalidation returned", heardWithin)
	}
	took := time.Since(invalidated)
	if b.getL1(y.Key) == nil {
		return roundSpoilt, 0, "B's L1 dropped everything, not the invalidated entry alone"
	}
	if r := mustGet(t, b, x, fx); string(r.Entry.Payload) != "x refilled" {
		return roundStale, 0, fmt.Sprintf("B answered %q (%v) after the invalidation, want a refill", r.Entry.Payload, r.Status)
	}
	return roundHeard, took, ""
}

// goroutineLabel is the pprof label under which a test runs the Groups
// whose goroutines it counts: goroutines inherit their creator's labels,
// so a test counts its own among those of tests running in parallel.
const goroutineLabel = "sqlcached-cache-test"

// labelledGoroutines waits up to d for every goroutine labelled
// goroutineLabel=value to end, and returns how many are left and their
// stacks.
func labelledGoroutines(value string, d time.Duration) (int, string) {
	want := fmt.Sprintf("%q:%q", goroutineLabel, value)
	var n int
	var stacks []string
	waitFor(d, func() bool {
		var buf strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		n, stacks = 0, nil
		for _, rec := range strings.Split(buf.String(), "\n\n") {
			if !strings.Contains(rec, "# labels: ") || !strings.Contains(rec, want) {
				continue
			}
			var count int
			if _, err := fmt.Sscanf(rec, "%d @", &count); err == nil {
				n += count
				stacks = append(stacks, rec)
			}
		}
		return n == 0
	})
	return n, strings.Join(stacks, "\n\n")
}

// waitFor polls cond until it holds or d passes, and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}
