-- Volatile, time and session functions; locking clauses; temporary tables; hints and labels.

-- name: random_sample_order
-- expect: kind=read cacheable=false reason="volatile function random()" reads=customers
SELECT * FROM customers ORDER BY random() LIMIT 100

-- name: nextval
-- expect: kind=read cacheable=false reason="volatile function nextval()"
SELECT nextval('invoice_numbers')

-- name: clock_timestamp
-- expect: kind=read cacheable=false reason="volatile function clock_timestamp()" time=true
SELECT clock_timestamp()

-- name: pg_sleep
-- expect: kind=read cacheable=false reason="volatile function pg_sleep()"
SELECT pg_sleep(5)

-- name: txid_current
-- expect: kind=read cacheable=false reason="function tied to the warehouse connection txid_current()"
SELECT txid_current()

-- name: gen_random_uuid
-- expect: kind=read cacheable=false reason="volatile function gen_random_uuid()" reads=orders
SELECT gen_random_uuid() AS id, * FROM orders LIMIT 1

-- name: now_is_time
-- expect: kind=read cacheable=true time=true reads=orders
SELECT count(*) FROM orders WHERE created_at > now() - interval '1 day'

-- name: current_date_keyword
-- expect: kind=read cacheable=true time=true reads=events
SELECT count(*) FROM events WHERE ts::date = current_date

-- name: localtimestamp_keyword
-- expect: kind=read cacheable=true time=true
SELECT localtimestamp, current_timestamp(3)

-- name: today_literal
-- expect: kind=read cacheable=true time=true reads=orders
SELECT * FROM orders WHERE created_at >= 'today'::date

-- name: age_one_argument
-- expect: kind=read cacheable=true time=true reads=people
SELECT name, age(birth_date) FROM people

-- name: age_two_arguments
-- expect: kind=read cacheable=true reads=people
SELECT name, age(death_date, birth_date) FROM people

-- name: current_user_per_user
-- expect: kind=read cacheable=true peruser=true reads=documents
SELECT * FROM documents WHERE owner = current_user

-- name: session_user_per_user
-- expect: kind=read cacheable=true peruser=true
SELECT session_user, current_role

-- name: current_setting_in_key
-- expect: kind=read cacheable=true peruser=true
SELECT current_setting('TimeZone')

-- name: current_setting_outside_key
-- expect: kind=read cacheable=false reason="current_setting of a setting outside the key" peruser=true reads=documents
SELECT * FROM documents WHERE tenant_id = current_setting('app.tenant_id')::int

-- name: has_table_privilege
-- expect: kind=read cacheable=true peruser=true reads=information_schema.tables
SELECT table_name FROM information_schema.tables WHERE has_table_privilege(table_schema || '.' || table_name, 'SELECT')

-- name: user_defined_function
-- expect: kind=read cacheable=false reason="public.revenue_for() (not in the catalog)" reads=customers
SELECT id, public.revenue_for(id) FROM customers

-- name: tablesample_system
-- expect: kind=read cacheable=false reason="TABLESAMPLE without REPEATABLE" reads=page_views
SELECT count(*) FROM page_views TABLESAMPLE SYSTEM (1)

-- name: tablesample_repeatable
-- expect: kind=read cacheable=true reads=page_views
SELECT count(*) FROM page_views TABLESAMPLE BERNOULLI (5) REPEATABLE (42)

-- name: for_update
-- expect: kind=read cacheable=false reason="locking clause" reads=accounts
SELECT * FROM accounts WHERE id = 7 FOR UPDATE

-- name: for_share_skip_locked
-- expect: kind=read cacheable=false reason="locking clause" reads=jobs
SELECT id FROM jobs WHERE state = 'queued' LIMIT 10 FOR SHARE SKIP LOCKED

-- name: for_no_key_update
-- expect: kind=read cacheable=false reason="locking clause" reads=accounts
SELECT balance FROM accounts WHERE id = 1 FOR NO KEY UPDATE NOWAIT

-- name: for_key_share_in_subquery
-- expect: kind=read cacheable=false reason="locking clause" reads=orders,parents
SELECT * FROM orders WHERE parent_id IN (SELECT id FROM parents FOR KEY SHARE)

