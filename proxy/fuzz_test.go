package proxy_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// encode concatenates the wire form of frontend messages.
func encode(msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = m.Encode(b)
		if err != nil {
			panic(err)
		}
	}
	return b
}

// FuzzSession writes arbitrary bytes to the proxy after a valid startup,
// as a broken or hostile client would. The proxy must answer or close that
// connection within a bound, never panic or hang, and keep serving: a
// fresh client still gets its answer afterwards.
func FuzzSession(f *testing.F) { fuzzSession(f, envOptions{}) }

// FuzzSessionCached is FuzzSession with the answer cache on: held
// extended batches, lazy transactions, binary answers converted from
// cached text ones.
func FuzzSessionCached(f *testing.F) {
	bind := func(formats ...int16) *pgproto3.Bind {
		return &pgproto3.Bind{PreparedStatement: "c", Parameters: [][]byte{[]byte("3")}, ResultFormatCodes: formats}
	}
	parse := &pgproto3.Parse{Name: "c", Query: "select g, g::numeric / 7, now()::date from generate_series(1, $1::int) g"}
	f.Add(encode(parse, bind(), &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{},
		bind(1), &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{},
		bind(0, 1, 1), &pgproto3.Execute{}, &pgproto3.Sync{}, bind(1, 0), &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Query{String: "set extra_float_digits = 3"}, &pgproto3.Parse{Query: "begin"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "select 0.1::float8, 'x'::text"}, &pgproto3.Bind{ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "select 0.1::float8, 'x'::text"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Sync{},
		&pgproto3.Query{String: "commit"}))
	f.Add(encode(&pgproto3.Query{String: "begin"}, &pgproto3.Query{String: "select 1"}, &pgproto3.Query{String: "select 1/0"},
		&pgproto3.Query{String: "select 1"}, &pgproto3.Query{String: "rollback"}))
	fuzzSession(f, envOptions{cache: true})
}

func fuzzSession(f *testing.F, o envOptions) {
	e := newEnv(f, o)
	f.Add(encode(&pgproto3.Query{String: "select 1"}))
	f.Add(encode(&pgproto3.Query{String: "begin; select 1/0; select 2"}, &pgproto3.Query{String: "rollback"}))
	f.Add(encode(&pgproto3.Parse{Name: "s", Query: "select $1::int"}, &pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("7")}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Parse{Name: "s", Query: "select 1"}, &pgproto3.Parse{Name: "s", Query: "select 2"}, &pgproto3.Bind{PreparedStatement: "s"},
		&pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Query{String: "select 3"}))
	f.Add(encode(&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "nope"}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Parse{Query: "select generate_series(1, 100)"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 10}, &pgproto3.Flush{},
		&pgproto3.Execute{MaxRows: 10}, &pgproto3.Close{ObjectType: 'P'}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Query{String: "create temp table t (x int)"}, &pgproto3.Query{String: "copy t from stdin"},
		&pgproto3.CopyData{Data: []byte("1\n2\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "copy t to stdout"}))
	f.Add(encode(&pgproto3.Query{String: "copy (select 1) to stdout"}, &pgproto3.Query{String: "listen x; notify x, 'y'"}))
	f.Add(encode(&pgproto3.Query{String: "set application_name = 'fuzz'; reset all; discard all"}))
	f.Add(encode(&pgproto3.Query{String: "select 1"}, &pgproto3.Terminate{}, &pgproto3.Query{String: "select 2"}))
	f.Add(encode(&pgproto3.FunctionCall{Function: 1598, ResultFormatCode: 0}, &pgproto3.Sync{}))
	f.Add([]byte("Q\x80\x00\x00\x00select 1"))
	f.Add([]byte("Q\x00\x00\x00\x03"))
	f.Add([]byte("z\x00\x00\x00\x04"))
	f.Add([]byte("Q\x00\x00\x00\x09sel"))
	f.Add([]byte("P\x00\x00\x00\x08\x00\x00\xff\xff"))
	f.Add([]byte("B\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Add([]byte("D\x00\x00\x00\x06X\x00E\x00\x00\x00\x04"))
	f.Fuzz(func(t *testing.T, input []byte) {
		r := e.raw(t)
		_ = r.write(input) // the proxy may have closed already
		if wholeMessages(input) {
			// The session must still answer: a Sync ends any batch, a
			// ROLLBACK any transaction the input left open (and perhaps
			// failed), and a query after them gets its row, unless the
			// proxy ended the session.
			_ = r.write(encode(&pgproto3.Sync{}, &pgproto3.Query{String: "rollback"}, &pgproto3.Query{String: "select 'end of input'"}))
			answered(t, r)
		}
		// The input may end inside a message: say there is no more.
		_ = r.nc.(*net.TCPConn).CloseWrite()
		r.untilEnd()
		_ = r.nc.Close()
		sessionsSettle(t, e.Server, 0)

		fresh := e.raw(t)
		got := fresh.query("select 41 + 1")
		if row, ok := find[*pgproto3.DataRow](got); !ok || string(row.Values[0]) != "42" {
			t.Fatalf("a fresh client after the input: %s", describe(got))
		}
		_ = fresh.write([]byte{'X', 0, 0, 0, 4})
		_ = fresh.nc.Close()
	})
}

// wholeMessages reports whether input is a run of whole typed messages
// that leave a session able to answer, as far as the test can tell
// without running them: no Terminate, nothing that starts COPY or sleeps.
func wholeMessages(input []byte) bool {
	lower := bytes.ToLower(input)
	if bytes.Contains(lower, []byte("copy")) || bytes.Contains(lower, []byte("sleep")) || bytes.Contains(lower, []byte("lock")) {
		return false
	}
	for len(input) > 0 {
		if len(input) < 5 || input[0] == 'X' {
			return false
		}
		n := int(binary.BigEndian.Uint32(input[1:5]))
		if n < 4 || n+1 > len(input) {
			return false
		}
		input = input[n+1:]
	}
	return true
}

// answered reads until the row of the query sent after the input and its
// ReadyForQuery, or until the proxy ends the session; it fails the test
// if the proxy does neither within readTimeout.
func answered(t *testing.T, r *rawClient) {
	t.Helper()
	var got []pgproto3.BackendMessage
	sawRow := false
	for {
		m, err := r.receive()
		if err != nil {
			if isTimeoutErr(err) {
				t.Fatalf("the session neither answered nor ended within %v after a Sync and a query; got %s", readTimeout, describe(got[max(0, len(got)-10):]))
			}
			return // the proxy ended the session
		}
		got = append(got, m)
		switch m := m.(type) {
		case *pgproto3.DataRow:
			sawRow = sawRow || (len(m.Values) == 1 && string(m.Values[0]) == "end of input")
		case *pgproto3.ReadyForQuery:
			if sawRow {
				return
			}
		}
	}
}
