#!/usr/bin/env bash
# Starts a private PostgreSQL with sample data on 127.0.0.1:5433 (in
# $SQLCACHED_LOCAL_DIR, default /tmp/sqlcached-local) and sqlcached in front
# of it on 127.0.0.1:6432. Then: psql -h 127.0.0.1 -p 6432 -U demo analytics
# (password: demo). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v psql >/dev/null || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install ${need[*]} first" >&2; exit 1; fi
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=${SQLCACHED_LOCAL_DIR:-/tmp/sqlcached-local}
port=${SQLCACHED_LOCAL_PGPORT:-5433}
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
CONF
fi
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w status >/dev/null 2>&1 ||
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w start >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true' EXIT

psql_local() { psql -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }
if ! psql_local -d postgres -tAc "select 1 from pg_database where datname='analytics'" | grep -q 1; then
  psql_local -d postgres -c "create role demo login password 'demo'" -c "create database analytics owner demo"
  psql_local -d analytics -f deploy/sample.sql
fi

export DEMO_PASSWORD=demo
go run ./cmd/sqlcached serve --config deploy/sqlcached.local.yaml --backend-dsn "postgres://127.0.0.1:$port/analytics?sslmode=disable"
