//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

var _ executor.Warehouse = (*DB)(nil)

// DB is an embedded DuckDB database.
type DB struct {
	conn *duck.Connector
	db   *sql.DB
}

// Open opens the DuckDB database at path; "" opens a new in-memory one.
//
// The database's TimeZone is UTC, whatever the host's: timestamptz values
// are printed in UTC unless a request's settings name a zone, and DuckDB
// computes in the zone they are printed in.
func Open(path string) (*DB, error) {
	c, err := duck.NewConnector(path, nil)
	if err != nil {
		return nil, pgErr(err)
	}
	d := &DB{conn: c, db: sql.OpenDB(c)}
	if _, err := d.db.Exec(`SET GLOBAL TimeZone = 'UTC'`); err != nil {
		d.Close()
		return nil, pgErr(err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error {
	err := d.db.Close()
	if cerr := d.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Exec runs sql (one statement or several), for setup.
func (d *DB) Exec(ctx context.Context, sql string) error {
	if _, err := d.db.ExecContext(ctx, sql); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return pgErr(err)
	}
	return nil
}

// checkInterval is how many rows are read between looks at the context.
const checkInterval = 1024

// Execute runs one statement and returns its answer in wire form. When ctx
// ends first, the statement is interrupted and ctx's error returned.
//
// Statements that psql and SQLAlchemy send about the catalog are answered
// from DuckDB's own catalog (see compat.go); other statements run as sent.
func (d *DB) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	var res *executor.Result
	err := d.onConn(ctx, req, func(c *duck.Conn, sql string, sess session) error {
		restore, err := sess.apply(ctx, c)
		if err != nil {
			return err
		}
		defer restore()
		res, err = run(ctx, c, req, sql, sess)
		return err
	})
	return res, err
}

// onConn calls f with a connection of the pool, req's statement as DuckDB
// runs it (see compat.go) and the session req describes; f's error comes
// back as a client should see it: ctx's when it ended, ErrTooLarge, else
// with its SQLSTATE.
func (d *DB) onConn(ctx context.Context, req *executor.Request, f func(c *duck.Conn, sql string, sess session) error) error {
	sess, err := sessionOf(req.Settings)
	if err != nil {
		return err
	}
	sql, err := rewrite(req)
	if err != nil {
		return err
	}
	err = d.withConn(ctx, func(c *duck.Conn) error { return f(c, sql, sess) })
	switch {
	case err == nil, errors.Is(err, executor.ErrTooLarge):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return pgErrSQL(err, req.SQL)
}

// bounded returns a statement that answers as stmt (a SELECT of sql)
// does, but stops after as many rows as an answer of at most maxBytes can
// hold: DuckDB builds the whole answer before handing out its first row,
// so the bound must reach it before it starts. Every DataRow takes at
// least 7 bytes and 4 a column, so an answer with more rows than that is
// larger than maxBytes whatever its values; reading that many rows
// proves it. When the wrapping cannot keep the answer's columns as they
// are (two columns of one name would be renamed) or does not prepare,
// stmt is kept.
func bounded(ctx context.Context, c *duck.Conn, stmt *duck.Stmt, sql string, maxBytes int) *duck.Stmt {
	n, err := stmt.ColumnCount()
	if err != nil || n == 0 {
		return stmt
	}
	seen := make(map[string]bool, n)
	for i := range n {
		name, err := stmt.ColumnName(i)
		if err != nil || seen[strings.ToLower(name)] {
			return stmt
		}
		seen[strings.ToLower(name)] = true
	}
	limit := maxBytes/(7+4*n) + 1
	ds, err := c.PrepareContext(ctx, "SELECT * FROM (\n"+sql+"\n) AS sqlcached_bounded LIMIT "+strconv.Itoa(limit))
	if err != nil {
		return stmt
	}
	stmt.Close()
	return ds.(*duck.Stmt)
}

// withConn calls f with a DuckDB connection of the pool.
func (d *DB) withConn(ctx context.Context, f func(c *duck.Conn) error) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return ctxErr(ctx, err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*duck.Conn)
		if !ok {
			return fmt.Errorf("duckdb: unexpected driver connection %T", dc)
		}
		return f(c)
	})
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return pgErr(err)
}

// returnsRows reports whether a statement of type st whose answer has
// these columns returns rows to the client: DuckDB answers INSERT, UPDATE
// and DELETE without RETURNING with one column, Count.
func returnsRows(st duck.StmtType, names []string) bool {
	switch st {
	case duck.STATEMENT_TYPE_INSERT, duck.STATEMENT_TYPE_UPDATE, duck.STATEMENT_TYPE_DELETE:
		return len(names) > 0 && !(len(names) == 1 && names[0] == "Count")
	case duck.STATEMENT_TYPE_SELECT, duck.STATEMENT_TYPE_EXPLAIN, duck.STATEMENT_TYPE_PRAGMA,
		duck.STATEMENT_TYPE_CALL, duck.STATEMENT_TYPE_RELATION, duck.STATEMENT_TYPE_EXECUTE,
		duck.STATEMENT_TYPE_MULTI:
		return len(names) > 0
	}
	return false
}

// appendRowDescription appends the RowDescription of columns names of
// types cols, with the format codes formats.
func appendRowDescription(b *pgwire.Builder, names []string, cols []*colType, formats []int16) {
	fields := make([]pgwire.Field, len(names))
	for i, name := range names {
		oid, size, mod := cols[i].describe()
		fields[i] = pgwire.Field{Name: name, TypeOID: oid, Size: size, TypeMod: mod, Format: formats[i]}
	}
	b.RowDescription(fields)
}

