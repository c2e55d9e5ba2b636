package incident

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

func newLogger() (*slog.Logger, *testenv.LogBuffer) {
	l := &testenv.LogBuffer{}
	h := slog.NewTextHandler(l, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(h), l
}

func wantLines(t *testing.T, l *testenv.LogBuffer, want ...string) {
	t.Helper()
	got := l.Lines()
	if len(want) == 0 && len(got) == 1 && got[0] == "" {
		return
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var errDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func TestOneLineWhenFailingAndOneWhenRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, out := newLogger()
		inc := New(log, slog.LevelWarn, "redis")
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for n := range 1000 {
					if w%4 == 0 && n%2 == 0 {
						inc.Fail(errDown, "invalidations not shared")
					} else {
						inc.Fail(errDown, "reads served without Redis")
					}
				}
			})
		}
		wg.Wait()
		time.Sleep(30 * time.Second)
		inc.OK()
		time.Sleep(1200 * time.Millisecond)
		inc.OK() // Settle after the first success: recovered
		inc.OK()
		if inc.Failing() {
			t.Error("still failing after Settle of successes")
		}
		wantLines(t, out,
			`level=WARN msg="redis failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=INFO msg="redis recovered after 30s: 28,000 reads served without Redis, 4,000 invalidations not shared" down=30s affected=32000`,
		)
	})
}

// A dependency that answers and fails by turns is one incident until it
// has answered for Settle.
func TestFlappingIsOneIncident(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, out := newLogger()
		inc := New(log, slog.LevelWarn, "redis")
		for range 100 {
			inc.Fail(errDown, "reads")
			time.Sleep(100 * time.Millisecond)
			inc.OK()
			time.Sleep(800 * time.Millisecond)
			inc.OK()
		}
		time.Sleep(Settle)
		inc.OK()
		wantLines(t, out,
			`level=WARN msg="redis failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=WARN msg="redis still failing after 1m0s: 68 reads" err="dial tcp 127.0.0.1:6379: connect: connection refused" affected=68`,
			`level=INFO msg="redis recovered after 1m29s: 100 reads" down=1m29.2s affected=100`,
		)
	})
}

func TestReminderAtMostOncePerRemind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, out := newLogger()
		inc := New(log, slog.LevelError, "warehouse sales")
		for range 150 * 4 {
			inc.Fail(errDown, "connections refused")
			time.Sleep(250 * time.Millisecond)
		}
		inc.OK()
		time.Sleep(Settle)
		inc.OK()
		wantLines(t, out,
			`level=ERROR msg="warehouse sales failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=ERROR msg="warehouse sales still failing after 1m0s: 241 connections refused" err="dial tcp 127.0.0.1:6379: connect: connection refused" affected=241`,
			`level=ERROR msg="warehouse sales still failing after 2m0s: 481 connections refused" err="dial tcp 127.0.0.1:6379: connect: connection refused" affected=481`,
			`level=INFO msg="warehouse sales recovered after 2m30s: 600 connections refused" down=2m30s affected=600`,
		)
	})
}

func TestCountOnlyWhileFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, out := newLogger()
		inc := New(log, slog.LevelWarn, "redis")
		inc.Count("reads")
		inc.OK()
		wantLines(t, out)
		inc.Fail(errDown, "")
		inc.Count("reads")
		inc.Count("reads")
		inc.OK()
		time.Sleep(2 * time.Second)
		inc.OK()
		inc.Count("reads")
		wantLines(t, out,
			`level=WARN msg="redis failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=INFO msg="redis recovered after 0s: 2 reads" down=0s affected=2`,
		)
	})
}

// Counts belong to one incident: the next starts from zero.
func TestNextIncidentCountsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, out := newLogger()
		inc := New(log, slog.LevelWarn, "redis")
		for _, n := range []int{3, 1} {
			for range n {
				inc.Fail(errDown, "reads")
			}
			time.Sleep(2 * time.Second)
			inc.OK()
			time.Sleep(2 * time.Second)
			inc.OK()
		}
		wantLines(t, out,
			`level=WARN msg="redis failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=INFO msg="redis recovered after 2s: 3 reads" down=2s affected=3`,
			`level=WARN msg="redis failing" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			`level=INFO msg="redis recovered after 2s: 1 reads" down=2s affected=1`,
		)
	})
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	log, _ := newLogger()
	inc := New(log, slog.LevelWarn, "redis")
	if n := testing.AllocsPerRun(1000, inc.OK); n != 0 {
		t.Errorf("OK while healthy: %v allocations, want 0", n)
	}
	inc.Fail(errDown, "reads")
	inc.Fail(errDown, "writes")
	if n := testing.AllocsPerRun(1000, func() {
		inc.Fail(errDown, "writes")
		inc.Count("reads")
	}); n != 0 {
		t.Errorf("Fail while failing: %v allocations, want 0", n)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 21381: "21,381", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
