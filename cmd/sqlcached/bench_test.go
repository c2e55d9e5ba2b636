package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlcached/sqlcached/bench"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// benchWorkload has one dashboard whose parameter takes 3 values, so 6
// distinct queries in all, reloaded twice a second by every viewer.
const benchWorkload = `name: tiny
duration: 6s
round: 2s
seed: 1
viewers: 4
think_time: 3s
refresh_interval: 500ms
dashboards:
  - name: sales
    params:
      region: {ints: {from: 1, to: 3}}
    charts:
      - name: totals
        sql: select region, count(*), sum(amount) from sales where region = {{region}} group by region
      - name: biggest
        sql: |
          select id, amount from sales
          where region = {{region}}
          order by amount desc, id limit 5
`

// TestBenchDirectAndSqlcachedSideBySide: a short run against PostgreSQL
// directly and through sqlcached, with a third target that is down. The
// down target is reported with its error and the others are measured;
// sqlcached answers most of a workload of six distinct queries from its
// cache and sends the warehouse a fraction of what direct sends; the
// report, its JSON and the charts are written.
func TestBenchDirectAndSqlcachedSideBySide(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table sales (id int primary key, region int not null, amount numeric(10,2) not null);
		insert into sales select i, 1 + i % 3, (i * 37) % 1000 from generate_series(1, 20000) i; analyze sales`)
	pgAddr, httpAddr := serveConfig(t, fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q, max_conns: 4}]
policies:
  - {name: everything, ttl: 5m}
`, pg.DSN(db)))
	dir := t.TempDir()
	wl := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(wl, []byte(benchWorkload), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--workload", wl, "--out", out, "--warehouse-dsn", pg.DSN(db),
		"--target", "direct=" + pg.DSN(db),
		"--target", fmt.Sprintf("sqlcached=postgres://postgres@%s/%s?sslmode=disable,metrics=http://%s/metrics", pgAddr, db, httpAddr),
		"--target", "down=postgres://postgres@" + freeAddr(t) + "/x?sslmode=disable&connect_timeout=2",
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	var rep bench.DashboardsReport
	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]*bench.TargetResult{}
	for _, r := range rep.Targets {
		got[r.Name] = r
	}
	direct, sc, down := got["direct"], got["sqlcached"], got["down"]
	if direct == nil || sc == nil || down == nil || rep.Rounds != 3 || rep.WarehouseError != "" {
		t.Fatalf("report: %s", js)
	}
	if !strings.Contains(down.Down, "connect") || down.Requests != 0 {
		t.Errorf("the down target: %+v", down)
	}
	for _, r := range []*bench.TargetResult{direct, sc} {
		if r.Down != "" || r.Errors != 0 || r.Requests < int64(rep.Scheduled)*9/10 || r.P95 <= 0 || len(r.Series) != 3 || r.WarehouseExecutions == nil {
			t.Fatalf("%s: %+v (scheduled %d)", r.Name, r, rep.Scheduled)
		}
	}
	if sc.HitRatio == nil || *sc.HitRatio <= 0.8 || sc.Outcomes["miss"] > 6 {
		t.Errorf("sqlcached's hit ratio %v, outcomes %v", sc.HitRatio, sc.Outcomes)
	}
	if *direct.WarehouseExecutions < direct.Requests || *sc.WarehouseExecutions > 6 || *sc.WarehouseExecutions*5 > *direct.WarehouseExecutions {
		t.Errorf("warehouse executions: direct %d for %d requests, sqlcached %d for %d",
			*direct.WarehouseExecutions, direct.Requests, *sc.WarehouseExecutions, sc.Requests)
	}
	if direct.HitRatio != nil {
		t.Errorf("a hit ratio for a target without metrics: %v", *direct.HitRatio)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| down | down: ", "| sqlcached | ", "| direct | ", "![Latency CDF per target](latency-cdf.svg)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"latency-cdf", "hit-rate", "warehouse-executions"} {
		for _, ext := range []string{".png", ".svg"} {
			if st, err := os.Stat(filepath.Join(out, f+ext)); err != nil || st.Size() < 1000 {
				t.Errorf("%s%s: %v", f, ext, err)
			}
		}
	}
	if n := strings.Count(stderr.String(), "round "); n != 6 || !strings.Contains(stderr.String(), "p95") {
		t.Errorf("%d progress lines:\n%s", n, stderr.String())
	}
}

func TestBenchBadWorkloadExitsTwoNamingTheLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(path, []byte("viewers: 2\ndashboards:\n  - name: a\n    charts: [{sql: \"select {{x}}\"}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "--workload", path, "--target", "a=postgres://x@127.0.0.1:1/x"}, &stdout, &stderr); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
	want := "sqlcached: " + path + ":4: dashboards[0].charts[0].sql: {{x}} is not a parameter of the chart or its dashboard\n"
	if stderr.String() != want {
		t.Errorf("got %q\nwant %q", stderr.String(), want)
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bench.Target{
		"a=postgres://u@h:5/db?x=1,metrics=http://h:8080/metrics": {Name: "a", DSN: "postgres://u@h:5/db?x=1", MetricsURL: "http://h:8080/metrics"},
		"b=host=h port=5 dbname=d":                                {Name: "b", DSN: "host=h port=5 dbname=d"},
		"c=postgres://h1,h2/db":                                   {Name: "c", DSN: "postgres://h1,h2/db"},
	} {
		got, err := parseTarget(in)
		if err != nil || got != want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nodsn", "=dsn", "a=", "a=dsn,metrics="} {
		if _, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q): no error", bad)
		}
	}
}
