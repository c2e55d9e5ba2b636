package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Priority orders the runs waiting in a queue: a client waiting comes
// before background work (refreshes) whatever the order they came in.
type Priority int

// Priorities.
const (
	Foreground Priority = iota // a client is waiting for the answer
	Background                 // a refresh nobody waits for
)

// QueueConfig sizes a queue.
type QueueConfig struct {
	// Workers is how many runs of the queue may be on the warehouse at
	// once.
	Workers int
	// MaxQueued bounds the runs waiting for a worker; one more is
	// refused at once (ErrQueueFull).
	MaxQueued int
	// MaxWait bounds how long a run waits for a worker; 0 means no bound
	// beyond the caller's context.
	MaxWait time.Duration
}

// QueueError is a run refused by a queue: it was full, or the run waited
// longer than the queue allows. PostgreSQL frontends answer it with
// SQLSTATE 53000.
type QueueError struct {
	Queue   string
	Full    bool // refused at once: MaxQueued runs were waiting
	Waited  time.Duration
	Max     int
	MaxWait time.Duration
}

func (e *QueueError) Error() string {
	if e.Full {
		return fmt.Sprintf("queue %q is full: %d queries already wait for its workers", e.Queue, e.Max)
	}
	return fmt.Sprintf("queue %q: waited %v for a worker, longer than its bound of %v", e.Queue, e.Waited.Round(time.Millisecond), e.MaxWait)
}

// ErrQueueFull matches every *QueueError with errors.Is.
var ErrQueueFull = errors.New("executor: queue full")

// Is makes errors.Is(err, ErrQueueFull) true for queue refusals.
func (e *QueueError) Is(target error) bool { return target == ErrQueueFull }

// Queue runs work on a bounded number of workers, in priority order,
// with a bounded number of runs waiting. The work runs on the caller's
// goroutine once a worker is free: a Queue starts no goroutines of its
// own. It is safe for concurrent use.
type Queue struct {
	name string
	cfg  QueueConfig

	mu      sync.Mutex
	busy    int
	waiting [2][]*ticket // by priority, first come first
	nwait   int
}

type ticket struct {
	ready chan struct{} // closed when the ticket holds a worker
}

// NewQueue returns a queue named name (for errors and stats).
func NewQueue(name string, cfg QueueConfig) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.MaxQueued < 0 {
		cfg.MaxQueued = 0
	}
	return &Queue{name: name, cfg: cfg}
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// QueueStats is a queue's state at one moment.
type QueueStats struct {
	Busy    int // workers running
	Waiting int // runs waiting for a worker
}

// Stats returns the queue's state.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Busy: q.busy, Waiting: q.nwait}
}

// Do runs f on a worker of the queue: at once when one is free, else
// after waiting (at most MaxWait and while ctx lasts) behind the runs of
// its priority and above. A full queue refuses at once with a
// *QueueError. f's context is ctx.
func (q *Queue) Do(ctx context.Context, prio Priority, f func(context.Context) error) error {
	if err := q.acquire(ctx, prio); err != nil {
		return err
	}
	defer q.release()
	return f(ctx)
}

func (q *Queue) acquire(ctx context.Context, prio Priority) error {
	q.mu.Lock()
	if q.busy < q.cfg.Workers && q.nwait == 0 {
		q.busy++
		q.mu.Unlock()
		return nil
	}
	if q.nwait >= q.cfg.MaxQueued {
		q.mu.Unlock()
		return &QueueError{Queue: q.name, Full: true, Max: q.cfg.MaxQueued}
	}
	t := &ticket{ready: make(chan struct{})}
	q.waiting[prio] = append(q.waiting[prio], t)
	q.nwait++
	q.mu.Unlock()

	start := time.Now()
	var timeout <-chan time.Time
	if q.cfg.MaxWait > 0 {
		timer := time.NewTimer(q.cfg.MaxWait)
		defer timer.Stop()
		timeout = timer.C
	}
	var err error
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = &QueueError{Queue: q.name, Waited: time.Since(start), MaxWait: q.cfg.MaxWait}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-t.ready:
		// Granted while giving up: pass the worker on.
		q.releaseLocked()
	default:
		q.remove(prio, t)
	}
	return err
}

