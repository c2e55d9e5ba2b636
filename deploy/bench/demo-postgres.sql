-- The tables of `sqlcached demo` for PostgreSQL, so that dashboards.yaml
-- runs unchanged against a PostgreSQL (directly, or through pgbouncer,
-- pgpool-II or sqlcached): orders (the fact table, :orders rows over
-- 2023-2025), customers, products and regions. The values come from a
-- seeded random() in this one session, so every load holds the same data
-- (not the demo's values: its DuckDB hashes them differently).
--
--   psql -v orders=1200000 -f deploy/bench/demo-postgres.sql DBNAME
\if :{?orders}
\else
\set orders 1200000
\endif
\set ON_ERROR_STOP 1
select setseed(0.42);
create table regions (region_id integer primary key, name text not null, country text not null);
insert into regions values
  (1, 'North America East', 'United States'), (2, 'North America West', 'United States'),
  (3, 'Canada', 'Canada'), (4, 'Western Europe', 'France'), (5, 'Northern Europe', 'Sweden'),
  (6, 'Central Europe', 'Germany'), (7, 'Asia Pacific', 'Japan'), (8, 'Oceania', 'Australia');
create table products as
select i as product_id,
       (array['Laptops', 'Phones', 'Tablets', 'Monitors', 'Audio', 'Cameras', 'Accessories', 'Software'])[1 + i % 8] || ' ' || i as name,
       (array['Laptops', 'Phones', 'Tablets', 'Monitors', 'Audio', 'Cameras', 'Accessories', 'Software'])[1 + i % 8] as category,
       round((5 + random() * 2000)::numeric, 2)::numeric(10,2) as unit_price
from generate_series(1, 500) i;
alter table products add primary key (product_id);
create table customers as
select i as customer_id,
       'Customer ' || i as name,
       (array['Consumer', 'Consumer', 'Consumer', 'Small Business', 'Small Business', 'Enterprise'])[1 + floor(random() * 6)::int] as segment,
       1 + floor(random() * 8)::int as region_id,
       date '2020-01-01' + floor(random() * 2000)::int as signup_date
from generate_series(1, 50000) i;
alter table customers add primary key (customer_id);
create table orders as
with o as (
  select i as order_id,
         timestamp '2023-01-01' + floor(random() * 1096 * 86400) * interval '1 second' as ordered_at,
         1 + floor(random() * 50000)::int as customer_id,
         1 + floor(random() * 500)::int as product_id,
         1 + floor(random() * 4)::int as quantity,
         random() as s
  from generate_series(1, :orders) i
)
select o.order_id, o.ordered_at::date as order_date, o.ordered_at, o.customer_id, o.product_id,
       c.region_id, o.quantity, (o.quantity * p.unit_price)::numeric(12,2) as amount,
       case when o.s < 1.0 / 6 then 'shipped' when o.s < 2.0 / 6 then 'returned' else 'completed' end as status
from o join customers c using (customer_id) join products p using (product_id)
order by o.order_id;
alter table orders add primary key (order_id);
vacuum analyze;
