package mono

import (
	"testing"
	"time"
)

// TestNowFollowsTime: Now moves as time.Since does, and never backwards.
func TestNowFollowsTime(t *testing.T) {
	t0, w0 := Now(), time.Now()
	time.Sleep(20 * time.Millisecond)
	t1, w1 := Now(), time.Now()
	d, wall := t1-t0, w1.Sub(w0)
	if d < 20*time.Millisecond || d > wall+time.Millisecond {
		t.Fatalf("Now moved %v while %v passed", d, wall)
	}
	prev := Now()
	for range 1000 {
		n := Now()
		if n < prev {
			t.Fatalf("Now went back from %v to %v", prev, n)
		}
		prev = n
	}
}

func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		_ = Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
