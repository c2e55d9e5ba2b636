-- Grafana (PostgreSQL data source, macros expanded), Looker and Tableau.

-- name: grafana_time_filter_group
-- expect: kind=read cacheable=true reads=orders
SELECT
  floor(extract(epoch from created_at)/300)*300 AS "time",
  count(*) AS "orders"
FROM orders
WHERE
  created_at BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-01T06:00:00Z'
GROUP BY 1
ORDER BY 1

-- name: grafana_unix_epoch_filter
-- expect: kind=read cacheable=true reads=metrics
SELECT
  time_sec AS "time",
  avg(value) AS "cpu"
FROM metrics
WHERE
  time_sec >= 1714521600 AND time_sec <= 1714543200
  AND hostname IN ('web-1','web-2','web-3')
GROUP BY 1
ORDER BY 1

-- name: grafana_multi_series
-- expect: kind=read cacheable=true reads=public.http_requests
SELECT
  sub."time",
  status_code::text AS metric,
  n AS value
FROM (
  SELECT floor(extract(epoch from "timestamp")/60)*60 AS "time", status_code, count(*) AS n
  FROM public.http_requests
  WHERE "timestamp" BETWEEN '2024-05-01T10:00:00Z' AND '2024-05-01T11:00:00Z'
  GROUP BY 1, 2
) AS sub
ORDER BY 1

-- name: grafana_raw_now_interval
-- expect: kind=read cacheable=true reads=sensor_readings time=true
SELECT
  recorded_at AS "time",
  temperature
FROM sensor_readings
WHERE recorded_at > now() - interval '1 hour'
ORDER BY 1

-- name: grafana_timescale_time_bucket
-- expect: kind=read cacheable=false reason="time_bucket() (not in the catalog)" reads=conditions
SELECT
  time_bucket('5 minutes', "time") AS "time",
  location AS metric,
  avg(temperature) AS value
FROM conditions
WHERE "time" BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-02T00:00:00Z'
GROUP BY 1, 2
ORDER BY 1

-- name: grafana_variable_query
-- expect: kind=read cacheable=true reads=metrics
SELECT DISTINCT hostname FROM metrics ORDER BY 1

-- name: grafana_annotations
-- expect: kind=read cacheable=true reads=deployments
SELECT
  extract(epoch from deployed_at) AS time,
  extract(epoch from finished_at) AS timeend,
  'Deployed ' || version AS text,
  'deploy,' || service AS tags
FROM deployments
WHERE deployed_at BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-08T00:00:00Z'

-- name: grafana_table_list_search_path
-- expect: kind=read cacheable=true reads=information_schema.tables peruser=true
SELECT quote_ident(table_name) AS "table" FROM information_schema.tables WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental') AND table_type = 'BASE TABLE' AND quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1)) AS i, string_to_array(current_setting('search_path'),',') AS s)

-- name: grafana_column_list
-- expect: kind=read cacheable=true reads=information_schema.columns
SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'metrics'