func (q *Queue) remove(prio Priority, t *ticket) {
	w := q.waiting[prio]
	for i, x := range w {
		if x == t {
			copy(w[i:], w[i+1:])
			w[len(w)-1] = nil
			q.waiting[prio] = w[:len(w)-1]
			q.nwait--
			return
		}
	}
}

func (q *Queue) release() {
	q.mu.Lock()
	q.releaseLocked()
	q.mu.Unlock()
}

// releaseLocked hands the worker to the first waiting run of the highest
// priority, or frees it.
func (q *Queue) releaseLocked() {
	for p := range q.waiting {
		if w := q.waiting[p]; len(w) > 0 {
			t := w[0]
			w[0] = nil
			q.waiting[p] = w[1:]
			q.nwait--
			close(t.ready)
			return
		}
	}
	q.busy--
}

// Queues holds every backend's copy of the configured queues: a slow
// warehouse never holds the workers of another.
type Queues struct {
	m map[[2]string]*Queue // backend, queue
}

// NewQueues makes the queues cfgs for each backend.
func NewQueues(backends []string, cfgs map[string]QueueConfig) *Queues {
	qs := &Queues{m: map[[2]string]*Queue{}}
	for _, b := range backends {
		for name, c := range cfgs {
			qs.m[[2]string{b, name}] = NewQueue(name, c)
		}
	}
	return qs
}

// Get returns backend's queue name, or nil when there is none.
func (qs *Queues) Get(backend, name string) *Queue {
	if qs == nil {
		return nil
	}
	return qs.m[[2]string{backend, name}]
}

// QueueState is one queue of one backend, as Queues.Each reports it.
type QueueState struct {
	Backend, Queue string
	Workers        int
	QueueStats
}

// Each returns the state of every queue, sorted by backend and name.
func (qs *Queues) Each() []QueueState {
	if qs == nil {
		return nil
	}
	out := make([]QueueState, 0, len(qs.m))
	for k, q := range qs.m {
		out = append(out, QueueState{Backend: k[0], Queue: k[1], Workers: q.cfg.Workers, QueueStats: q.Stats()})
	}
	slices.SortFunc(out, func(a, b QueueState) int {
		return cmp.Or(cmp.Compare(a.Backend, b.Backend), cmp.Compare(a.Queue, b.Queue))
	})
	return out
}

// TimeoutError is a run cancelled on the warehouse because it took longer
// than its rule allows. PostgreSQL frontends answer it with SQLSTATE 57014.
type TimeoutError struct {
	Rule  string
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("canceling statement due to the timeout of rule %q (%v)", e.Rule, e.Limit)
}

// Is makes errors.Is(err, context.DeadlineExceeded) true for timeouts.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Run runs req on wh through queue q (directly when q is nil) under a
// timeout that starts when a worker takes it: a run that outlasts it is
// cancelled on the warehouse and answered with a *TimeoutError naming
// rule. Background work waits behind what clients wait for.
func Run(ctx context.Context, q *Queue, prio Priority, wh Warehouse, req *Request, rule string, timeout time.Duration) (*Result, error) {
	var res *Result
	queued := time.Now()
	run := func(ctx context.Context) error {
		start := time.Now()
		defer func() {
			if res != nil {
				res.Elapsed, res.Waited = time.Since(start), start.Sub(queued)
			}
		}()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, timeout, &TimeoutError{Rule: rule, Limit: timeout})
			defer cancel()
		}
		var err error
		res, err = wh.Execute(ctx, req)
		if err != nil && ctx.Err() != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
		}
		return err
	}
	if q == nil {
		return res, run(ctx)
	}
	err := q.Do(ctx, prio, run)
	return res, err
}
