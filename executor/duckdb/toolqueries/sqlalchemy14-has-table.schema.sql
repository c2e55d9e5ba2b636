select relname from pg_class c join pg_namespace n on n.oid=c.relnamespace where n.nspname='public' and relname='orders'
