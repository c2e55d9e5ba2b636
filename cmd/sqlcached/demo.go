//go:build cgo

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/duckdb"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/policy"
)

// demoConfig is the demo's configuration: one embedded DuckDB, the L1
// cache, and rules a BI team would start from.
const demoConfig = `
listen:
  postgres: %s
  http: %s
auth:
  method: trust
backends:
  - name: demo
    kind: duckdb
databases:
  demo: demo
cache:
  l1:
    max_bytes: 256MiB
queues:
  dashboards: { workers: 4, max_queued: 256 }
  adhoc:      { workers: 2, max_queued: 64 }
policies:
  - name: dashboards
    match: { tables: [orders, customers, products, regions] }
    ttl: 10m
    stale_ttl: 1h
    timeout: 60s
    queue: dashboards
  - name: default
    ttl: 1m
    timeout: 60s
    queue: adhoc
http_api:
  disabled: true
log:
  level: %s
`

// demoQueries are the dashboard queries the demo suggests.
var demoQueries = []string{
	`SELECT date_trunc('month', order_date) AS month, count(*) AS orders, sum(amount) AS revenue
  FROM orders GROUP BY 1 ORDER BY 1;`,
	`SELECT r.name AS region, p.category, sum(o.amount) AS revenue
  FROM orders o JOIN products p USING (product_id) JOIN regions r USING (region_id)
  WHERE o.order_date >= DATE '2025-01-01'
  GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10;`,
	`SELECT c.segment, count(DISTINCT o.customer_id) AS customers, round(avg(o.amount), 2) AS avg_order
  FROM orders o JOIN customers c USING (customer_id)
  GROUP BY 1 ORDER BY 2 DESC;`,
}

func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:6432", "PostgreSQL listen address")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP listen address (/stats, /healthz)")
	orders := fs.Int("orders", 1_200_000, "rows of the orders table")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, err := config.Parse(fmt.Appendf(nil, demoConfig, *listen, *httpAddr, *logLevel), func(string) string { return "" })
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached demo:", err)
		return exitConfig
	}
	rules, err := policy.Compile(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached demo:", err)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	start := time.Now()
	db, err := duckdb.Open("")
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached demo:", err)
		return exitFail
	}
	defer db.Close()
	if err := db.Exec(ctx, sampleData(*orders)); err != nil {
		fmt.Fprintln(stderr, "sqlcached demo: building the sample data:", err)
		return exitFail
	}
	built := time.Since(start)

	var g *cache.Group
	ready := func(c *cache.Group, pgAddr, httpAddr string) {
		g = c
		host, port := splitHostPort(pgAddr)
		fmt.Fprintf(stdout, `sqlcached demo: the proxy is on %s, in front of an embedded DuckDB with
sample BI data (orders: %d rows over 2023-2025, customers, products, regions;
built in %v).

Connect:
    psql "host=%s port=%s dbname=demo user=demo"

Then turn on \timing and run a dashboard query twice; the second answer comes
from the cache:
`, pgAddr, *orders, built.Round(time.Millisecond), host, port)
		for _, q := range demoQueries {
			fmt.Fprintf(stdout, "\n    %s\n", q)
		}
		fmt.Fprintf(stdout, `
Live status page: http://%s/   (counters: curl -s http://%[1]s/stats)
Stop with Ctrl-C.
`, httpAddr)
	}
	log := newLogger(cfg.Log, stderr)
	fitScheduler(ctx, log)
	err = runServer(ctx, cfg, rules, nil, &serveExtras{warehouses: map[string]executor.Warehouse{"demo": db}, ready: ready}, log)
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached demo:", err)
		return exitFail
	}
	if g != nil {
		st := g.Stats()
		fmt.Fprintf(stdout, "sqlcached demo stopped: %d answers from the cache, %d from DuckDB.\n",
			st.L1Hits+st.L2Hits+st.Collapsed+st.Stale+st.StaleIfError, st.Misses)
	}
	return exitOK
}

func splitHostPort(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, "5432"
}

// sampleData builds a star schema of a shop's sales: orders (the fact
// table, n rows spread over 2023-2025) and its dimensions customers,
// products and regions. Values are derived from hashes of the row
// number, so every run builds the same data.
func sampleData(n int) string {
	return `
CREATE TABLE regions (region_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, country VARCHAR NOT NULL);
INSERT INTO regions VALUES
  (1, 'North America East', 'United States'), (2, 'North America West', 'United States'),
  (3, 'Canada', 'Canada'), (4, 'Western Europe', 'France'), (5, 'Northern Europe', 'Sweden'),
  (6, 'Central Europe', 'Germany'), (7, 'Asia Pacific', 'Japan'), (8, 'Oceania', 'Australia');

CREATE TABLE products AS
SELECT i::INTEGER AS product_id,
       (['Laptops', 'Phones', 'Tablets', 'Monitors', 'Audio', 'Cameras', 'Accessories', 'Software'])[1 + (i % 8)] || ' ' || i AS name,
       (['Laptops', 'Phones', 'Tablets', 'Monitors', 'Audio', 'Cameras', 'Accessories', 'Software'])[1 + (i % 8)] AS category,
       (5 + (hash(i, 'price') % 200000) / 100.0)::DECIMAL(10,2) AS unit_price
FROM range(1, 501) t(i);

CREATE TABLE customers AS
SELECT i::INTEGER AS customer_id,
       'Customer ' || i AS name,
       (['Consumer', 'Consumer', 'Consumer', 'Small Business', 'Small Business', 'Enterprise'])[1 + (hash(i, 'segment') % 6)::INTEGER] AS segment,
       (1 + hash(i, 'region') % 8)::INTEGER AS region_id,
       DATE '2020-01-01' + (hash(i, 'signup') % 2000)::INTEGER AS signup_date
FROM range(1, 50001) t(i);

CREATE TABLE orders AS
WITH o AS (
  SELECT i AS order_id, hash(i) AS h, hash(i + 1000000007) AS w FROM range(1, ` + strconv.Itoa(n+1) + `) t(i)
), p AS (
  SELECT order_id,
         make_timestamp(1672531200000000 + (w % (1096 * 86400))::BIGINT * 1000000) AS ordered_at,
         (1 + h % 50000)::INTEGER AS customer_id,
         (1 + (h >> 20) % 500)::INTEGER AS product_id,
         (1 + (h >> 32) % 4)::INTEGER AS quantity,
         CASE (h >> 40) % 6 WHEN 4 THEN 'shipped' WHEN 5 THEN 'returned' ELSE 'completed' END AS status
  FROM o
)
-- The region and the price follow from the customer and the product by
-- the formulas above, without a join.
SELECT order_id, ordered_at::DATE AS order_date, ordered_at, customer_id, product_id,
       (1 + hash(customer_id, 'region') % 8)::INTEGER AS region_id, quantity,
       (quantity * (5 + (hash(product_id, 'price') % 200000) / 100.0)::DECIMAL(10,2))::DECIMAL(12,2) AS amount, status
FROM p;
`
}
