"""Tableau's and Excel's way through psqlODBC: pyodbc over the Debian
"PostgreSQL Unicode" driver (psqlODBC 13.02) with its default settings,
autocommit off as ODBC applications that do not ask for it run, so every
statement runs inside a transaction the driver begins and the application
commits.

usage: odbc.py MODE REPEATS
  default     one connection; each repeat runs the dashboard query, fetches
              every row and commits
  reconnect   the same with a new connection per repeat
  declare     UseDeclareFetch=1;Fetch=100: each repeat runs the 350-row
              query, which the driver reads through a WITH HOLD cursor 100
              rows at a time, and commits
The server, port, database, user and password come from PGHOST, PGPORT,
PGDATABASE, PGUSER and PGPASSWORD. Run it in a scratch directory: it
writes an odbcinst.ini there (see private_odbcinst).

Prints one line per repeat: the row count and a checksum of every row
(rows sorted, values as Python renders the driver's types)."""
import configparser
import hashlib
import os
import sys


def private_odbcinst():
    """Points unixODBC at a copy of /etc/odbcinst.ini in the working
    directory whose only change is the driver's Logdir: the Debian entry
    has CommLog=1, with which psqlODBC writes a log file per process into
    /tmp. The driver's settings, and so what it sends, stay the system's."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.optionxform = str
    if not ini.read("/etc/odbcinst.ini") or not ini.has_section("PostgreSQL Unicode"):
        sys.exit("odbc.py: /etc/odbcinst.ini has no [PostgreSQL Unicode] driver (Debian package odbc-postgresql)")
    ini["PostgreSQL Unicode"]["Logdir"] = os.getcwd()
    with open("odbcinst.ini", "w") as f:
        ini.write(f)
    os.environ["ODBCSYSINI"] = os.getcwd()


private_odbcinst()

import pyodbc  # noqa: E402  (unixODBC reads ODBCSYSINI)

# Tableau's generated SQL for a bar chart of revenue by region and month.
DASHBOARD = """SELECT "bi_orders"."region" AS "region",
  CAST(DATE_TRUNC('MONTH', CAST("bi_orders"."day" AS DATE)) AS DATE) AS "tmn:day:ok",
  SUM("bi_orders"."amount") AS "sum:amount:ok",
  COUNT(1) AS "cnt:id:ok"
FROM "public"."bi_orders" "bi_orders"
GROUP BY 1,
  2"""

# Microsoft Query's SQL for a daily sheet: 350 rows.
DAILY = """SELECT bi_orders.day, Count(bi_orders.id) AS "odbc_orders", Sum(bi_orders.amount) AS "odbc_revenue"
FROM public.bi_orders bi_orders
GROUP BY bi_orders.day
ORDER BY bi_orders.day"""


def connect(extra=""):
    conn_str = (
        "Driver={PostgreSQL Unicode};"
        f"Server={os.environ['PGHOST']};Port={os.environ['PGPORT']};"
        f"Database={os.environ['PGDATABASE']};"
        f"Uid={os.environ['PGUSER']};Pwd={os.environ['PGPASSWORD']};" + extra
    )
    return pyodbc.connect(conn_str)  # autocommit=False, pyodbc's default


def checksum(rows):
    lines = sorted("\t".join("NULL" if v is None else str(v) for v in r) for r in rows)
    return f"rows={len(lines)} sha256={hashlib.sha256(chr(10).join(lines).encode()).hexdigest()[:24]}"


def run(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    types = ",".join(d[1].__name__ for d in cur.description)
    rows = cur.fetchall()
    cur.close()
    conn.commit()
    return f"{types} {checksum(rows)}"


def main():
    mode, repeats = sys.argv[1], int(sys.argv[2])
    if mode == "default":
        conn = connect()
        for i in range(repeats):
            print(i, run(conn, DASHBOARD), flush=True)
        conn.close()
    elif mode == "reconnect":
        for i in range(repeats):
            conn = connect()
            print(i, run(conn, DASHBOARD), flush=True)
            conn.close()
    elif mode == "declare":
        conn = connect("UseDeclareFetch=1;Fetch=100;")
        for i in range(repeats):
            print(i, run(conn, DAILY), flush=True)
        conn.close()
    else:
        sys.exit(f"unknown mode {mode!r}")


main()
