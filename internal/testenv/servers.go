package testenv

import (
	"sync"
	"testing"
	"time"
)

// server is what every kind of test server gives: a way to stop it and
// remove its directory.
type server interface{ destroy() error }

// dedicated starts a server for one test with start, and destroys it when
// the test ends; what names it in a failure to remove.
func dedicated[S server](t testing.TB, what string, start func() (S, error)) S {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.destroy(); err != nil {
			t.Logf("testenv: removing %s: %v", what, err)
		}
	})
	return s
}

// shared is a server the whole test binary shares: started on first use,
// destroyed by Main after the last test.
type shared[S server] struct {
	once sync.Once
	s    S
	err  error
}

func (sh *shared[S]) get(t testing.TB, start func() (S, error)) S {
	t.Helper()
	sh.once.Do(func() {
		sh.s, sh.err = start()
		if sh.err == nil {
			atExit(sh.s.destroy)
		}
	})
	if sh.err != nil {
		t.Fatal(sh.err)
	}
	return sh.s
}

// startTimeout is how long a Redis cluster or sentinel setup may take to
// come together, generous because tests run with -race on a shared
// two-core machine.
const startTimeout = 60 * time.Second
