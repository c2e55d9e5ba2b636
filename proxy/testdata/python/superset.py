"""What Superset does with a PostgreSQL database, through psycopg2 and
SQLAlchemy 1.4: reflect the schema, run queries with typed parameters,
stream a large result through a server-side cursor, and cancel queries by
statement_timeout and by connection.cancel().

Usage: superset.py DSN

Prints one JSON document. Everything in it must be the same whether DSN
points at PostgreSQL or at the proxy in front of it; timings are reduced to
booleans.
"""

import datetime
import decimal
import hashlib
import json
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extras
import sqlalchemy
from sqlalchemy import MetaData, Table, inspect, select, text

DSN = sys.argv[1]
out = {}


def plain(v):
    """A JSON-able, type-revealing form of a value psycopg2 returned."""
    if v is None:
        return None
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, decimal.Decimal):
        return {"decimal": str(v)}
    if isinstance(v, datetime.datetime):
        return {"datetime": v.isoformat()}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    if isinstance(v, datetime.timedelta):
        return {"timedelta": str(v)}
    if isinstance(v, (bytes, memoryview)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, uuid.UUID):
        return {"uuid": str(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (list, tuple)):
        return {"list": [plain(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": {k: plain(x) for k, x in sorted(v.items())}}
    return {type(v).__name__: str(v)}


def error(e):
    return {"class": type(e).__name__, "pgcode": getattr(e, "pgcode", None), "message": str(e).split("\n")[0]}


def section(name):
    def wrap(f):
        try:
            out[name] = f()
        except Exception as e:  # a failure is a result to compare too
            out[name] = {"unexpected": error(e)}
        return f

    return wrap


engine = sqlalchemy.create_engine(DSN.replace("postgresql://", "postgresql+psycopg2://", 1), pool_pre_ping=True)


@section("connect")
def _():
    with engine.connect() as c:
        return {
            "one": c.execute(text("select 1")).scalar(),
            "database": c.execute(text("select current_database() = :d"), {"d": engine.url.database}).scalar(),
            "encoding": c.connection.encoding,
            "server_version": c.connection.server_version // 10000,
            "isolation": c.execute(text("show transaction_isolation")).scalar(),
        }


@section("inspect")
def _():
    insp = inspect(engine)
    res = {"schemas": sorted(s for s in insp.get_schema_names() if not s.startswith("pg_"))}
    tables = {}
    for schema in ["public", "sales"]:
        res["tables " + schema] = insp.get_table_names(schema=schema)
        res["views " + schema] = insp.get_view_names(schema=schema)
        for t in insp.get_table_names(schema=schema):
            tables[schema + "." + t] = {
                "columns": [
                    {k: str(v) for k, v in sorted(col.items())} for col in insp.get_columns(t, schema=schema)
                ],
                "pk": insp.get_pk_constraint(t, schema=schema),
                "fks": insp.get_foreign_keys(t, schema=schema),
                "indexes": sorted(
                    (json.loads(json.dumps(i, default=str, sort_keys=True)) for i in insp.get_indexes(t, schema=schema)),
                    key=lambda i: i["name"],
                ),
                "unique": sorted(insp.get_unique_constraints(t, schema=schema), key=lambda u: u["name"]),
                "checks": sorted(insp.get_check_constraints(t, schema=schema), key=lambda u: u["name"]),
                "comment": insp.get_table_comment(t, schema=schema),
            }
    res["tables"] = tables
    res["view definition"] = insp.get_view_definition("big_orders", schema="sales")
    return res


@section("core select")
def _():
    md = MetaData()
    customers = Table("customers", md, autoload_with=engine)
    orders = Table("orders", md, autoload_with=engine, schema="sales")
    q = (
        select(customers.c.email, sqlalchemy.func.count(orders.c.id), sqlalchemy.func.sum(orders.c.amount))
        .select_from(customers.join(orders))
        .where(customers.c.id.in_([1, 2, 3, 250]))
        .group_by(customers.c.email)
        .order_by(customers.c.email)
    )
    with engine.connect() as c:
        return [[plain(v) for v in row] for row in c.execute(q)]


TYPED = """create table typed (
    id int primary key, n numeric(20,6), ts timestamptz, d date, j json, jb jsonb,
    ia int[], ta text[], b bytea, u uuid, f float8, flag boolean, iv interval, nothing text)"""

VALUES = [
    (
        1,
        decimal.Decimal("12345678901234.123456"),
        datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))),
        datetime.date(1999, 12, 31),
        psycopg2.extras.Json({"a": [1, 2, {"b": None}], "s": "ü"}),
        psycopg2.extras.Json({"z": 1, "a": "x"}),
        [1, None, -3],
        ["a", "b,c", 'd"e', None],
        psycopg2.Binary(bytes(range(256))),
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        1.0 / 3,
        True,
        datetime.timedelta(days=3, hours=4, seconds=5),
        None,
    ),
    (2, decimal.Decimal("-0.000001"), None, None, None, None, [], [], psycopg2.Binary(b""), None, float("inf"), False, None, None),
]


@section("typed values")
def _():
    conn = psycopg2.connect(DSN)
    try:
        cur = conn.cursor()
        cur.execute(TYPED)
        cur.executemany("insert into typed values (" + ",".join(["%s"] * 14) + ")", VALUES)
        conn.commit()
        res = {}
        cur.execute("select * from typed order by id")
        res["columns"] = [(d.name, d.type_code) for d in cur.description]
        res["rows"] = [[plain(v) for v in row] for row in cur.fetchall()]
        # The same values as parameters of a query.
        cur.execute(
            "select %s::numeric + 1, %s::timestamptz at time zone 'UTC', %s::date + 1, (%s::jsonb)->'a', "
            "array_length(%s::int[], 1), %s::text[], length(%s::bytea), %s::uuid, %s is null, %s::float8",
            (
                VALUES[0][1],
                VALUES[0][2],
                VALUES[0][3],
                VALUES[0][5],
                VALUES[0][6],
                VALUES[0][7],
                VALUES[0][8],
                VALUES[0][9],
                None,
                VALUES[0][10],
            ),
        )
        res["params"] = [plain(v) for v in cur.fetchone()]
        cur.execute("select id from typed where u = %s and ia = %s and b = %s", (VALUES[0][9], VALUES[0][6], VALUES[0][8]))
        res["match"] = cur.fetchall()
        # The same through SQLAlchemy's text() with named parameters.
        with engine.connect() as c:
            row = c.execute(
                text("select n, ts, jb, ta, u from typed where id = :id and d < :d"),
                {"id": 1, "d": datetime.date(2000, 1, 1)},
            ).one()
            res["sqlalchemy"] = [plain(v) for v in row]
        conn.rollback()
        return res
    finally:
        conn.close()


@section("server-side cursor")
def _():
    conn = psycopg2.connect(DSN)
    try:
        res = {}
        for name, hold in [("big", False), ("big_hold", True)]:
            cur = conn.cursor(name=name, withhold=hold)
            cur.itersize = 2000
            cur.execute("select g, md5(g::text), g * 0.5 from generate_series(1, 100000) g order by g")
            h = hashlib.sha256()
            total = 0
            s = decimal.Decimal(0)
            for row in cur:
                total += 1
                s += row[2]
                h.update(("%d|%s|%s\n" % row).encode())
            cur.close()
            conn.commit()
            res[name] = {"rows": total, "sum": str(s), "sha256": h.hexdigest()}
        cur = conn.cursor()
        cur.execute("select 1")
        res["after"] = cur.fetchone()[0]
        return res
    finally:
        conn.close()


@section("statement timeout")
def _():
    res = {}
    conn = psycopg2.connect(DSN)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET statement_timeout = '200ms'")
        start = time.monotonic()
        try:
            cur.execute("select pg_sleep(5)")
            res["error"] = None
        except psycopg2.errors.QueryCanceled as e:
            res["error"] = error(e)
        res["fast"] = time.monotonic() - start < 3
        cur.execute("select 1")
        res["after"] = cur.fetchone()[0]
        cur.execute("show statement_timeout")
        res["setting"] = cur.fetchone()[0]
        # In a transaction, as Superset runs without autocommit: the error
        # aborts it, and a rollback makes the connection usable again.
        conn.autocommit = False
        cur.execute("select count(*) from customers")
        try:
            cur.execute("select pg_sleep(5)")
        except psycopg2.errors.QueryCanceled as e:
            res["in transaction"] = error(e)
        try:
            cur.execute("select 1")
        except psycopg2.errors.InFailedSqlTransaction as e:
            res["aborted"] = error(e)
        conn.rollback()
        cur.execute("select 2")
        res["after rollback"] = cur.fetchone()[0]
        conn.rollback()
    finally:
        conn.close()
    return res


@section("cancel")
def _():
    res = {}
    conn = psycopg2.connect(DSN)
    try:
        cur = conn.cursor()
        for attempt in range(2):
            t = threading.Timer(0.5, conn.cancel)
            t.start()
            start = time.monotonic()
            try:
                cur.execute("select pg_sleep(10)")
                res["error %d" % attempt] = None
            except psycopg2.errors.QueryCanceled as e:
                res["error %d" % attempt] = error(e)
            t.join()
            res["fast %d" % attempt] = time.monotonic() - start < 5
            conn.rollback()
            cur.execute("select 3")
            res["after %d" % attempt] = cur.fetchone()[0]
            conn.commit()
    finally:
        conn.close()
    return res


json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
sys.stdout.write("\n")
