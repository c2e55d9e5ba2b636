package status

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The page's numbers are for a person: counts grouped by thousands,
// ratios as percentages with one decimal, durations and sizes in the
// unit that keeps them short.

// count formats an integer with commas between thousands: 12,345.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// percent formats a ratio: 0.6923 is 69.2%, 1 is 100%.
func percent(r float64) string {
	s := strconv.FormatFloat(r*100, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + "%"
}

// sig3 formats v with three significant digits (v below 1000).
func sig3(v float64) string {
	dec := 0
	switch {
	case v < 9.995:
		dec = 2
	case v < 99.95:
		dec = 1
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// duration formats d in the largest unit that keeps it short: 850 µs,
// 12.3 ms, 4.56 s, 3 min 20 s, 2 h 5 min, 3 d 4 h.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 s"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + " ms"
	case d < time.Minute:
		return sig3(d.Seconds()) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%d d %d h", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// size formats a number of bytes: 512 B, 1.50 KiB, 3.40 MiB.
func size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 999.5 || unit == "TiB" {
			return sig3(v) + " " + unit
		}
	}
	panic("unreachable")
}

// clock formats t as a time of day, with the date when it is not the day
// of now.
func clock(t, now time.Time) string {
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("Jan 2 15:04:05")
}

// uptime is duration in whole seconds.
func uptime(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return duration(d)
}

// plural is one or many as n (an int or int64) asks: plural(1, "error",
// "errors").
func plural(n any, one, many string) string {
	if n == 1 || n == int64(1) {
		return one
	}
	return many
}
