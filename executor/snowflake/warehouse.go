package snowflake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	// ErrInexactNumber is returned when the driver rounded a scaled
	// NUMBER of more than 18 digits so that its exact value cannot be
	// told: two decimals round to what it returned.
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
	rows, err := w.db.QueryContext(qctx, placeholders(req.SQL), args...)
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	defer rows.Close()
	kind := firstKeyword(req.SQL)
	var res *executor.Result
	if returnsRows(kind) {
		res, err = readRows(ctx, rows, loc, req.MaxBytes)
	} else {
		res, err = commandResult(rows, kind)
	}
	if err != nil {
		return nil, w.fail(ctx, err)
	}
	return binaryResult(res, req)
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
// CommandComplete.
func readRows(ctx context.Context, rows *sql.Rows, loc *time.Location, maxBytes int) (*executor.Result, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(cts))
	for i, ct := range cts {
		cols[i] = newColumn(ct, loc)
	}
	var b pgwire.Builder
	rowDescription(&b, cols)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if n%checkInterval == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		if err := dataRow(&b, cols, vals); err != nil {
			return nil, err
		}
		n++
		if maxBytes > 0 && len(b.B) > maxBytes {
			return nil, executor.ErrTooLarge
		}
	}
	if err := rows.Err(); err != nil {
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

func rowDescription(b *pgwire.Builder, cols []column) {
	b.Begin('T')
	b.Int16(int16(len(cols)))
	for _, c := range cols {
		b.String(c.name)
		b.Int32(0)
		b.Int16(0)
		b.Int32(int32(c.oid))
		b.Int16(c.size)
		b.Int32(c.typmod)
		b.Int16(0)
	}
	b.Finish()
}

func dataRow(b *pgwire.Builder, cols []column, vals []any) error {
	if cap(b.B)-len(b.B) < 4096 {
		b.B = slices.Grow(b.B, max(len(b.B), 64<<10))
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
		var err error
		if b.B, err = cols[i].appendText(b.B, v); err != nil {
			return fmt.Errorf("snowflake: column %q: %w", cols[i].name, err)
		}
		l := len(b.B) - at - 4
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
		cols[i] = newColumn(ct, loc)
	}
	var b pgwire.Builder
	rowDescription(&b, cols)
	d.Fields = b.B
	return d, nil
}
