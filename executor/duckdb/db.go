//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
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
func Open(path string) (*DB, error) {
	c, err := duck.NewConnector(path, nil)
	if err != nil {
		return nil, pgErr(err)
	}
	return &DB{conn: c, db: sql.OpenDB(c)}, nil
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
func (d *DB) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	for _, f := range req.ResultFormats {
		if f != 0 {
			return nil, errors.New("duckdb: binary result formats are not supported yet")
		}
	}
	args := make([]driver.NamedValue, len(req.Params))
	for i, p := range req.Params {
		if i < len(req.ParamFormats) && req.ParamFormats[i] != 0 || len(req.ParamFormats) == 1 && req.ParamFormats[0] != 0 {
			return nil, errors.New("duckdb: binary parameters are not supported yet")
		}
		args[i] = driver.NamedValue{Ordinal: i + 1}
		if p != nil {
			args[i].Value = string(p)
		}
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer conn.Close()
	var res *executor.Result
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*duck.Conn)
		if !ok {
			return fmt.Errorf("duckdb: unexpected driver connection %T", dc)
		}
		var err error
		res, err = run(ctx, c, req, args)
		return err
	})
	if err != nil {
		if errors.Is(err, executor.ErrTooLarge) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, pgErrSQL(err, req.SQL)
	}
	return res, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return pgErr(err)
}

func run(ctx context.Context, c *duck.Conn, req *executor.Request, args []driver.NamedValue) (*executor.Result, error) {
	ds, err := c.PrepareContext(ctx, req.SQL)
	if err != nil {
		return nil, err
	}
	stmt := ds.(*duck.Stmt)
	defer stmt.Close()
	st, err := stmt.StatementType()
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

	switch st {
	case duck.STATEMENT_TYPE_INSERT, duck.STATEMENT_TYPE_UPDATE, duck.STATEMENT_TYPE_DELETE:
		if len(names) == 1 && names[0] == "Count" {
			var n int64
			if err := rows.Next(vals); err == nil {
				n, _ = toInt64(vals[0])
			} else if err != io.EOF {
				return nil, err
			}
			return commandOnly(countTag(st, n)), nil
		}
	case duck.STATEMENT_TYPE_SELECT, duck.STATEMENT_TYPE_EXPLAIN, duck.STATEMENT_TYPE_PRAGMA,
		duck.STATEMENT_TYPE_CALL, duck.STATEMENT_TYPE_RELATION, duck.STATEMENT_TYPE_EXECUTE,
		duck.STATEMENT_TYPE_MULTI:
	default:
		return commandOnly(keywordTag(req.SQL)), nil
	}
	if len(names) == 0 {
		return commandOnly(keywordTag(req.SQL)), nil
	}

	cols := make([]*colType, len(names))
	var b pgwire.Builder
	b.Begin('T')
	b.Int16(int16(len(names)))
	for i, name := range names {
		cols[i] = parseType(rows.ColumnTypeDatabaseTypeName(i))
		oid, size, mod := cols[i].describe()
		b.String(name)
		b.Int32(0)
		b.Int16(0)
		b.Int32(int32(oid))
		b.Int16(size)
		b.Int32(mod)
		b.Int16(0)
	}
	b.Finish()

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
		b.Begin('D')
		b.Int16(int16(len(vals)))
		for i, v := range vals {
			if v == nil {
				b.Int32(-1)
				continue
			}
			at := len(b.B)
			b.B = append(b.B, 0, 0, 0, 0)
			b.B = cols[i].appendText(b.B, v)
			l := len(b.B) - at - 4
			b.B[at], b.B[at+1], b.B[at+2], b.B[at+3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		}
		b.Finish()
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