// columnFormats is the format code of each of n columns, checking that
// binary is asked only of types that have a binary form here.
func columnFormats(req *executor.Request, cols []*colType) ([]int16, error) {
	formats := make([]int16, len(cols))
	for i, t := range cols {
		f, err := formatAt(req.ResultFormats, i, len(cols))
		if err != nil {
			return nil, err
		}
		if f == 1 {
			if err := t.binaryOK(); err != nil {
				return nil, err
			}
		}
		formats[i] = f
	}
	return formats, nil
}

func run(ctx context.Context, c *duck.Conn, req *executor.Request, sql string, sess session) (*executor.Result, error) {
	ds, err := c.PrepareContext(ctx, sql)
	if err != nil {
		return nil, err
	}
	stmt := ds.(*duck.Stmt)
	st, err := stmt.StatementType()
	if err != nil {
		stmt.Close()
		return nil, err
	}
	if st == duck.STATEMENT_TYPE_SELECT && req.MaxBytes > 0 {
		stmt = bounded(ctx, c, stmt, sql, req.MaxBytes)
	}
	defer stmt.Close()
	args, err := bindArgs(stmt, req)
	if err != nil {
		return nil, err
	}
	dr, err := stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	rows := dr.(interface {
		driver.Rows
		driver.RowsColumnTypeDatabaseTypeName
	})
	names := rows.Columns()
	vals := make([]driver.Value, len(names))

	if !returnsRows(st, names) {
		switch st {
		case duck.STATEMENT_TYPE_INSERT, duck.STATEMENT_TYPE_UPDATE, duck.STATEMENT_TYPE_DELETE:
			var n int64
			if err := rows.Next(vals); err == nil {
				n, _ = toInt64(vals[0])
			} else if err != io.EOF {
				return nil, err
			}
			return commandOnly(countTag(st, n)), nil
		}
		return commandOnly(keywordTag(req.SQL)), nil
	}

	cols := make([]*colType, len(names))
	for i := range names {
		cols[i] = parseType(rows.ColumnTypeDatabaseTypeName(i))
		cols[i].setZone(sess.loc)
	}
	formats, err := columnFormats(req, cols)
	if err != nil {
		return nil, err
	}
	var b pgwire.Builder
	appendRowDescription(&b, names, cols, formats)

	var n int64
	for {
		if n%checkInterval == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err := rows.Next(vals)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if cap(b.B)-len(b.B) < 4096 {
			// Double: append's growth of a large slice is 1.25x, and
			// copying a large answer that often dominates.
			grow := max(len(b.B), 64<<10)
			if req.MaxBytes > 0 {
				grow = min(grow, max(req.MaxBytes-len(b.B), 0)+4096)
			}
			b.B = slices.Grow(b.B, grow)
		}
		if b.B, err = appendDataRow(b.B, cols, formats, vals); err != nil {
			return nil, err
		}
		n++
		if req.MaxBytes > 0 && len(b.B) > req.MaxBytes {
			return nil, executor.ErrTooLarge
		}
	}
	tag := "SELECT " + strconv.FormatInt(n, 10)
	if st == duck.STATEMENT_TYPE_INSERT || st == duck.STATEMENT_TYPE_UPDATE || st == duck.STATEMENT_TYPE_DELETE {
		tag = countTag(st, n)
	}
	b.Begin('C')
	b.String(tag)
	b.Finish()
	if req.MaxBytes > 0 && len(b.B) > req.MaxBytes {
		return nil, executor.ErrTooLarge
	}
	return &executor.Result{Wire: b.B, Rows: n, Tag: tag}, nil
}

// appendDataRow appends one DataRow of vals, each column in its format.
func appendDataRow(b []byte, cols []*colType, formats []int16, vals []driver.Value) ([]byte, error) {
	at := len(b)
	b = append(b, 'D', 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for i, v := range vals {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1: NULL
			continue
		}
		l := len(b)
		b = append(b, 0, 0, 0, 0)
		if formats[i] == 1 {
			var err error
			if b, err = cols[i].appendBinary(b, v); err != nil {
				return nil, err
			}
		} else {
			b = cols[i].appendText(b, v)
		}
		binary.BigEndian.PutUint32(b[l:], uint32(len(b)-l-4))
	}
	binary.BigEndian.PutUint32(b[at+1:], uint32(len(b)-at-1))
	return b, nil
}

func commandOnly(tag string) *executor.Result {
	var b pgwire.Builder
	b.Begin('C')
	b.String(tag)
	b.Finish()
	return &executor.Result{Wire: b.B, Tag: tag}
}

func countTag(st duck.StmtType, n int64) string {
	s := strconv.FormatInt(n, 10)
	switch st {
	case duck.STATEMENT_TYPE_INSERT:
		return "INSERT 0 " + s
	case duck.STATEMENT_TYPE_UPDATE:
		return "UPDATE " + s
	default:
		return "DELETE " + s
	}
}

// keywordTag is the tag of a statement without rows: its first keyword.
func keywordTag(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return ""
	}
	w := strings.TrimRight(f[0], ";")
	return strings.ToUpper(w)
}

func toInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case uint64:
		return int64(v), true
	}
	return 0, false
}
