-- Sample data: a small sales fact table and its dimensions.
set role demo;
create table regions (id int primary key, name text not null);
insert into regions values (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west');
create table products (id int primary key, name text not null, category text not null, price numeric(10,2) not null);
insert into products
select i, 'product ' || i, (array['books','games','music','tools'])[1 + i % 4], round((5 + (i * 37) % 200)::numeric, 2)
from generate_series(1, 200) i;
create table orders (
  id bigint primary key,
  ordered_at timestamptz not null,
  region_id int not null references regions,
  product_id int not null references products,
  quantity int not null,
  amount numeric(12,2) not null
);
insert into orders
select i, timestamptz '2026-01-01' + (i % 300) * interval '1 day' + (i % 86400) * interval '1 second',
       1 + i % 4, 1 + i % 200, 1 + i % 5, (1 + i % 5) * (5 + ((1 + i % 200) * 37) % 200)
from generate_series(1, 200000) i;
create index on orders (ordered_at);
analyze regions; analyze products; analyze orders;
