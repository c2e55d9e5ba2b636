package admin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/sqlcached/sqlcached/internal/pgformat"
)

// Type is a column's type, as PostgreSQL names it.
type Type uint8

// Types of columns, and the Go type of their values in Result.Rows.
const (
	Text     Type = iota // text: string
	Int                  // int8: int64
	Float                // float8: float64
	Bool                 // bool: bool
	Time                 // timestamptz: time.Time
	Interval             // interval: time.Duration
)

// OID returns the type's PostgreSQL OID.
func (t Type) OID() uint32 {
	switch t {
	case Int:
		return 20
	case Float:
		return 701
	case Bool:
		return 16
	case Time:
		return 1184
	case Interval:
		return 1186
	}
	return 25
}

// Size returns the type's size in a RowDescription: -1 for variable
// length.
func (t Type) Size() int16 {
	switch t {
	case Int, Float, Time:
		return 8
	case Bool:
		return 1
	case Interval:
		return 16
	}
	return -1
}

// Column is a column of a Result.
type Column struct {
	Name string
	Type Type
}

// Result is a command's answer: a table, possibly of no columns, and the
// tag PostgreSQL's CommandComplete carries (SHOW, INVALIDATE, RELOAD).
type Result struct {
	Columns []Column
	// Rows hold, per column, nil (NULL) or a value of the column's Go
	// type (see Type).
	Rows [][]any
	Tag  string
	// Notice is something the operator should know although the command
	// succeeded (an invalidation Redis has not heard of yet).
	Notice string
}

// Text returns the rows in PostgreSQL's text forms (DateStyle ISO,
// IntervalStyle postgres), nil for NULL.
func (r *Result) Text() [][]*string {
	out := make([][]*string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = make([]*string, len(row))
		for j, v := range row {
			if v != nil {
				s := text(v)
				out[i][j] = &s
			}
		}
	}
	return out
}

func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return string(pgformat.AppendFloat(nil, v, 64))
	case bool:
		if v {
			return "t"
		}
		return "f"
	case time.Time:
		b := pgformat.AppendTime(nil, v, "2006-01-02 15:04:05.999999")
		return string(pgformat.AppendOffset(b, v))
	case time.Duration:
		return interval(v)
	}
	return ""
}

// interval prints d as PostgreSQL prints an interval of seconds:
// HH:MM:SS with the fraction when there is one, hours past 24 kept.
func interval(d time.Duration) string {
	var b []byte
	if d < 0 {
		b, d = append(b, '-'), -d
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), d%time.Minute
	if h < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, h, 10)
	b = append(b, ':', byte('0'+m/10), byte('0'+m%10), ':')
	secs := int64(s / time.Second)
	b = append(b, byte('0'+secs/10), byte('0'+secs%10))
	if us := int64(s%time.Second) / 1000; us != 0 {
		frac := strconv.AppendInt(nil, 1e6+us, 10)[1:]
		for frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		b = append(append(b, '.'), frac...)
	}
	return string(b)
}

// Objects returns the rows as JSON objects, their keys the column names
// in order: times in RFC 3339, intervals in seconds, NULL as null.
func (r *Result) Objects() []Object {
	out := make([]Object, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = Object{cols: r.Columns, vals: row}
	}
	return out
}

// Object is one row of a Result as a JSON object.
type Object struct {
	cols []Column
	vals []any
}

// MarshalJSON writes the row's columns in order.
func (o Object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, c := range o.cols {
		if i > 0 {
			b = append(b, ',')
		}
		key, err := marshal(c.Name)
		if err != nil {
			return nil, err
		}
		b = append(append(b, key...), ':')
		v := o.vals[i]
		switch x := v.(type) {
		case time.Time:
			v = x.Format(time.RFC3339Nano)
		case time.Duration:
			v = x.Seconds()
		}
		enc, err := marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(b, enc...)
	}
	return append(b, '}'), nil
}

// marshal is json.Marshal without HTML escaping: "id < 50" stays as it
// is written.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
