//go:build cgo

package snowflake

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

// column is a result column as Snowflake describes it.
type column struct {
	name      string
	typ       string // the rowtype's type: fixed, real, text, ...
	precision int
	scale     int
	length    int // text and binary: the declared length
}

// Snowflake's default lengths.
const (
	textLength   = 16777216
	binaryLength = 8388608
)

// tzStruct opens the DuckDB type to_timestamp_tz returns.
const tzStruct = `STRUCT("__sf_timestamp_tz"`

// mapColumn maps a DuckDB result column to its Snowflake type.
func mapColumn(name, duckType string) column {
	c := column{name: name}
	t := strings.ToUpper(strings.TrimSpace(duckType))
	switch {
	case strings.HasPrefix(duckType, tzStruct):
		c.typ, c.scale = "timestamp_tz", 6
	case strings.HasSuffix(t, "]"):
		c.typ = "array"
	case strings.HasPrefix(t, "STRUCT"), strings.HasPrefix(t, "MAP"):
		c.typ = "object"
	case strings.HasPrefix(t, "UNION"), t == "JSON":
		c.typ = "variant"
	case strings.HasPrefix(t, "DECIMAL("):
		c.typ = "fixed"
		fmt.Sscanf(t, "DECIMAL(%d,%d)", &c.precision, &c.scale)
	default:
		c.typ, c.precision, c.scale = scalar(t)
	}
	switch c.typ {
	case "text":
		c.length = textLength
	case "binary":
		c.length = binaryLength
	}
	return c
}

// scalar maps a DuckDB type without parameters.
func scalar(t string) (typ string, precision, scale int) {
	switch t {
	case "HUGEINT", "UHUGEINT", "UBIGINT", "BIGNUM":
		return "fixed", 38, 0
	case "BIGINT":
		return "fixed", 19, 0
	case "INTEGER", "UINTEGER":
		return "fixed", 10, 0
	case "SMALLINT", "USMALLINT":
		return "fixed", 5, 0
	case "TINYINT", "UTINYINT":
		return "fixed", 3, 0
	case "DOUBLE", "FLOAT":
		return "real", 0, 0
	case "BOOLEAN":
		return "boolean", 0, 0
	case "DATE":
		return "date", 0, 0
	case "TIME":
		return "time", 0, 9
	case "TIMESTAMP":
		return "timestamp_ntz", 0, 6
	case "TIMESTAMP_S":
		return "timestamp_ntz", 0, 0
	case "TIMESTAMP_MS":
		return "timestamp_ntz", 0, 3
	case "TIMESTAMP_NS":
		return "timestamp_ntz", 0, 9
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return "timestamp_ltz", 0, 6
	case "BLOB":
		return "binary", 0, 0
	}
	return "text", 0, 0
}

// rowType is the column's rowtype entry of a query response.
func (c column) rowType() map[string]any {
	m := map[string]any{
		"name": c.name, "database": "", "schema": "", "table": "",
		"type": c.typ, "nullable": true, "collation": nil,
		"precision": nil, "scale": nil, "length": nil, "byteLength": nil,
	}
	switch c.typ {
	case "fixed":
		m["precision"], m["scale"] = c.precision, c.scale
	case "time", "timestamp_ntz", "timestamp_ltz", "timestamp_tz":
		m["precision"], m["scale"] = 0, c.scale
	case "text", "binary":
		m["length"], m["byteLength"] = c.length, c.length
	case "variant", "object", "array":
		m["byteLength"] = textLength
	}
	return m
}

// tzValue is a TIMESTAMP_TZ value: an instant and its offset in minutes.
type tzValue struct {
	t      time.Time
	offset int
}

// cell turns a value DuckDB returned for c into the form the encoders
// take: *big.Int (fixed, unscaled), float64, string (text and JSON
// types), bool, int64 (date: days; time: nanoseconds since midnight),
// time.Time, tzValue or []byte. nil stays nil.
func (c column) cell(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.typ {
	case "fixed":
		return unscaled(v)
	case "real":
		switch f := v.(type) {
		case float64:
			return f, nil
		case float32:
			return float64(f), nil
		}
	case "text":
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			if len(s) == 16 {
				return uuidText(s), nil
			}
			return string(s), nil
		}
		return fmt.Sprint(v), nil
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "date":
		if t, ok := v.(time.Time); ok {
			return floorDiv(t.Unix(), 86400), nil
		}
	case "time":
		if t, ok := v.(time.Time); ok {
			h, m, s := t.Clock()
			return int64(h)*3600e9 + int64(m)*60e9 + int64(s)*1e9 + int64(t.Nanosecond()), nil
		}
	case "timestamp_ntz", "timestamp_ltz":
		if t, ok := v.(time.Time); ok {
			return t, nil
		}
	case "timestamp_tz":
		if m, ok := v.(map[string]any); ok {
			t, _ := m["__sf_timestamp_tz"].(time.Time)
			off, _ := m["__sf_offset"].(int32)
			if m["__sf_timestamp_tz"] == nil {
				return nil, nil
			}
			return tzValue{t: t, offset: int(off)}, nil
		}
	case "binary":
		if b, ok := v.([]byte); ok {
			return b, nil
		}
	case "variant", "object", "array":
		return jsonText(v)
	}
	return nil, fmt.Errorf("cannot send %T as %s", v, c.typ)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// unscaled is the integer a fixed value is sent as.
