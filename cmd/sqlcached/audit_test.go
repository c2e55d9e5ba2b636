package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// The audit log has a JSON line per statement a client sent, with who,
// where from, what and how it went; a failed statement has its SQLSTATE.
func TestAuditLogLinePerStatement(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, "create table items (id int primary key, name text); insert into items values (1, 'one'), (2, 'two')")
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	pgAddr, _ := serveConfig(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q}]
policies:
  - {name: default, ttl: 5m}
audit: {enabled: true, path: %q}
`, pg.DSNUser("postgres", testenv.SuperPassword, db), path))
	ctx := context.Background()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&application_name=audited", pgAddr, db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	statements := []string{
		"/* dashboard='sales' */ select name from items where id = 1", // miss
		"/* dashboard='sales' */ select name from items where id = 1", // hit
		"select name from items order by id",                          // miss
		"select random()",                                             // relayed
		"select * from no_such_table",                                 // error
	}
	for i, sql := range statements {
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if (err != nil) != (i == 4) {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	c.Close(ctx)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != len(statements) {
		t.Fatalf("%d audit lines for %d statements:\n%v", len(lines), len(statements), lines)
	}
	wantOutcomes := []string{"miss", "hit_l1", "miss", "bypass", "error"}
	for i, l := range lines {
		for _, k := range []string{"time", "user", "client", "database", "dashboard", "shape", "outcome", "rows", "bytes", "duration_ms"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %q: %v", i, k, l)
			}
		}
		if l["outcome"] != wantOutcomes[i] || l["user"] != "postgres" || l["database"] != db {
			t.Errorf("line %d: %v, want outcome %s", i, l, wantOutcomes[i])
		}
		if _, ok := l["sql"]; ok {
			t.Errorf("line %d has the statement's text, which the configuration did not allow: %v", i, l)
		}
	}
	if lines[0]["dashboard"] != "sales" || lines[0]["rows"] != 1.0 {
		t.Errorf("first line %v: want dashboard sales, 1 row", lines[0])
	}
	if lines[2]["rows"] != 2.0 {
		t.Errorf("third line %v: want 2 rows", lines[2])
	}
	if lines[4]["sqlstate"] != "42P01" {
		t.Errorf("the failed statement's line %v: want sqlstate 42P01", lines[4])
	}
}
