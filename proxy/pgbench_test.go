package proxy_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPgbench initialises pgbench's tables through the proxy (COPY of
// 100000 accounts, DDL, VACUUM) and runs the TPC-B-like script in each
// query mode with 4 clients on 2 threads sharing 3 warehouse connections.
// -M prepared makes every client prepare the same statements under the
// same names, which the proxy must keep apart per session while sharing
// them on the warehouse. Afterwards, checked on PostgreSQL itself, every
// transaction left its history row and the balances add up.
func TestPgbench(t *testing.T) { forEachMode(t, testPgbench) }

func testPgbench(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 3, cache: cached})
	proxy := e.viaProxy()
	dir := t.TempDir()
	r := runTool(t, proxy, dir, nil, 5*time.Minute, "pgbench", "-i", "-s", "1", "-q")
	if r.Code != 0 || !strings.Contains(r.Stderr, "done in") {
		t.Fatalf("pgbench -i through the proxy:\n%s", r)
	}
	direct := e.PG.Connect(t, e.Database)
	count := func(t *testing.T, q string) int64 {
		t.Helper()
		var n int64
		if err := direct.QueryRow(ctxT(t), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for table, want := range map[string]int64{"pgbench_accounts": 100000, "pgbench_branches": 1, "pgbench_tellers": 10, "pgbench_history": 0} {
		if n := count(t, "select count(*) from "+table); n != want {
			t.Errorf("%s has %d rows after pgbench -i, want %d", table, n, want)
		}
	}
	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`)
	failed := regexp.MustCompile(`number of failed transactions: (\d+)`)
	var history int64
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			r := runTool(t, proxy, dir, nil, 5*time.Minute, "pgbench", "-M", mode, "-c", "4", "-j", "2", "-t", "200", "-n")
			if r.Code != 0 {
				t.Fatalf("pgbench -M %s:\n%s", mode, r)
			}
			if m := processed.FindStringSubmatch(r.Stdout); m == nil || m[1] != "800" || m[2] != "800" {
				t.Errorf("pgbench -M %s did not process 800/800:\n%s", mode, r)
			}
			if m := failed.FindStringSubmatch(r.Stdout); m != nil && m[1] != "0" {
				t.Errorf("pgbench -M %s: %s failed transactions:\n%s", mode, m[1], r)
			}
			if strings.Contains(r.Stderr, "error") || strings.Contains(r.Stderr, "ERROR") {
				t.Errorf("pgbench -M %s reported errors:\n%s", mode, r)
			}
			history += 800
			if n := count(t, "select count(*) from pgbench_history"); n != history {
				t.Errorf("pgbench_history has %d rows, want %d", n, history)
			}
			// Each transaction adds its delta to one account, one teller,
			// one branch, and logs it in the history.
			for table, column := range map[string]string{"pgbench_accounts": "abalance", "pgbench_tellers": "tbalance", "pgbench_branches": "bbalance"} {
				q := fmt.Sprintf("select (select sum(%s) from %s) - (select coalesce(sum(delta), 0) from pgbench_history)", column, table)
				if d := count(t, q); d != 0 {
					t.Errorf("sum(%s) over %s differs from sum(delta) over pgbench_history by %d", column, table, d)
				}
			}
		})
	}
	if s := e.Pool.Stats(); s.Open > 3 {
		t.Errorf("%d warehouse connections open, max 3", s.Open)
	}
}
