-- Writes and DDL of every kind, including dbt's materialisations.

-- name: insert_values
-- expect: kind=write cacheable=false reason=writes writes=public.orders
INSERT INTO public.orders (id, customer_id, total, created_at) VALUES (1001, 42, 99.50, '2024-05-01 10:00:00'), (1002, 43, 12.00, '2024-05-01 10:05:00')

-- name: insert_select_returning
-- expect: kind=write cacheable=false writes=archive.orders_2023 reads=public.orders
INSERT INTO archive.orders_2023 SELECT * FROM public.orders WHERE created_at < '2024-01-01' RETURNING id

-- name: insert_on_conflict
-- expect: kind=write cacheable=false writes=daily_stats reads=events
INSERT INTO daily_stats (day, events)
SELECT date_trunc('day', ts), count(*) FROM events GROUP BY 1
ON CONFLICT (day) DO UPDATE SET events = EXCLUDED.events

-- name: update_simple
-- expect: kind=write cacheable=false writes=customers time=true
UPDATE customers SET email = 'new@example.com', updated_at = now() WHERE id = 42

-- name: update_from_join
-- expect: kind=write cacheable=false writes=orders reads=customers
UPDATE orders o SET region = c.region FROM customers c WHERE c.id = o.customer_id AND o.region IS NULL

-- name: delete_using
-- expect: kind=write cacheable=false writes=sessions reads=users
DELETE FROM sessions s USING users u WHERE s.user_id = u.id AND u.deleted

-- name: delete_returning
-- expect: kind=write cacheable=false writes=job_queue reads=job_queue
DELETE FROM job_queue WHERE id = (SELECT id FROM job_queue ORDER BY priority DESC LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *

-- name: merge_upsert
-- expect: kind=write cacheable=false writes=dim_customer reads=staging.customers
MERGE INTO dim_customer d
USING staging.customers s ON d.customer_id = s.id
WHEN MATCHED THEN UPDATE SET name = s.name, email = s.email
WHEN NOT MATCHED THEN INSERT (customer_id, name, email) VALUES (s.id, s.name, s.email)

-- name: truncate_many
-- expect: kind=write cacheable=false writes=staging.events,staging.sessions command=TRUNCATE
TRUNCATE TABLE staging.events, staging.sessions RESTART IDENTITY CASCADE

-- name: copy_from_stdin
-- expect: kind=write cacheable=false writes=raw.page_views
COPY raw.page_views (ts, url, user_id) FROM STDIN WITH (FORMAT csv, HEADER true)

-- name: copy_to_stdout
-- expect: kind=utility cacheable=false reads=orders
COPY (SELECT * FROM orders WHERE created_at >= '2024-01-01') TO STDOUT WITH CSV HEADER

-- name: create_table
-- expect: kind=ddl cacheable=false reason=DDL writes=public.invoices reads=public.customers time=true command="CREATE TABLE"
CREATE TABLE public.invoices (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES public.customers (id),
  amount numeric(12,2) NOT NULL DEFAULT 0,
  issued_at timestamptz NOT NULL DEFAULT now()
)

-- name: create_table_partition_of
-- expect: kind=ddl cacheable=false writes=events,events_2024_05
CREATE TABLE events_2024_05 PARTITION OF events FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')

-- name: create_index_concurrently
-- expect: kind=ddl cacheable=false reads=orders command="CREATE INDEX"
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at)

-- name: create_view
-- expect: kind=ddl cacheable=false writes=reporting.v_monthly reads=public.orders
CREATE OR REPLACE VIEW reporting.v_monthly AS
SELECT date_trunc('month', created_at) AS month, sum(total) AS revenue FROM public.orders GROUP BY 1

-- name: create_materialized_view
-- expect: kind=ddl cacheable=false writes=mv_daily_revenue reads=orders command="CREATE MATERIALIZED VIEW"
CREATE MATERIALIZED VIEW mv_daily_revenue AS SELECT created_at::date AS day, sum(total) FROM orders GROUP BY 1 WITH DATA

-- name: refresh_materialized_view
-- expect: kind=write cacheable=false writes=mv_daily_revenue
REFRESH MATERIALIZED VIEW CONCURRENTLY mv_daily_revenue

-- name: alter_table_add_column
-- expect: kind=ddl cacheable=false writes=public.orders command="ALTER TABLE"
ALTER TABLE public.orders ADD COLUMN IF NOT EXISTS coupon_code text

-- name: alter_table_attach_partition
-- expect: kind=ddl cacheable=false writes=events reads=events_2024_06
ALTER TABLE events ATTACH PARTITION events_2024_06 FOR VALUES FROM ('2024-06-01') TO ('2024-07-01')