func unscaled(v any) (*big.Int, error) {
	switch n := v.(type) {
	case int8:
		return big.NewInt(int64(n)), nil
	case int16:
		return big.NewInt(int64(n)), nil
	case int32:
		return big.NewInt(int64(n)), nil
	case int64:
		return big.NewInt(n), nil
	case uint8:
		return new(big.Int).SetUint64(uint64(n)), nil
	case uint16:
		return new(big.Int).SetUint64(uint64(n)), nil
	case uint32:
		return new(big.Int).SetUint64(uint64(n)), nil
	case uint64:
		return new(big.Int).SetUint64(n), nil
	case *big.Int:
		return n, nil
	case duck.Decimal:
		if n.Value == nil {
			return new(big.Int), nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("cannot send %T as a number", v)
}

func uuidText(u []byte) string {
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// jsonText prints a value as Snowflake prints semi-structured data:
// sorted keys, two-space indentation.
func jsonText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jsonValue(v)); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// jsonValue makes DuckDB's nested values marshal as JSON.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonValue(e)
		}
		return out
	case duck.OrderedMap:
		return orderedMap(&v)
	case *duck.OrderedMap:
		return orderedMap(v)
	case duck.Map:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonValue(e)
		}
		return out
	case duck.Decimal:
		n, _ := unscaled(v)
		return json.Number(decimalText(n, int(v.Scale)))
	case *big.Int:
		return json.Number(v.String())
	case time.Time:
		return v.Format("2006-01-02 15:04:05.999999999")
	case []byte:
		return strings.ToUpper(hex.EncodeToString(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v)
		}
	case duck.Interval, duck.UUID:
		return fmt.Sprint(v)
	}
	return v
}

func orderedMap(m *duck.OrderedMap) map[string]any {
	out := make(map[string]any, m.Len())
	vals := m.Values()
	for i, k := range m.Keys() {
		out[fmt.Sprint(k)] = jsonValue(vals[i])
	}
	return out
}

// decimalText prints n scaled by scale, with exactly scale digits after
// the point.
func decimalText(n *big.Int, scale int) string {
	return string(pgformat.AppendScaled(nil, n.String(), scale))
}

// fraction prints nanos (0 to 999999999) with scale digits.
func fraction(nanos int64, scale int) string {
	if scale == 0 {
		return ""
	}
	s := fmt.Sprintf("%09d", nanos)
	return "." + s[:scale]
}

// jsonCell is a cell as a JSON rowset carries it.
func (c column) jsonCell(v any) *string {
	if v == nil {
		return nil
	}
	var s string
	switch v := v.(type) {
	case *big.Int:
		s = decimalText(v, c.scale)
	case float64:
		switch {
		case math.IsNaN(v):
			s = "NaN"
		case math.IsInf(v, 1):
			s = "inf"
		case math.IsInf(v, -1):
			s = "-inf"
		default:
			s = strconv.FormatFloat(v, 'g', -1, 64)
		}
	case string:
		s = v
	case bool:
		s = "0"
		if v {
			s = "1"
		}
	case int64: // date: days; time: nanoseconds
		if c.typ == "date" {
			s = strconv.FormatInt(v, 10)
		} else {
			s = strconv.FormatInt(v/1e9, 10) + fraction(v%1e9, c.scale)
		}
	case time.Time:
		// Whole seconds rounded down and a positive fraction, as the
		// driver reads them.
		s = strconv.FormatInt(v.Unix(), 10) + fraction(int64(v.Nanosecond()), c.scale)
	case tzValue:
		s = strconv.FormatInt(v.t.Unix(), 10) + fraction(int64(v.t.Nanosecond()), c.scale) +
			" " + strconv.Itoa(v.offset+1440)
	case []byte:
		s = strings.ToUpper(hex.EncodeToString(v))
	}
	return &s
}