-- name: grafana_stat_with_percentile
-- expect: kind=read cacheable=true reads=api_latency
SELECT
  percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
  percentile_disc(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50
FROM api_latency
WHERE ts BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-01T01:00:00Z'

-- name: looker_explore_context
-- expect: kind=read cacheable=true reads=public.order_items,public.users source=looker user=42
-- Looker Query Context '{"user_id":42,"history_slug":"8f1c2a9e0b7d","instance_slug":"6e1f2d3c4b5a"}'
SELECT
    users.state  AS "users.state",
    TO_CHAR(DATE_TRUNC('month', order_items.created_at ), 'YYYY-MM') AS "order_items.created_month",
    COALESCE(SUM(order_items.sale_price ), 0) AS "order_items.total_sale_price"
FROM public.order_items  AS order_items
LEFT JOIN public.users  AS users ON order_items.user_id = users.id
GROUP BY
    1,
    (DATE_TRUNC('month', order_items.created_at ))
ORDER BY
    3 DESC
FETCH NEXT 500 ROWS ONLY

-- name: looker_relative_filter
-- expect: kind=read cacheable=true reads=public.orders time=true source=looker
-- Looker Query Context '{"user_id":7,"history_slug":"11","instance_slug":"22"}'
SELECT
    (DATE(orders.created_at )) AS "orders.created_date",
    COUNT(*) AS "orders.count"
FROM public.orders  AS orders
WHERE ((( orders.created_at  ) >= ((SELECT (DATE_TRUNC('day', CURRENT_TIMESTAMP) + (-6 || ' day')::INTERVAL))) AND ( orders.created_at  ) < ((SELECT ((DATE_TRUNC('day', CURRENT_TIMESTAMP) + (-6 || ' day')::INTERVAL) + (7 || ' day')::INTERVAL)))))
GROUP BY
    (DATE(orders.created_at ))
ORDER BY
    1 DESC
FETCH NEXT 500 ROWS ONLY

-- name: looker_derived_table_cte
-- expect: kind=read cacheable=true reads=public.order_items,public.users source=looker
WITH user_order_facts AS (SELECT
        user_id,
        COUNT(DISTINCT order_id) AS lifetime_orders,
        SUM(sale_price) AS lifetime_revenue,
        MIN(created_at) AS first_order
      FROM public.order_items
      GROUP BY user_id
       )
SELECT
    CASE
WHEN user_order_facts.lifetime_orders  = 1 THEN '0'
WHEN user_order_facts.lifetime_orders  = 2 THEN '1'
WHEN user_order_facts.lifetime_orders  >= 3 AND user_order_facts.lifetime_orders  <= 5 THEN '2'
WHEN user_order_facts.lifetime_orders  >= 6 AND user_order_facts.lifetime_orders  <= 9 THEN '3'
WHEN user_order_facts.lifetime_orders  >= 10 THEN '4'
ELSE '5'
END AS "user_order_facts.lifetime_orders_tier__sort_",
    COUNT(DISTINCT users.id ) AS "users.count"
FROM public.users  AS users
LEFT JOIN user_order_facts ON users.id = user_order_facts.user_id
GROUP BY 1
ORDER BY 1
FETCH NEXT 500 ROWS ONLY
-- Looker Query Context '{"user_id":3,"history_slug":"aa","instance_slug":"bb"}'

-- name: looker_pdt_create
-- expect: kind=ddl cacheable=false writes=looker_scratch.lr$zz8vj1693_user_facts reads=public.order_items
CREATE TABLE looker_scratch.lr$zz8vj1693_user_facts AS SELECT user_id, COUNT(*) AS orders FROM public.order_items GROUP BY 1

-- name: looker_pdt_drop
-- expect: kind=ddl cacheable=false writes=looker_scratch.lr$zz8vj1693_user_facts
DROP TABLE IF EXISTS looker_scratch.lr$zz8vj1693_user_facts

-- name: looker_redshift_convert_timezone
-- expect: kind=read cacheable=true reads=public.events time=true
SELECT
    DATE(CONVERT_TIMEZONE('UTC', 'America/Los_Angeles', events.created_at )) AS "events.created_date",
    COUNT(*) AS "events.count"
FROM public.events  AS events
WHERE (CONVERT_TIMEZONE('UTC', 'America/Los_Angeles', events.created_at )) >= ((DATE_TRUNC('day', GETDATE())))
GROUP BY 1

-- name: tableau_aggregate
-- expect: kind=read cacheable=true reads=public.orders
SELECT CAST("orders"."region" AS TEXT) AS "region",
  SUM("orders"."sales") AS "sum:sales:ok"
FROM "public"."orders" "orders"
GROUP BY 1

-- name: tableau_create_temp_filter
-- expect: kind=ddl cacheable=false writes=#Tableau_37_2_Filter pin="temporary table" createstemp=#Tableau_37_2_Filter
CREATE LOCAL TEMPORARY TABLE "#Tableau_37_2_Filter" (
	"X_region" TEXT
	) ON COMMIT PRESERVE ROWS

-- name: tableau_insert_temp_filter
-- expect: kind=write cacheable=false writes=#Tableau_37_2_Filter
INSERT INTO "#Tableau_37_2_Filter" ("X_region") VALUES ('Central'), ('East'), ('West')

-- name: tableau_join_temp_filter
-- expect: kind=read cacheable=false reason="temporary table" reads=#Tableau_37_2_Filter,public.orders temps=#Tableau_37_2_Filter
SELECT "orders"."region" AS "region", SUM("orders"."sales") AS "sum:sales:ok"
FROM "public"."orders" "orders"
  INNER JOIN "#Tableau_37_2_Filter" ON ("orders"."region" = "#Tableau_37_2_Filter"."X_region")
GROUP BY 1

-- name: tableau_cursor_with_hold
-- expect: kind=utility cacheable=false reads=public.orders pin="WITH HOLD"
declare "SQL_CUR0x7f8b1c00d2a0" cursor with hold for SELECT "orders"."order_id" AS "order_id", "orders"."sales" AS "sales" FROM "public"."orders" "orders"

-- name: tableau_fetch
-- expect: kind=utility cacheable=false
fetch 10000 in "SQL_CUR0x7f8b1c00d2a0"
