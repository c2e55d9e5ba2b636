package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

var (
	exitMu    sync.Mutex // protects exitFuncs
	exitFuncs []func() error
)

// atExit registers f to run in Main after the tests, last registered first.
func atExit(f func() error) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitFuncs = append(exitFuncs, f)
}

// Main runs the tests, then stops every shared server and removes its
// directory, and exits with m.Run's code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Without it, shared servers still die with the test binary, but their
// directories stay behind until a later run removes them as stale.
func Main(m *testing.M) {
	code := m.Run()
	exitMu.Lock()
	fs := exitFuncs
	exitFuncs = nil
	exitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		if err := fs[i](); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
	os.Exit(code)
}
