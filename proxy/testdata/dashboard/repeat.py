"""Superset's stack repeating one dashboard query: SQLAlchemy 1.4 over
psycopg2 with autocommit off, so every query runs inside BEGIN ... ROLLBACK
or COMMIT. Prints one line per repeat."""
import sys

import sqlalchemy

engine = sqlalchemy.create_engine(sys.argv[1].replace("postgres://", "postgresql+psycopg2://"))
QUERY = sqlalchemy.text(
    "/* superset dashboard */ select region, sum(amount) as total from dash_sales group by region order by region"
)
for i in range(int(sys.argv[2])):
    with engine.connect() as conn:
        rows = conn.execute(QUERY).fetchall()
        print(i, ";".join(f"{r.region}={r.total}" for r in rows))
        if i % 2:
            conn.commit() if hasattr(conn, "commit") else None
engine.dispose()