-- name: alter_table_rename
-- expect: kind=ddl cacheable=false writes=orders_old
ALTER TABLE orders_old RENAME TO orders_archive

-- name: alter_table_set_schema
-- expect: kind=ddl cacheable=false writes=staging.orders
ALTER TABLE staging.orders SET SCHEMA public

-- name: drop_tables
-- expect: kind=ddl cacheable=false writes=public.tmp_a,tmp_b command="DROP TABLE"
DROP TABLE IF EXISTS public.tmp_a, tmp_b CASCADE

-- name: drop_view
-- expect: kind=ddl cacheable=false writes=reporting.v_monthly
DROP VIEW reporting.v_monthly

-- name: drop_index
-- expect: kind=ddl cacheable=false
DROP INDEX CONCURRENTLY orders_created_at_idx

-- name: create_schema
-- expect: kind=ddl cacheable=false
CREATE SCHEMA IF NOT EXISTS reporting AUTHORIZATION analyst

-- name: create_function_plpgsql
-- expect: kind=ddl cacheable=false
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();  -- keep the row's timestamp current
  RETURN NEW;
END;
$$

-- name: create_trigger
-- expect: kind=ddl cacheable=false writes=customers
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_updated_at()

-- name: create_sequence
-- expect: kind=ddl cacheable=false writes=invoice_numbers
CREATE SEQUENCE invoice_numbers START 1000

-- name: grant_select
-- expect: kind=ddl cacheable=false writes=public.orders,public.customers command=GRANT
GRANT SELECT ON public.orders, public.customers TO reporter

-- name: revoke_select
-- expect: kind=ddl cacheable=false writes=public.salaries command=REVOKE
REVOKE SELECT ON TABLE public.salaries FROM analyst

-- name: create_role
-- expect: kind=ddl cacheable=false
CREATE ROLE reporter LOGIN PASSWORD 'md5c4ca4238a0b923820dcc509a6f75849b'

-- name: comment_on_table
-- expect: kind=ddl cacheable=false
COMMENT ON TABLE public.orders IS 'One row per order'

-- name: create_extension
-- expect: kind=ddl cacheable=false
CREATE EXTENSION IF NOT EXISTS pg_stat_statements

-- name: create_policy
-- expect: kind=ddl cacheable=false writes=documents peruser=true
CREATE POLICY tenant_isolation ON documents USING (tenant_id = current_setting('app.tenant')::int)

-- name: select_into
-- expect: kind=ddl cacheable=false reason="SELECT INTO" writes=orders_backup reads=orders
SELECT * INTO orders_backup FROM orders

-- name: create_table_as
-- expect: kind=ddl cacheable=false writes=top_customers reads=orders command="CREATE TABLE AS"
CREATE TABLE top_customers AS SELECT customer_id, sum(total) AS spent FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 100

-- name: data_modifying_cte_insert
-- expect: kind=write cacheable=false reason="data-modifying CTE" writes=orders_archive,orders
WITH moved AS (
  DELETE FROM orders WHERE created_at < '2020-01-01' RETURNING *
)
INSERT INTO orders_archive SELECT * FROM moved

-- name: data_modifying_cte_select
-- expect: kind=write cacheable=false reason="data-modifying CTE" writes=audit_log reads=accounts
WITH logged AS (
  INSERT INTO audit_log (event) VALUES ('report viewed') RETURNING id
)
SELECT a.*, (SELECT id FROM logged) AS log_id FROM accounts a

-- name: vacuum_analyze
-- expect: kind=utility cacheable=false reads=orders
VACUUM (ANALYZE, VERBOSE) orders

-- name: analyze_table
-- expect: kind=utility cacheable=false reads=customers
ANALYZE customers

-- name: cluster_table
-- expect: kind=write cacheable=false writes=orders
CLUSTER orders USING orders_pkey

-- name: reindex
-- expect: kind=utility cacheable=false reads=orders_pkey
REINDEX INDEX CONCURRENTLY orders_pkey

-- name: call_procedure
-- expect: kind=write cacheable=false
CALL refresh_rollups('2024-05-01')

-- name: do_block
-- expect: kind=write cacheable=false
DO $$ BEGIN PERFORM pg_sleep(1); END $$

-- name: lock_table
-- expect: kind=utility cacheable=false reads=orders
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE

