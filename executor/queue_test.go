package executor

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueueBoundsWorkersAndWaiters: at most Workers run at once, at most
// MaxQueued wait, one more is refused at once with a QueueError naming
// the queue, and every admitted run completes.
func TestQueueBoundsWorkersAndWaiters(t *testing.T) {
	q := NewQueue("reports", QueueConfig{Workers: 2, MaxQueued: 10})
	gate := make(chan struct{})
	var running, peak, done atomic.Int32
	var refused atomic.Int32
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			err := q.Do(context.Background(), Foreground, func(context.Context) error {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-gate
				running.Add(-1)
				done.Add(1)
				return nil
			})
			var qe *QueueError
			if errors.As(err, &qe) {
				if !qe.Full || qe.Queue != "reports" || !errors.Is(err, ErrQueueFull) {
					t.Errorf("refusal: %+v", qe)
				}
				refused.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	// 2 running + 10 waiting; 18 refused at once, before any run ends.
	deadline := time.Now().Add(10 * time.Second)
	for refused.Load() < 18 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := refused.Load(); got != 18 {
		t.Fatalf("%d refused at once, want 18", got)
	}
	if s := q.Stats(); s.Busy != 2 || s.Waiting != 10 {
		t.Fatalf("stats %+v, want 2 busy and 10 waiting", s)
	}
	close(gate)
	wg.Wait()
	if done.Load() != 12 || peak.Load() != 2 {
		t.Fatalf("%d done (want 12), %d at once at most (want 2)", done.Load(), peak.Load())
	}
	if s := q.Stats(); s.Busy != 0 || s.Waiting != 0 {
		t.Fatalf("stats after: %+v", s)
	}
}

// TestQueueForegroundBeforeBackground: a worker that frees goes to a
// client's run before background refreshes that came earlier.
func TestQueueForegroundBeforeBackground(t *testing.T) {
	q := NewQueue("dashboards", QueueConfig{Workers: 1, MaxQueued: 10})
	hold := make(chan struct{})
	started := make(chan struct{})
	go q.Do(context.Background(), Foreground, func(context.Context) error { close(started); <-hold; return nil })
	<-started
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(name string, p Priority) {
		wg.Go(func() {
			_ = q.Do(context.Background(), p, func(context.Context) error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return nil
			})
		})
	}
	run("refresh", Background)
	for q.Stats().Waiting < 1 {
		time.Sleep(time.Millisecond)
	}
	run("view", Foreground)
	for q.Stats().Waiting < 2 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if len(order) != 2 || order[0] != "view" {
		t.Fatalf("order %v, want the view first", order)
	}
}

// TestQueueWaitBound: a run that waits longer than MaxWait is refused
// with a QueueError saying so; one whose caller gives up leaves; neither
// keeps a place or a goroutine.
func TestQueueWaitBound(t *testing.T) {
	before := runtime.NumGoroutine()
	q := NewQueue("adhoc", QueueConfig{Workers: 1, MaxQueued: 5, MaxWait: 50 * time.Millisecond})
	hold := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = q.Do(context.Background(), Foreground, func(context.Context) error { close(started); <-hold; return nil })
	})
	<-started
	err := q.Do(context.Background(), Foreground, func(context.Context) error { return nil })
	var qe *QueueError
	if !errors.As(err, &qe) || qe.Full || qe.Waited < 50*time.Millisecond {
		t.Fatalf("got %v, want a wait-bound refusal", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := q.Do(ctx, Foreground, func(context.Context) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
	if s := q.Stats(); s.Waiting != 0 || s.Busy != 1 {
		t.Fatalf("stats %+v", s)
	}
	close(hold)
	wg.Wait()
	if err := q.Do(context.Background(), Foreground, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
}
