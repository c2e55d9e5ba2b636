package cache

import (
	"context"
	"fmt"
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

// testSentinelFailover runs Gets on two Groups while failover makes the
// replica of s the master, and checks that none fails and that the Groups
// share entries and invalidations through the new master afterwards.
func testSentinelFailover(t *testing.T, failover func(s *testenv.RedisSentinel) error) {
	s := testenv.NewRedisSentinel(t, 3)
	l2 := modeL2(t, ModeSentinel, s.SentinelAddrs(), s.MasterName)
	l2.BreakerCooldown = 100 * time.Millisecond
	a := newGroup(t, Config{L2: l2})
	bl2 := *l2
	b := newGroup(t, Config{L2: &bl2})
	ctx := context.Background()

	// An entry cached before the failover, and replicated.
	before := Request{Key: keyOf("before"), TTL: time.Hour, Tables: []string{"public.kept"}}
	mustGet(t, a, before, newFiller("before"))
	waitWrites(t, a, 1)
	second := redis.NewClient(&redis.Options{Addr: s.Servers[1].Addr}) // the replica, then the master
	defer second.Close()
	eventually(t, "the replica to hold the entry", func() bool {
		return second.Exists(ctx, entryKeyName(l2.Namespace, before.Key)).Val() == 1
	})

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
	start := time.Now()
	err := failover(s)
	t.Logf("failover took %v", time.Since(start))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n := errs.Load(); n != 0 {
		t.Errorf("%d of %d Gets failed during the failover", n, gets.Load())
	}
	t.Logf("%d Gets during the failover: %v; stats A %+v, B %+v", gets.Load(), statuses, a.Stats(), b.Stats())
	if master, _, err := s.Master(); err != nil || master != s.Servers[1] {
		t.Fatalf("master after the failover: %v, %v; want the former replica", master, err)
	}

	// The entry cached before is still shared, from the new master.
	c := newGroup(t, Config{L2: l2})
	eventually(t, "the entry cached before the failover to be an L2 hit", func() bool {
		r, err := c.Get(ctx, before, newFiller("refilled"))
		c.l1.invalidateAll()
		return err == nil && r.Status == HitL2 && string(r.Entry.Payload) == "before"
	})

	// Entries filled now reach the new master and the other Group.
	var after Request
	tries := 0
	eventually(t, "an entry filled by A to be an L2 hit on B", func() bool {
		tries++
		after = Request{Key: keyOf(fmt.Sprint("after", tries)), TTL: time.Hour, Tables: []string{"public.kept"}}
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

	// Invalidations reach the other Group's L1 again once its subscription
	// has moved to the new master; a round spoilt by that move (which drops
	// all of B's L1) is tried again with other tables.
	rounds := 0
	deadline := time.Now().Add(15 * time.Second)
	for {
		rounds++
		ok, why := invalidationRound(t, a, b, rounds)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds, invalidations still do not reach B's L1: %s", rounds, why)
		}
	}
	t.Logf("invalidations reach B again in round %d", rounds)
}

// invalidationRound fills two entries of tables of their own through a,
// reads them into b's L1, invalidates one table through a, and reports
// whether b's L1 dropped that entry and kept the other, and whether b then
// refills it rather than reading the invalidated one from Redis.
func invalidationRound(t *testing.T, a, b *Group, round int) (bool, string) {
	t.Helper()
	x := Request{Key: keyOf(fmt.Sprint("x", round)), TTL: time.Hour, Tables: []string{fmt.Sprintf("public.x%d", round)}}
	y := Request{Key: keyOf(fmt.Sprint("y", round)), TTL: time.Hour, Tables: []string{fmt.Sprintf("public.y%d", round)}}
	fx, fy := newFiller("x"), newFiller("y")
	writes := a.Stats().L2Writes
	mustGet(t, a, x, fx)
	mustGet(t, a, y, fy)
	waitWrites(t, a, writes+2)
	mustGet(t, b, x, fx)
	mustGet(t, b, y, fy)
	if b.getL1(x.Key) == nil || b.getL1(y.Key) == nil {
		return false, "B's L1 dropped the entries before the invalidation"
	}
	if err := a.InvalidateTables(context.Background(), x.Tables[0]); err != nil {
		return false, err.Error()
	}
	heard := waitFor(2*time.Second, func() bool { return b.getL1(x.Key) == nil })
	switch {
	case !heard:
		return false, "B's L1 still holds the invalidated entry"
	case b.getL1(y.Key) == nil:
		return false, "B's L1 dropped everything, not the invalidated entry alone"
	}
	fx.setPayload("x refilled")
	if r := mustGet(t, b, x, fx); r.Status != Miss || string(r.Entry.Payload) != "x refilled" {
		t.Errorf("B answered %q (%v) after the invalidation, want a refill", r.Entry.Payload, r.Status)
	}
	return true, ""
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
