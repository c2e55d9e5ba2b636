package policy

import (
	"sync"
	"testing"
	"time"
)

// TestAdmissionJudgesShapesByWindow: a shape is bypassed after a window
// with fewer than 1 in 100 lookups answered from the cache, admitted
// again once bypassFor has passed, and never bypassed while its answers
// are reused; statements without a shape are never judged.
func TestAdmissionJudgesShapesByWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ad := NewAdmission()
	ad.now = func() time.Time { return now }
	lookup, dashboard, noShape := uint64(1), uint64(2), uint64(0)

	for i := range admitWindow {
		if ad.Bypassed(lookup) {
			t.Fatalf("bypassed after %d lookups, before the window ended", i)
		}
		st := false
		if i < admitWindow/admitMinHitEvery-1 { // just under 1 in 100 answered
			st = true
		}
		ad.Record(lookup, st)
		// A shape answered from the cache 2 times in 100.
		st = false
		if i%50 == 0 {
			st = true
		}
		ad.Record(dashboard, st)
		ad.Record(noShape, false)
	}
	if !ad.Bypassed(lookup) {
		t.Fatal("a shape answered 9 times in 1000 lookups is not bypassed")
	}
	if ad.Bypassed(dashboard) || ad.Bypassed(noShape) {
		t.Fatal("a reused shape, or one without a shape, is bypassed")
	}
	now = now.Add(bypassFor - time.Second)
	if !ad.Bypassed(lookup) {
		t.Fatal("bypass ended early")
	}
	now = now.Add(time.Second)
	if ad.Bypassed(lookup) {
		t.Fatal("still bypassed after bypassFor")
	}
	// Judged anew: a window with enough reuse keeps it admitted.
	for i := range admitWindow {
		st := false
		if i%10 == 0 {
			st = true
		}
		ad.Record(lookup, st)
	}
	if ad.Bypassed(lookup) {
		t.Fatal("a shape answered 1 time in 10 is bypassed")
	}
	// The table of shapes is bounded.
	for id := uint64(10); id < 10+2*maxShapes; id++ {
		ad.Record(id, false)
	}
	if n := len(ad.shapes); n > maxShapes {
		t.Fatalf("%d shapes followed, bound %d", n, maxShapes)
	}
}

// TestAdmissionUnderConcurrentLookups: many sessions recording hits of
// one shape at once never get it bypassed.
func TestAdmissionUnderConcurrentLookups(t *testing.T) {
	for run := range 50 {
		ad := NewAdmission()
		a := uint64(3)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for range 3 * admitWindow / 32 {
					ad.Record(a, true)
				}
			})
		}
		wg.Wait()
		if ad.Bypassed(a) {
			t.Fatalf("run %d: a shape answered from the cache every time was bypassed", run)
		}
	}
}
