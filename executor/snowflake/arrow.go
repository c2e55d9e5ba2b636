package snowflake

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/snowflakedb/gosnowflake"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// arrowContext asks the driver for a statement's Arrow chunks as records
// in Snowflake's own encoding (WithArrowBatches): NUMBERs stay scaled
// integers (WithHigherPrecision keeps the driver from dividing them into
// floats) and timestamps stay epoch integers or structs
// (UseOriginalTimestamp). The driver still reinterprets TIME's scaled
// integer as a time64[ns] and leaves the other types alone.
func arrowContext(ctx context.Context) context.Context {
	ctx = gosnowflake.WithArrowBatches(ctx)
	return gosnowflake.WithArrowBatchesTimestampOption(ctx, gosnowflake.UseOriginalTimestamp)
}

// readBatches appends a DataRow for each row of batches, fetching them in
// order under ctx, and returns the number of rows.
func readBatches(ctx context.Context, b *pgwire.Builder, batches []*gosnowflake.ArrowBatch, cols []column, maxBytes int) (int64, error) {
	var n int64
	for _, batch := range batches {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		recs, err := batch.WithContext(ctx).Fetch()
		if err != nil {
			return n, err
		}
		for i, rec := range *recs {
			m, err := appendRecord(b, rec, cols, maxBytes)
			n += m
			if err != nil {
				releaseAll((*recs)[i:])
				return n, err
			}
			rec.Release()
		}
	}
	return n, nil
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// appendRecord appends a DataRow for each row of rec while the answer
// stays within maxBytes (no bound when 0).
func appendRecord(b *pgwire.Builder, rec arrow.RecordBatch, cols []column, maxBytes int) (int64, error) {
	if int(rec.NumCols()) != len(cols) {
		return 0, fmt.Errorf("snowflake: a record of %d columns for %d", rec.NumCols(), len(cols))
	}
	arrs := rec.Columns()
	scales := make([]int, len(cols))
	for i, f := range rec.Schema().Fields() {
		scales[i] = fieldScale(f, cols[i].scale)
	}
	for r := range int(rec.NumRows()) {
		err := appendRow(b, cols, func(dst []byte, i int) ([]byte, bool, error) {
			if arrs[i].IsNull(r) {
				return dst, false, nil
			}
			dst, err := cols[i].appendArrow(dst, arrs[i], r, scales[i])
			return dst, true, err
		})
		if err != nil {
			return int64(r), err
		}
		if maxBytes > 0 && len(b.B) > maxBytes {
			return int64(r + 1), executor.ErrTooLarge
		}
	}
	return rec.NumRows(), nil
}

// fieldScale is the scale in a field's Snowflake metadata, else def.
func fieldScale(f arrow.Field, def int) int {
	if s, ok := f.Metadata.GetValue("scale"); ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 38 {
			return n
		}
	}
	return def
}

// appendArrow appends row r of a, a non-NULL value of c in Snowflake's
// Arrow encoding with the given scale, in PostgreSQL's text format.
func (c column) appendArrow(b []byte, a arrow.Array, r, scale int) ([]byte, error) {
	switch c.oid {
	case oidInt8, oidNumeric:
		if s, ok := arrowInteger(a, r); ok {
			return c.appendDecimal(b, scaledText(s, scale))
		}
	case oidFloat8:
		if a, ok := a.(*array.Float64); ok {
			return appendFloat8(b, a.Value(r))
		}
	case oidBool:
		if a, ok := a.(*array.Boolean); ok {
			return appendBool(b, a.Value(r))
		}
	case oidBytea:
		if a, ok := a.(*array.Binary); ok {
			b = append(b, '\\', 'x')
			return hex.AppendEncode(b, a.Value(r)), nil
		}
	case oidDate:
		if a, ok := a.(*array.Date32); ok {
			return c.appendTime(b, time.Unix(int64(a.Value(r))*86400, 0).UTC()), nil
		}
	case oidTime:
		if v, ok := arrowInt64(a, r); ok {
			return c.appendTime(b, time.Time{}.Add(time.Duration(v*pow10(9-scale)))), nil
		}
	case oidTimestamp, oidTimestamptz:
		if t, ok := arrowTimestamp(a, r, scale, c.typ == "TIMESTAMP_TZ"); ok {
			return c.appendTime(b, t), nil
		}
	default:
		switch a := a.(type) {
		case *array.String:
			return append(b, a.Value(r)...), nil
		case *array.Struct:
			if c.typ == "DECFLOAT" {
				return appendDecfloat(b, a, r)
			}
		}
	}
	return nil, fmt.Errorf("unexpected Arrow %s for %s", a.DataType(), c.typ)
}

