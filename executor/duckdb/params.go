//go:build cgo

package duckdb

import (
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
)

// More PostgreSQL type OIDs, for parameters.
const (
	oidName    = 19
	oidUnknown = 705
	oidBpchar  = 1042
	oidVarchar = 1043
	oidJSONB   = 3802
)

// formatAt is the format code of column or parameter i of n, given
// formats as Bind carries them: none (all text), one for all, or one each.
func formatAt(formats []int16, i, n int) (int16, error) {
	switch len(formats) {
	case 0:
		return 0, nil
	case 1:
		return checkFormat(formats[0])
	case n:
		return checkFormat(formats[i])
	}
	return 0, newError("08P01", "%d format codes for %d values", len(formats), n)
}

func checkFormat(f int16) (int16, error) {
	if f != 0 && f != 1 {
		return 0, newError("08P01", "unsupported format code: %d", f)
	}
	return f, nil
}

// bindArgs decodes req's parameters into the values bound to stmt.
// Binary ones are decoded by their OID. Text ones stay strings, which
// DuckDB casts to whatever type it inferred for the parameter, except where
// DuckDB could not infer one and the OID names a type: then they are
// converted, so that `$1 + 1` with an int8 '41' is 42.
func bindArgs(stmt *duck.Stmt, req *executor.Request) ([]driver.NamedValue, error) {
	if n := stmt.NumInput(); n != len(req.Params) {
		if len(req.Params) == 0 && !req.Extended() {
			return nil, newError("42P02", "there is no parameter $1")
		}
		return nil, newError("08P01", "bind message supplies %d parameters, but prepared statement requires %d", len(req.Params), n)
	}
	args := make([]driver.NamedValue, len(req.Params))
	for i, p := range req.Params {
		args[i].Ordinal = i + 1
		if p == nil {
			continue
		}
		f, err := formatAt(req.ParamFormats, i, len(req.Params))
		if err != nil {
			return nil, err
		}
		var oid uint32
		if i < len(req.ParamOIDs) {
			oid = req.ParamOIDs[i]
		}
		t, err := stmt.ParamType(i + 1)
		known := err == nil && t != duck.TYPE_INVALID && t != duck.TYPE_ANY && t != duck.TYPE_SQLNULL
		if f == 1 {
			args[i].Value, err = decodeBinary(oid, p, known)
		} else {
			args[i].Value, err = decodeText(oid, string(p), known)
		}
		if err != nil {
			return nil, paramError(i, err)
		}
	}
	return args, nil
}

func paramError(i int, err error) error {
	if e, ok := err.(*pgconn.PgError); ok {
		e.Message = "parameter $" + strconv.Itoa(i+1) + ": " + e.Message
		return e
	}
	return newError("22P03", "parameter $%d: %s", i+1, err.Error())
}

// decodeText converts s, a parameter in text format, for the type oid.
func decodeText(oid uint32, s string, known bool) (any, error) {
	if known {
		// DuckDB casts the string to the type it expects, exactly.
		return s, nil
	}
	t := strings.TrimSpace(s)
	switch oid {
	case oidInt2, oidInt4, oidInt8:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, newError("22P02", "invalid input syntax for type %s: %q", oidName2(oid), s)
		}
		return typedInt(oid, n)
	case oidFloat4, oidFloat8:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, newError("22P02", "invalid input syntax for type %s: %q", oidName2(oid), s)
		}
		if oid == oidFloat4 {
			return duck.Typed(float32(f), duck.TYPE_FLOAT), nil
		}
		return duck.Typed(f, duck.TYPE_DOUBLE), nil
	case oidNumeric:
		// With no type to cast to, an integer binds as an integer and
		// anything else as a double: DuckDB cannot take a decimal
		// parameter of unknown scale.
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return f, nil
		}
		return nil, newError("22P02", "invalid input syntax for type numeric: %q", s)
	case oidBool:
		b, ok := parseBool(t)
		if !ok {
			return nil, newError("22P02", "invalid input syntax for type boolean: %q", s)
		}
		return b, nil
	case oidDate:
		if d, err := time.Parse("2006-01-02", t); err == nil {
			return duck.Typed(d, duck.TYPE_DATE), nil
		}
	case oidTimestamp:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if ts, err := time.Parse(layout, t); err == nil {
				return duck.Typed(ts, duck.TYPE_TIMESTAMP), nil
			}
		}
	case oidTimestamptz:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z07:00"} {
			if ts, err := time.Parse(layout, t); err == nil {
				return duck.Typed(ts, duck.TYPE_TIMESTAMP_TZ), nil
			}
		}
	}
	return s, nil
}

func oidName2(oid uint32) string {
	switch oid {
	case oidInt2:
		return "smallint"
	case oidInt4:
		return "integer"
	case oidInt8:
		return "bigint"
	case oidFloat4:
		return "real"
	case oidFloat8:
		return "double precision"
	}
	return strconv.FormatUint(uint64(oid), 10)
}

