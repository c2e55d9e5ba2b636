package proxy_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRedashPatternRunsOnce: Redash runs each query on a new asynchronous
// psycopg2 connection (autocommit) with a comment naming the run's job:
// the comment changes every run, the key does not, and five runs execute
// the query once on the warehouse.
func TestRedashPatternRunsOnce(t *testing.T) {
	e, direct := cachedTwins(t, supersetSchema)
	script, err := filepath.Abs("testdata/bitools/redash.py")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tg := range []clientTarget{direct, e.viaProxy()} {
		dsn := fmt.Sprintf("host=%s port=%d dbname=%s user=postgres password=postgres sslmode=disable", tg.Host, tg.Port, tg.Database)
		r := runTool(t, tg, t.TempDir(), nil, 2*time.Minute, python, script, dsn, "5")
		if r.Code != 0 || strings.Count(r.Stdout, "\n") != 5 {
			t.Fatalf("redash.py on %s:\n%s", tg.Name, r)
		}
		out[tg.Name] = r.Stdout
	}
	if out["proxy"] != out["direct"] {
		t.Errorf("the proxy's answers differ (direct -, proxy +):\n%s", lineDiff(out["direct"], out["proxy"]))
	}
	if n := e.PG.Calls(t, direct.Database, "%FROM dash_sales GROUP BY region%"); n != 5 {
		t.Fatalf("control: directly the query ran %d times, want 5", n)
	}
	if n := e.PG.Calls(t, e.Database, "%FROM dash_sales GROUP BY region%"); n != 1 {
		t.Errorf("5 Redash runs ran the query %d times on the warehouse, want 1", n)
	}
}

// TestGrafanaPatternRunsOnce: Grafana's PostgreSQL data source (pgx v5,
// simple protocol, its `-- ping` health check) repeats a panel's query,
// its time range expanded into literals: five refreshes of the same range
// run it once; a new range is a new query.
func TestGrafanaPatternRunsOnce(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, `create table metrics (ts timestamptz, host text, v float8);
insert into metrics select '2024-01-01'::timestamptz + g * interval '1 minute', 'h' || (g % 3), g from generate_series(0, 4000) g`)
	ctx := ctxT(t)
	panel := func(from, to string) string {
		return `SELECT
  $__time AS "time", host AS metric, avg(v) AS value
FROM metrics
WHERE ts BETWEEN '` + from + `' AND '` + to + `'
GROUP BY 1, 2
ORDER BY 1`
	}
	for i := 0; i < 6; i++ {
		c := e.connect(t)
		if _, err := c.Exec(ctx, "-- ping", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("-- ping: %v", err)
		}
		to := "2024-01-01T12:00:00Z"
		if i == 5 {
			to = "2024-01-01T13:00:00Z"
		}
		q := strings.Replace(panel("2024-01-01T00:00:00Z", to), "$__time", "date_trunc('hour', ts)", 1)
		rows, err := c.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || (i < 5 && n != 37) || (i == 5 && n != 40) {
			t.Fatalf("refresh %d: %d rows, %v", i, n, rows.Err())
		}
	}
	if n := e.PG.Calls(t, e.Database, "%FROM metrics%GROUP BY%"); n != 2 {
		t.Errorf("6 refreshes over 2 time ranges ran the panel's query %d times on the warehouse, want 2", n)
	}
}

// TestLookerCommentsDoNotChangeKeys: Looker prefixes every query with a
// comment naming the user and the history entry of the run; runs that
// differ only there share one answer, through the extended protocol as
// the JDBC driver sends it.
func TestLookerCommentsDoNotChangeKeys(t *testing.T) {
	e := newEnv(t, envOptions{cache: true})
	e.PG.Exec(t, e.Database, supersetSchema)
	ctx := ctxT(t)
	c := e.connect(t)
	for i := 0; i < 5; i++ {
		q := fmt.Sprintf(`-- Looker Query Context '{"user_id":%d,"history_slug":"h%d","instance_slug":"abc"}'
SELECT dash_sales.region AS "dash_sales.region", COALESCE(SUM(dash_sales.amount), 0) AS "dash_sales.total"
FROM dash_sales
WHERE dash_sales.amount > $1
GROUP BY 1 ORDER BY 2 DESC FETCH NEXT 500 ROWS ONLY`, i%2, i)
		var region string
		var total int64
		if err := c.QueryRow(ctx, q, pgx.QueryExecModeExec, 0).Scan(&region, &total); err != nil {
			t.Fatal(err)
		}
		if region != "r0" || total != 2502500 {
			t.Fatalf("run %d: %s %d", i, region, total)
		}
	}
	if n := e.PG.Calls(t, e.Database, "%FROM dash_sales%WHERE dash_sales.amount > $1%"); n != 1 {
		t.Errorf("5 Looker runs ran the query %d times on the warehouse, want 1", n)
	}
}
