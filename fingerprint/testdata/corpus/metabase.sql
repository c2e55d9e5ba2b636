-- Metabase: MBQL compiled to PostgreSQL, with the remark Metabase prepends, and its sync queries.

-- name: metabase_raw_table
-- expect: kind=read cacheable=true reads=public.orders source=metabase user=1 hash=e3c4d1b2a9f0
-- Metabase:: userID: 1 queryType: MBQL queryHash: e3c4d1b2a9f0
SELECT "public"."orders"."id" AS "id", "public"."orders"."user_id" AS "user_id", "public"."orders"."product_id" AS "product_id", "public"."orders"."subtotal" AS "subtotal", "public"."orders"."tax" AS "tax", "public"."orders"."total" AS "total", "public"."orders"."discount" AS "discount", "public"."orders"."created_at" AS "created_at", "public"."orders"."quantity" AS "quantity" FROM "public"."orders" LIMIT 2000

-- name: metabase_count_by_month
-- expect: kind=read cacheable=true reads=public.orders source=metabase user=5
-- Metabase:: userID: 5 queryType: MBQL queryHash: 7b0f2e41
SELECT CAST(DATE_TRUNC('month', "public"."orders"."created_at") AS date) AS "created_at", COUNT(*) AS "count" FROM "public"."orders" GROUP BY CAST(DATE_TRUNC('month', "public"."orders"."created_at") AS date) ORDER BY CAST(DATE_TRUNC('month', "public"."orders"."created_at") AS date) ASC

-- name: metabase_relative_date_filter
-- expect: kind=read cacheable=true reads=public.orders time=true source=metabase
-- Metabase:: userID: 5 queryType: MBQL queryHash: 9a9a9a9a
SELECT SUM("public"."orders"."total") AS "sum" FROM "public"."orders" WHERE ("public"."orders"."created_at" >= CAST((NOW() + INTERVAL '-30 day') AS date)) AND ("public"."orders"."created_at" < CAST(NOW() AS date))

-- name: metabase_current_quarter
-- expect: kind=read cacheable=true reads=public.orders time=true
-- Metabase:: userID: 2 queryType: MBQL queryHash: 11aa22bb
SELECT "public"."orders"."product_id" AS "product_id", SUM("public"."orders"."subtotal") AS "sum" FROM "public"."orders" WHERE ("public"."orders"."created_at" >= DATE_TRUNC('quarter', NOW())) AND ("public"."orders"."created_at" < DATE_TRUNC('quarter', (NOW() + INTERVAL '3 month'))) GROUP BY "public"."orders"."product_id" ORDER BY "sum" DESC, "public"."orders"."product_id" ASC LIMIT 10

-- name: metabase_join_products
-- expect: kind=read cacheable=true reads=public.orders,public.products
-- Metabase:: userID: 3 queryType: MBQL queryHash: 0c0c0c0c
SELECT "Products"."category" AS "Products__category", AVG("public"."orders"."total") AS "avg" FROM "public"."orders" LEFT JOIN "public"."products" AS "Products" ON "public"."orders"."product_id" = "Products"."id" GROUP BY "Products"."category" ORDER BY "Products"."category" ASC

-- name: metabase_redshift_partner_remark
-- expect: kind=read cacheable=true reads=public.orders source=metabase dashboard=5678 chart=1234 user=1000 hash=cb83d4f6eedc250edb0f2c16f8d9a21e5d42f322ccece1494c8ef3d634581fe2
-- /* partner: "metabase", {"dashboard_id":5678,"chart_id":1234,"optional_user_id":1000,"optional_account_id":"bc1f9a8d-1f52-4b36-8e4c-21c9d8f1fd3c","filter_values":{"created_at":["past30days"]}} */ Metabase:: userID: 1000 queryType: MBQL queryHash: cb83d4f6eedc250edb0f2c16f8d9a21e5d42f322ccece1494c8ef3d634581fe2
SELECT COUNT(*) AS "count" FROM "public"."orders"

-- name: metabase_native_with_template_tag
-- expect: kind=read cacheable=true reads=people source=metabase
-- Metabase:: userID: 7 queryType: native queryHash: 4d4d4d4d
SELECT state, count(*) AS n
FROM people
WHERE source IN ('Twitter', 'Facebook')
  AND created_at BETWEEN '2024-01-01' AND '2024-03-31'
GROUP BY state
ORDER BY n DESC

