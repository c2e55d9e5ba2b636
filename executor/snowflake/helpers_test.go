package snowflake

import (
	"encoding/binary"
	"testing"

	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// answer is a decoded wire answer.
type answer struct {
	names   []string
	oids    []uint32
	typmods []int32
	formats []int16
	rows    [][]*string
	tag     string
}

func decode(t *testing.T, wire []byte) answer {
	t.Helper()
	var a answer
	for len(wire) > 0 {
		n := 1 + int(binary.BigEndian.Uint32(wire[1:5]))
		typ, sc := wire[0], pgwire.NewScanner(wire[5:n])
		wire = wire[n:]
		switch typ {
		case 'T':
			for range sc.Int16() {
				a.names = append(a.names, string(sc.CString()))
				sc.Int32()
				sc.Int16()
				a.oids = append(a.oids, uint32(sc.Int32()))
				sc.Int16()
				a.typmods = append(a.typmods, sc.Int32())
				a.formats = append(a.formats, sc.Int16())
			}
		case 'D':
			var row []*string
			for range sc.Int16() {
				l := sc.Int32()
				if l < 0 {
					row = append(row, nil)
					continue
				}
				v := string(sc.Next(int(l)))
				row = append(row, &v)
			}
			a.rows = append(a.rows, row)
		case 'C':
			a.tag = string(sc.CString())
		}
		if sc.Err != nil {
			t.Fatalf("malformed %q message", typ)
		}
	}
	return a
}

type want struct {
	name   string
	oid    uint32
	typmod int32
	text   string // "NULL" for NULL
}

func numeric(p, s int) int32 { return int32(p<<16|s) + 4 }

func checkRow(t *testing.T, a answer, wants []want) {
	t.Helper()
	if len(a.names) != len(wants) {
		t.Fatalf("%d columns, want %d", len(a.names), len(wants))
	}
	for i, w := range wants {
		got := "NULL"
		if v := a.rows[0][i]; v != nil {
			got = *v
		}
		if a.names[i] != w.name || a.oids[i] != w.oid || a.typmods[i] != w.typmod || got != w.text {
			t.Errorf("column %d: %s oid %d typmod %d %q, want %s oid %d typmod %d %q",
				i, a.names[i], a.oids[i], a.typmods[i], got, w.name, w.oid, w.typmod, w.text)
		}
	}
}
