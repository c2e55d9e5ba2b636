package proxy

import (
	"sync"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/fingerprint"
)

// TestAdmissionJudgesShapesByWindow: a shape is bypassed after a window
// with fewer than 1 in 100 lookups answered from the cache, admitted
// again once bypassFor has passed, and never bypassed while its answers
// are reused; statements without a shape are never judged.
func TestAdmissionJudgesShapesByWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ad := newAdmission()
	ad.now = func() time.Time { return now }
	lookup, dashboard, noShape := &fingerprint.Analysis{ShapeID: 1}, &fingerprint.Analysis{ShapeID: 2}, &fingerprint.Analysis{}

	for i := range admitWindow {
		if ad.bypassed(lookup) {
			t.Fatalf("bypassed after %d lookups, before the window ended", i)
		}
		st := cache.Miss
		if i < admitWindow/admitMinHitEvery-1 { // just under 1 in 100 answered
			st = cache.HitL1
		}
		ad.record(lookup, st)
		// A shape answered from the cache 2 times in 100.
		st = cache.Miss
		if i%50 == 0 {
			st = cache.Shared
		}
		ad.record(dashboard, st)
		ad.record(noShape, cache.Miss)
	}
	if !ad.bypassed(lookup) {
		t.Fatal("a shape answered 9 times in 1000 lookups is not bypassed")
	}
	if ad.bypassed(dashboard) || ad.bypassed(noShape) {
		t.Fatal("a reused shape, or one without a shape, is bypassed")
	}
	now = now.Add(bypassFor - time.Second)
	if !ad.bypassed(lookup) {
		t.Fatal("bypass ended early")
	}
	now = now.Add(time.Second)
	if ad.bypassed(lookup) {
		t.Fatal("still bypassed after bypassFor")
	}
	// Judged anew: a window with enough reuse keeps it admitted.
	for i := range admitWindow {
		st := cache.Miss
		if i%10 == 0 {
			st = cache.HitL2
		}
		ad.record(lookup, st)
	}
	if ad.bypassed(lookup) {
		t.Fatal("a shape answered 1 time in 10 is bypassed")
	}
	// The table of shapes is bounded.
	for id := uint64(10); id < 10+2*maxShapes; id++ {
		ad.record(&fingerprint.Analysis{ShapeID: id}, cache.Miss)
	}
	if n := len(ad.shapes); n > maxShapes {
		t.Fatalf("%d shapes followed, bound %d", n, maxShapes)
	}
}

// TestAdmissionUnderConcurrentLookups: many sessions recording hits of
// one shape at once never get it bypassed.
func TestAdmissionUnderConcurrentLookups(t *testing.T) {
	for run := range 50 {
		ad := newAdmission()
		a := &fingerprint.Analysis{ShapeID: 3}
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for range 3 * admitWindow / 32 {
					ad.record(a, cache.HitL1)
				}
			})
		}
		wg.Wait()
		if ad.bypassed(a) {
			t.Fatalf("run %d: a shape answered from the cache every time was bypassed", run)
		}
	}
}
