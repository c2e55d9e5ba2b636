package snowflake

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/pgformat"
)

// PostgreSQL type OIDs.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidText        = 25
	oidJSON        = 114
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
)

// column is a result column: its Snowflake type and how PostgreSQL
// describes and prints it.
type column struct {
	name      string
	typ       string // the driver's DatabaseTypeName: FIXED, REAL, TEXT, ...
	precision int    // FIXED
	scale     int    // FIXED
	oid       uint32
	size      int16
	typmod    int32
	loc       *time.Location // TIMESTAMP_LTZ and _TZ are printed in it
}

// newColumn describes a column the driver reports as typ (its
// DatabaseTypeName) with precision p and scale s.
func newColumn(name, typ string, p, s int64, loc *time.Location) column {
	c := column{name: name, typ: typ, size: -1, typmod: -1, loc: loc}
	switch c.typ {
	case "FIXED":
		c.precision, c.scale = int(p), int(s)
		if s == 0 && p <= 18 {
			c.oid, c.size = oidInt8, 8
		} else {
			c.oid, c.typmod = oidNumeric, int32(p<<16|s)+4
		}
	case "REAL":
		c.oid, c.size = oidFloat8, 8
	case "BOOLEAN":
		c.oid, c.size = oidBool, 1
	case "DATE":
		c.oid, c.size = oidDate, 4
	case "TIME":
		c.oid, c.size = oidTime, 8
		c.scale = int(p) // the driver reports TIME's scale as its precision
	case "TIMESTAMP_NTZ":
		c.oid, c.size = oidTimestamp, 8
	case "TIMESTAMP_LTZ", "TIMESTAMP_TZ":
		c.oid, c.size = oidTimestamptz, 8
	case "VARIANT", "OBJECT", "ARRAY", "MAP":
		c.oid = oidJSON
	case "BINARY":
		c.oid = oidBytea
	default: // TEXT, DECFLOAT and anything new: as text
		c.oid = oidText
	}
	return c
}

// appendText appends v, a non-NULL value the driver returned for c, in
// PostgreSQL's text format. The driver returns different Go types for
// Arrow and JSON results; each case takes both.
func (c column) appendText(b []byte, v any) ([]byte, error) {
	switch c.oid {
	case oidInt8, oidNumeric:
		return c.appendNumber(b, v)
	case oidFloat8:
		return appendFloat8(b, v)
	case oidBool:
		return appendBool(b, v)
	case oidBytea:
		if p, ok := v.([]byte); ok {
			b = append(b, '\\', 'x')
			return hex.AppendEncode(b, p), nil
		}
	case oidDate, oidTime, oidTimestamp, oidTimestamptz:
		if t, ok := v.(time.Time); ok {
			return c.appendTime(b, t), nil
		}
	default:
		switch v := v.(type) {
		case string:
			return append(b, v...), nil
		case []byte:
			return append(b, v...), nil
		}
		return fmt.Append(b, v), nil
	}
	return nil, fmt.Errorf("unexpected %T for %s", v, c.typ)
}

// appendNumber prints a FIXED value as the driver returns it from a JSON
// result in its higher-precision mode: int64 or string (scale 0,
// precision up to 18), big.Int (larger precision) or big.Float (a
// scale); or the decimal text without that mode.
func (c column) appendNumber(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int64:
		return c.appendDecimal(b, strconv.FormatInt(v, 10))
	case *big.Int:
		return c.appendDecimal(b, v.String())
	case big.Int:
		return c.appendDecimal(b, v.String())
	case big.Float:
		return c.appendFloat(b, &v)
	case *big.Float:
		return c.appendFloat(b, v)
	case string:
		return c.appendDecimal(b, v)
	case float64:
		return nil, fmt.Errorf("NUMBER arrived as float64 %v, which is not exact", v)
	}
	return nil, fmt.Errorf("unexpected %T for NUMBER", v)
}