-- name: metabase_binning
-- expect: kind=read cacheable=true reads=public.orders
-- Metabase:: userID: 1 queryType: MBQL queryHash: aa11
SELECT (FLOOR((("public"."orders"."total" - 12.0) / 20.0)) * 20.0) + 12.0 AS "total", COUNT(*) AS "count" FROM "public"."orders" GROUP BY (FLOOR((("public"."orders"."total" - 12.0) / 20.0)) * 20.0) + 12.0 ORDER BY (FLOOR((("public"."orders"."total" - 12.0) / 20.0)) * 20.0) + 12.0 ASC

-- name: metabase_field_values
-- expect: kind=read cacheable=true reads=public.people
-- Metabase:: userID: 1 queryType: MBQL queryHash: 5f5f
SELECT "public"."people"."state" AS "state" FROM "public"."people" GROUP BY "public"."people"."state" ORDER BY "public"."people"."state" ASC LIMIT 5000

-- name: metabase_cumulative_sum
-- expect: kind=read cacheable=true reads=public.orders
-- Metabase:: userID: 4 queryType: MBQL queryHash: 8e8e
SELECT "source"."created_at" AS "created_at", SUM("source"."sum") OVER (ORDER BY "source"."created_at" ASC ROWS UNBOUNDED PRECEDING) AS "sum" FROM (SELECT CAST(DATE_TRUNC('week', ("public"."orders"."created_at" + INTERVAL '1 day')) AS date) - INTERVAL '1 day' AS "created_at", SUM("public"."orders"."total") AS "sum" FROM "public"."orders" GROUP BY 1) AS "source" ORDER BY "source"."created_at" ASC

-- name: metabase_case_ladder
-- expect: kind=read cacheable=true reads=public.people
-- Metabase:: userID: 9 queryType: MBQL queryHash: 3c3c
SELECT CASE WHEN "public"."people"."birth_date" > DATE '2000-01-01' THEN 'Gen Z' WHEN "public"."people"."birth_date" > DATE '1981-01-01' THEN 'Millennial' WHEN "public"."people"."birth_date" > DATE '1965-01-01' THEN 'Gen X' WHEN "public"."people"."birth_date" > DATE '1946-01-01' THEN 'Boomer' ELSE 'Silent' END AS "Generation", COUNT(*) AS "count" FROM "public"."people" GROUP BY 1 ORDER BY 1 ASC

-- name: metabase_read_only_session
-- expect: kind=session cacheable=false setname=default_transaction_read_only known=true
SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY

-- name: metabase_read_uncommitted
-- expect: kind=session cacheable=false setname=default_transaction_isolation setvalue="read uncommitted" known=true
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED

-- name: metabase_sync_tables_live_stats
-- expect: kind=read cacheable=false reason="live server state" reads=pg_catalog.pg_class,pg_catalog.pg_description,pg_catalog.pg_namespace,pg_stat_user_tables peruser=true
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'p' THEN 'partitioned table' WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'f' THEN 'foreign table' WHEN 'm' THEN 'materialized view' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind IN ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public')) AND has_schema_privilege("n"."nspname", 'USAGE') AND (has_table_privilege('"' || "n"."nspname" || '"' || '.' || '"' || "c"."relname" || '"', 'SELECT') OR has_any_column_privilege('"' || "n"."nspname" || '"' || '.' || '"' || "c"."relname" || '"', 'SELECT'))

-- name: metabase_sync_columns
-- expect: kind=read cacheable=true reads=pg_catalog.pg_attribute,pg_catalog.pg_class,pg_catalog.pg_namespace,pg_catalog.pg_type
SELECT c.column_name AS name, c.udt_name AS "database-type", c.ordinal_position - 1 AS "database-position", c.table_schema AS "table-schema", c.table_name AS "table-name", pk.column_name IS NOT NULL AS "pk?", col_description(c_oid.oid, c.ordinal_position) AS "field-comment"
FROM (SELECT n.nspname AS table_schema, cl.relname AS table_name, a.attname AS column_name, t.typname AS udt_name, a.attnum AS ordinal_position FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace JOIN pg_catalog.pg_type t ON t.oid = a.atttypid WHERE a.attnum > 0 AND NOT a.attisdropped) AS c
LEFT JOIN (SELECT n.nspname AS table_schema, cl.relname AS table_name, a.attname AS column_name FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace) AS pk ON c.table_schema = pk.table_schema AND c.table_name = pk.table_name AND c.column_name = pk.column_name
LEFT JOIN (SELECT cl.oid, n.nspname, cl.relname FROM pg_catalog.pg_class cl JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace) AS c_oid ON c_oid.nspname = c.table_schema AND c_oid.relname = c.table_name
WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND c.table_schema IN ('public')
ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC

-- name: metabase_version_probe
-- expect: kind=read cacheable=true
SELECT version()
