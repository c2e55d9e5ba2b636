package proxy_test

import (
	"testing"
)

// TestNeverRepeatedShapesAreRelayedUncached: a lookup whose parameter
// changes every time (an order by its id) fills the cache with answers
// nobody asks for again; after a window of such lookups the shape is
// relayed uncached (no more fills, no more entries), its answers stay
// right, and a query of another shape that repeats is still answered
// from the cache.
func TestNeverRepeatedShapesAreRelayedUncached(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	group := e.Cache
	e.PG.Exec(t, e.Database, "create table acc (id int primary key, v int); insert into acc select g, g * 2 from generate_series(1, 3000) g")
	c := e.connect(t)
	ctx := ctxT(t)
	lookup := func(id int) {
		t.Helper()
		var v int
		if err := c.QueryRow(ctx, "select v from acc where id = $1", id).Scan(&v); err != nil || v != 2*id {
			t.Fatalf("id %d: got %d, %v; want %d", id, v, err, 2*id)
		}
	}
	before := group.Stats().Fills
	for id := 1; id <= 1000; id++ {
		lookup(id)
	}
	if fills := group.Stats().Fills - before; fills != 1000 {
		t.Fatalf("1000 distinct lookups made %d fills, want 1000 (cached while the shape is judged)", fills)
	}
	for id := 1001; id <= 2000; id++ {
		lookup(id)
	}
	if fills := group.Stats().Fills - before; fills != 1000 {
		t.Fatalf("after the window, 1000 more distinct lookups made %d more fills, want none", fills-1000)
	}
	// A write through the proxy is seen by the relayed shape at once.
	if _, err := c.Exec(ctx, "update acc set v = 4000 where id = 1500"); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := c.QueryRow(ctx, "select v from acc where id = $1", 1500).Scan(&v); err != nil || v != 4000 {
		t.Fatalf("after the update: %d, %v", v, err)
	}
	// Another shape that repeats is still cached.
	q := "select count(*) from acc where v > $1"
	calls := e.PG.Calls(t, e.Database, "select count(*) from acc where v >%")
	for range 20 {
		var n int
		if err := c.QueryRow(ctx, q, 10).Scan(&n); err != nil || n != 2995 {
			t.Fatalf("count: %d, %v", n, err)
		}
	}
	if n := e.PG.Calls(t, e.Database, "select count(*) from acc where v >%") - calls; n != 1 {
		t.Fatalf("a repeated query ran %d times on the warehouse, want 1", n)
	}
}
