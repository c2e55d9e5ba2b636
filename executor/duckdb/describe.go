//go:build cgo

package duckdb

import (
	"context"
	"database/sql/driver"
	"io"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

var _ executor.Describer = (*DB)(nil)

// Describe prepares req's statement without running it and returns the
// types of its parameters and the RowDescription of its answer, as the
// extended protocol's Describe asks. A parameter whose type DuckDB leaves
// open is text (25), unless the request names a type for it.
func (d *DB) Describe(ctx context.Context, req *executor.Request) (*executor.Description, error) {
	var desc *executor.Description
	err := d.onConn(ctx, req, func(c *duck.Conn, sql string, sess session) error {
		ds, err := c.PrepareContext(ctx, sql)
		if err != nil {
			return err
		}
		stmt := ds.(*duck.Stmt)
		defer stmt.Close()
		desc, err = describe(stmt, req, sess)
		if err != nil || desc.Fields == nil || !unresolved(stmt) {
			return err
		}
		desc.Fields, err = describeBound(ctx, c, sql, req, sess)
		return err
	})
	return desc, err
}

func describe(stmt *duck.Stmt, req *executor.Request, sess session) (*executor.Description, error) {
	desc := &executor.Description{ParamOIDs: make([]uint32, stmt.NumInput())}
	for i := range desc.ParamOIDs {
		if i < len(req.ParamOIDs) && req.ParamOIDs[i] != 0 {
			desc.ParamOIDs[i] = req.ParamOIDs[i]
			continue
		}
		desc.ParamOIDs[i] = oidText
		if t, err := stmt.ParamType(i + 1); err == nil {
			if ct := simpleType(t); ct != nil {
				desc.ParamOIDs[i] = ct.oid()
			}
		}
	}
	st, err := stmt.StatementType()
	if err != nil {
		return nil, err
	}
	n, err := stmt.ColumnCount()
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	cols := make([]*colType, n)
	for i := range n {
		if names[i], err = stmt.ColumnName(i); err != nil {
			return nil, err
		}
		// A column of a type DuckDB leaves open until it knows the
		// parameters' is text, as PostgreSQL's unknown is.
		cols[i] = &colType{kind: "VARCHAR"}
		if t, err := stmt.ColumnType(i); err == nil && t != duck.TYPE_INVALID {
			info, err := stmt.ColumnTypeInfo(i)
			if err != nil {
				return nil, err
			}
			cols[i] = typeOf(info)
		}
		cols[i].setZone(sess.loc)
	}
	if !returnsRows(st, names) {
		return desc, nil
	}
	var b pgwire.Builder
	appendRowDescription(&b, names, cols, make([]int16, n))
	desc.Fields = b.B
	return desc, nil
}

// unresolved reports whether DuckDB could not type stmt's answer without
// the parameters' values: it then describes one column, of type INVALID.
func unresolved(stmt *duck.Stmt) bool {
	n, err := stmt.ColumnCount()
	if err != nil || n != 1 {
		return false
	}
	t, err := stmt.ColumnType(0)
	return err == nil && t == duck.TYPE_INVALID
}

// sampleText is a value of each type, to bind where DuckDB needs one to
// type an answer: what Execute would bind for a text parameter of the type.
var sampleText = map[uint32]string{
	oidInt2: "0", oidInt4: "0", oidInt8: "0", oidFloat4: "0", oidFloat8: "0",
	oidNumeric: "0", oidBool: "f", oidDate: "2000-01-01", oidTimestamp: "2000-01-01 00:00:00",
	oidTimestamptz: "2000-01-01 00:00:00+00",
}

// describeBound describes the answer of sql with its parameters bound to
// sample values of their types, through DuckDB's DESCRIBE, which binds the
// statement without running it.
func describeBound(ctx context.Context, c *duck.Conn, sql string, req *executor.Request, sess session) ([]byte, error) {
	ds, err := c.PrepareContext(ctx, "DESCRIBE "+sql)
	if err != nil {
		return nil, err
	}
	stmt := ds.(*duck.Stmt)
	defer stmt.Close()
	args := make([]driver.NamedValue, stmt.NumInput())
	for i := range args {
		var oid uint32
		if i < len(req.ParamOIDs) {
			oid = req.ParamOIDs[i]
		}
		args[i].Ordinal = i + 1
		if args[i].Value, err = decodeText(oid, sampleText[oid], false); err != nil {
			return nil, err
		}
	}
	rows, err := stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	var cols []*colType
	vals := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(vals); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		t := parseType(typ)
		t.setZone(sess.loc)
		names, cols = append(names, name), append(cols, t)
	}
	var b pgwire.Builder
	appendRowDescription(&b, names, cols, make([]int16, len(names)))
	return b.B, nil
}

