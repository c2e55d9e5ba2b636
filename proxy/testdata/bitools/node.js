// node-postgres (pg 8, pg-cursor 2) the way Cube and Evidence drive it.
//
// usage: node node.js cube|evidence REPEATS
// with NODE_PATH naming the node_modules that holds pg and pg-cursor; the
// server, port, database, user and password come from PGHOST, PGPORT,
// PGDATABASE, PGUSER and PGPASSWORD.
//
// cube (packages/cubejs-postgres-driver/src/PostgresDriver.ts): one pool for
// the whole run; every pool checkout runs prepareConnection's two simple
// Queries, `SET TIME ZONE 'UTC'` and `SET statement_timeout TO 600000`; the
// driver's first use loads user-defined types (a simple Query, as values is
// empty); then the query, `client.query({text, values})` with Cube's $1 and
// $2 date-range filter: an unnamed extended statement, Parse/Bind/Describe/
// Execute/Sync with the values in text format.
//
// evidence (packages/datasources/postgres/index.cjs): a new pool per run;
// the row count probe `WITH root as (<query>) SELECT COUNT(*) as rows FROM
// root` as a simple Query, then the query itself read through pg-cursor
// (Parse, Bind of a portal C_n, Describe, Flush; Execute of 100 rows and
// Flush per read; no Sync until the portal is done) until a read comes back
// empty; then the client is released and the pool ended.
//
// Prints one line per repeat: the row count and a checksum of every row
// (rows sorted, values as node-postgres parsed them).
'use strict';

const crypto = require('crypto');
const { Pool, types } = require('pg');
const Cursor = require('pg-cursor');

const CUBE = `SELECT
      "orders".region "orders__region", date_trunc('month', ("orders".day::timestamptz AT TIME ZONE 'UTC')) "orders__day_month", sum("orders".amount) "orders__revenue", count("orders".id) "orders__count"
    FROM
      public.bi_orders AS "orders"  WHERE ("orders".day >= $1::timestamptz AND "orders".day <= $2::timestamptz) GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10000`;
const CUBE_VALUES = ['2024-03-01T00:00:00.000', '2024-09-30T23:59:59.999'];

const CUBE_TYPES = `SELECT oid, CASE WHEN typcategory = 'E' THEN 'varchar' ELSE typname END FROM pg_type WHERE typcategory in ('U', 'E')`;

const EVIDENCE = `select day, count(*) as evidence_orders, sum(amount) as evidence_revenue, count(distinct region) as evidence_regions
from bi_orders
group by day
order by day;`;

function config() {
  const env = process.env;
  for (const k of ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD']) {
    if (!env[k]) throw new Error(`${k} is not set`);
  }
  return {
    host: env.PGHOST,
    port: Number(env.PGPORT),
    database: env.PGDATABASE,
    user: env.PGUSER,
    password: env.PGPASSWORD,
    ssl: false,
  };
}

function render(v) {
  if (v === null || v === undefined) return 'NULL';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

function checksum(rows) {
  const lines = rows.map((r) => Object.values(r).map(render).join('\t')).sort();
  const sha = crypto.createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 24);
  return `rows=${lines.length} sha256=${sha}`;
}

async function cube(repeats) {
  const pool = new Pool({ ...config(), max: 8, min: 0, idleTimeoutMillis: 30000 });
  let typesLoaded = false;
  for (let i = 0; i < repeats; i++) {
    const client = await pool.connect();
    try {
      // prepareConnection, on every acquisition.
      await client.query(`SET TIME ZONE 'UTC'`);
      await client.query('SET statement_timeout TO 600000');
      if (!typesLoaded) {
        await client.query({ text: CUBE_TYPES, values: [] });
        typesLoaded = true;
      }
      const res = await client.query({ text: CUBE, values: CUBE_VALUES });
      const fields = res.fields.map((f) => f.dataTypeID).join(',');
      console.log(`${i} types=${fields} ${checksum(res.rows)}`);
    } finally {
      client.release();
    }
  }
  await pool.end();
}

async function evidence(repeats) {
  // Evidence's type parsers: they change what the script prints, not the wire.
  types.setTypeParser(20, (v) => parseInt(v, 10));
  types.setTypeParser(1700, (v) => parseFloat(v));
  for (let i = 0; i < repeats; i++) {
    const pool = new Pool(config());
    const connection = await pool.connect();
    try {
      let cleaned = EVIDENCE.trim();
      if (cleaned.endsWith(';')) cleaned = cleaned.substring(0, cleaned.length - 1);
      const length = await connection.query(`WITH root as (${cleaned}) SELECT COUNT(*) as rows FROM root`);
      const expected = length.rows[0].rows;
      const cursor = connection.query(new Cursor(EVIDENCE));
      const rows = [];
      const batches = [];
      for (;;) {
        const batch = await cursor.read(100);
        if (!batch || batch.length === 0) break;
        batches.push(batch.length);
        rows.push(...batch);
      }
      const fields = cursor._result.fields.map((f) => f.dataTypeID).join(',');
      console.log(`${i} expected=${expected} batches=${batches.join('+')} types=${fields} ${checksum(rows)}`);
    } finally {
      connection.release();
      await pool.end();
    }
  }
}

async function main() {
  const [mode, repeats] = [process.argv[2], Number(process.argv[3])];
  const run = { cube, evidence }[mode];
  if (!run || !(repeats > 0)) throw new Error('usage: node.js cube|evidence REPEATS');
  await run(repeats);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
