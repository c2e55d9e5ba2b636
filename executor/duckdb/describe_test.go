//go:build cgo

package duckdb

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/executor"
)

func TestDescribe(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if err := db.Exec(ctx, `create table o (id bigint, amount decimal(12,2), d date, tags varchar[], j json)`); err != nil {
		t.Fatal(err)
	}
	type field struct {
		name string
		oid  uint32
		mod  int32
	}
	cases := []struct {
		sql       string
		oids      []uint32 // the request's
		params    []uint32
		fields    []field
		noResults bool
		args      []string // for Execute
	}{
		{sql: `select id, amount, tags, j from o where id = $1 and d > $2`, params: []uint32{20, 1082},
			fields: []field{{"id", 20, -1}, {"amount", 1700, 12<<16 | 2 + 4}, {"tags", 1009, -1}, {"j", 114, -1}},
			args:   []string{"1", "2024-01-01"}},
		{sql: `select $1 as a`, params: []uint32{25}, fields: []field{{"a", 25, -1}}, args: []string{"x"}},
		{sql: `select $1 as a, timestamptz '2024-01-02 03:04:05+00' as t, 1.5::decimal(4,2) as d`, params: []uint32{25},
			fields: []field{{"a", 25, -1}, {"t", 1184, -1}, {"d", 1700, 4<<16 | 2 + 4}}, args: []string{"x"}},
		{sql: `select $1 + 1 as n`, oids: []uint32{20}, params: []uint32{20}, fields: []field{{"n", 20, -1}}, args: []string{"41"}},
		{sql: `select $1, $2`, oids: []uint32{23, 0}, params: []uint32{23, 25}},
		{sql: `select count(*) as n, sum(amount) from o`, fields: []field{{"n", 20, -1}, {"sum(amount)", 1700, 38<<16 | 2 + 4}}},
		{sql: `insert into o (id, d) values ($1, $2)`, params: []uint32{20, 1082}, noResults: true},
		{sql: `update o set amount = $1`, params: []uint32{1700}, noResults: true},
		{sql: `create table x (a integer)`, noResults: true},
	}
	for _, c := range cases {
		desc, err := db.Describe(ctx, &executor.Request{SQL: c.sql, ParamOIDs: c.oids})
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if c.params == nil {
			c.params = []uint32{}
		}
		if !slices.Equal(desc.ParamOIDs, c.params) {
			t.Errorf("%s: parameters %v, want %v", c.sql, desc.ParamOIDs, c.params)
		}
		if c.noResults {
			if desc.Fields != nil {
				t.Errorf("%s: fields %q, want none", c.sql, desc.Fields)
			}
			continue
		}
		var rd pgproto3.RowDescription
		if len(desc.Fields) < 5 || desc.Fields[0] != 'T' || rd.Decode(desc.Fields[5:]) != nil {
			t.Errorf("%s: bad RowDescription %q", c.sql, desc.Fields)
			continue
		}
		if c.fields == nil {
			continue
		}
		var got []field
		for _, f := range rd.Fields {
			got = append(got, field{string(f.Name), f.DataTypeOID, f.TypeModifier})
			if f.Format != 0 {
				t.Errorf("%s: format %d", c.sql, f.Format)
			}
		}
		if !slices.Equal(got, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.sql, got, c.fields)
		}
		// The description is the RowDescription Execute sends.
		var args [][]byte
		for _, a := range c.args {
			args = append(args, []byte(a))
		}
		if res, err := db.Execute(ctx, &executor.Request{SQL: c.sql, ParamOIDs: c.oids, Params: args}); err == nil {
			if n := len(desc.Fields); len(res.Wire) < n || string(res.Wire[:n]) != string(desc.Fields) {
				t.Errorf("%s: Describe and Execute disagree:\n%q\n%q", c.sql, desc.Fields, res.Wire[:min(n, len(res.Wire))])
			}
		} else {
			t.Errorf("%s: %v", c.sql, err)
		}
	}
	// Nothing ran.
	if a := query(t, db, `select count(*) from o`); *a.rows[0][0] != "0" {
		t.Fatalf("describe ran the insert: %s rows", *a.rows[0][0])
	}
	if _, err := db.Describe(ctx, &executor.Request{SQL: `select * from x`}); err == nil {
		t.Fatal("describe ran the create table")
	}
}