// arrowInteger is row r of a NUMBER column, which Snowflake sends in the
// narrowest of Int8, Int16, Int32, Int64 and Decimal128 that holds a
// chunk's values, as decimal text.
func arrowInteger(a arrow.Array, r int) (string, bool) {
	if a, ok := a.(*array.Decimal128); ok {
		return a.Value(r).BigInt().String(), true
	}
	v, ok := arrowInt64(a, r)
	return strconv.FormatInt(v, 10), ok
}

// arrowInt64 is row r of an integer column of any width.
func arrowInt64(a arrow.Array, r int) (int64, bool) {
	switch a := a.(type) {
	case *array.Int8:
		return int64(a.Value(r)), true
	case *array.Int16:
		return int64(a.Value(r)), true
	case *array.Int32:
		return int64(a.Value(r)), true
	case *array.Int64:
		return a.Value(r), true
	case *array.Time64: // TIME, reinterpreted by the driver, still scaled
		return int64(a.Value(r)), true
	}
	return 0, false
}

// arrowTimestamp decodes Snowflake's TIMESTAMP_* encodings: an Int64 of
// scaled seconds; (epoch, fraction) and (epoch, fraction, timezone)
// structs of seconds and nanoseconds; and TIMESTAMP_TZ's (scaled value,
// timezone). The time zone is dropped: PostgreSQL prints a timestamptz in
// the session's TimeZone.
func arrowTimestamp(a arrow.Array, r, scale int, tz bool) (time.Time, bool) {
	if v, ok := a.(*array.Int64); ok {
		return scaledTime(v.Value(r), scale), true
	}
	s, ok := a.(*array.Struct)
	if !ok || s.NumField() < 2 {
		return time.Time{}, false
	}
	epoch, ok := s.Field(0).(*array.Int64)
	if !ok {
		return time.Time{}, false
	}
	if tz && s.NumField() == 2 {
		return scaledTime(epoch.Value(r), scale), true
	}
	frac, ok := s.Field(1).(*array.Int32)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(epoch.Value(r), int64(frac.Value(r))).UTC(), true
}

// scaledTime is the instant v/10^scale seconds after the epoch.
func scaledTime(v int64, scale int) time.Time {
	p := pow10(scale)
	return time.Unix(v/p, v%p*pow10(9-scale)).UTC()
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// appendDecfloat prints a DECFLOAT, sent as (exponent, two's-complement
// big-endian mantissa), as the driver does: d.ddd, with e and the
// exponent when it is not 0.
func appendDecfloat(b []byte, s *array.Struct, r int) ([]byte, error) {
	exp, ok1 := s.Field(0).(*array.Int16)
	man, ok2 := s.Field(1).(*array.Binary)
	if !ok1 || !ok2 || len(man.Value(r)) == 0 {
		return nil, fmt.Errorf("unexpected Arrow %s for DECFLOAT", s.DataType())
	}
	raw := man.Value(r)
	n := new(big.Int).SetBytes(raw)
	if raw[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
	}
	digits := strings.TrimPrefix(n.String(), "-")
	if n.Sign() == 0 {
		return append(b, '0'), nil
	}
	if n.Sign() < 0 {
		b = append(b, '-')
	}
	b = append(b, digits[0])
	if len(digits) > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	if e := int(exp.Value(r)) + len(digits) - 1; e != 0 {
		b = append(b, 'e')
		b = strconv.AppendInt(b, int64(e), 10)
	}
	return b, nil
}
