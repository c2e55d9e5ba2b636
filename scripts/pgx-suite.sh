#!/usr/bin/env bash
# Runs pgx v5's own test suite (the version go.mod requires) three ways and
# prints pass/fail/skip per package and mode:
#
#   direct       straight against a private PostgreSQL
#   transaction  through sqlcached, pool.mode transaction, catch-all cache policy (ttl 10m)
#   session      through sqlcached, pool.mode session, same cache policy
#
# followed by every test that fails through sqlcached but passes directly,
# with the start of its failure output.
#
#   bash scripts/pgx-suite.sh                      # all three modes
#   bash scripts/pgx-suite.sh direct session       # a subset
#   PGX_SUITE_RUN='TestConnect' bash scripts/pgx-suite.sh transaction
#
# Needs what scripts/test.sh installs (PostgreSQL with contrib, psql,
# python3) and Go. Everything runs in a temporary directory that is removed
# at the end; the -json outputs and the report are kept in $PGX_SUITE_OUT.
#
# Environment:
#   PGX_SUITE_PKGS      pgx packages to test (default below)
#   PGX_SUITE_RUN       go test -run pattern (default: every test)
#   PGX_SUITE_TIMEOUT   go test -timeout per package (default 20m)
#   PGX_SUITE_OUT       where results are kept (default /tmp/pgx-suite-results.<time>)
#   PGX_SUITE_SQLCACHED an already built sqlcached binary (default: go build ./cmd/sqlcached)
#   PGX_SUITE_MAX_CONNS sqlcached backends[0].max_conns (default 80)
#   PGX_SUITE_KEEP=1    keep the temporary directory (PostgreSQL data, logs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

