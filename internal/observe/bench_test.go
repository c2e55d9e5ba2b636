package observe

import (
	"testing"
	"time"
)

// BenchmarkRecord is the cost Record adds to every statement, a cache hit
// included.
func BenchmarkRecord(b *testing.B) {
	o := New(Config{})
	ev := &Event{Start: time.Now(), Duration: 20 * time.Microsecond, User: "u", Database: "d", Backend: "wh", Rule: "dashboards",
		Shape: 42, Outcome: HitL1, Rows: 10, Bytes: 500, Saved: 30 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Record(ev)
		}
	})
}
