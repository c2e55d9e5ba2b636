package procs

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sample is one tick as the meter would read it.
type sample struct {
	busy        float64
	waits, slow uint64
}

func idle() sample { return sample{} }

func TestSizerWidths(t *testing.T) {
	repeat := func(n int, s sample) []sample {
		out := make([]sample, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cat := func(parts ...[]sample) []sample {
		var out []sample
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name       string
		max, start int
		samples    []sample
		want       []int // the width after each sample
	}{
		{"idle narrows after a second, not before", 2, 2, repeat(settle, idle()),
			append(repeatInt(settle-1, 2), 1)},
		{"a relay that keeps one processor three-quarters busy stays narrow", 2, 1, repeat(20, sample{busy: 0.8, waits: 1000}),
			repeatInt(20, 1)},
		{"a full processor widens at once", 2, 1, []sample{{busy: 0.7}, {busy: 0.9}, {busy: 0.9}},
			[]int{1, 2, 2}},
		{"two busy processors stay", 2, 2, repeat(30, sample{busy: 1.4, waits: 5000}),
			repeatInt(30, 2)},
		{"goroutines queueing for the processor widen it", 2, 1, []sample{{busy: 0.5, waits: 100, slow: 10}},
			[]int{2}},
		{"a few slow waits do not", 2, 1, []sample{{busy: 0.5, waits: 100, slow: 4}, {busy: 0.5, waits: 10000, slow: 50}},
			[]int{1, 1}},
		{"a busy moment resets the count", 2, 2, cat(repeat(settle-1, idle()), []sample{{busy: 1.2}}, repeat(settle, idle())),
			append(repeatInt(2*settle-1, 2), 1)},
		{"on eight cores it narrows to what the busiest sample needed", 8, 8,
			cat(repeat(4, sample{busy: 3}), []sample{{busy: 4.4}}, repeat(settle-5, sample{busy: 3})),
			append(repeatInt(settle-1, 8), 6)},
		{"and widens to all of them when that fills", 8, 6, []sample{{busy: 5.2}},
			[]int{8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sizer{max: c.max, procs: c.start}
			for i, in := range c.samples {
				if got := s.next(in.busy, in.waits, in.slow); got != c.want[i] {
					t.Fatalf("after sample %d (%+v): %d processors, want %d", i+1, in, got, c.want[i])
				}
			}
		})
	}
}

func repeatInt(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestAutoStepsAsideForTheEnvironment(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	if !Auto() {
		t.Fatal("Auto is false with GOMAXPROCS unset")
	}
	t.Setenv("GOMAXPROCS", "2")
	if Auto() {
		t.Fatal("Auto is true with GOMAXPROCS=2 in the environment")
	}
}

// TestRunFollowsTheLoad runs the sizer on this process: idle it narrows
// to one processor, goroutines that keep a processor busy widen it, and
// when they stop it narrows again; when Run ends the width is Max.
func TestRunFollowsTheLoad(t *testing.T) {
	const widest = 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(widest))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Max: widest, Interval: 100 * time.Millisecond})
	}()
	waitFor := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS is %d after %v, want %d", runtime.GOMAXPROCS(0), within, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(1, 10*time.Second)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			x := 0
			for !stop.Load() {
				x++
			}
			_ = x
		})
	}
	waitFor(widest, 10*time.Second)
	stop.Store(true)
	wg.Wait()
	waitFor(1, 10*time.Second)

	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != widest {
		t.Fatalf("GOMAXPROCS is %d after Run ended, want %d", got, widest)
	}
}