modes=("$@")
if ((${#modes[@]} == 0)); then
	modes=(direct transaction session)
fi
for m in "${modes[@]}"; do
	case $m in direct | transaction | session) ;; *)
		echo "pgx-suite: unknown mode $m (direct, transaction, session)" >&2
		exit 2
		;;
	esac
done

pkgs=(${PGX_SUITE_PKGS:-. ./pgconn ./pgtype ./pgtype/zeronull ./pgxpool ./stdlib ./tracelog ./pgproto3})
timeout=${PGX_SUITE_TIMEOUT:-20m}
max_conns=${PGX_SUITE_MAX_CONNS:-80}
out=${PGX_SUITE_OUT:-/tmp/pgx-suite-results.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

pgbin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
	echo "pgx-suite: no PostgreSQL server binaries (bash scripts/test.sh installs them)" >&2
	exit 1
fi
for c in go python3; do
	command -v "$c" >/dev/null || {
		echo "pgx-suite: $c is missing" >&2
		exit 1
	}
done

as_pg=()
if ((EUID == 0)); then
	as_pg=(runuser -u postgres --)
fi

work=$(mktemp -d /tmp/pgx-suite.XXXXXX)
chmod 755 "$work"
pg_started=
proxy_pid=

stop_proxy() {
	if [[ -n "$proxy_pid" ]]; then
		kill "$proxy_pid" 2>/dev/null || true
		wait "$proxy_pid" 2>/dev/null || true
		proxy_pid=
	fi
}
cleanup() {
	stop_proxy
	if [[ -n "$pg_started" ]]; then
		"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [[ "${PGX_SUITE_KEEP:-}" == 1 ]]; then
		echo "pgx-suite: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a TCP port nothing listens on at 127.0.0.1.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# --- pgx source ------------------------------------------------------------
pgx_version=$(go list -m -f '{{.Version}}' github.com/jackc/pgx/v5)
pgx_src=$(go mod download -json "github.com/jackc/pgx/v5@$pgx_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$pgx_src" "$work/pgx"
chmod -R u+w "$work/pgx"
echo "pgx-suite: pgx $pgx_version, PostgreSQL $("$pgbin/postgres" --version | awk "{print \$3}"), results in $out" >&2

# --- sqlcached -------------------------------------------------------------
need_proxy=
for m in "${modes[@]}"; do [[ $m != direct ]] && need_proxy=1; done
sqlcached=${PGX_SUITE_SQLCACHED:-}
if [[ -n "$need_proxy" && -z "$sqlcached" ]]; then
	sqlcached=$work/sqlcached
	go build -o "$sqlcached" ./cmd/sqlcached
fi

# --- PostgreSQL --------------------------------------------------------------
pgport=$(free_port)
mkdir "$work/pgdata" "$work/sock"
chmod 700 "$work/pgdata"
if ((EUID == 0)); then chown postgres "$work/pgdata" "$work/sock"; fi
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pgdata" -U postgres -A trust -E UTF8 --locale=C >/dev/null
cat >>"$work/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$work/sock'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/sock/postgres.log" -w start >/dev/null
pg_started=1

psql_pg() { PGOPTIONS='-c client_min_messages=warning' PGCONNECT_TIMEOUT=10 "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
# pgx's CI setup (ci/setup_test.bash runs testsetup/postgresql_setup.sql on a
# fresh pgx_test): hstore, ltree, the uint64 domain and its users. It goes
# into a template so that every mode starts from the same fresh database.
psql_pg -d postgres -c 'create database pgx_template'
psql_pg -d pgx_template -f "$work/pgx/testsetup/postgresql_setup.sql" >/dev/null

fresh_db() {
	psql_pg -d postgres -c 'drop database if exists pgx_test with (force)' -c 'create database pgx_test template pgx_template'
}

start_proxy() { # mode port httpport
	cat >"$work/sqlcached-$1.yaml" <<YAML
listen:
  postgres: 127.0.0.1:$2
  http: 127.0.0.1:$3
auth:
  method: trust
backends:
  - name: pg
    kind: postgres
    dsn: host=127.0.0.1 port=$pgport dbname=pgx_test sslmode=disable
    max_conns: $max_conns
pool:
  mode: $1
policies:
  - name: default
    ttl: 10m
    timeout: 60s
YAML
	"$sqlcached" serve --config "$work/sqlcached-$1.yaml" >"$out/sqlcached-$1.log" 2>&1 &
	proxy_pid=$!
	local i
	for i in $(seq 1 100); do
		if "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$2" -d pgx_test -U postgres; then
			return
		fi
		if ! kill -0 "$proxy_pid" 2>/dev/null; then break; fi
		sleep 0.2
	done
	echo "pgx-suite: sqlcached ($1) did not start:" >&2
	cat "$out/sqlcached-$1.log" >&2
	exit 1
}

# --- the runs ----------------------------------------------------------------
for m in "${modes[@]}"; do
	fresh_db
	if [[ $m == direct ]]; then
		port=$pgport
	else
		port=$(free_port)
		start_proxy "$m" "$port" "$(free_port)"
	fi
	conn="host=127.0.0.1 port=$port user=postgres dbname=pgx_test"
	echo "pgx-suite: $m: go test ${pkgs[*]} against 127.0.0.1:$port" >&2
	start=$(date +%s)
	run=()
	if [[ -n "${PGX_SUITE_RUN:-}" ]]; then run=(-run "$PGX_SUITE_RUN"); fi
	(
		cd "$work/pgx"
		# Only the variables this setup can honour; the TLS, unix socket,
		# password-method, OAuth and CrateDB ones stay unset (those tests skip).
		# The PgBouncer tests (transaction-pooling proxy with protocol-level
		# prepared statements) run against the same target.
		env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGPASSWORD -u PGSSLMODE \
			-u PGX_TEST_UNIX_SOCKET_CONN_STRING -u PGX_TEST_TLS_CONN_STRING \
			-u PGX_TEST_TLS_CLIENT_CONN_STRING -u PGX_TEST_PLAIN_PASSWORD_CONN_STRING \
			-u PGX_TEST_MD5_PASSWORD_CONN_STRING -u PGX_TEST_SCRAM_PASSWORD_CONN_STRING \
			-u PGX_TEST_SCRAM_PLUS_CONN_STRING -u PGX_TEST_OAUTH -u PGX_TEST_CRATEDB_CONN_STRING \
			PGX_TEST_DATABASE="$conn" \
			PGX_TEST_TCP_CONN_STRING="$conn" \
			PGX_TEST_PGBOUNCER_CONN_STRING="$conn" \
			go test -count=1 -json -timeout "$timeout" "${run[@]}" "${pkgs[@]}" >"$out/$m.json" 2>"$out/$m.stderr" || true
	)
	echo "pgx-suite: $m took $(($(date +%s) - start))s" >&2
	stop_proxy
done

# --- the report --------------------------------------------------------------
python3 - "$out" "${modes[@]}" <<'PY' | tee "$out/report.txt"
import json, os, sys
from collections import defaultdict

out, modes = sys.argv[1], sys.argv[2:]
prefix = "github.com/jackc/pgx/v5"

def short(pkg):
    return "." + pkg[len(prefix):] if pkg.startswith(prefix) else pkg

def load(mode):
    """result[(pkg, test)] = pass|fail|skip|incomplete; output[(pkg, test)] = lines;
    pkgres[pkg] = pass|fail|skip"""
    result, output, pkgres, started = {}, defaultdict(list), {}, set()
    with open(os.path.join(out, mode + ".json"), errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            pkg, test, act = short(e.get("Package", "")), e.get("Test"), e.get("Action")
            if test is None:
                if act in ("pass", "fail", "skip"):
                    pkgres[pkg] = act
                continue
            key = (pkg, test)
            if act == "run":
                started.add(key)
            elif act == "output":
                output[key].append(e.get("Output", ""))
            elif act in ("pass", "fail", "skip"):
                result[key] = act
    for key in started - result.keys():
        result[key] = "incomplete"  # package timed out or crashed while it ran
    return result, output, pkgres

data = {m: load(m) for m in modes}
pkgs = sorted({k[0] for m in modes for k in data[m][0]} | {p for m in modes for p in data[m][2]})

def counts(mode, pkg, top):
    c = defaultdict(int)
    for (p, t), r in data[mode][0].items():
        if p == pkg and (("/" not in t) == top):
            c["fail" if r == "incomplete" else r] += 1
    return c

for top, title in ((True, "top-level tests"), (False, "subtests")):
    print(f"\n{title}: pass/fail/skip")
    print(f"{'package':22}" + "".join(f"{m:>22}" for m in modes))
    tot = {m: defaultdict(int) for m in modes}
    for p in pkgs:
        row = f"{p:22}"
        for m in modes:
            c = counts(m, p, top)
            for k in ("pass", "fail", "skip"):
                tot[m][k] += c[k]
            cell = f"{c['pass']}/{c['fail']}/{c['skip']}"
            if top and data[m][2].get(p) == "fail" and c["fail"] == 0:
                cell += "!"  # package failed outside any test (build, panic, timeout)
            row += f"{cell:>22}"
        print(row)
    print(f"{'total':22}" + "".join(f"{str(tot[m]['pass'])+'/'+str(tot[m]['fail'])+'/'+str(tot[m]['skip']):>22}" for m in modes))

if "direct" in modes:
    direct = data["direct"][0]
    for m in modes:
        if m == "direct":
            continue
        res, output, _ = data[m]
        bad = sorted(k for k, r in res.items() if r in ("fail", "incomplete") and direct.get(k) == "pass")
        # a parent fails when a subtest fails: list leaves only
        leaves = [k for k in bad if not any(o[0] == k[0] and o[1].startswith(k[1] + "/") for o in bad)]
        print(f"\n{m}: {len(leaves)} tests fail through sqlcached but pass directly")
        for k in leaves:
            lines = [l.strip() for l in output[k] if l.strip() and not l.startswith(("=== ", "--- "))]
            # testify's trace and test-name lines say nothing the name does not
            lines = [l for l in lines if not l.startswith(("Error Trace:", "/", "Test:", "Diff:", "---", "+++", "@@"))]
            print(f"  {k[0]} {k[1]} [{res[k]}]")
            for l in lines[:6]:
                print("      " + l.strip()[:220])
        pf = sorted(k for k, r in res.items() if r == "pass" and direct.get(k) in ("fail", "incomplete"))
        if pf:
            print(f"  ({len(pf)} pass through sqlcached but fail directly: " + ", ".join(f"{p} {t}" for p, t in pf[:20]) + ")")
PY
echo "pgx-suite: results in $out" >&2