func typedInt(oid uint32, n int64) (any, error) {
	switch oid {
	case oidInt2:
		if n < math.MinInt16 || n > math.MaxInt16 {
			return nil, newError("22003", "value %d is out of range for type smallint", n)
		}
		return duck.Typed(int16(n), duck.TYPE_SMALLINT), nil
	case oidInt4:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, newError("22003", "value %d is out of range for type integer", n)
		}
		return duck.Typed(int32(n), duck.TYPE_INTEGER), nil
	}
	return duck.Typed(n, duck.TYPE_BIGINT), nil
}

// parseBool accepts what PostgreSQL's boolin does.
func parseBool(s string) (bool, bool) {
	s = strings.ToLower(s)
	if s == "" {
		return false, false
	}
	for _, w := range []string{"true", "yes", "on"} {
		if strings.HasPrefix(w, s) && (s != "o") {
			return true, true
		}
	}
	for _, w := range []string{"false", "no", "off"} {
		if strings.HasPrefix(w, s) && (s != "o" && s != "of" || w == "off" && s == "of") {
			return false, true
		}
	}
	switch s {
	case "1":
		return true, true
	case "0":
		return false, true
	}
	return false, false
}

// decodeBinary decodes p, a parameter in PostgreSQL's binary format for the
// type oid.
func decodeBinary(oid uint32, p []byte, known bool) (any, error) {
	if elem, ok := elemOID[oid]; ok {
		return decodeBinaryArray(elem, p)
	}
	if oid == oidNumeric {
		s, err := numericText(p)
		if err != nil {
			return nil, err
		}
		return decodeText(oidNumeric, s, known)
	}
	v, err := decodeBinaryValue(oid, p)
	if err != nil {
		return nil, err
	}
	// An explicit DuckDB type, for parameters DuckDB could not type.
	if t, ok := duckType[oid]; ok {
		if _, isString := v.(string); !isString {
			return duck.Typed(v, t), nil
		}
	}
	return v, nil
}

// duckType is the DuckDB type a binary parameter of each OID binds as.
var duckType = map[uint32]duck.Type{
	oidInt2:        duck.TYPE_SMALLINT,
	oidInt4:        duck.TYPE_INTEGER,
	oidInt8:        duck.TYPE_BIGINT,
	oidFloat4:      duck.TYPE_FLOAT,
	oidFloat8:      duck.TYPE_DOUBLE,
	oidDate:        duck.TYPE_DATE,
	oidTime:        duck.TYPE_TIME,
	oidTimestamp:   duck.TYPE_TIMESTAMP,
	oidTimestamptz: duck.TYPE_TIMESTAMP_TZ,
}

// decodeBinaryValue decodes p, in the binary format of the type oid, into
// the Go value DuckDB takes for it.
func decodeBinaryValue(oid uint32, p []byte) (any, error) {
	bad := func() error {
		return newError("22P03", "incorrect binary data format for type %s (%d bytes)", oidName2(oid), len(p))
	}
	switch oid {
	case oidBool:
		if len(p) != 1 {
			return nil, bad()
		}
		return p[0] != 0, nil
	case oidInt2:
		if len(p) != 2 {
			return nil, bad()
		}
		return int16(binary.BigEndian.Uint16(p)), nil
	case oidInt4:
		if len(p) != 4 {
			return nil, bad()
		}
		return int32(binary.BigEndian.Uint32(p)), nil
	case oidInt8:
		if len(p) != 8 {
			return nil, bad()
		}
		return int64(binary.BigEndian.Uint64(p)), nil
	case oidFloat4:
		if len(p) != 4 {
			return nil, bad()
		}
		return math.Float32frombits(binary.BigEndian.Uint32(p)), nil
	case oidFloat8:
		if len(p) != 8 {
			return nil, bad()
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case oidText, oidVarchar, oidBpchar, oidName, oidUnknown, oidJSON:
		return string(p), nil
	case oidJSONB:
		if len(p) < 1 || p[0] != 1 {
			return nil, bad()
		}
		return string(p[1:]), nil
	case oidBytea:
		return append([]byte(nil), p...), nil
	case oidUUID:
		if len(p) != 16 {
			return nil, bad()
		}
		return string(appendUUID(nil, p)), nil
	case oidDate:
		if len(p) != 4 {
			return nil, bad()
		}
		switch d := int32(binary.BigEndian.Uint32(p)); d {
		case math.MaxInt32:
			return "infinity", nil
		case math.MinInt32:
			return "-infinity", nil
		default:
			return time.Unix((int64(d)+pgEpochDays)*86400, 0).UTC(), nil
		}
	case oidTime:
		if len(p) != 8 {
			return nil, bad()
		}
		us := int64(binary.BigEndian.Uint64(p))
		return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(us) * time.Microsecond), nil
	case oidTimestamp, oidTimestamptz:
		if len(p) != 8 {
			return nil, bad()
		}
		switch us := int64(binary.BigEndian.Uint64(p)); us {
		case math.MaxInt64:
			return "infinity", nil
		case math.MinInt64:
			return "-infinity", nil
		default:
			return time.UnixMicro(us + pgEpochMicros).UTC(), nil
		}
	case oidInterval:
		if len(p) != 16 {
			return nil, bad()
		}
		return duck.Interval{
			Micros: int64(binary.BigEndian.Uint64(p)),
			Days:   int32(binary.BigEndian.Uint32(p[8:])),
			Months: int32(binary.BigEndian.Uint32(p[12:])),
		}, nil
	}
	return nil, notSupported("a binary parameter of type OID %d", oid)
}

