package snowflake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/snowflakedb/gosnowflake"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/pgformat"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

var (
	_ executor.Warehouse = (*Warehouse)(nil)
	_ executor.Describer = (*Warehouse)(nil)
)

// Errors returned by Execute for requests the package cannot serve.
var (
	// ErrBinaryParams is returned for a parameter in binary format:
	// parameters are bound as text.
	ErrBinaryParams = errors.New("snowflake: binary parameters are not supported; send parameters in text format")
	// ErrBinaryResult is returned when a binary result format is asked
	// for a column whose binary form does not follow from its text.
	ErrBinaryResult = errors.New("snowflake: a requested column cannot be sent in binary format")
	// ErrInexactNumber is returned when Snowflake answers a statement in
	// JSON, not Arrow, with a scaled NUMBER whose unscaled integer
	// exceeds 2^126: the driver parses it into 127 bits, which two
	// neighbouring decimals can round to.
	ErrInexactNumber = errors.New("snowflake: the driver rounded a NUMBER beyond recovery")
)

// Config configures a Warehouse.
type Config struct {
	// DSN is the gosnowflake data source name:
	// user:password@account/database/schema?warehouse=WH&role=ROLE.
	// Required.
	DSN string
	// MaxConns bounds the open connections, each a Snowflake session
	// running one statement at a time. If 0, it defaults to 8; size it to
	// the warehouse's concurrency, not to the number of clients.
	MaxConns int
	// TimeZone is the zone TIMESTAMP_LTZ and TIMESTAMP_TZ values are
	// printed in when a request sets no TimeZone. If "", it defaults to
	// UTC.
	TimeZone string
}

// Warehouse is a pool of Snowflake sessions.
type Warehouse struct {
	db  *sql.DB
	loc *time.Location
}

// Open validates cfg and opens the pool; sessions are made as statements
// need them.
func Open(cfg Config) (*Warehouse, error) {
	switch {
	case cfg.DSN == "":
		return nil, errors.New("snowflake: Config.DSN is required")
	case cfg.MaxConns < 0:
		return nil, errors.New("snowflake: Config.MaxConns is negative")
	case cfg.MaxConns == 0:
		cfg.MaxConns = 8
	}
	if _, err := gosnowflake.ParseDSN(cfg.DSN); err != nil {
		return nil, fmt.Errorf("snowflake: Config.DSN: %w", err)
	}
	loc, err := location(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("snowflake: Config.TimeZone: %w", err)
	}
	db, err := sql.Open("snowflake", cfg.DSN)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	return &Warehouse{db: db, loc: loc}, nil
}

// Close closes the pool, ending its sessions.
func (w *Warehouse) Close() error { return w.db.Close() }

// checkInterval is how many rows are read between looks at the context.
const checkInterval = 1024

// Execute runs one statement and returns its answer in wire form. When
// ctx ends first, the driver aborts the statement on Snowflake and
// Execute returns ctx's error.
func (w *Warehouse) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	args, err := params(req)
	if err != nil {
		return nil, err
	}
	qctx, loc, err := w.statementContext(ctx, req)
	if err != nil {
		return nil, err
	}
	var res *executor.Result
	if kind := firstKeyword(req.SQL); returnsRows(kind) {
		res, err = w.query(ctx, qctx, placeholders(req.SQL), args, loc, req.MaxBytes)
	} else {
		res, err = w.command(qctx, placeholders(req.SQL), args, kind)
	}
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	return binaryResult(res, req)
}

// query runs a statement that returns rows on a pooled session, through
// the driver's connection itself, so that Arrow results arrive as records
// (arrowContext) rather than as the driver's Go values.
func (w *Warehouse) query(ctx, qctx context.Context, sql string, args []any, loc *time.Location, maxBytes int) (*executor.Result, error) {
	conn, err := w.db.Conn(qctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	var res *executor.Result
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("snowflake: the driver's connection cannot run queries")
		}
		rows, err := q.QueryContext(arrowContext(qctx), sql, named)
		if err != nil {
			return err
		}
		defer rows.Close()
		res, err = readRows(ctx, rows, loc, maxBytes)
		return err
	})
	return res, err
}

