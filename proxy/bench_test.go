package proxy_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

// openRaw opens a session at dsn and returns its socket, ready for
// queries, for a client that speaks the protocol itself.
func openRaw(tb testing.TB, dsn string) net.Conn {
	tb.Helper()
	pc, err := pgconn.Connect(ctxT(tb), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { hc.Conn.Close() })
	return hc.Conn
}

// readAnswer reads messages up to ReadyForQuery without keeping them and
// returns how many bytes they took; it allocates nothing.
func readAnswer(r *bufio.Reader) (int, error) {
	var hdr [5]byte
	n := 0
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return n, err
		}
		l := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if _, err := r.Discard(l); err != nil {
			return n, err
		}
		n += 5 + l
		switch hdr[0] {
		case 'Z':
			return n, nil
		case 'E':
			return n, fmt.Errorf("error answer")
		}
	}
}

// BenchmarkHit measures a cache hit through the proxy end to end, on one
// session over loopback: the client sends a query and reads the answer up
// to ReadyForQuery. allocs/op counts every allocation in the process for
// one hit (the client side allocates nothing), for answers of 1 and 1000
// rows: what a hit costs must not grow with its rows. The simple protocol
// sends Query; the extended one Bind/Describe/Execute/Sync of a prepared
// statement with one parameter, binary results.
func BenchmarkHit(b *testing.B) {
	// As serve runs it: every statement counted (see package observe).
	e := newEnv(b, envOptions{cache: true, mutate: func(c *proxy.Config) { c.Observe = observe.New(observe.Config{}) }})
	e.PG.Exec(b, e.Database, `create table hits (id int, region text, amount numeric(12,2), at timestamptz);
		insert into hits select g, 'region ' || (g % 12), g * 1.25, '2026-01-01'::timestamptz + g * interval '1 minute'
		from generate_series(1, 1000) g`)
	for _, rows := range []int{1, 1000} {
		sql := fmt.Sprintf("select id, region, amount, at from hits where id <= %d order by id", rows)
		var q pgwire.Builder
		q.Begin('Q')
		q.String(sql)
		q.Finish()

		// The extended form: a named statement prepared once, then
		// bound with its parameter for every query.
		var prep, ext pgwire.Builder
		prep.Begin('P')
		prep.String("s")
		prep.String("select id, region, amount, at from hits where id <= $1::int order by id")
		prep.Int16(0)
		prep.Finish()
		prep.Begin('S')
		prep.Finish()
		param := fmt.Sprint(rows)
		ext.Begin('B')
		ext.String("")
		ext.String("s")
		ext.Int16(0)
		ext.Int16(1)
		ext.Int32(int32(len(param)))
		ext.Bytes([]byte(param))
		ext.Int16(1)
		ext.Int16(1)
		ext.Finish()
		ext.Begin('D')
		ext.Byte('P')
		ext.String("")
		ext.Finish()
		ext.Begin('E')
		ext.String("")
		ext.Int32(0)
		ext.Finish()
		ext.Begin('S')
		ext.Finish()

		for _, proto := range []struct {
			name      string
			setup     []byte
			request   []byte
			setupMsgs int
		}{
			{"simple", nil, q.B, 0},
			{"extended", prep.B, ext.B, 1},
		} {
			b.Run(fmt.Sprintf("%s/rows=%d", proto.name, rows), func(b *testing.B) {
				c := openRaw(b, e.DSN())
				r := bufio.NewReaderSize(c, 64<<10)
				if proto.setup != nil {
					if _, err := c.Write(proto.setup); err != nil {
						b.Fatal(err)
					}
					if _, err := readAnswer(r); err != nil {
						b.Fatal(err)
					}
				}
				var size int
				for range 2 { // the miss, then a hit
					if _, err := c.Write(proto.request); err != nil {
						b.Fatal(err)
					}
					n, err := readAnswer(r)
					if err != nil {
						b.Fatal(err)
					}
					size = n
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := c.Write(proto.request); err != nil {
						b.Fatal(err)
					}
					if _, err := readAnswer(r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSelect1 compares `SELECT 1` answered from the cache through
// the proxy with the same query sent to PostgreSQL directly, on one
// session over loopback each: the hit must be faster than the round trip
// it saves.
func BenchmarkSelect1(b *testing.B) {
	e := newEnv(b, envOptions{cache: true})
	var q pgwire.Builder
	q.Begin('Q')
	q.String("select 1")
	q.Finish()
	for _, target := range []struct{ name, dsn string }{{"direct", e.DirectDSN()}, {"hit", e.DSN()}} {
		b.Run(target.name, func(b *testing.B) {
			c := openRaw(b, target.dsn)
			r := bufio.NewReaderSize(c, 64<<10)
			for range 2 { // the miss, then a hit
				if _, err := c.Write(q.B); err != nil {
					b.Fatal(err)
				}
				if _, err := readAnswer(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(q.B); err != nil {
					b.Fatal(err)
				}
				if _, err := readAnswer(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDashboardsUnderReportFlood measures dashboard queries that miss
// (eight charts, a 50 ms TTL, each a 20 ms warehouse run), on their own
// and while sixteen report clients flood the reports queue (two workers,
// eight places, 200 ms runs, refusals ignored): queues keep the reports'
// load off the dashboards' workers. It reports the dashboards' p50 and p99
// latency; compare the two sub-benchmarks of one run.
func BenchmarkDashboardsUnderReportFlood(b *testing.B) {
	pg := testenv.SharedPostgreSQL(b)
	db := pg.NewDatabase(b)
	pg.Exec(b, db, slowSchema)
	queues := executor.NewQueues([]string{"pg"}, map[string]executor.QueueConfig{
		"dashboards": {Workers: 4, MaxQueued: 64, MaxWait: time.Minute},
		"reports":    {Workers: 2, MaxQueued: 8, MaxWait: time.Minute},
	})
	rules := policy.New(
		policy.Rule{Name: "reports", Match: policy.Match{User: policy.MustGlob("reports")}, Cache: true, TTL: time.Hour, Timeout: time.Minute, Queue: "reports", MaxEntryBytes: 1 << 20},
		policy.Rule{Name: "dashboards", Cache: true, TTL: 50 * time.Millisecond, Timeout: time.Minute, Queue: "dashboards", MaxEntryBytes: 1 << 20},
	)
	pg.Exec(b, db, "do $$ begin if not exists (select from pg_roles where rolname = 'reports') then create role reports login superuser password 'reports'; end if; end $$")
	e := newEnv(b, envOptions{pg: pg, database: db, cache: true, rules: rules, queues: queues, maxConns: 16,
		mutate: func(c *proxy.Config) { c.Users["reports"] = "reports" }})
	ctx := context.Background()
	dash := make([]*pgx.Conn, 4)
	for i := range dash {
		dash[i] = e.connect(b)
	}
	flood := func(stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://reports:reports@%s/%s?sslmode=disable", e.Addr, db))
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close(ctx)
				for n := i * 1_000_000; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var v int
					_ = c.QueryRow(ctx, fmt.Sprintf("select slow_value(%d, 0.2)", n), pgx.QueryExecModeSimpleProtocol).Scan(&v)
				}
			})
		}
		return &wg
	}
	// The same flood with the reports sharing the dashboards' queue shows
	// what the queues are for.
	shared := policy.New(
		policy.Rule{Name: "reports", Match: policy.Match{User: policy.MustGlob("reports")}, Cache: true, TTL: time.Hour, Timeout: time.Minute, Queue: "dashboards", MaxEntryBytes: 1 << 20},
		policy.Rule{Name: "dashboards", Cache: true, TTL: 50 * time.Millisecond, Timeout: time.Minute, Queue: "dashboards", MaxEntryBytes: 1 << 20},
	)
	for _, run := range []struct {
		name  string
		flood bool
		rules *policy.Set
	}{{"alone", false, rules}, {"flood", true, rules}, {"flood-one-queue", true, shared}} {
		withFlood, name := run.flood, run.name
		e.Reads.SetPolicy(run.rules)
		b.Run(name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg *sync.WaitGroup
			if withFlood {
				wg = flood(stop)
				time.Sleep(500 * time.Millisecond) // the reports queue fills
			}
			// Four dashboard clients, each on its own connection, share
			// b.N views.
			lats := make([][]time.Duration, len(dash))
			var views sync.WaitGroup
			b.ResetTimer()
			for i, c := range dash {
				views.Go(func() {
					for n := i; n < b.N; n += len(dash) {
						start := time.Now()
						var v int
						if err := c.QueryRow(ctx, fmt.Sprintf("select slow_value(%d, 0.02)", n%8), pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
							b.Error(err)
							return
						}
						lats[i] = append(lats[i], time.Since(start))
					}
				})
			}
			views.Wait()
			var lat []time.Duration
			for _, l := range lats {
				lat = append(lat, l...)
			}
			b.StopTimer()
			close(stop)
			if wg != nil {
				wg.Wait()
			}
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