-- name: dbt_create_table_tmp
-- expect: kind=ddl cacheable=false writes=analytics.dbt_prod.fct_orders__dbt_tmp reads=analytics.dbt_prod.stg_orders,analytics.dbt_prod.stg_payments
/* {"app": "dbt", "dbt_version": "1.8.2", "profile_name": "analytics", "target_name": "prod", "node_id": "model.jaffle_shop.fct_orders"} */
create  table "analytics"."dbt_prod"."fct_orders__dbt_tmp"
as
(
  with orders as (
    select * from "analytics"."dbt_prod"."stg_orders"
  ),
  payments as (
    select * from "analytics"."dbt_prod"."stg_payments"
  ),
  order_payments as (
    select order_id, sum(case when payment_method = 'credit_card' then amount else 0 end) as credit_card_amount, sum(amount) as total_amount
    from payments
    group by order_id
  )
  select orders.order_id, orders.customer_id, orders.order_date, orders.status, order_payments.credit_card_amount, order_payments.total_amount as amount
  from orders
  left join order_payments on orders.order_id = order_payments.order_id
);

-- name: dbt_rename_swap
-- expect: kind=ddl cacheable=false writes=analytics.dbt_prod.fct_orders
alter table "analytics"."dbt_prod"."fct_orders" rename to "fct_orders__dbt_backup"

-- name: dbt_drop_backup
-- expect: kind=ddl cacheable=false writes=analytics.dbt_prod.fct_orders__dbt_backup
drop table if exists "analytics"."dbt_prod"."fct_orders__dbt_backup" cascade

-- name: dbt_incremental_insert
-- expect: kind=write cacheable=false writes=analytics.dbt_prod.events reads=events__dbt_tmp164523
insert into "analytics"."dbt_prod"."events" ("event_id", "user_id", "ts")
(
    select "event_id", "user_id", "ts"
    from "events__dbt_tmp164523"
)

-- name: dbt_incremental_delete
-- expect: kind=write cacheable=false writes=analytics.dbt_prod.events reads=events__dbt_tmp164523
delete from "analytics"."dbt_prod"."events"
where (event_id) in (
    select (event_id)
    from "events__dbt_tmp164523"
);

-- name: dbt_incremental_tmp_table
-- expect: kind=ddl cacheable=false writes=events__dbt_tmp164523 reads=analytics.dbt_prod.events,analytics.raw.events pin="temporary table" createstemp=events__dbt_tmp164523
create temporary table "events__dbt_tmp164523" as (
    select * from "analytics"."raw"."events"
    where ts > (select coalesce(max(ts), '1900-01-01') from "analytics"."dbt_prod"."events")
);

-- name: dbt_test_not_null
-- expect: kind=read cacheable=true reads=analytics.dbt_prod.fct_orders
select
      count(*) as failures,
      count(*) != 0 as should_warn,
      count(*) != 0 as should_error
    from (
select order_id
from "analytics"."dbt_prod"."fct_orders"
where order_id is null
      ) dbt_internal_test

-- name: dbt_test_unique
-- expect: kind=read cacheable=true reads=analytics.dbt_prod.dim_customers
select
      count(*) as failures,
      count(*) != 0 as should_warn,
      count(*) != 0 as should_error
    from (
select
    customer_id as unique_field,
    count(*) as n_records
from "analytics"."dbt_prod"."dim_customers"
where customer_id is not null
group by customer_id
having count(*) > 1
      ) dbt_internal_test

-- name: dbt_create_view
-- expect: kind=ddl cacheable=false writes=analytics.dbt_prod.stg_customers__dbt_tmp reads=analytics.raw.customers
create view "analytics"."dbt_prod"."stg_customers__dbt_tmp" as (
    select id as customer_id, first_name, last_name from "analytics"."raw"."customers"
);

-- name: dbt_grant
-- expect: kind=ddl cacheable=false writes=analytics.dbt_prod.fct_orders
grant select on "analytics"."dbt_prod"."fct_orders" to "reporter";

-- name: dbt_snapshot_update
-- expect: kind=write cacheable=false writes=analytics.snapshots.orders_snapshot reads=orders_snapshot__dbt_tmp
update "analytics"."snapshots"."orders_snapshot"
    set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to
    from "orders_snapshot__dbt_tmp" as DBT_INTERNAL_SOURCE
    where DBT_INTERNAL_SOURCE.dbt_scd_id::text = "analytics"."snapshots"."orders_snapshot".dbt_scd_id::text
      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)
      and "analytics"."snapshots"."orders_snapshot".dbt_valid_to is null;

-- name: dbt_list_schemas
-- expect: kind=read cacheable=true reads=analytics.information_schema.schemata
select distinct schema_name
from "analytics".information_schema.schemata
where catalog_name ilike 'analytics'
