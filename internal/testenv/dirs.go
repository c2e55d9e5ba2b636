package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// dirPrefix names every directory testenv creates under os.TempDir, so that
// directories left by killed test binaries can be found and removed.
const dirPrefix = "sqlcached-testenv-"

// staleAfter is how old a testenv directory must be before another test
// binary removes it. It is longer than any test timeout.
const staleAfter = 6 * time.Hour

// makeDir creates a fresh testenv directory for kind ("pg", "redis"),
// owned by acct (nil: the current user), after removing stale ones.
func makeDir(kind string, acct *servers.Account) (string, error) {
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix+kind+"-")
	if err != nil {
		return "", err
	}
	if err := acct.ChownAll(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

var staleOnce sync.Once

// removeStaleDirs removes testenv directories older than staleAfter, left by
// test binaries that were killed before they could clean up. Once per process.
func removeStaleDirs() {
	staleOnce.Do(func() {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
		for _, m := range matches {
			if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > staleAfter {
				os.RemoveAll(m)
			}
		}
	})
}