// command runs a statement without rows.
func (w *Warehouse) command(qctx context.Context, sql string, args []any, kind string) (*executor.Result, error) {
	rows, err := w.db.QueryContext(qctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return commandResult(rows, kind)
}

// statementContext carries the request's query tag (Request.Dashboard,
// else the setting sqlcached.dashboard) and the driver's options; loc is the zone to print timestamps with a time zone in.
func (w *Warehouse) statementContext(ctx context.Context, req *executor.Request) (context.Context, *time.Location, error) {
	ctx = gosnowflake.WithHigherPrecision(ctx)
	tag := req.Dashboard
	if t, ok := setting(req.Settings, "sqlcached.dashboard"); ok && tag == "" {
		tag = t
	}
	if tag != "" {
		ctx = gosnowflake.WithQueryTag(ctx, tag)
	}
	loc := w.loc
	if tz, ok := setting(req.Settings, "timezone"); ok {
		var err error
		if loc, err = location(tz); err != nil {
			return nil, nil, invalidTimeZone(tz)
		}
	}
	return ctx, loc, nil
}

// params binds the request's parameters as strings.
func params(req *executor.Request) ([]any, error) {
	args := make([]any, len(req.Params))
	for i, p := range req.Params {
		if f := formatOf(req.ParamFormats, i); f != 0 {
			return nil, ErrBinaryParams
		}
		if p != nil {
			args[i] = string(p)
		}
	}
	return args, nil
}

// formatOf is the format code of column or parameter i: formats holds
// none (all text), one for all, or one each.
func formatOf(formats []int16, i int) int16 {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

// fail returns ctx's error when ctx ended, else err as a PostgreSQL error.
func (w *Warehouse) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, executor.ErrTooLarge) {
		return err
	}
	return pgErr(err)
}

// readRows encodes a statement's rows: RowDescription, DataRows,
// CommandComplete. Arrow results are read as records; a JSON result
// (Snowflake answers some statements in JSON whatever the format asked
// for) row by row, as the driver's Go values.
func readRows(ctx context.Context, dr driver.Rows, loc *time.Location, maxBytes int) (*executor.Result, error) {
	rows, ok := dr.(driverRows)
	if !ok {
		return nil, fmt.Errorf("snowflake: the driver returned %T, without Arrow batches or column types", dr)
	}
	cols := driverColumns(rows, loc)
	var b pgwire.Builder
	rowDescription(&b, cols)
	var n int64
	batches, err := rows.GetArrowBatches()
	var se *gosnowflake.SnowflakeError
	switch {
	case err == nil:
		n, err = readBatches(ctx, &b, batches, cols, maxBytes)
	case errors.As(err, &se) && se.Number == gosnowflake.ErrNonArrowResponseInArrowBatches:
		n, err = readValues(ctx, &b, rows, cols, maxBytes)
	}
	if err != nil {
		return nil, err
	}
	tag := "SELECT " + strconv.FormatInt(n, 10)
	b.Begin('C')
	b.String(tag)
	b.Finish()
	if maxBytes > 0 && len(b.B) > maxBytes {
		return nil, executor.ErrTooLarge
	}
	return &executor.Result{Wire: b.B, Rows: n, Tag: tag}, nil
}

// driverRows is what readRows needs of the driver's rows.
type driverRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypePrecisionScale
	gosnowflake.SnowflakeRows
}

// driverColumns describes the columns of the driver's rows.
func driverColumns(rows driverRows, loc *time.Location) []column {
	names := rows.Columns()
	cols := make([]column, len(names))
	for i, name := range names {
		p, s, _ := rows.ColumnTypePrecisionScale(i)
		cols[i] = newColumn(name, rows.ColumnTypeDatabaseTypeName(i), p, s, loc)
	}
	return cols
}

// readValues appends a DataRow for each row the driver returns as Go
// values, and returns the number of rows.
func readValues(ctx context.Context, b *pgwire.Builder, rows driver.Rows, cols []column, maxBytes int) (int64, error) {
	vals := make([]driver.Value, len(cols))
	var n int64
	for {
		if n%checkInterval == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err := rows.Next(vals); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
		err := appendRow(b, cols, func(dst []byte, i int) ([]byte, bool, error) {
			if vals[i] == nil {
				return dst, false, nil
			}
			dst, err := cols[i].appendText(dst, vals[i])
			return dst, true, err
		})
		if err != nil {
			return n, err
		}
		n++
		if maxBytes > 0 && len(b.B) > maxBytes {
			return n, executor.ErrTooLarge
		}
	}
}