// elemOID is the element type of each array type.
var elemOID = func() map[uint32]uint32 {
	m := make(map[uint32]uint32, len(arrayOID))
	for e, a := range arrayOID {
		m[a] = e
	}
	m[1015] = oidVarchar // varchar[]
	return m
}()

// decodeBinaryArray decodes a one-dimensional binary array into a DuckDB
// list literal, which DuckDB casts to the list type it expects.
func decodeBinaryArray(elem uint32, p []byte) (any, error) {
	bad := newError("22P03", "incorrect binary data format for an array of type OID %d", elem)
	if len(p) < 12 {
		return nil, bad
	}
	ndim := int(binary.BigEndian.Uint32(p))
	if got := binary.BigEndian.Uint32(p[8:]); got != elem && !(elem == oidVarchar && got == oidText) {
		return nil, newError("42804", "wrong element type %d in an array of %d", got, elem)
	}
	p = p[12:]
	if ndim == 0 {
		return "[]", nil
	}
	if ndim != 1 {
		return nil, notSupported("a binary array parameter of %d dimensions", ndim)
	}
	if len(p) < 8 {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint32(p))
	p = p[8:]
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if len(p) < 4 {
			return nil, bad
		}
		l := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if i > 0 {
			b.WriteString(", ")
		}
		if l < 0 {
			b.WriteString("NULL")
			continue
		}
		if int(l) > len(p) {
			return nil, bad
		}
		var v any
		var err error
		if elem == oidNumeric {
			v, err = numericText(p[:l])
		} else {
			v, err = decodeBinaryValue(elem, p[:l])
		}
		if err != nil {
			return nil, err
		}
		p = p[l:]
		b.WriteString(listLiteral(v))
	}
	b.WriteByte(']')
	return b.String(), nil
}

// listLiteral writes v, a decoded element, as DuckDB's list cast reads it.
func listLiteral(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int16, int32, int64:
		return strconv.FormatInt(toInt(v), 10)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []byte:
		return quoteListString(`\x` + hex.EncodeToString(v))
	case time.Time:
		return quoteListString(v.Format("2006-01-02 15:04:05.999999Z07:00"))
	case duck.Interval:
		return quoteListString(string(appendInterval(nil, v)))
	case string:
		return quoteListString(v)
	}
	return "NULL"
}

func toInt(v any) int64 {
	n, _ := anyInt(v)
	return n
}

// quoteListString quotes s for DuckDB's VARCHAR to LIST cast, which
// takes backslash escapes inside quotes.
func quoteListString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// numericText is a binary numeric parameter as decimal text.
func numericText(p []byte) (string, error) {
	bad := newError("22P03", "incorrect binary data format for type numeric")
	if len(p) < 8 {
		return "", bad
	}
	ndigits := int(binary.BigEndian.Uint16(p))
	weight := int(int16(binary.BigEndian.Uint16(p[2:])))
	sign := binary.BigEndian.Uint16(p[4:])
	dscale := int(binary.BigEndian.Uint16(p[6:]))
	p = p[8:]
	if len(p) != 2*ndigits {
		return "", bad
	}
	switch sign {
	case 0xC000:
		return "NaN", nil
	case 0xD000:
		return "Infinity", nil
	case 0xF000:
		return "-Infinity", nil
	}
	n := new(big.Int)
	for i := 0; i < ndigits; i++ {
		n.Mul(n, nbase)
		n.Add(n, big.NewInt(int64(binary.BigEndian.Uint16(p[2*i:]))))
	}
	// n·10000^(weight-ndigits+1), shown with dscale decimals.
	exp := 4 * (weight - ndigits + 1)
	ten := big.NewInt(10)
	if exp+dscale >= 0 {
		n.Mul(n, new(big.Int).Exp(ten, big.NewInt(int64(exp+dscale)), nil))
	} else {
		n.Quo(n, new(big.Int).Exp(ten, big.NewInt(int64(-exp-dscale)), nil))
	}
	if sign == 0x4000 {
		n.Neg(n)
	}
	return string(appendDecimal(nil, duck.Decimal{Scale: uint8(min(dscale, 255)), Value: n})), nil
}