-- name: pg_temp_qualified
-- expect: kind=read cacheable=false reason="temporary table" reads=pg_temp.scratch
SELECT * FROM pg_temp.scratch

-- name: session_temp_table_shadows
-- expect: kind=read cacheable=false reason="temporary table staging" reads=staging temps=staging
SELECT count(*) FROM staging

-- name: session_temp_table_other_name
-- expect: kind=read cacheable=true reads=orders temps=staging
SELECT count(*) FROM orders

-- name: temp_created_earlier_in_text
-- expect: kind=ddl cacheable=false statements=2 writes=ids reads=ids pin="temporary table"
CREATE TEMP TABLE ids (id int); SELECT * FROM ids

-- name: live_pg_settings
-- expect: kind=read cacheable=false reason="live server state" reads=pg_settings
SELECT name, setting FROM pg_settings WHERE name LIKE 'enable_%'

-- name: hint_nocache
-- expect: kind=read cacheable=false reason="sqlcached:nocache" nocache=true reads=orders
/* sqlcached:nocache */ SELECT * FROM orders ORDER BY id DESC LIMIT 1

-- name: hint_ttl
-- expect: kind=read cacheable=true ttl=30s reads=orders
SELECT count(*) FROM orders /* sqlcached:ttl=30s */

-- name: hint_ttl_and_nocache_line
-- expect: kind=read cacheable=false nocache=true ttl=5m reads=orders
-- sqlcached:ttl=5m,nocache
SELECT count(*) FROM orders

-- name: sqlcommenter_url_encoded
-- expect: kind=read cacheable=true reads=orders dashboard="Sales & Ops" chart=7 source=superset
SELECT count(*) FROM orders /*application='superset',chart='7',dashboard='Sales%20%26%20Ops',traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'*/

-- name: sqlcommenter_escaped_quote
-- expect: kind=read cacheable=true reads=orders dashboard="Bob's board"
/*dashboard='Bob\'s%20board',framework='django%3A4.2'*/ SELECT id FROM orders

-- name: labels_not_in_key_same_shape
-- expect: kind=read cacheable=true reads=orders dashboard=finance chart=12
SELECT count(*) FROM orders /*dashboard='finance',chart='12'*/

-- name: in_list_hundreds
-- expect: kind=read cacheable=true reads=products
SELECT id, name, price FROM products WHERE id IN (1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016, 1017, 1018, 1019, 1020, 1021, 1022, 1023, 1024, 1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037, 1038, 1039, 1040, 1041, 1042, 1043, 1044, 1045, 1046, 1047, 1048, 1049, 1050, 1051, 1052, 1053, 1054, 1055, 1056, 1057, 1058, 1059, 1060, 1061, 1062, 1063, 1064, 1065, 1066, 1067, 1068, 1069, 1070, 1071, 1072, 1073, 1074, 1075, 1076, 1077, 1078, 1079, 1080, 1081, 1082, 1083, 1084, 1085, 1086, 1087, 1088, 1089, 1090, 1091, 1092, 1093, 1094, 1095, 1096, 1097, 1098, 1099, 1100, 1101, 1102, 1103, 1104, 1105, 1106, 1107, 1108, 1109, 1110, 1111, 1112, 1113, 1114, 1115, 1116, 1117, 1118, 1119, 1120, 1121, 1122, 1123, 1124, 1125, 1126, 1127, 1128, 1129, 1130, 1131, 1132, 1133, 1134, 1135, 1136, 1137, 1138, 1139, 1140, 1141, 1142, 1143, 1144, 1145, 1146, 1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, 1162, 1163, 1164, 1165, 1166, 1167, 1168, 1169, 1170, 1171, 1172, 1173, 1174, 1175, 1176, 1177, 1178, 1179, 1180, 1181, 1182, 1183, 1184, 1185, 1186, 1187, 1188, 1189, 1190, 1191, 1192, 1193, 1194, 1195, 1196, 1197, 1198, 1199, 1200, 1201, 1202, 1203, 1204, 1205, 1206, 1207, 1208, 1209, 1210, 1211, 1212, 1213, 1214, 1215, 1216, 1217, 1218, 1219, 1220, 1221, 1222, 1223, 1224, 1225, 1226, 1227, 1228, 1229, 1230, 1231, 1232, 1233, 1234, 1235, 1236, 1237, 1238, 1239, 1240, 1241, 1242, 1243, 1244, 1245, 1246, 1247, 1248, 1249, 1250)