// simpleType is the colType of a parameter type, or nil when DuckDB left
// it open.
func simpleType(t duck.Type) *colType {
	switch t {
	case duck.TYPE_INVALID, duck.TYPE_ANY, duck.TYPE_SQLNULL:
		return nil
	case duck.TYPE_LIST, duck.TYPE_ARRAY:
		return &colType{kind: "LIST", elem: &colType{kind: "VARCHAR"}}
	}
	return &colType{kind: kindOf(t)}
}

// kindOf is the name of a DuckDB type, as the driver prints it.
func kindOf(t duck.Type) string {
	if k, ok := kinds[t]; ok {
		return k
	}
	return "UNKNOWN"
}

var kinds = map[duck.Type]string{
	duck.TYPE_BOOLEAN:      "BOOLEAN",
	duck.TYPE_TINYINT:      "TINYINT",
	duck.TYPE_SMALLINT:     "SMALLINT",
	duck.TYPE_INTEGER:      "INTEGER",
	duck.TYPE_BIGINT:       "BIGINT",
	duck.TYPE_UTINYINT:     "UTINYINT",
	duck.TYPE_USMALLINT:    "USMALLINT",
	duck.TYPE_UINTEGER:     "UINTEGER",
	duck.TYPE_UBIGINT:      "UBIGINT",
	duck.TYPE_FLOAT:        "FLOAT",
	duck.TYPE_DOUBLE:       "DOUBLE",
	duck.TYPE_TIMESTAMP:    "TIMESTAMP",
	duck.TYPE_DATE:         "DATE",
	duck.TYPE_TIME:         "TIME",
	duck.TYPE_INTERVAL:     "INTERVAL",
	duck.TYPE_HUGEINT:      "HUGEINT",
	duck.TYPE_UHUGEINT:     "UHUGEINT",
	duck.TYPE_VARCHAR:      "VARCHAR",
	duck.TYPE_BLOB:         "BLOB",
	duck.TYPE_DECIMAL:      "DECIMAL",
	duck.TYPE_TIMESTAMP_S:  "TIMESTAMP_S",
	duck.TYPE_TIMESTAMP_MS: "TIMESTAMP_MS",
	duck.TYPE_TIMESTAMP_NS: "TIMESTAMP_NS",
	duck.TYPE_ENUM:         "ENUM",
	duck.TYPE_LIST:         "LIST",
	duck.TYPE_STRUCT:       "STRUCT",
	duck.TYPE_MAP:          "MAP",
	duck.TYPE_ARRAY:        "ARRAY",
	duck.TYPE_UUID:         "UUID",
	duck.TYPE_UNION:        "UNION",
	duck.TYPE_BIT:          "BIT",
	duck.TYPE_TIME_TZ:      "TIMETZ",
	duck.TYPE_TIMESTAMP_TZ: "TIMESTAMPTZ",
	duck.TYPE_BIGNUM:       "BIGNUM",
	duck.TYPE_GEOMETRY:     "GEOMETRY",
}

// typeOf is the colType of a DuckDB type.
func typeOf(info duck.TypeInfo) *colType {
	if info.Alias() == "JSON" {
		return &colType{kind: "JSON"}
	}
	switch d := info.Details().(type) {
	case *duck.DecimalDetails:
		return &colType{kind: "DECIMAL", width: int(d.Width), scale: int(d.Scale)}
	case *duck.ListDetails:
		return &colType{kind: "LIST", elem: typeOf(d.Child)}
	case *duck.ArrayDetails:
		return &colType{kind: "ARRAY", elem: typeOf(d.Child)}
	case *duck.MapDetails:
		return &colType{kind: "MAP", key: typeOf(d.Key), val: typeOf(d.Value)}
	case *duck.StructDetails:
		t := &colType{kind: "STRUCT"}
		for _, e := range d.Entries {
			t.fields = append(t.fields, field{name: e.Name(), typ: typeOf(e.Info())})
		}
		return t
	case *duck.UnionDetails:
		t := &colType{kind: "UNION"}
		for _, m := range d.Members {
			t.fields = append(t.fields, field{name: m.Name, typ: typeOf(m.Type)})
		}
		return t
	case *duck.EnumDetails:
		return &colType{kind: "ENUM"}
	}
	return &colType{kind: kindOf(info.InternalType())}
}
