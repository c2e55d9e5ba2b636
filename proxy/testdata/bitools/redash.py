"""Redash's PostgreSQL query runner (redash/query_runner/pg.py): a new
psycopg2 connection per run, asynchronous (so autocommit: no BEGIN), with
application_name=redash, and the query annotated with a comment that
changes every run (its Job ID):

  /* Username: alice@example.com, query_id: 42, Queue: queries,
     Job ID: <uuid>, Query Hash: <md5>, Scheduled: False */ SELECT ...

usage: redash.py DSN REPEATS. Prints one line per run."""
import select
import sys
import uuid

import psycopg2


def wait(conn):
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], 10)
        elif state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [], 10)


QUERY = "SELECT region, sum(amount) AS total, count(*) AS n FROM dash_sales GROUP BY region ORDER BY region LIMIT 1000"


def run(dsn):
    conn = psycopg2.connect(dsn + " application_name=redash", async_=1)
    wait(conn)
    cur = conn.cursor()
    annotation = (f"Username: alice@example.com, query_id: 42, Queue: queries, Job ID: {uuid.uuid4()}, "
                  "Query Hash: 3b2e1c, Scheduled: False")
    cur.execute(f"/* {annotation} */ {QUERY}")
    wait(conn)
    rows = cur.fetchall()
    conn.close()
    return ";".join(f"{r[0]}={r[1]}/{r[2]}" for r in rows)


def main():
    dsn, repeats = sys.argv[1], int(sys.argv[2])
    for i in range(repeats):
        print(i, run(dsn), flush=True)


main()
