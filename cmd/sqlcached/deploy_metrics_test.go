package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// The alert rules and the Grafana dashboard in deploy/ name only metrics a
// running sqlcached exports.
func TestDeployNamesOnlyExportedMetrics(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table items (id int primary key); insert into items values (1), (2);
		create function slow_count(secs float) returns bigint language plpgsql stable as $$
		begin perform pg_sleep(secs); return (select count(*) from items); end $$`)
	rd := testenv.SharedRedis(t)
	pgAddr, httpAddr := serveConfig(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q}]
cache: {l2: {redis: {url: %q}}}
queues: {dash: {workers: 2, max_queued: 10}}
policies:
  - {name: slow, match: {sql: "slow_count"}, ttl: 5m, timeout: 200ms, queue: dash}
  - {name: default, ttl: 5m, queue: dash}
`, pg.DSNUser("postgres", testenv.SuperPassword, db), rd.URL(5)))
	c, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, sql := range []string{"select count(*) from items", "select count(*) from items", "select slow_count(1)"} {
		c.Exec(context.Background(), sql, pgx.QueryExecModeSimpleProtocol)
	}
	exported := map[string]bool{}
	for k := range scrape(t, httpAddr) {
		name, _, _ := strings.Cut(k, "{")
		exported[name] = true
	}
	used := map[string]bool{}
	for _, f := range []string{"../../deploy/prometheus/alerts.yml", "../../deploy/grafana/sqlcached.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`sqlcached_[a-z0-9_]+`).FindAllString(string(b), -1) {
			used[m] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in deploy/", len(used))
	}
	for name := range used {
		if !exported[name] {
			t.Errorf("deploy/ uses %s, which /metrics does not export", name)
		}
	}
}
