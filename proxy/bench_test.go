package proxy_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/pgwire"
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
	e := newEnv(b, envOptions{cache: true})
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
