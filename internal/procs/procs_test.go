package procs

import (
	"context"
	"runtime"
	"slices"
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
	cases := []struct {
		name       string
		max, start int
		samples    []sample
		want       []int // the width after each sample
	}{
		{"idle narrows after a second, not before", 2, 2, slices.Repeat([]sample{idle()}, settle),
			append(slices.Repeat([]int{2}, settle-1), 1)},
		{"a relay that keeps one processor three-quarters busy stays narrow", 2, 1, slices.Repeat([]sample{{busy: 0.8, waits: 1000}}, 20),
			slices.Repeat([]int{1}, 20)},
		{"a full processor widens at once", 2, 1, []sample{{busy: 0.7}, {busy: 0.9}, {busy: 0.9}},
			[]int{1, 2, 2}},
		{"two busy processors stay", 2, 2, slices.Repeat([]sample{{busy: 1.4, waits: 5000}}, 30),
			slices.Repeat([]int{2}, 30)},
		{"goroutines that keep queueing for the processor widen it", 2, 1, slices.Repeat([]sample{{busy: 0.5, waits: 100, slow: 10}}, queuedFor),
			append(slices.Repeat([]int{1}, queuedFor-1), 2)},
		{"one sample of slow waits does not", 2, 1, []sample{{busy: 0.3, waits: 50, slow: 5}, {busy: 0.5, waits: 1000}, {busy: 0.5, waits: 100, slow: 10}, {busy: 0.5, waits: 1000}},
			[]int{1, 1, 1, 1}},
		{"a few slow waits do not", 2, 1, []sample{{busy: 0.5, waits: 10, slow: 1}, {busy: 0.5, waits: 10000, slow: 50}},
			[]int{1, 1}},
		{"a load back right after narrowing doubles the wait before the next", 2, 2,
			slices.Concat(slices.Repeat([]sample{idle()}, settle), []sample{{busy: 0.9}}, slices.Repeat([]sample{idle()}, 2*settle)),
			slices.Concat(slices.Repeat([]int{2}, settle-1), []int{1, 2}, slices.Repeat([]int{2}, 2*settle-1), []int{1})},
		{"a busy moment resets the count", 2, 2, slices.Concat(slices.Repeat([]sample{idle()}, settle-1), []sample{{busy: 1.2}}, slices.Repeat([]sample{idle()}, settle)),
			append(slices.Repeat([]int{2}, 2*settle-1), 1)},
		{"on eight cores it narrows to what the busiest sample needed", 8, 8,
			slices.Concat(slices.Repeat([]sample{{busy: 3}}, 4), []sample{{busy: 4.4}}, slices.Repeat([]sample{{busy: 3}}, settle-5)),
			append(slices.Repeat([]int{8}, settle-1), 6)},
		{"and widens to all of them when that fills", 8, 6, []sample{{busy: 5.2}},
			[]int{8}},
		{"on sixteen cores idle, it keeps four", 16, 16, slices.Repeat([]sample{idle()}, settle),
			append(slices.Repeat([]int{16}, settle-1), 4)},
		{"on seven, one", 7, 7, slices.Repeat([]sample{idle()}, settle),
			append(slices.Repeat([]int{7}, settle-1), 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSizer(c.max, c.start)
			for i, in := range c.samples {
				if got := s.next(in.busy, in.waits, in.slow); got != c.want[i] {
					t.Fatalf("after sample %d (%+v): %d processors, want %d", i+1, in, got, c.want[i])
				}
			}
		})
	}
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
	for _, v := range []string{"0", "-1", "two"} {
		t.Setenv("GOMAXPROCS", v)
		if !Auto() {
			t.Fatalf("Auto is false with GOMAXPROCS=%q, which the runtime ignores", v)
		}
	}
}

// TestRunSetsTheWidth runs the loop on this process with the samples
// given by the test: idle it narrows to one processor, a full one widens
// it at the next sample, and when Run ends the width is Max again.
func TestRunSetsTheWidth(t *testing.T) {
	const widest = 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(widest))
	var busy atomic.Uint64 // CPU seconds a second, in thousandths
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Max: widest, Interval: 5 * time.Millisecond, sample: func() (float64, uint64, uint64, bool) {
			return float64(busy.Load()) / 1000, 0, 0, true
		}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS is %d, want %d", runtime.GOMAXPROCS(0), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1)
	busy.Store(950)
	waitFor(widest)
	busy.Store(100)
	waitFor(1)
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != widest {
		t.Fatalf("GOMAXPROCS is %d after Run ended, want %d", got, widest)
	}
}

// TestMeterSeesTheLoad reads the real meter around goroutines that keep
// one processor busy and take turns on it, and around an idle spell.
func TestMeterSeesTheLoad(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := meter{shortest: 100 * time.Millisecond}
	m.read()
	time.Sleep(300 * time.Millisecond)
	idleBusy, _, _, ok := m.read()
	if !ok {
		t.Fatal("no sample after 300 ms")
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				// 2 ms of work, then the processor to the next:
				// each waits for the other three.
				for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
				}
				runtime.Gosched()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	busy, waits, slow, ok := m.read()
	stop.Store(true)
	wg.Wait()
	if !ok {
		t.Fatal("no sample after 500 ms")
	}
	t.Logf("idle: busy %.2f; four goroutines on one processor: busy %.2f, %d waits recorded, %d of them 1 ms or longer", idleBusy, busy, waits, slow)
	if busy <= idleBusy+0.05 {
		t.Errorf("busy %.2f with four spinning goroutines, %.2f idle", busy, idleBusy)
	}
	if slow == 0 || waits < slow {
		t.Errorf("%d waits of 1 ms or longer out of %d: goroutines queueing for one processor went unseen", slow, waits)
	}
	if _, _, _, ok := m.read(); ok {
		t.Error("a sample taken at once after another was used")
	}
}
