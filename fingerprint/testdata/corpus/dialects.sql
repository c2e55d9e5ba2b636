-- Snowflake and DuckDB SQL: what PostgreSQL's parser rejects goes to the lexer fallback.

-- name: snowflake_qualify
-- expect: kind=read cacheable=true parsed=false reads=analytics.public.orders
SELECT customer_id, order_id, amount
FROM analytics.public.orders
QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC) = 1

-- name: snowflake_variant_path
-- expect: kind=read cacheable=true parsed=false reads=raw.events
SELECT v:customer.name::string AS name, v:items[0].sku::string AS first_sku, v:"Total"::number(10,2) AS total
FROM raw.events
WHERE v:type::string = 'purchase'

-- name: snowflake_lateral_flatten_path
-- expect: kind=read cacheable=true parsed=false reads=raw.orders
SELECT o.id, f.value:sku::string AS sku, f.value:qty::int AS qty
FROM raw.orders o, LATERAL FLATTEN(input => o.payload:items) f

-- name: snowflake_flatten_parses
-- expect: kind=read cacheable=true parsed=true reads=raw.orders
SELECT o.id, f.value
FROM raw.orders o, LATERAL FLATTEN(input => o.items) f

-- name: snowflake_iff_dateadd
-- expect: kind=read cacheable=true parsed=false time=true reads=orders
SELECT IFF(amount > 100, 'big', 'small') AS size, DATEADD(day, -7, CURRENT_DATE()) AS week_ago
FROM orders
WHERE created_at >= DATEADD(day, -7, CURRENT_DATE())

-- name: snowflake_sample
-- expect: kind=read cacheable=false parsed=false reason="TABLESAMPLE" reads=events
SELECT * FROM events SAMPLE (10)

-- name: snowflake_sample_seeded
-- expect: kind=read cacheable=true parsed=false reads=events
SELECT * FROM events SAMPLE BERNOULLI (10) SEED (99)

-- name: snowflake_generator_seq
-- expect: kind=read cacheable=false parsed=false reason="volatile function"
SELECT SEQ4() AS n, UNIFORM(1, 10, RANDOM()) AS r FROM TABLE(GENERATOR(ROWCOUNT => 10))

-- name: snowflake_result_scan
-- expect: kind=read cacheable=false parsed=false reason="last_query_id"
SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))

-- name: snowflake_time_travel
-- expect: kind=read cacheable=true parsed=false time=true reads=orders
SELECT count(*) FROM orders AT(OFFSET => -60*5)

-- name: snowflake_show_tables
-- expect: kind=utility cacheable=false parsed=false
SHOW TABLES IN SCHEMA analytics.public

-- name: snowflake_use_warehouse
-- expect: kind=session cacheable=false parsed=false
USE WAREHOUSE reporting_wh

-- name: snowflake_alter_session
-- expect: kind=session cacheable=false parsed=false
ALTER SESSION SET TIMEZONE = 'America/New_York'

-- name: snowflake_create_temp_table
-- expect: kind=ddl cacheable=false parsed=false writes=tmp_orders reads=orders pin="temporary table"
CREATE OR REPLACE TEMPORARY TABLE tmp_orders AS SELECT * FROM orders WHERE amount > 0

-- name: snowflake_copy_into_stage
-- expect: kind=write cacheable=false parsed=false reads=orders
COPY INTO @reports_stage/daily/ FROM (SELECT * FROM orders) FILE_FORMAT = (TYPE = CSV) OVERWRITE = TRUE

-- name: snowflake_insert_overwrite
-- expect: kind=write cacheable=false parsed=false writes=daily_rollup reads=orders
INSERT OVERWRITE INTO daily_rollup SELECT created_at::date, sum(amount) FROM orders GROUP BY 1

-- name: snowflake_pivot
-- expect: kind=read cacheable=true parsed=false reads=monthly_sales
SELECT * FROM monthly_sales PIVOT(SUM(amount) FOR month IN ('JAN', 'FEB', 'MAR')) AS p ORDER BY empid

-- name: snowflake_ilike_any
-- expect: kind=read cacheable=true parsed=false reads=customers
SELECT * FROM customers WHERE name ILIKE ANY ('%inc', '%llc')

-- name: snowflake_top
-- expect: kind=read cacheable=true parsed=false reads=orders
SELECT TOP 10 * FROM orders ORDER BY amount DESC

-- name: snowflake_current_role
-- expect: kind=read cacheable=true parsed=false peruser=true
SELECT CURRENT_ROLE(), CURRENT_WAREHOUSE()

-- name: snowflake_multi_statement
-- expect: kind=read cacheable=false parsed=false reason="several statements" statements=2 reads=a,b
SELECT * FROM a QUALIFY x = 1; SELECT * FROM b QUALIFY y = 1

-- name: snowflake_dollar_string_backslash
-- expect: kind=read cacheable=true parsed=false reads=logs
SELECT REGEXP_SUBSTR(line, $$\d+-\d+$$) AS code FROM logs QUALIFY code IS NOT NULL

-- name: duckdb_from_first
-- expect: kind=read cacheable=false parsed=false reason="not a plain SELECT" reads=orders
FROM orders SELECT region, sum(amount) GROUP BY ALL

-- name: duckdb_group_by_all
-- expect: kind=read cacheable=true parsed=false reads=orders
SELECT region, sum(amount) FROM orders GROUP BY ALL ORDER BY ALL

-- name: duckdb_exclude
-- expect: kind=read cacheable=true parsed=false reads=users
SELECT * EXCLUDE (password_hash) FROM users

-- name: duckdb_read_parquet_path
-- expect: kind=read cacheable=true parsed=false
SELECT * FROM 'data/orders.parquet' LIMIT 10

-- name: duckdb_list_lambda
-- expect: kind=read cacheable=true parsed=false
SELECT list_transform([1, 2, 3], x -> x + 1) AS l, {'a': 1, 'b': 2} AS s

-- name: duckdb_interval_shorthand
-- expect: kind=read cacheable=true parsed=false time=true reads=events
SELECT epoch_ms(ts) AS t, count(*) FROM events WHERE ts > now() - INTERVAL 1 DAY GROUP BY 1

-- name: duckdb_using_sample
-- expect: kind=read cacheable=false parsed=false reason="TABLESAMPLE" reads=events
SELECT * FROM events USING SAMPLE 10%

-- name: duckdb_read_csv_parses
-- expect: kind=read cacheable=false parsed=true reason="read_csv_auto() (not in the catalog)"
SELECT * FROM read_csv_auto('s3://bucket/exports/2024-05.csv')

-- name: duckdb_strftime
-- expect: kind=read cacheable=true parsed=true time=true
SELECT strftime(now(), '%Y-%m') AS month

-- name: duckdb_describe
-- expect: kind=utility cacheable=false parsed=false
DESCRIBE orders

-- name: duckdb_summarize
-- expect: kind=utility cacheable=false parsed=false
SUMMARIZE orders

-- name: duckdb_pragma
-- expect: kind=session cacheable=false parsed=false
PRAGMA table_info('orders')

-- name: duckdb_attach
-- expect: kind=session cacheable=false parsed=false
ATTACH 'warehouse.duckdb' AS wh (READ_ONLY)

-- name: duckdb_insert_or_replace
-- expect: kind=write cacheable=false parsed=false writes=kv
INSERT OR REPLACE INTO kv VALUES (1, 'a')

-- name: duckdb_qualify_random
-- expect: kind=read cacheable=false parsed=false reason="volatile function random()" reads=t
SELECT * FROM t QUALIFY random() < 0.1
