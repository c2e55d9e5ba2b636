//go:build cgo

package duckdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
)

// PostgreSQL's epoch for dates and timestamps, 2000-01-01, in Unix
// microseconds and days.
const (
	pgEpochMicros = 946684800 * 1000000
	pgEpochDays   = 10957
)

// binaryOK reports, as a 0A000 error, when t has no binary form here.
func (t *colType) binaryOK() error {
	switch t.kind {
	case "LIST", "ARRAY":
		e := t.elem
		for e.kind == "LIST" || e.kind == "ARRAY" {
			e = e.elem
		}
		if _, ok := arrayOID[e.oid()]; !ok || e.binaryOK() != nil || e.oid() == oidJSON && e.kind != "JSON" {
			return notSupported("binary format for DuckDB type %s", t.name())
		}
		return nil
	}
	if !binaryKinds[t.kind] {
		return notSupported("binary format for DuckDB type %s", t.name())
	}
	return nil
}

// binaryKinds are the DuckDB types with a binary form here.
var binaryKinds = func() map[string]bool {
	m := make(map[string]bool)
	for _, k := range strings.Fields(`BOOLEAN TINYINT SMALLINT UTINYINT INTEGER USMALLINT BIGINT
		UINTEGER UBIGINT HUGEINT UHUGEINT BIGNUM DECIMAL FLOAT DOUBLE VARCHAR ENUM BLOB DATE TIME
		TIMETZ TIMESTAMP TIMESTAMP_S TIMESTAMP_MS TIMESTAMP_NS TIMESTAMPTZ INTERVAL UUID BIT JSON
		STRUCT MAP UNION NULL`) {
		m[k] = true
	}
	return m
}()

// name is t's DuckDB type name, for messages.
func (t *colType) name() string {
	switch t.kind {
	case "LIST":
		return t.elem.name() + "[]"
	case "ARRAY":
		return t.elem.name() + "[n]"
	case "DECIMAL":
		return fmt.Sprintf("DECIMAL(%d,%d)", t.width, t.scale)
	}
	return t.kind
}

// appendBinary appends v, a non-NULL value of type t, in PostgreSQL's
// binary format for t.oid(). t must have passed binaryOK.
func (t *colType) appendBinary(b []byte, v any) ([]byte, error) {
	switch t.kind {
	case "LIST", "ARRAY":
		l, ok := v.([]any)
		if !ok {
			break
		}
		return t.appendBinaryArray(b, l)
	case "STRUCT", "MAP", "UNION", "JSON":
		// json's binary form is its text.
		return t.appendJSON(b, v), nil
	case "VARCHAR", "ENUM":
		return appendScalar(b, t, v), nil
	}
	switch o := t.oid(); o {
	case oidBool:
		if x, ok := v.(bool); ok {
			if x {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
	case oidInt2, oidInt4, oidInt8:
		if n, ok := anyInt(v); ok {
			switch o {
			case oidInt2:
				return binary.BigEndian.AppendUint16(b, uint16(n)), nil
			case oidInt4:
				return binary.BigEndian.AppendUint32(b, uint32(n)), nil
			}
			return binary.BigEndian.AppendUint64(b, uint64(n)), nil
		}
	case oidFloat4:
		if f, ok := v.(float32); ok {
			return binary.BigEndian.AppendUint32(b, math.Float32bits(f)), nil
		}
	case oidFloat8:
		if f, ok := v.(float64); ok {
			return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
		}
	case oidNumeric:
		if n, scale, ok := numericOf(v); ok {
			return appendNumeric(b, n, scale), nil
		}
	case oidBytea:
		if p, ok := v.([]byte); ok {
			return append(b, p...), nil
		}
	case oidUUID:
		switch u := v.(type) {
		case []byte:
			if len(u) == 16 {
				return append(b, u...), nil
			}
		case duck.UUID:
			return append(b, u[:]...), nil
		case *duck.UUID:
			return append(b, u[:]...), nil
		}
	case oidDate, oidTime, oidTimetz, oidTimestamp, oidTimestamptz:
		if tm, ok := v.(time.Time); ok {
			return appendBinaryTime(b, o, tm), nil
		}
	case oidVarbit:
		var bits string
		switch x := v.(type) {
		case string:
			bits = x
		case fmt.Stringer:
			bits = x.String()
		}
		if strings.Trim(bits, "01") == "" {
			return appendBits(b, bits), nil
		}
	case oidInterval:
		if iv, ok := v.(duck.Interval); ok {
			b = binary.BigEndian.AppendUint64(b, uint64(iv.Micros))
			b = binary.BigEndian.AppendUint32(b, uint32(iv.Days))
			return binary.BigEndian.AppendUint32(b, uint32(iv.Months)), nil
		}
	}
	return nil, notSupported("binary format for DuckDB type %s holding %T", t.name(), v)
}

// appendBits appends bits, a string of 0s and 1s, as a binary varbit: the
// length in bits, then the bits, the first in the high bit of the first
// byte.
func appendBits(b []byte, bits string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(bits)))
	for i := 0; i < len(bits); i += 8 {
		var c byte
		for j := 0; j < 8; j++ {
			c <<= 1
			if i+j < len(bits) && bits[i+j] == '1' {
				c |= 1
			}
		}
		b = append(b, c)
	}
	return b
}

func anyInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	}
	return 0, false
}

