#!/usr/bin/env bash
# The test command: installs the servers and clients the tests run against
# (Debian 12, as root) when they are missing, then checks formatting, vets,
# runs staticcheck and runs every test with the race detector.
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh ./internal/...   # arguments go to `go test`
#   bash scripts/test.sh -run TestX ./proxy
#
# Package patterns in the arguments (./proxy, ./internal/...) also narrow
# gofmt, vet and staticcheck to those packages.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests need: PostgreSQL with pg_stat_statements, Redis,
# the poolers benchmarks compare against, and the clients compatibility
# tests drive (psql, pgbench, psycopg2 with SQLAlchemy, JDBC, psqlODBC
# through pyodbc, Node.js for node-postgres), and headless Chromium, which
# loads the status page as a person sees it.
packages=(
	postgresql postgresql-contrib redis-server pgbouncer pgpool2
	python3-psycopg2 python3-sqlalchemy libpostgresql-jdbc-java default-jdk-headless
	odbc-postgresql unixodbc python3-pyodbc prometheus chromium
)
# Node.js and npm, unless the machine has them already (another build of
# Node.js may hold the name nodejs).
if ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

install_missing() {
	local missing=() p
	for p in "${packages[@]}"; do
		if ! dpkg -s "$p" >/dev/null 2>&1; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return
	fi
	echo "test.sh: installing ${missing[*]}" >&2
	local sudo=()
	if ((EUID != 0)); then
		sudo=(sudo)
	fi
	# The packages' own services are not wanted: the tests start private
	# servers. policy-rc.d keeps Debian from starting them where it exists.
	"${sudo[@]}" apt-get update
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

if command -v dpkg >/dev/null 2>&1; then
	install_missing
else
	echo "test.sh: not a Debian system; install the equivalents of: ${packages[*]}" >&2
fi

# node-postgres (npm's pg, as Cube and Evidence use it) for the client
# tests, installed once into a cache the tests find through
# SQLCACHED_NODE_MODULES.
node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/sqlcached-test/node"
if command -v npm >/dev/null 2>&1 && [[ ! -d "$node_dir/node_modules/pg" ]]; then
	echo "test.sh: npm install pg into $node_dir" >&2
	mkdir -p "$node_dir"
	npm install --silent --no-audit --no-fund --prefix "$node_dir" pg@8 pg-cursor@2 >&2
fi
export SQLCACHED_NODE_MODULES="$node_dir/node_modules"

# Package patterns among the arguments (./proxy, ./internal/...) narrow the
# checks to those packages too; without any, everything is checked.
pkgs=()
for arg in "$@"; do
	if [[ "$arg" == . || "$arg" == ./* || "$arg" == ../* ]]; then
		pkgs+=("$arg")
	fi
done
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
	set -- "$@" ./...
fi

# gofmt_files lists the .go files of the package patterns, testdata aside.
gofmt_files() {
	local p
	for p in "${pkgs[@]}"; do
		if [[ "$p" == */... || "$p" == ... ]]; then
			find "${p%...}" -name '*.go' -not -path '*/testdata/*' -not -path '*/vendor/*' -not -path '*/.git/*' -print0
		else
			find "$p" -maxdepth 1 -name '*.go' -print0
		fi
	done
}

echo "test.sh: gofmt" >&2
unformatted=$(gofmt_files | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "test.sh: gofmt -l lists files that need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "test.sh: go vet ${pkgs[*]}" >&2
go vet "${pkgs[@]}"

echo "test.sh: staticcheck ${pkgs[*]}" >&2
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 "${pkgs[@]}"

echo "test.sh: go test -race $*" >&2
go test -race -count=1 -timeout 40m "$@"
