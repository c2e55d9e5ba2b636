package status

import (
	"testing"
	"time"
)

func TestNumbersReadAsAPersonWritesThem(t *testing.T) {
	t.Parallel()
	counts := map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567", -4200: "-4,200"}
	for n, want := range counts {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	percents := map[float64]string{0: "0%", 1: "100%", 0.5: "50%", 9.0 / 13: "69.2%", 0.99951: "100%", 0.0004: "0%"}
	for r, want := range percents {
		if got := percent(r); got != want {
			t.Errorf("percent(%v) = %q, want %q", r, got, want)
		}
	}
	durations := map[time.Duration]string{
		0:                                  "0 s",
		850 * time.Microsecond:             "850 µs",
		12300 * time.Microsecond:           "12.3 ms",
		1234 * time.Microsecond:            "1.23 ms",
		456 * time.Millisecond:             "456 ms",
		4560 * time.Millisecond:            "4.56 s",
		200 * time.Second:                  "3 min 20 s",
		2*time.Hour + 5*time.Minute + 59e9: "2 h 5 min",
		76 * time.Hour:                     "3 d 4 h",
	}
	for d, want := range durations {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	sizes := map[int64]string{0: "0 B", 512: "512 B", 1536: "1.50 KiB", 3 << 20: "3.00 MiB", 200 << 30: "200 GiB"}
	for n, want := range sizes {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestClockShowsTheDateOnlyForOtherDays(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	if got := clock(now.Add(-time.Hour), now); got != "14:09:26" {
		t.Errorf("same day: %q", got)
	}
	if got := clock(now.Add(-24*time.Hour), now); got != "Mar 13 15:09:26" {
		t.Errorf("yesterday: %q", got)
	}
}

func TestUptimeAndPlurals(t *testing.T) {
	t.Parallel()
	if got := uptime(5*time.Second + 300*time.Millisecond); got != "5 s" {
		t.Errorf("uptime of 5.3 s: %q", got)
	}
	if got := uptime(200 * time.Second); got != "3 min 20 s" {
		t.Errorf("uptime of 200 s: %q", got)
	}
	for n, want := range map[any]string{0: "errors", 1: "error", int64(1): "error", int64(2): "errors"} {
		if got := plural(n, "error", "errors"); got != want {
			t.Errorf("plural(%v) = %q, want %q", n, got, want)
		}
	}
}
