//go:build cgo

package duckdb

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/sqlcached/sqlcached/internal/pgformat"
)

// colType is a column's DuckDB type, parsed from the name the driver
// gives it (INTEGER, DECIMAL(10,2), VARCHAR[], STRUCT("a" INTEGER), ...).
type colType struct {
	kind   string // the base name: INTEGER, DECIMAL, LIST, STRUCT, MAP, ...
	scale  int    // DECIMAL
	width  int    // DECIMAL
	elem   *colType
	fields []field // STRUCT
	key    *colType
	val    *colType
	// loc is the zone timestamptz values are printed in; nil is UTC.
	loc *time.Location
}

// setZone makes t, and the types inside it, print timestamptz values in
// loc.
func (t *colType) setZone(loc *time.Location) {
	if t == nil {
		return
	}
	t.loc = loc
	t.elem.setZone(loc)
	t.key.setZone(loc)
	t.val.setZone(loc)
	for _, f := range t.fields {
		f.typ.setZone(loc)
	}
}

type field struct {
	name string
	typ  *colType
}

// parseType parses a type name as the driver prints it.
func parseType(s string) *colType {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "]") {
		if i := strings.LastIndexByte(s, '['); i > 0 {
			kind := "LIST"
			if i+1 < len(s)-1 {
				kind = "ARRAY"
			}
			return &colType{kind: kind, elem: parseType(s[:i])}
		}
	}
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		switch k := strings.ToUpper(s); k {
		case "TIMESTAMP WITH TIME ZONE":
			return &colType{kind: "TIMESTAMPTZ"}
		case "TIME WITH TIME ZONE":
			return &colType{kind: "TIMETZ"}
		default:
			return &colType{kind: k}
		}
	}
	name := strings.ToUpper(strings.TrimSpace(s[:open]))
	inner := s[open+1 : len(s)-1]
	t := &colType{kind: name}
	switch name {
	case "DECIMAL":
		parts := splitTop(inner)
		if len(parts) == 2 {
			t.width, _ = strconv.Atoi(strings.TrimSpace(parts[0]))
			t.scale, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
		}
	case "STRUCT", "UNION":
		for _, p := range splitTop(inner) {
			n, rest := fieldName(strings.TrimSpace(p))
			t.fields = append(t.fields, field{name: n, typ: parseType(rest)})
		}
	case "MAP":
		parts := splitTop(inner)
		if len(parts) == 2 {
			t.key, t.val = parseType(parts[0]), parseType(parts[1])
		}
	}
	return t
}

// splitTop splits s at the commas outside parentheses and quotes.
func splitTop(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// fieldName splits `"name" TYPE` into the unquoted name and the type.
func fieldName(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		n, rest, _ := strings.Cut(s, " ")
		return n, rest
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			return b.String(), s[i+1:]
		}
		b.WriteByte(s[i])
	}
	return b.String(), ""
}

// PostgreSQL type OIDs.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
)

// arrayOID is the array type of each element type.
var arrayOID = map[uint32]uint32{
	oidBool:        1000,
	oidBytea:       1001,
	oidInt2:        1005,
	oidInt4:        1007,
	oidInt8:        1016,
	oidText:        1009,
	oidJSON:        199,
	oidFloat4:      1021,
	oidFloat8:      1022,
	oidDate:        1182,
	oidTime:        1183,
	oidTimestamp:   1115,
	oidTimestamptz: 1185,
	oidInterval:    1187,
	oidTimetz:      1270,
	oidVarbit:      1563,
	oidNumeric:     1231,
	oidUUID:        2951,
}

// oid is the PostgreSQL type t is described as.
func (t *colType) oid() uint32 {
	switch t.kind {
	case "BOOLEAN":
		return oidBool
	case "TINYINT", "SMALLINT", "UTINYINT":
		return oidInt2
	case "INTEGER", "USMALLINT":
		return oidInt4
	case "BIGINT", "UINTEGER":
		return oidInt8
	case "UBIGINT", "HUGEINT", "UHUGEINT", "BIGNUM", "DECIMAL":
		return oidNumeric
	case "FLOAT":
		return oidFloat4
	case "DOUBLE":
		return oidFloat8
	case "VARCHAR", "ENUM", "NULL":
		return oidText
	case "BLOB", "GEOMETRY":
		return oidBytea
	case "DATE":
		return oidDate
	case "TIME":
		return oidTime
	case "TIMETZ":
		return oidTimetz
	case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		return oidTimestamp
	case "TIMESTAMPTZ":
		return oidTimestamptz
	case "INTERVAL":
		return oidInterval
	case "UUID":
		return oidUUID
	case "BIT":
		return oidVarbit
	case "LIST", "ARRAY":
		e := t.elem
		for e.kind == "LIST" || e.kind == "ARRAY" {
			e = e.elem // PostgreSQL arrays are multidimensional
		}
		if o, ok := arrayOID[e.oid()]; ok {
			return o
		}
		return 1009
	default: // STRUCT, MAP, UNION, JSON and anything unknown
		return oidJSON
	}
}

