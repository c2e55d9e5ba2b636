package servers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// LookBinary finds a server binary: $envVar if set, then the first of
// candidates that exists, then name on $PATH.
func LookBinary(envVar, name string, candidates ...string) (string, error) {
	if v := os.Getenv(envVar); v != "" {
		return v, nil
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (set $%s or install it): %w", name, envVar, err)
	}
	return p, nil
}

// PostgresBinDir finds the directory of initdb, postgres and psql:
// $SQLCACHED_PG_BIN, the newest /usr/lib/postgresql/N/bin (Debian's
// layout), or the directory of postgres on $PATH.
func PostgresBinDir() (string, error) {
	if v := os.Getenv("SQLCACHED_PG_BIN"); v != "" {
		return v, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := LookBinary("SQLCACHED_PG_BIN", "postgres")
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// pgVersion returns N of /usr/lib/postgresql/N/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

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