func rowDescription(b *pgwire.Builder, cols []column) {
	fields := make([]pgwire.Field, len(cols))
	for i, c := range cols {
		fields[i] = pgwire.Field{Name: c.name, TypeOID: c.oid, Size: c.size, TypeMod: c.typmod}
	}
	b.RowDescription(fields)
}

// appendRow appends a DataRow of len(cols) values: value appends value i
// in text format to dst, or reports false for NULL.
func appendRow(b *pgwire.Builder, cols []column, value func(dst []byte, i int) ([]byte, bool, error)) error {
	if cap(b.B)-len(b.B) < 4096 {
		b.B = slices.Grow(b.B, max(len(b.B), 64<<10))
	}
	b.Begin('D')
	b.Int16(int16(len(cols)))
	for i := range cols {
		at := len(b.B)
		b.B = append(b.B, 0, 0, 0, 0)
		var err error
		var ok bool
		if b.B, ok, err = value(b.B, i); err != nil {
			return fmt.Errorf("snowflake: column %q: %w", cols[i].name, err)
		}
		l := len(b.B) - at - 4
		if !ok {
			b.B, l = b.B[:at+4], -1
		}
		b.B[at], b.B[at+1], b.B[at+2], b.B[at+3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
	}
	b.Finish()
	return nil
}

// commandResult is the answer of a statement without rows: its tag, with
// the count Snowflake returns for INSERT, UPDATE, DELETE and MERGE.
func commandResult(rows *sql.Rows, kind string) (*executor.Result, error) {
	tag := kind
	switch kind {
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		var n int64
		if rows.Next() {
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			// MERGE counts inserted, updated and deleted rows apart.
			for i, v := range vals {
				if i == 0 || kind == "MERGE" {
					text, _ := column{typ: "FIXED"}.appendNumber(nil, v)
					c, _ := strconv.ParseInt(string(text), 10, 64)
					n += c
				}
			}
		}
		tag += " " + strconv.FormatInt(n, 10)
		if kind == "INSERT" {
			tag = "INSERT 0 " + strconv.FormatInt(n, 10)
		}
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var b pgwire.Builder
	b.Begin('C')
	b.String(tag)
	b.Finish()
	return &executor.Result{Wire: b.B, Tag: tag}, nil
}

// binaryResult converts a text answer when the request asks for binary
// columns.
func binaryResult(res *executor.Result, req *executor.Request) (*executor.Result, error) {
	if !slices.ContainsFunc(req.ResultFormats, func(f int16) bool { return f != 0 }) || res.Wire[0] != 'T' {
		return res, nil
	}
	wire, ok := pgformat.ToBinary(res.Wire, req.ResultFormats, pgformat.Options{ExactFloats: true})
	if !ok {
		return nil, ErrBinaryResult
	}
	if req.MaxBytes > 0 && len(wire) > req.MaxBytes {
		return nil, executor.ErrTooLarge
	}
	res.Wire = wire
	return res, nil
}

// Describe describes a statement without running it, through the
// driver's describe-only mode: its parameters, all text (they are bound
// as text), and its columns.
func (w *Warehouse) Describe(ctx context.Context, req *executor.Request) (*executor.Description, error) {
	qctx, loc, err := w.statementContext(ctx, req)
	if err != nil {
		return nil, err
	}
	d := &executor.Description{ParamOIDs: make([]uint32, paramCount(req.SQL))}
	for i := range d.ParamOIDs {
		d.ParamOIDs[i] = oidText
	}
	if !returnsRows(firstKeyword(req.SQL)) {
		return d, nil
	}
	rows, err := w.db.QueryContext(gosnowflake.WithDescribeOnly(qctx), placeholders(req.SQL))
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	cols := make([]column, len(cts))
	for i, ct := range cts {
		p, s, _ := ct.DecimalSize()
		cols[i] = newColumn(ct.Name(), ct.DatabaseTypeName(), p, s, loc)
	}
	var b pgwire.Builder
	rowDescription(&b, cols)
	d.Fields = b.B
	return d, nil
}