// describe returns the oid, type size and type modifier of RowDescription.
func (t *colType) describe() (uint32, int16, int32) {
	o := t.oid()
	switch o {
	case oidBool:
		return o, 1, -1
	case oidInt2:
		return o, 2, -1
	case oidInt4, oidFloat4, oidDate:
		return o, 4, -1
	case oidInt8, oidFloat8, oidTime, oidTimestamp, oidTimestamptz:
		return o, 8, -1
	case oidTimetz:
		return o, 12, -1
	case oidInterval, oidUUID:
		return o, 16, -1
	case oidNumeric:
		if t.kind == "DECIMAL" {
			return o, -1, int32((t.width<<16)|t.scale) + 4
		}
	}
	return o, -1, -1
}

// appendText appends v, a non-NULL value of type t, in PostgreSQL's text
// format.
func (t *colType) appendText(b []byte, v any) []byte {
	switch t.kind {
	case "LIST", "ARRAY":
		if l, ok := v.([]any); ok {
			return t.appendArray(b, l)
		}
	case "STRUCT", "MAP", "UNION", "JSON":
		return t.appendJSON(b, v)
	}
	return appendScalar(b, t, v)
}

func appendScalar(b []byte, t *colType, v any) []byte {
	switch v := v.(type) {
	case bool:
		if v {
			return append(b, 't')
		}
		return append(b, 'f')
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float32:
		return pgformat.AppendFloat(b, float64(v), 32)
	case float64:
		return pgformat.AppendFloat(b, v, 64)
	case string:
		return append(b, v...)
	case *big.Int:
		return v.Append(b, 10)
	case duck.Decimal:
		return appendDecimal(b, v)
	case []byte:
		if t != nil && t.kind == "UUID" && len(v) == 16 {
			return appendUUID(b, v)
		}
		if t != nil && (t.kind == "VARCHAR" || t.kind == "ENUM") {
			return append(b, v...)
		}
		b = append(b, '\\', 'x')
		return hex.AppendEncode(b, v)
	case duck.UUID:
		return appendUUID(b, v[:])
	case time.Time:
		return appendTime(b, t, v)
	case duck.Interval:
		return appendInterval(b, v)
	case duck.Union:
		return appendScalar(b, nil, v.Value)
	default:
		return fmt.Append(b, v)
	}
}

// appendDecimal formats d with exactly its scale's digits.
func appendDecimal(b []byte, d duck.Decimal) []byte {
	if d.Value == nil {
		return append(b, '0')
	}
	return pgformat.AppendScaled(b, d.Value.String(), int(d.Scale))
}

func appendUUID(b []byte, u []byte) []byte {
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:16])
}

func appendTime(b []byte, t *colType, v time.Time) []byte {
	kind := "TIMESTAMP"
	if t != nil {
		kind = t.kind
	}
	// DuckDB's infinities are the extremes of the integer it stores.
	switch kind {
	case "DATE":
		switch v.Unix() / 86400 {
		case math.MaxInt32:
			return append(b, "infinity"...)
		case -math.MaxInt32:
			return append(b, "-infinity"...)
		}
	case "TIMESTAMP", "TIMESTAMPTZ":
		switch v.UnixMicro() {
		case math.MaxInt64:
			return append(b, "infinity"...)
		case -math.MaxInt64:
			return append(b, "-infinity"...)
		}
	}
	switch kind {
	case "DATE":
		return pgformat.AppendTime(b, v, "2006-01-02")
	case "TIME":
		return v.AppendFormat(b, "15:04:05.999999")
	case "TIMETZ":
		b = v.AppendFormat(b, "15:04:05.999999")
		return pgformat.AppendOffset(b, v)
	case "TIMESTAMP_NS":
		return pgformat.AppendTime(b, v, "2006-01-02 15:04:05.999999999")
	case "TIMESTAMPTZ":
		loc := time.UTC
		if t.loc != nil {
			loc = t.loc
		}
		v = v.In(loc)
		b = pgformat.AppendTime(b, v, "2006-01-02 15:04:05.999999")
		if y := len(b) - 3; y >= 0 && string(b[y:]) == " BC" {
			b = pgformat.AppendOffset(b[:y], v)
			return append(b, " BC"...)
		}
		return pgformat.AppendOffset(b, v)
	default:
		return pgformat.AppendTime(b, v, "2006-01-02 15:04:05.999999")
	}
}

