//go:build cgo

package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
)

// The demo as a new user meets it: started, connected to with psql, a
// dashboard query run twice (the second from the cache, as /stats shows),
// stopped with Ctrl-C.
func TestDemoAsNewUser(t *testing.T) {
	cmd := exec.Command(os.Args[0], "demo", "--listen", freeAddr(t), "--http", freeAddr(t))
	cmd.Env = append(os.Environ(), "SQLCACHED_TEST_AS_COMMAND=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Read the banner up to its last line.
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var banner strings.Builder
	timeout := time.After(60 * time.Second)
	for !strings.Contains(banner.String(), "Stop with Ctrl-C") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended before it was ready:\n%s\n%s", banner.String(), stderr.String())
			}
			banner.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("no banner after 60s:\n%s\n%s", banner.String(), stderr.String())
		}
	}
	t.Logf("ready after %v:\n%s", time.Since(start).Round(time.Millisecond), banner.String())
	conn := regexp.MustCompile(`psql "([^"]+)"`).FindStringSubmatch(banner.String())
	stats := regexp.MustCompile(`curl -s (http://\S+/stats)`).FindStringSubmatch(banner.String())
	if conn == nil || stats == nil {
		t.Fatalf("the banner names no psql command or stats URL:\n%s", banner.String())
	}
	getStats := func() cache.Stats {
		t.Helper()
		resp, err := http.Get(stats[1])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st cache.Stats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	psql := func(sql string) string {
		t.Helper()
		out, err := exec.Command("psql", conn[1], "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		return string(out)
	}
	if got := psql("select count(*) from orders"); strings.TrimSpace(got) != "1200000" {
		t.Errorf("orders has %q rows, want 1200000", got)
	}
	before := getStats()
	first := psql(demoQueries[0])
	mid := getStats()
	second := psql(demoQueries[0])
	after := getStats()
	if first != second || strings.Count(first, "\n") != 36 {
		t.Errorf("the two answers differ or are not 36 months:\n%s\n%s", first, second)
	}
	if mid.Misses != before.Misses+1 || after.L1Hits != mid.L1Hits+1 || after.Misses != mid.Misses {
		t.Errorf("stats: before %+v, after the first run %+v, after the second %+v: want one miss then one L1 hit", before, mid, after)
	}

	// Ctrl-C.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for l := range lines {
		rest.WriteString(l + "\n")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("demo still running 5s after Ctrl-C")
	}
	if !strings.Contains(rest.String(), "1 answers from the cache") {
		t.Errorf("the demo's last words: %q", rest.String())
	}
}
