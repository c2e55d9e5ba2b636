package cache

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// A Redis outage under load writes one line when it starts and one when it
// ends, whatever the number of calls it failed, and the second counts
// them.
func TestRedisOutageIsLoggedOnce(t *testing.T) {
	rd := testenv.NewRedis(t)
	l2 := l2Config(t, rd)
	l2.BreakerCooldown = 200 * time.Millisecond
	out := &testenv.LogBuffer{}
	g := newGroup(t, Config{L2: l2, Logger: slog.New(slog.NewTextHandler(out, nil))})
	f := newFiller("answer")

	var gets, invalidations, errs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			table := fmt.Sprintf("t%d", w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := request(fmt.Sprintf("w%d-%d", w, i%20), time.Hour)
				req.Tables = []string{table}
				if _, err := g.Get(context.Background(), req, f); err != nil {
					errs.Add(1)
				}
				gets.Add(1)
				if i%10 == 9 { // a write: drops this worker's entries from L1, so reads go to Redis
					_ = g.InvalidateTables(context.Background(), table)
					invalidations.Add(1)
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	time.Sleep(500 * time.Millisecond)
	if err := rd.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(5 * time.Second)
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis down %v", time.Since(killed).Round(time.Millisecond))
	recovered := regexp.MustCompile(`msg="redis recovered after`)
	deadline := time.Now().Add(15 * time.Second)
	for len(out.Matching(recovered)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // load goes on after the recovery
	close(stop)
	wg.Wait()
	stop = make(chan struct{})

	lines := out.Lines()
	for _, l := range lines {
		t.Log(l)
	}
	t.Logf("%d Gets and %d invalidations by 32 clients; stats %+v", gets.Load(), invalidations.Load(), g.Stats())
	if n := errs.Load(); n != 0 {
		t.Errorf("%d Gets failed", n)
	}
	redis := out.Matching(regexp.MustCompile(`(?i)redis`))
	if len(redis) != len(lines) || len(lines) > 3 {
		t.Errorf("%d lines logged, %d about Redis; want at most 3, all about Redis", len(lines), len(redis))
	}
	if n := len(out.Matching(regexp.MustCompile(`level=WARN msg="redis failing" err=`))); n != 1 {
		t.Errorf("%d failure lines, want 1", n)
	}
	rec := out.Matching(recovered)
	if len(rec) != 1 {
		t.Fatalf("%d recovery lines, want 1", len(rec))
	}
	for _, what := range []string{readsWithoutRedis, invalidationsLate} {
		m := regexp.MustCompile(`([0-9,]+) ` + regexp.QuoteMeta(what)).FindStringSubmatch(rec[0])
		if m == nil {
			t.Errorf("recovery line counts no %s", what)
			continue
		}
		if n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); n == 0 {
			t.Errorf("recovery line counts 0 %s", what)
		}
	}
	if g.l2.incident.Failing() {
		t.Error("incident still open after the recovery line")
	}
}