-- name: in_list_strings
-- expect: kind=read cacheable=true reads=sales
SELECT region, sum(amount) FROM sales WHERE country IN ('AR', 'AT', 'AU', 'BE', 'BR', 'CA', 'CH', 'CL', 'CN', 'CO', 'CZ', 'DE', 'DK', 'EG', 'ES', 'FI', 'FR', 'GB', 'GR', 'HK', 'HU', 'ID', 'IE', 'IL', 'IN', 'IT', 'JP', 'KR', 'MX', 'MY', 'NG', 'NL', 'NO', 'NZ', 'PE', 'PH', 'PK', 'PL', 'PT', 'RO', 'RU', 'SA', 'SE', 'SG', 'TH', 'TR', 'TW', 'UA', 'US', 'VN', 'ZA') GROUP BY region

-- name: json_operators
-- expect: kind=read cacheable=true reads=events
SELECT payload ->> 'type' AS type, payload -> 'user' ->> 'id' AS user_id, count(*)
FROM events
WHERE payload @> '{"source": "web"}' AND payload ? 'session' AND (payload #> '{geo,country}') IS NOT NULL
GROUP BY 1, 2

-- name: jsonb_array_elements_lateral
-- expect: kind=read cacheable=true reads=carts
SELECT c.id, item ->> 'sku' AS sku, (item ->> 'qty')::int AS qty
FROM carts c, LATERAL jsonb_array_elements(c.items) AS item
WHERE c.updated_at >= '2024-05-01'

-- name: recursive_cte_scoping
-- expect: kind=read cacheable=true reads=employees
WITH RECURSIVE chain AS (
  SELECT id, manager_id, name, 1 AS depth FROM employees WHERE id = 1
  UNION ALL
  SELECT e.id, e.manager_id, e.name, c.depth + 1 FROM employees e JOIN chain c ON e.manager_id = c.id
)
SELECT * FROM chain ORDER BY depth

-- name: cte_shadowing_table_is_still_read
-- expect: kind=read cacheable=true reads=orders
WITH orders AS (SELECT * FROM orders WHERE status = 'paid') SELECT count(*) FROM orders

-- name: window_functions_rolling
-- expect: kind=read cacheable=true reads=daily_revenue
SELECT day, revenue,
       avg(revenue) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS rolling_7d,
       revenue - lag(revenue, 7) OVER (ORDER BY day) AS wow_delta,
       ntile(4) OVER (ORDER BY revenue) AS quartile,
       first_value(revenue) OVER w AS first_in_month
FROM daily_revenue
WINDOW w AS (PARTITION BY date_trunc('month', day) ORDER BY day)
ORDER BY day

-- name: grouping_sets_rollup
-- expect: kind=read cacheable=true reads=sales
SELECT region, product, sum(amount), grouping(region, product)
FROM sales
GROUP BY ROLLUP (region, product)

-- name: values_list
-- expect: kind=read cacheable=true
VALUES (1, 'one'), (2, 'two')

-- name: table_command
-- expect: kind=read cacheable=true reads=countries
TABLE countries

-- name: union_except
-- expect: kind=read cacheable=true reads=active_users,banned_users,trial_users
SELECT id FROM active_users UNION SELECT id FROM trial_users EXCEPT SELECT id FROM banned_users

-- name: superset_sql_lab_backend_pid
-- expect: kind=read cacheable=false reason="function tied to the warehouse connection pg_backend_pid()" peruser=true
SELECT pg_backend_pid()

-- name: inet_client_addr_qualified
-- expect: kind=read cacheable=false reason="function tied to the warehouse connection pg_catalog.inet_client_addr()" peruser=true
SELECT pg_catalog.inet_client_addr(), inet_server_port()

-- name: current_xact_id
-- expect: kind=read cacheable=false reason="function tied to the warehouse connection pg_current_xact_id()"
SELECT pg_current_xact_id()

-- name: stat_backend
-- expect: kind=read cacheable=false reason="function tied to the warehouse connection pg_stat_get_backend_pid()"
SELECT pg_stat_get_backend_pid(1)
