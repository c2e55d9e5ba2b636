package servers

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Timeouts of a server's life, generous because tests run with -race on a
// shared two-core machine.
const (
	readyTimeout  = 60 * time.Second // from start until a server accepts connections
	stopTimeout   = 60 * time.Second // from a stop signal until the server has exited
	samePortRetry = 10 * time.Second // how long a start again tries the port a server had
)

// launch starts c and waits until ready returns nil. A process that does
// not get ready is stopped with sig.
func launch(ctx context.Context, c Command, ready func(context.Context) error, sig syscall.Signal) (*Proc, error) {
	proc, err := Start(c)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitReady(ctx, readyTimeout, ready); err != nil {
		_ = proc.Stop(sig, stopTimeout)
		return nil, err
	}
	return proc, nil
}

// life is what a server that stops and starts again (Postgres, Redis)
// keeps across its processes.
type life struct {
	what string // "postgres", "redis": names the server in errors

	mu   sync.Mutex // protects proc, and what the server's start reads and writes
	proc *Proc      // the running (or last) process; nil before the first start
}

// running reports whether the server is up: started, and neither stopped
// nor killed since.
func (l *life) running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runningLocked()
}

func (l *life) runningLocked() bool {
	if l.proc == nil {
		return false
	}
	select {
	case <-l.proc.Exited():
		return false
	default:
		return true
	}
}

// startFirst calls start (which sets l.proc) with a free port until it
// succeeds, three times at most: another process may take a free port
// before the server binds it.
func (l *life) startFirst(ctx context.Context, start func(ctx context.Context, port int) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for range 3 {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		if err = start(ctx, port); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// startAgain calls start (which sets l.proc) until it succeeds, ctx ends
// or samePortRetry has passed: the server's port may be held for a moment
// by another process probing for a free one.
func (l *life) startAgain(ctx context.Context, start func(context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runningLocked() {
		return fmt.Errorf("servers: %s is already running", l.what)
	}
	deadline := time.Now().Add(samePortRetry)
	for {
		err := start(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop sends sig to the server and waits until it has exited (see
// Proc.Stop). Stopping a stopped server does nothing.
func (l *life) stop(sig syscall.Signal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proc == nil {
		return nil
	}
	return l.proc.Stop(sig, stopTimeout)
}

// signal sends sig to the running server; one that is not running is an
// error.
func (l *life) signal(sig syscall.Signal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.runningLocked() {
		return fmt.Errorf("servers: %s is not running", l.what)
	}
	return l.proc.Signal(sig)
}
