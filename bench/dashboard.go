package bench

import (
	"fmt"
	"strings"
)

// DashboardData builds the dashboard benchmark's warehouse: a fact table of
// orders (rows of them, spread over 2023 and 2024) and small dimensions of
// regions, product categories and products. The values come from a seeded
// random() in one session, so every build holds the same data. The
// statements are to run in order in one session; VACUUM ANALYZE the
// tables afterwards.
func DashboardData(rows int) []string {
	return []string{
		`select setseed(0.42)`,
		`create table regions (id int primary key, name text not null, country text not null)`,
		`insert into regions
			select i, 'region ' || i, (array['DE','FR','US','JP','BR','IN'])[1 + i % 6]
			from generate_series(1, 12) i`,
		`create table categories (id int primary key, name text not null)`,
		`insert into categories select i, 'category ' || i from generate_series(1, 10) i`,
		`create table products (id int primary key, name text not null,
			category_id int not null references categories, list_price numeric(10,2) not null)`,
		`insert into products
			select i, 'product ' || i, 1 + i % 10, round((5 + random() * 495)::numeric, 2)
			from generate_series(1, 200) i`,
		`create table orders (id bigint primary key, ordered_at timestamptz not null,
			region_id int not null, product_id int not null, customer_id int not null,
			quantity int not null, amount numeric(12,2) not null)`,
		fmt.Sprintf(`insert into orders
			select i,
				timestamptz '2023-01-01 00:00:00+00' + random() * interval '731 days',
				1 + floor(random() * 12)::int,
				1 + floor(random() * random() * 200)::int,
				1 + floor(random() * 200000)::int,
				1 + floor(random() * 5)::int,
				round((1 + random() * 499)::numeric, 2)
			from generate_series(1, %d) i`, rows),
	}
}

// DashboardQueries are the dashboard benchmark's aggregate queries, the
// kind a BI dashboard sends: totals by dimension, series by
// day/week/month, top-N, window functions, distinct counts, with fixed
// date ranges. Each reads most of orders.
var DashboardQueries = []Script{
	{Name: "q01_revenue_by_region", SQL: `SELECT r.name AS region, count(*) AS orders, sum(o.amount) AS revenue
FROM orders o JOIN regions r ON r.id = o.region_id
GROUP BY r.name
ORDER BY revenue DESC, region;`},
	{Name: "q02_revenue_by_category", SQL: `SELECT c.name AS category, sum(o.quantity) AS units, sum(o.amount) AS revenue
FROM orders o JOIN products p ON p.id = o.product_id JOIN categories c ON c.id = p.category_id
WHERE o.ordered_at >= '2024-01-01 00:00:00+00' AND o.ordered_at < '2025-01-01 00:00:00+00'
GROUP BY c.name
ORDER BY revenue DESC, category;`},
	{Name: "q03_daily_revenue", SQL: `SELECT date_trunc('day', o.ordered_at) AS day, count(*) AS orders, sum(o.amount) AS revenue
FROM orders o
WHERE o.ordered_at >= '2024-07-01 00:00:00+00' AND o.ordered_at < '2025-01-01 00:00:00+00'
GROUP BY 1
ORDER BY 1;`},
	{Name: "q04_weekly_orders_by_region", SQL: `SELECT date_trunc('week', o.ordered_at) AS week, o.region_id, count(*) AS orders, sum(o.amount) AS revenue
FROM orders o
WHERE o.ordered_at >= '2024-01-01 00:00:00+00' AND o.ordered_at < '2025-01-01 00:00:00+00'
GROUP BY 1, 2
ORDER BY 1, 2;`},
	{Name: "q05_monthly_revenue", SQL: `SELECT date_trunc('month', o.ordered_at) AS month, count(*) AS orders, sum(o.amount) AS revenue,
	avg(o.amount)::numeric(12,2) AS avg_order
FROM orders o
GROUP BY 1
ORDER BY 1;`},
	{Name: "q06_top_products", SQL: `SELECT p.name AS product, sum(o.quantity) AS units, sum(o.amount) AS revenue
FROM orders o JOIN products p ON p.id = o.product_id
GROUP BY p.name
ORDER BY revenue DESC, product
LIMIT 10;`},
	{Name: "q07_customers_by_region", SQL: `SELECT r.name AS region, count(DISTINCT o.customer_id) AS customers
FROM orders o JOIN regions r ON r.id = o.region_id
WHERE o.ordered_at >= '2024-01-01 00:00:00+00' AND o.ordered_at < '2024-07-01 00:00:00+00'
GROUP BY r.name
ORDER BY customers DESC, region
LIMIT 5;`},
	{Name: "q08_monthly_customers", SQL: `SELECT date_trunc('month', o.ordered_at) AS month, count(DISTINCT o.customer_id) AS customers
FROM orders o
WHERE o.ordered_at >= '2024-01-01 00:00:00+00' AND o.ordered_at < '2025-01-01 00:00:00+00'
GROUP BY 1
ORDER BY 1;`},
	{Name: "q09_category_running_total", SQL: `SELECT month, category, revenue,
	sum(revenue) OVER (PARTITION BY category ORDER BY month) AS running_revenue
FROM (
	SELECT date_trunc('month', o.ordered_at) AS month, p.category_id AS category, sum(o.amount) AS revenue
	FROM orders o JOIN products p ON p.id = o.product_id
	WHERE o.ordered_at >= '2024-01-01 00:00:00+00' AND o.ordered_at < '2025-01-01 00:00:00+00'
	GROUP BY 1, 2
) m
ORDER BY category, month;`},
	{Name: "q10_top_products_per_region", SQL: `SELECT region, product, units, rank
FROM (
	SELECT o.region_id AS region, o.product_id AS product, sum(o.quantity) AS units,
		rank() OVER (PARTITION BY o.region_id ORDER BY sum(o.quantity) DESC, o.product_id) AS rank
	FROM orders o
	GROUP BY o.region_id, o.product_id
) t
WHERE rank <= 3
ORDER BY region, rank;`},
	{Name: "q11_order_size_by_country", SQL: `SELECT r.country, count(*) AS orders, avg(o.amount)::numeric(12,2) AS avg_amount,
	max(o.amount) AS max_amount, sum(o.quantity * o.amount) AS weighted
FROM orders o JOIN regions r ON r.id = o.region_id
WHERE o.ordered_at >= '2023-04-01 00:00:00+00' AND o.ordered_at < '2024-10-01 00:00:00+00'
GROUP BY r.country
ORDER BY r.country;`},
	{Name: "q12_month_over_month", SQL: `SELECT month, revenue, revenue - lag(revenue) OVER (ORDER BY month) AS change
FROM (
	SELECT date_trunc('month', o.ordered_at) AS month, sum(o.amount) AS revenue
	FROM orders o
	GROUP BY 1
) m
ORDER BY month;`},
}

// DashboardWorkload is the dashboard mix: one of DashboardQueries per
// transaction, chosen at random with equal weights.
func DashboardWorkload() Workload {
	return Workload{Name: "dashboard", Scripts: DashboardQueries}
}

// DashboardPass is every dashboard query in turn, in one transaction
// script: one run of it with -t 1 asks each query once.
func DashboardPass() Workload {
	var b strings.Builder
	for _, q := range DashboardQueries {
		b.WriteString(q.SQL)
		b.WriteString("\n")
	}
	return Workload{Name: "dashboard-pass", Scripts: []Script{{Name: "pass", SQL: b.String()}}}
}
