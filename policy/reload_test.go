package policy_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/policy"
)

// configWithTTL is a configuration whose one rule caches for ttl: the
// same size for every one-digit ttl.
func configWithTTL(ttl int) string {
	return fmt.Sprintf(`listen:
  postgres: 127.0.0.1:6432
backends:
  - name: warehouse
    kind: postgres
    dsn: postgres://u@127.0.0.1:5432/db
policies:
  - name: everything
    ttl: %ds
`, ttl)
}

// TestReloaderSeesEveryRewrite: the watcher notices a rewrite that leaves
// the file's size as it was, made at once (within the file system's
// clock tick), made by an editor's rename with the old modification time
// put back, and made in place with the old time put back.
func TestReloaderSeesEveryRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sqlcached.yaml")
	if err := os.WriteFile(path, []byte(configWithTTL(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	applied := make(chan time.Duration, 16)
	r := &policy.Reloader{
		Path: path, Interval: 5 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
		Apply: func(s *policy.Set, _ *config.Config) { applied <- s.Rules()[0].TTL },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	expect := func(want time.Duration) {
		t.Helper()
		select {
		case got := <-applied:
			if got != want {
				t.Fatalf("applied a rule of ttl %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the rule of ttl %v was never applied", want)
		}
	}

	time.Sleep(20 * time.Millisecond) // the watcher has looked at the first file
	if err := os.WriteFile(path, []byte(configWithTTL(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(configWithTTL(3)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Both writes may be seen, or only the second: the last applied is 3s.
	for got := time.Duration(0); got != 3*time.Second; {
		select {
		case got = <-applied:
		case <-time.After(5 * time.Second):
			t.Fatal("the rewrite of the same size was not applied")
		}
	}

	// An old file replaced by a rename, its time and size as they were.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the watcher has seen the old time
	tmp := filepath.Join(dir, "sqlcached.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(configWithTTL(4)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	expect(4 * time.Second)

	// Rewritten in place with its old time put back (cp -p, rsync -t
	// --inplace), once the watcher has come to rely on the metadata.
	time.Sleep(2100 * time.Millisecond)
	if err := os.WriteFile(path, []byte(configWithTTL(5)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	expect(5 * time.Second)

	// Unchanged, it is not applied again.
	select {
	case got := <-applied:
		t.Fatalf("an unchanged file was applied again (ttl %v)", got)
	case <-time.After(100 * time.Millisecond):
	}
}
