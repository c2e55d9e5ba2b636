package pgformat

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
)

// The text forms PostgreSQL prints values in (DateStyle ISO, IntervalStyle
// postgres, extra_float_digits 1), for warehouses whose answers are
// encoded as PostgreSQL would send them.

// AppendScaled appends the decimal integer digits (an optional '-' and
// decimal digits) divided by 10^scale, with exactly scale digits after the
// point, as PostgreSQL prints numeric(p,scale): 1250 at scale 2 is 12.50.
func AppendScaled(b []byte, digits string, scale int) []byte {
	if strings.HasPrefix(digits, "-") {
		b = append(b, '-')
		digits = digits[1:]
	}
	if scale <= 0 {
		return append(b, digits...)
	}
	if len(digits) <= scale {
		b = append(b, '0', '.')
		b = append(b, strings.Repeat("0", scale-len(digits))...)
		return append(b, digits...)
	}
	b = append(b, digits[:len(digits)-scale]...)
	b = append(b, '.')
	return append(b, digits[len(digits)-scale:]...)
}

// AppendFloat appends f as PostgreSQL 12 and later print float4 (bits 32)
// and float8 (bits 64): the shortest text that reads back the same, in
// exponent form outside 1e-4 to 1e15 (1e6 for float4), NaN and Infinity
// spelled as PostgreSQL spells them.
func AppendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0"...)
		}
		return append(b, '0')
	}
	e := strconv.AppendFloat(nil, f, 'e', -1, bits)
	exp, _ := strconv.Atoi(string(e[bytes.IndexByte(e, 'e')+1:]))
	maxExp := 15
	if bits == 32 {
		maxExp = 6
	}
	if exp < -4 || exp >= maxExp {
		return append(b, e...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits)
}

// AppendTime appends t in layout, with PostgreSQL's " BC" after years
// before 1 (year 0 is 1 BC).
func AppendTime(b []byte, t time.Time, layout string) []byte {
	if t.Year() > 0 {
		return t.AppendFormat(b, layout)
	}
	bc := t.AddDate(1-2*t.Year(), 0, 0)
	b = bc.AppendFormat(b, layout)
	return append(b, " BC"...)
}

// AppendOffset appends t's UTC offset as PostgreSQL prints it after a
// timestamptz: +HH, with :MM and :SS when they are not zero.
func AppendOffset(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = appendTwo(b, off/3600)
	if m, s := off%3600/60, off%60; m != 0 || s != 0 {
		b = append(b, ':')
		b = appendTwo(b, m)
		if s != 0 {
			b = append(b, ':')
			b = appendTwo(b, s)
		}
	}
	return b
}

func appendTwo(b []byte, n int) []byte {
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}