// appendFloat appends a scaled NUMBER the driver parsed from its decimal
// text into a big.Float of 127 bits, rounding away from zero. The value
// is the one decimal with c.scale digits that parses to f; two do only
// when the unscaled integer exceeds 2^126, and then appendFloat fails
// with ErrInexactNumber rather than guess.
func (c column) appendFloat(b []byte, f *big.Float) ([]byte, error) {
	if c.scale == 0 {
		return append(b, f.Text('f', 0)...), nil
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.scale)), nil)
	x := new(big.Float).SetPrec(f.Prec()+256).Mul(f, new(big.Float).SetInt(pow))
	n, _ := x.Int(nil)
	var found *big.Int
	for d := int64(-1); d <= 1; d++ {
		cand := new(big.Int).Add(n, big.NewInt(d))
		if q, ok := parsed(cand, c.scale); !ok || q.Cmp(f) != 0 {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: NUMBER(%d,%d) near %s", ErrInexactNumber, c.precision, c.scale, f.Text('f', c.scale))
		}
		found = cand
	}
	if found == nil {
		return nil, fmt.Errorf("%w: NUMBER(%d,%d) near %s", ErrInexactNumber, c.precision, c.scale, f.Text('f', c.scale))
	}
	return c.appendDecimal(b, scaledText(found.String(), c.scale))
}

// parsed is the big.Float the driver makes of the decimal n/10^scale.
func parsed(n *big.Int, scale int) (*big.Float, bool) {
	f, _, err := big.ParseFloat(scaledText(n.String(), scale), 10, 127, big.AwayFromZero)
	return f, err == nil
}

// scaledText prints the integer in decimal text s with scale digits
// after the point.
func scaledText(s string, scale int) string {
	return string(pgformat.AppendScaled(nil, s, scale))
}

// appendDecimal appends decimal text with exactly c.scale digits after
// the point.
func (c column) appendDecimal(b []byte, s string) ([]byte, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) {
		return nil, fmt.Errorf("malformed NUMBER %q", s)
	}
	if len(frac) > c.scale {
		if strings.Trim(frac[c.scale:], "0") != "" {
			return nil, fmt.Errorf("NUMBER %q has more than %d digits after the point", s, c.scale)
		}
		frac = frac[:c.scale]
	}
	if neg {
		b = append(b, '-')
	}
	b = append(b, whole...)
	if c.scale > 0 {
		b = append(b, '.')
		b = append(b, frac...)
		b = append(b, strings.Repeat("0", c.scale-len(frac))...)
	}
	return b, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendFloat8 prints a FLOAT (float64 from Arrow, text from JSON) as
// PostgreSQL 12 and later do: the shortest text that reads back the same,
// in exponent form outside 1e-4 to 1e15.
func appendFloat8(b []byte, v any) ([]byte, error) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case string:
		var err error
		if f, err = strconv.ParseFloat(v, 64); err != nil {
			return nil, fmt.Errorf("malformed FLOAT %q", v)
		}
	default:
		return nil, fmt.Errorf("unexpected %T for FLOAT", v)
	}
	return pgformat.AppendFloat(b, f, 64), nil
}

// appendBool prints a BOOLEAN: bool from Arrow, "1"/"0" or
// "true"/"false" from JSON.
func appendBool(b []byte, v any) ([]byte, error) {
	var t bool
	switch v := v.(type) {
	case bool:
		t = v
	case string:
		var err error
		if t, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("malformed BOOLEAN %q", v)
		}
	default:
		return nil, fmt.Errorf("unexpected %T for BOOLEAN", v)
	}
	if t {
		return append(b, 't'), nil
	}
	return append(b, 'f'), nil
}

// appendTime prints dates and times as PostgreSQL does with DateStyle
// ISO, to the microsecond.
func (c column) appendTime(b []byte, t time.Time) []byte {
	switch c.oid {
	case oidDate:
		return pgformat.AppendTime(b, t, "2006-01-02")
	case oidTime:
		return t.Round(time.Microsecond).AppendFormat(b, "15:04:05.999999")
	case oidTimestamp:
		return pgformat.AppendTime(b, t.Round(time.Microsecond), "2006-01-02 15:04:05.999999")
	}
	t = t.Round(time.Microsecond).In(c.loc)
	b = pgformat.AppendTime(b, t, "2006-01-02 15:04:05.999999")
	return pgformat.AppendOffset(b, t)
}
