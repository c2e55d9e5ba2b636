"""Apache Superset's own code paths against PostgreSQL, through SQLAlchemy
1.4 and psycopg2 as Superset pins them (superset/models/core.py,
superset/sql_lab.py, superset/db_engine_specs/postgres.py):

- every use builds a new Engine with NullPool, so every connection runs
  SQLAlchemy's first-connect probes (the hstore lookup, version(),
  current_schema(), SHOW transaction isolation level, SHOW
  standard_conforming_strings, each inside BEGIN ... ROLLBACK);
- Database.get_raw_connection then runs the engine spec's prequery
  `set search_path = "<schema>"` inside the transaction psycopg2 began;
- a chart request runs its SQL (sqlglot's pretty form) and fetches all
  rows; the connection is closed, which rolls back;
- SQL Lab asks `SELECT pg_backend_pid()` first, then runs the query with
  LIMIT 1001; Stop opens a new connection and runs
  `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid='<pid>'`.

usage: superset.py DSN chart|sqllab|stop SCHEMA[,SCHEMA...] REPEATS
Prints one line per request."""
import sys
import threading
import time
from contextlib import closing

import sqlalchemy
from sqlalchemy.pool import NullPool

CHART = """SELECT
  region AS region,
  SUM(amount) AS "SUM(amount)",
  COUNT(*) AS count
FROM dash_sales
GROUP BY
  region
ORDER BY
  "SUM(amount)" DESC
LIMIT 10000"""

SQLLAB = """SELECT
  region,
  amount
FROM dash_sales
WHERE
  amount % 97 = 0
ORDER BY
  amount
LIMIT 1001"""

SLOW = "SELECT count(*) FROM generate_series(1, 3000000000) AS g"


def engine(dsn):
    url = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    return sqlalchemy.create_engine(url, poolclass=NullPool)


def raw_connection(dsn, schema):
    """Database.get_raw_connection: a new engine, its raw connection, the
    prequeries."""
    eng = engine(dsn)
    conn = eng.raw_connection()
    cur = conn.cursor()
    if schema:
        cur.execute(f'set search_path = "{schema}"')
    return eng, conn


def chart(dsn, schema):
    eng, conn = raw_connection(dsn, schema)
    with closing(conn):
        cur = conn.cursor()
        cur.execute(CHART)
        rows = cur.fetchall()
    eng.dispose()
    return ";".join(f"{r[0]}={r[1]}/{r[2]}" for r in rows)


def sqllab(dsn, schema):
    eng, conn = raw_connection(dsn, schema)
    with closing(conn):
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        cur.execute(SQLLAB)
        rows = cur.fetchall()
        # The pid is the backend that runs this transaction.
        cur.execute("SELECT pg_backend_pid()")
        same = cur.fetchone()[0] == pid
    eng.dispose()
    return f"pid-stable={same} rows={len(rows)} sum={sum(r[1] for r in rows)}"


def stop(dsn, schema):
    """SQL Lab runs a slow query; Stop terminates its backend by pid."""
    eng, conn = raw_connection(dsn, schema)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    outcome = {}

    def run():
        start = time.monotonic()
        try:
            cur.execute(SLOW)
            outcome["result"] = f"finished {cur.fetchone()[0]}"
        except Exception as e:  # psycopg2.OperationalError
            outcome["result"] = f"ended by {type(e).__name__}"
        outcome["seconds"] = time.monotonic() - start

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    # PostgresEngineSpec.cancel_query, on a connection of its own.
    stopper = engine(dsn)
    sconn = stopper.raw_connection()
    with closing(sconn):
        scur = sconn.cursor()
        scur.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid='{pid}'")
        terminated = scur.fetchone()[0]
    stopper.dispose()
    t.join(120)
    try:
        conn.close()
    except Exception:
        pass
    eng.dispose()
    return f"terminated={terminated} {outcome.get('result')} fast={outcome.get('seconds', 999) < 30}"


def main():
    dsn, mode, schemas, repeats = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
    fn = {"chart": chart, "sqllab": sqllab, "stop": stop}[mode]
    for i in range(repeats):
        schema = schemas[i % len(schemas)]
        print(i, schema, fn(dsn, schema), flush=True)


main()
