package proxy_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// Answers that once differed from PostgreSQL's through the proxy with its
// cache on, each compared with PostgreSQL itself.

// TestDDLRefreshesTypeLookupsInEveryReplica: a driver loading a type by
// name (pgx's LoadType: `select $1::text::regtype::oid`, then pg_type)
// through one proxy after DROP TYPE and CREATE TYPE through another gets
// the new type, not the dropped one's rows.
func TestDDLRefreshesTypeLookupsInEveryReplica(t *testing.T) {
	a := newEnv(t, envOptions{cache: true})
	b := newEnv(t, envOptions{cache: true, database: a.Database})
	ctx := ctxT(t)
	a.PG.Exec(t, a.Database, `create type mood as enum ('sad', 'ok')`)
	direct, err := pgx.Connect(ctx, a.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	load := func(c *pgx.Conn) (uint32, string) {
		t.Helper()
		var oid uint32
		if err := c.QueryRow(ctx, `select $1::text::regtype::oid`, "mood").Scan(&oid); err != nil {
			t.Fatal(err)
		}
		dt, err := c.LoadType(ctx, "mood")
		if err != nil {
			t.Fatal(err)
		}
		var labels string
		if err := c.QueryRow(ctx, `select string_agg(enumlabel, ',' order by enumsortorder) from pg_enum where enumtypid = $1`, oid).Scan(&labels); err != nil {
			t.Fatal(err)
		}
		if dt.OID != oid {
			t.Errorf("LoadType gave OID %d, the regtype lookup %d", dt.OID, oid)
		}
		return oid, labels
	}
	before, _ := load(b.connect(t))
	if _, err := a.connect(t).Exec(ctx, `drop type mood; create type mood as enum ('happy', 'sad', 'ok')`); err != nil {
		t.Fatal(err)
	}
	wantOID, wantLabels := load(direct)
	if wantOID == before {
		t.Fatalf("control: the new type kept OID %d", before)
	}
	gotOID, gotLabels := load(b.connect(t))
	if gotOID != wantOID || gotLabels != wantLabels {
		t.Errorf("through the other proxy after DROP/CREATE TYPE: OID %d labels %q, want %d %q (the dropped type's OID was %d)",
			gotOID, gotLabels, wantOID, wantLabels, before)
	}
}