// appendInterval formats v as PostgreSQL's IntervalStyle postgres does.
func appendInterval(b []byte, v duck.Interval) []byte {
	start := len(b)
	isBefore := false
	part := func(n int64, unit string) {
		if n == 0 {
			return
		}
		if len(b) > start {
			b = append(b, ' ')
		}
		if isBefore && n > 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, n, 10)
		b = append(b, ' ')
		b = append(b, unit...)
		if n != 1 {
			b = append(b, 's')
		}
		isBefore = n < 0
	}
	part(int64(v.Months/12), "year")
	part(int64(v.Months%12), "mon")
	part(int64(v.Days), "day")
	if v.Micros != 0 || len(b) == start {
		if len(b) > start {
			b = append(b, ' ')
		}
		us := v.Micros
		switch {
		case us < 0:
			b = append(b, '-')
			us = -us
		case isBefore:
			b = append(b, '+')
		}
		h := us / 3600e6
		m := us / 60e6 % 60
		s := us / 1e6 % 60
		f := us % 1e6
		if h < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, h, 10)
		b = append(b, ':')
		b = appendTwo(b, int(m))
		b = append(b, ':')
		b = appendTwo(b, int(s))
		if f != 0 {
			fs := fmt.Sprintf("%06d", f)
			b = append(b, '.')
			b = append(b, strings.TrimRight(fs, "0")...)
		}
	}
	return b
}

// appendArray formats l as a PostgreSQL array literal.
func (t *colType) appendArray(b []byte, l []any) []byte {
	b = append(b, '{')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		if v == nil {
			b = append(b, "NULL"...)
			continue
		}
		if sub, ok := v.([]any); ok && (t.elem.kind == "LIST" || t.elem.kind == "ARRAY") {
			b = t.elem.appendArray(b, sub)
			continue
		}
		b = appendArrayElem(b, t.elem.appendText(nil, v))
	}
	return append(b, '}')
}

// appendArrayElem appends one element, quoted when array_out would quote it.
func appendArrayElem(b, e []byte) []byte {
	quote := len(e) == 0 || bytes.EqualFold(e, []byte("NULL"))
	for _, c := range e {
		switch c {
		case '{', '}', ',', '"', '\\', ' ', '\t', '\n', '\r', '\v', '\f':
			quote = true
		}
	}
	if !quote {
		return append(b, e...)
	}
	b = append(b, '"')
	for _, c := range e {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

// appendJSON appends v, of type t, as JSON text.
func (t *colType) appendJSON(b []byte, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	if t == nil {
		t = &colType{kind: "JSON"}
	}
	switch t.kind {
	case "STRUCT":
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		b = append(b, '{')
		for i, f := range t.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.name)
			b = append(b, ':')
			b = f.typ.appendJSON(b, m[f.name])
		}
		return append(b, '}')
	case "MAP":
		m, ok := v.(duck.OrderedMap)
		if !ok {
			break
		}
		b = append(b, '{')
		keys, vals := m.Keys(), m.Values()
		for i := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, string(appendScalar(nil, t.key, keys[i])))
			b = append(b, ':')
			b = t.val.appendJSON(b, vals[i])
		}
		return append(b, '}')
	case "LIST", "ARRAY":
		l, ok := v.([]any)
		if !ok {
			break
		}
		b = append(b, '[')
		for i, e := range l {
			if i > 0 {
				b = append(b, ',')
			}
			b = t.elem.appendJSON(b, e)
		}
		return append(b, ']')
	case "UNION":
		if u, ok := v.(duck.Union); ok {
			for _, f := range t.fields {
				if f.name == u.Tag {
					return f.typ.appendJSON(b, u.Value)
				}
			}
			return (*colType)(nil).appendJSON(b, u.Value)
		}
	}
	switch v := v.(type) {
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, *big.Int, duck.Decimal:
		return appendScalar(b, t, v)
	case float32, float64:
		f := appendScalar(b[len(b):], t, v)
		if bytes.ContainsAny(f, "INa") { // NaN, Infinity
			return appendJSONString(b, string(f))
		}
		return append(b, f...)
	case string:
		return appendJSONString(b, v)
	case map[string]any, []any:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err == nil {
			return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
		}
	}
	return appendJSONString(b, string(appendScalar(nil, t, v)))
}

func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// appendTwo appends n (0 to 99) in two digits.
func appendTwo(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