// numericOf is v, a DuckDB DECIMAL or wide integer, as an unscaled integer
// and a scale.
func numericOf(v any) (*big.Int, int, bool) {
	switch v := v.(type) {
	case duck.Decimal:
		if v.Value == nil {
			return new(big.Int), int(v.Scale), true
		}
		return v.Value, int(v.Scale), true
	case *big.Int:
		return v, 0, true
	case uint64:
		return new(big.Int).SetUint64(v), 0, true
	case int64:
		return big.NewInt(v), 0, true
	}
	return nil, 0, false
}

var nbase = big.NewInt(10000)

// appendNumeric appends n·10^-scale in PostgreSQL's binary numeric form:
// ndigits, weight, sign, dscale, then base-10000 digits, most significant
// first, without leading or trailing zero digits.
func appendNumeric(b []byte, n *big.Int, scale int) []byte {
	neg := n.Sign() < 0
	abs := new(big.Int).Abs(n)
	// Align the fraction to whole base-10000 digits.
	pad := (4 - scale%4) % 4
	if pad > 0 {
		abs.Mul(abs, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(pad)), nil))
	}
	fracDigits := (scale + pad) / 4
	var digits []int16 // least significant first
	var m big.Int
	for abs.Sign() > 0 {
		abs.QuoRem(abs, nbase, &m)
		digits = append(digits, int16(m.Int64()))
	}
	weight := len(digits) - fracDigits - 1
	// Drop trailing zero digits (the least significant).
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
	}
	// Leading zeros cannot occur: the loop stops at the last non-zero.
	sign := uint16(0)
	if neg && len(digits) > 0 {
		sign = 0x4000
	}
	if len(digits) == 0 {
		weight = 0
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(scale))
	for i := len(digits) - 1; i >= 0; i-- {
		b = binary.BigEndian.AppendUint16(b, uint16(digits[i]))
	}
	return b
}

// appendBinaryTime appends v as the date, time or timestamp type oid.
func appendBinaryTime(b []byte, oid uint32, v time.Time) []byte {
	switch oid {
	case oidDate:
		var d int32
		switch days := v.Unix() / 86400; {
		case days == math.MaxInt32:
			d = math.MaxInt32 // infinity
		case days == -math.MaxInt32:
			d = math.MinInt32 // -infinity
		default:
			d = int32(floorDiv(v.Unix(), 86400) - pgEpochDays)
		}
		return binary.BigEndian.AppendUint32(b, uint32(d))
	case oidTime:
		return binary.BigEndian.AppendUint64(b, uint64(clockMicros(v)))
	case oidTimetz:
		_, off := v.Zone()
		b = binary.BigEndian.AppendUint64(b, uint64(clockMicros(v)))
		return binary.BigEndian.AppendUint32(b, uint32(int32(-off))) // seconds west of UTC
	}
	var us int64
	switch u := v.UnixMicro(); u {
	case math.MaxInt64:
		us = math.MaxInt64 // infinity
	case -math.MaxInt64:
		us = math.MinInt64 // -infinity
	default:
		us = u - pgEpochMicros
	}
	return binary.BigEndian.AppendUint64(b, uint64(us))
}

func clockMicros(v time.Time) int64 {
	return int64(v.Hour())*3600e6 + int64(v.Minute())*60e6 + int64(v.Second())*1e6 + int64(v.Nanosecond()/1000)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// appendBinaryArray appends l, a (possibly nested) list, as a PostgreSQL
// binary array: dimensions, a NULL flag, the element OID, each dimension's
// length and lower bound (1), then the elements.
func (t *colType) appendBinaryArray(b []byte, l []any) ([]byte, error) {
	elem := t.elem
	dims := []int{len(l)}
	for e := t; e.elem.kind == "LIST" || e.elem.kind == "ARRAY"; e = e.elem {
		elem = e.elem.elem
		n := -1
		if len(l) > 0 {
			if first, ok := firstAt(l, len(dims)); ok {
				n = len(first)
			}
		}
		if n < 0 {
			n = 0
		}
		dims = append(dims, n)
	}
	total := 1
	for _, d := range dims {
		total *= d
	}
	if total == 0 {
		dims = nil
	}
	flat := make([]any, 0, total)
	var err error
	if flat, err = flatten(flat, l, dims); err != nil {
		return nil, err
	}
	hasNull := 0
	for _, v := range flat {
		if v == nil {
			hasNull = 1
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(dims)))
	b = binary.BigEndian.AppendUint32(b, uint32(hasNull))
	b = binary.BigEndian.AppendUint32(b, elem.oid())
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
		b = binary.BigEndian.AppendUint32(b, 1)
	}
	for _, v := range flat {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1
			continue
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		if b, err = elem.appendBinary(b, v); err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return b, nil
}

// firstAt is the first list depth levels down l.
func firstAt(l []any, depth int) ([]any, bool) {
	cur := l
	for range depth {
		if len(cur) == 0 {
			return nil, false
		}
		next, ok := cur[0].([]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// flatten appends l's elements in row-major order, checking that l is as
// rectangular as dims says: PostgreSQL's arrays are.
func flatten(out, l []any, dims []int) ([]any, error) {
	if len(dims) == 0 {
		return out, nil
	}
	if len(l) != dims[0] {
		return nil, notSupported("binary format for a DuckDB list of lists of different lengths (PostgreSQL arrays are rectangular)")
	}
	if len(dims) == 1 {
		return append(out, l...), nil
	}
	for _, v := range l {
		sub, ok := v.([]any)
		if !ok {
			return nil, notSupported("binary format for a DuckDB list of lists holding NULL lists (PostgreSQL arrays are rectangular)")
		}
		var err error
		if out, err = flatten(out, sub, dims[1:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
