package proxy_test

import (
	"encoding/binary"
	"testing"
)

// psqlodbcCursor is what psqlODBC with UseDeclareFetch=1;Fetch=100 sends
// to read one result, and more that cursors and savepoints can meet.
var psqlodbcCursor = []string{
	`BEGIN;declare "SQL_CUR0x1" cursor with hold for select id, v, amount from ct order by id;fetch 100 in "SQL_CUR0x1"`,
	`SAVEPOINT _EXEC_SVP_0x1;fetch 100 in "SQL_CUR0x1"`,
	`RELEASE _EXEC_SVP_0x1;fetch 100 in "SQL_CUR0x1"`,
	`fetch 100 in "SQL_CUR0x1"`,
	`fetch 100 in "SQL_CUR0x1"`,
	`move 1 in "SQL_CUR0x1"`,
	`close "SQL_CUR0x1"`,
	`COMMIT`,
	// A WITH HOLD cursor outlives COMMIT; reading it backwards goes to
	// the warehouse, from where the client was.
	`BEGIN; declare c2 cursor with hold for select id from ct where id <= 10 order by id; fetch 3 from c2; COMMIT`,
	`fetch 2 from c2`,
	`fetch backward 1 from c2`,
	`fetch all from c2`,
	`close all`,
	// Without HOLD a cursor ends with its transaction; a name twice is
	// 42P03 and fails the transaction.
	`BEGIN; declare c3 cursor for select v from ct order by id; fetch 1 from c3; COMMIT`,
	`fetch 1 from c3`,
	`BEGIN; declare c4 cursor for select 1; declare c4 cursor for select 1`,
	`fetch 1 from c4`,
	`ROLLBACK`,
	// Savepoints undo the SETs after them.
	`BEGIN; set search_path = 'pg_catalog'; savepoint a; set search_path = 'nowhere'; rollback to a; select current_schema(); commit`,
	`select current_schema()`,
	`BEGIN; savepoint a; release b`,
	`ROLLBACK`,
}

// TestCursorsAnsweredFromCache: psqlODBC's cursors (DECLARE ... WITH HOLD,
// FETCH 100 at a time, its statement savepoints) through the proxy give
// PostgreSQL's bytes, and their query runs once on the warehouse however
// often it is read.
func TestCursorsAnsweredFromCache(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	direct := e.twin(t)
	const schema = `create table ct (id int primary key, v text, amount numeric(10,2));
insert into ct select g, 'v' || g, g * 1.25 from generate_series(1, 350) g`
	for _, db := range []string{e.Database, direct.Database} {
		e.PG.Exec(t, db, schema)
	}
	compareSessions(t, e, direct, psqlodbcCursor)
	if n := e.PG.Calls(t, e.Database, "select id, v, amount from ct order by id"); n != 1 {
		t.Errorf("two reads through the cursor ran its query %d times on the warehouse, want 1", n)
	}
	if n := e.PG.Calls(t, e.Database, "%declare%SQL_CUR0x1%"); n != 0 {
		t.Errorf("the cursor was declared %d times on the warehouse, want 0", n)
	}
}

// withoutTableOIDs zeroes the table OIDs in the RowDescriptions of an
// answer: two databases of one server number their tables differently.
func withoutTableOIDs(ans []byte) []byte {
	out := append([]byte(nil), ans...)
	for i := 0; i+5 <= len(out); {
		n := int(binary.BigEndian.Uint32(out[i+1 : i+5]))
		if out[i] == 'T' {
			fields := int(binary.BigEndian.Uint16(out[i+5 : i+7]))
			p := i + 7
			for f := 0; f < fields; f++ {
				for out[p] != 0 {
					p++
				}
				p++ // the name's NUL
				copy(out[p:p+4], []byte{0, 0, 0, 0})
				p += 18
			}
		}
		i += 1 + n
	}
	return out
}
