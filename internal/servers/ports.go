package servers

import (
	"context"
	"net"
	"time"
)

// Timeouts of a server's life cycle, generous because tests run with -race
// on a shared two-core machine.
const (
	readyTimeout  = 60 * time.Second // from start until a server accepts connections
	stopTimeout   = 60 * time.Second // from a stop signal until the server has exited
	samePortRetry = 10 * time.Second // how long Start tries the port a server had
)

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before a server binds it, so StartPostgres and
// StartRedis try other ports if the first fails.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// onFreePort calls start with a free port until it succeeds, three times
// at most, or ctx ends.
func onFreePort(ctx context.Context, start func(port int) error) error {
	var err error
	for range 3 {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		if err = start(port); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// onSamePort calls start until it succeeds, ctx ends or samePortRetry has
// passed: a server's port may be held for a moment by another process
// probing for a free one.
func onSamePort(ctx context.Context, start func() error) error {
	deadline := time.Now().Add(samePortRetry)
	for {
		err := start()
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
