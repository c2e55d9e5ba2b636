package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

const copyRows = 50000

// copySource is copyRows rows of every kind pgx's binary COPY encodes:
// integers, text with awkward bytes, numeric, timestamptz, bytea, jsonb,
// arrays and NULLs.
func copySource() [][]any {
	rows := make([][]any, copyRows)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		id := i + 1
		var note any
		switch id % 5 {
		case 0:
			note = nil
		case 1:
			note = fmt.Sprintf("tab\there, newline\nthere, quote \" and backslash \\ #%d", id)
		case 2:
			note = "ünïcødé ✓"
		case 3:
			note = ""
		case 4:
			note = fmt.Sprintf("plain %d", id)
		}
		var blob any = []byte{byte(id), byte(id >> 8), 0, '\\', '\n'}
		if id%7 == 0 {
			blob = nil
		}
		rows[i] = []any{
			id,
			note,
			pgtype.Numeric{Int: big.NewInt(int64(id)*1000 + 7), Exp: -3, Valid: true},
			base.Add(time.Duration(id) * 1234567 * time.Millisecond),
			blob,
			map[string]any{"id": id, "even": id%2 == 0},
			[]int32{int32(id), -int32(id)},
		}
	}
	return rows
}

var copyColumns = []string{"id", "note", "amount", "at", "blob", "doc", "pair"}

const copyFromTable = `create table cp (id int primary key, note text, amount numeric(14,3), at timestamptz, blob bytea, doc jsonb, pair int[])`

// errStopCopy is a client-side failure in the middle of a COPY.
var errStopCopy = errors.New("the source broke")

// failingSource yields rows, then fails, so that pgx sends CopyFail.
type failingSource struct {
	n, fail int
}

func (s *failingSource) Next() bool { s.n++; return s.n <= s.fail+1 }
func (s *failingSource) Values() ([]any, error) {
	if s.n > s.fail {
		return nil, errStopCopy
	}
	return []any{900000 + s.n, "doomed", nil, nil, nil, nil, nil}, nil
}
func (s *failingSource) Err() error { return nil }

// TestCopyFromAndTo copies 50000 rows in with pgx's CopyFrom (binary COPY
// FROM STDIN) and out with PgConn().CopyTo in text, CSV and binary, through
// the proxy and directly: the counts and the bytes copied out must be the
// same. A COPY that fails on the warehouse (duplicate key), one the client
// abandons (CopyFail) and one inside a rolled-back transaction leave the
// session usable and the table as before, on both.
func TestCopyFromAndTo(t *testing.T) { forEachMode(t, testCopyFromAndTo) }

func testCopyFromAndTo(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 2, cache: cached})
	proxy, direct := e.viaProxy(), e.twin(t)
	src := copySource()
	outs := map[string][][]byte{}
	for _, tg := range []clientTarget{direct, proxy} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, tg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		// Another session takes turns on the proxy's connections.
		o, err := pgx.Connect(ctx, tg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close(context.Background())
		if _, err := c.Exec(ctx, copyFromTable); err != nil {
			t.Fatal(err)
		}
		n, err := c.CopyFrom(ctx, pgx.Identifier{"cp"}, copyColumns, pgx.CopyFromRows(src))
		if err != nil || n != copyRows {
			t.Fatalf("%s: CopyFrom: %d rows, %v", tg.Name, n, err)
		}
		var count, idSum int64
		if err := o.QueryRow(ctx, `select count(*), sum(id) from cp`).Scan(&count, &idSum); err != nil || count != copyRows || idSum != copyRows*(copyRows+1)/2 {
			t.Fatalf("%s: after CopyFrom, another session counts %d rows, sum %d, %v", tg.Name, count, idSum, err)
		}

		// A duplicate key fails the whole COPY on the warehouse.
		_, err = c.CopyFrom(ctx, pgx.Identifier{"cp"}, copyColumns, pgx.CopyFromRows(src[copyRows-10:]))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			t.Errorf("%s: duplicate CopyFrom: %v, want 23505", tg.Name, err)
		}
		// The client gives up half way: CopyFail.
		_, err = c.CopyFrom(ctx, pgx.Identifier{"cp"}, copyColumns, &failingSource{fail: 1000})
		if !errors.As(err, &pe) || pe.Code != "57014" || !strings.Contains(pe.Message, errStopCopy.Error()) {
			t.Errorf("%s: abandoned CopyFrom: %v, want 57014 with the source's error", tg.Name, err)
		}
		// In a transaction that is rolled back.
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		extra := make([][]any, 1000)
		for i := range extra {
			extra[i] = []any{700000 + i, "rolled back", nil, nil, nil, nil, nil}
		}
		if n, err := tx.CopyFrom(ctx, pgx.Identifier{"cp"}, copyColumns, pgx.CopyFromRows(extra)); err != nil || n != 1000 {
			t.Errorf("%s: CopyFrom in a transaction: %d, %v", tg.Name, n, err)
		}
		var inTx int64
		if err := tx.QueryRow(ctx, `select count(*) from cp`).Scan(&inTx); err != nil || inTx != copyRows+1000 {
			t.Errorf("%s: in the transaction: %d rows, %v", tg.Name, inTx, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}

		var got int64
		if err := c.QueryRow(ctx, `select count(*) from cp`).Scan(&got); err != nil || got != copyRows {
			t.Errorf("%s: after the failed COPYs: %d rows, %v", tg.Name, got, err)
		}

		for _, q := range []string{
			`copy (select * from cp order by id) to stdout`,
			`copy (select * from cp order by id) to stdout with (format csv, header, force_quote (note))`,
			`copy (select * from cp order by id) to stdout with (format binary)`,
			`copy cp (id, doc) to stdout`,
		} {
			var buf bytes.Buffer
			tag, err := c.PgConn().CopyTo(ctx, &buf, q)
			if err != nil {
				t.Fatalf("%s: %s: %v", tg.Name, q, err)
			}
			if tag.RowsAffected() != copyRows {
				t.Errorf("%s: %s: %s", tg.Name, q, tag)
			}
			outs[q] = append(outs[q], buf.Bytes())
		}
		// COPY TO STDOUT of a query that fails half way. OFFSET 0 keeps
		// the division above the sort whatever plan the statistics give,
		// so that rows go out before the error on both databases.
		var buf bytes.Buffer
		_, err = c.PgConn().CopyTo(ctx, &buf, `copy (select 1 / (25000 - id) from (select id from cp order by id offset 0) s) to stdout`)
		if !errors.As(err, &pe) || pe.Code != "22012" {
			t.Errorf("%s: failing CopyTo: %v, want 22012", tg.Name, err)
		}
		outs["failing"] = append(outs["failing"], buf.Bytes())
		if err := c.QueryRow(ctx, `select count(*) from cp`).Scan(&got); err != nil || got != copyRows {
			t.Errorf("%s: after the failing CopyTo: %d rows, %v", tg.Name, got, err)
		}
	}
	for q, o := range outs {
		if len(o) != 2 {
			t.Fatalf("%s: %d outputs", q, len(o))
		}
		if !bytes.Equal(o[0], o[1]) {
			t.Errorf("%s: direct %d bytes, proxy %d bytes, they differ:\n%s", q, len(o[0]), len(o[1]), lineDiff(string(o[0]), string(o[1])))
		}
		if q != "failing" && len(o[1]) < copyRows*10 {
			t.Errorf("%s: only %d bytes", q, len(o[1]))
		}
	}
}
