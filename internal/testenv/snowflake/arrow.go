//go:build cgo

package snowflake

import (
	"bytes"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// arrowChunk encodes rows as one Arrow IPC stream with a single record
// batch, each column in the physical form Snowflake uses for its type.
func arrowChunk(cols []column, rows [][]any) ([]byte, error) {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.arrowField(rows, i)
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, c := range cols {
		for _, r := range rows {
			c.appendArrow(b.Field(i), r[i])
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fixedType is the Arrow type Snowflake sends a chunk of column i's
// fixed values in: the narrowest of Int8, Int16, Int32 and Int64 (SB1 to
// SB8) that holds them all, else Decimal128 (SB16), whatever the
// column's precision; the scale travels in the field's metadata.
func fixedType(rows [][]any, i int, scale int) (arrow.DataType, string) {
	bits := 0
	for _, r := range rows {
		if n, ok := r[i].(*big.Int); ok {
			b := n.BitLen()
			if n.Sign() < 0 && new(big.Int).Add(n, big.NewInt(1)).BitLen() < b {
				b-- // -2^k fits in k+1 bits
			}
			bits = max(bits, b)
		}
	}
	switch {
	case bits < 8:
		return arrow.PrimitiveTypes.Int8, "SB1"
	case bits < 16:
		return arrow.PrimitiveTypes.Int16, "SB2"
	case bits < 32:
		return arrow.PrimitiveTypes.Int32, "SB4"
	case bits < 64:
		return arrow.PrimitiveTypes.Int64, "SB8"
	}
	return &arrow.Decimal128Type{Precision: 38, Scale: int32(scale)}, "SB16"
}

// arrowField is the column's Arrow field with Snowflake's field metadata.
func (c column) arrowField(rows [][]any, i int) arrow.Field {
	var t arrow.DataType
	physical := ""
	switch c.typ {
	case "fixed":
		t, physical = fixedType(rows, i, c.scale)
	case "real":
		t, physical = arrow.PrimitiveTypes.Float64, "DOUBLE"
	case "text", "variant", "object", "array":
		t, physical = arrow.BinaryTypes.String, "LOB"
	case "boolean":
		t, physical = arrow.FixedWidthTypes.Boolean, "SB1"
	case "date":
		t, physical = arrow.FixedWidthTypes.Date32, "SB4"
	case "time":
		t, physical = arrow.PrimitiveTypes.Int64, "SB8"
	case "timestamp_ntz", "timestamp_ltz":
		t, physical = arrow.PrimitiveTypes.Int64, "SB8"
		if c.scale > 7 {
			t, physical = arrow.StructOf(
				arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
				arrow.Field{Name: "fraction", Type: arrow.PrimitiveTypes.Int32},
			), "SB16"
		}
	case "timestamp_tz":
		if c.scale <= 3 {
			t = arrow.StructOf(
				arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
				arrow.Field{Name: "timezone", Type: arrow.PrimitiveTypes.Int32},
			)
		} else {
			t = arrow.StructOf(
				arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
				arrow.Field{Name: "fraction", Type: arrow.PrimitiveTypes.Int32},
				arrow.Field{Name: "timezone", Type: arrow.PrimitiveTypes.Int32},
			)
		}
		physical = "SB16"
	case "binary":
		t, physical = arrow.BinaryTypes.Binary, "BINARY"
	}
	md := arrow.NewMetadata(
		[]string{"logicalType", "precision", "scale", "charLength", "byteLength", "physicalType", "finalType"},
		[]string{
			strings.ToUpper(c.typ), strconv.Itoa(c.precision), strconv.Itoa(c.scale),
			strconv.Itoa(c.length), strconv.Itoa(c.length), physical, "T",
		})
	return arrow.Field{Name: c.name, Type: t, Nullable: true, Metadata: md}
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendArrow appends cell v to b, a builder of c's arrowField type.
func (c column) appendArrow(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int8Builder:
		b.Append(int8(v.(*big.Int).Int64()))
	case *array.Int16Builder:
		b.Append(int16(v.(*big.Int).Int64()))
	case *array.Int32Builder:
		b.Append(int32(v.(*big.Int).Int64()))
	case *array.Int64Builder:
		switch v := v.(type) {
		case *big.Int:
			b.Append(v.Int64())
		case int64: // time: nanoseconds since midnight
			b.Append(v / pow10[9-c.scale])
		case time.Time:
			b.Append(v.Unix()*pow10[c.scale] + int64(v.Nanosecond())/pow10[9-c.scale])
		}
	case *array.Decimal128Builder:
		b.Append(decimal128.FromBigInt(v.(*big.Int)))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.Date32Builder:
		b.Append(arrow.Date32(v.(int64)))
	case *array.BinaryBuilder:
		b.Append(v.([]byte))
	case *array.StructBuilder:
		c.appendStruct(b, v)
	}
}

// appendStruct appends a timestamp in Snowflake's struct forms:
// (epoch, fraction) for TIMESTAMP_NTZ and _LTZ of scale 8 and 9,
// (epoch, timezone) and (epoch, fraction, timezone) for TIMESTAMP_TZ,
// timezone being the offset in minutes plus 1440.
func (c column) appendStruct(b *array.StructBuilder, v any) {
	b.Append(true)
	t, tz := time.Time{}, -1
	switch v := v.(type) {
	case time.Time:
		t = v
	case tzValue:
		t, tz = v.t, v.offset+1440
	}
	if tz >= 0 && c.scale <= 3 {
		b.FieldBuilder(0).(*array.Int64Builder).Append(t.Unix()*pow10[c.scale] + int64(t.Nanosecond())/pow10[9-c.scale])
		b.FieldBuilder(1).(*array.Int32Builder).Append(int32(tz))
		return
	}
	b.FieldBuilder(0).(*array.Int64Builder).Append(t.Unix())
	b.FieldBuilder(1).(*array.Int32Builder).Append(int32(t.Nanosecond() / int(pow10[9-c.scale]) * int(pow10[9-c.scale])))
	if tz >= 0 {
		b.FieldBuilder(2).(*array.Int32Builder).Append(int32(tz))
	}
}
