package httpapi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Results are written from a cached answer as it is decoded: the
// RowDescription gives the columns, each DataRow a row, CommandComplete
// the end; the body is never built whole. Every cached answer is in text
// format (the HTTP API asks for no other), which the typed JSON encoding
// reads by column type:
//
//	int2, int4, oid       numbers
//	int8                  numbers, strings beyond ±2^53 (JSON's exact integers)
//	float4, float8        numbers; NaN, Infinity and -Infinity as strings
//	numeric               strings, to keep every digit
//	bool                  true and false
//	json, jsonb           the JSON itself
//	NULL                  null
//	anything else         its PostgreSQL text form, as a string
//
// CSV carries the text forms as COPY ... CSV HEADER does: NULL is an
// empty field, an empty string a quoted one.

// Result formats.
const (
	FormatJSON   = "json"
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

var contentTypes = map[string]string{
	FormatJSON:   "application/json",
	FormatCSV:    "text/csv; charset=utf-8; header=present",
	FormatNDJSON: "application/x-ndjson",
}

// resultFormat chooses the format of r's result: ?format= if given, else
// the most preferred of Accept's types that names one, else JSON.
func resultFormat(r *http.Request) (string, bool) {
	if f := r.URL.Query().Get("format"); f != "" {
		f = strings.ToLower(f)
		_, ok := contentTypes[f]
		return f, ok
	}
	best, bestQ := FormatJSON, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		media, params, _ := strings.Cut(part, ";")
		f := formatOf(strings.ToLower(strings.TrimSpace(media)))
		if f == "" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = x
				}
			}
		}
		if q > 0 && q > bestQ {
			best, bestQ = f, q
		}
	}
	return best, true
}

func formatOf(media string) string {
	switch media {
	case "application/json", "application/*", "*/*":
		return FormatJSON
	case "text/csv", "text/*":
		return FormatCSV
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return FormatNDJSON
	}
	return ""
}

// column is one column of a RowDescription.
type column struct {
	name   string
	oid    uint32
	binary bool
}

// errMalformed is an answer the cache holds that does not decode: a bug,
// never the client's doing.
var errMalformed = errors.New("httpapi: malformed answer in the cache")

// writeResult writes the answer wire in format, flushing as it goes.
func writeResult(w http.ResponseWriter, format string, wire []byte) error {
	w.Header().Set("Content-Type", contentTypes[format])
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	var enc encoder
	switch format {
	case FormatCSV:
		enc = &csvEncoder{}
	case FormatNDJSON:
		enc = &ndjsonEncoder{}
	default:
		enc = &jsonEncoder{}
	}
	err := encode(bw, enc, wire)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// encoder turns an answer into one format. Each method appends to b and
// returns it.
type encoder interface {
	header(b []byte, cols []column) []byte
	row(b []byte, cols []column, vals [][]byte) []byte
	footer(b []byte, rows int64, tag string) []byte
}

// encode decodes wire message by message and writes enc's encoding of it.
func encode(bw *bufio.Writer, enc encoder, wire []byte) error {
	var (
		cols   []column
		vals   [][]byte
		rows   int64
		tag    string
		headed bool
	)
	emit := func(b []byte) error {
		_, err := bw.Write(b)
		return err
	}
	for len(wire) > 0 {
		if len(wire) < 5 {
			return errMalformed
		}
		n := 1 + int(binary.BigEndian.Uint32(wire[1:5]))
		if n < 5 || n > len(wire) {
			return errMalformed
		}
		typ, body := wire[0], wire[5:n]
		wire = wire[n:]
		var err error
		switch typ {
		case 'T':
			if cols, err = rowDescription(body); err != nil {
				return err
			}
		case 'D':
			if !headed {
				if err := emit(enc.header(bw.AvailableBuffer(), cols)); err != nil {
					return err
				}
				headed = true
			}
			if vals, err = dataRow(body, vals[:0]); err != nil {
				return err
			}
			if len(vals) != len(cols) {
				return errMalformed
			}
			if err := emit(enc.row(bw.AvailableBuffer(), cols, vals)); err != nil {
				return err
			}
			rows++
		case 'C':
			tag = string(bytes.TrimRight(body, "\x00"))
		}
	}
	if !headed {
		if err := emit(enc.header(bw.AvailableBuffer(), cols)); err != nil {
			return err
		}
	}
	return emit(enc.footer(bw.AvailableBuffer(), rows, tag))
}

func rowDescription(body []byte) ([]column, error) {
	sc := pgwire.NewScanner(body)
	n := int(sc.Int16())
	if n < 0 {
		return nil, errMalformed
	}
	cols := make([]column, 0, n)
	for range n {
		name := string(sc.CString())
		sc.Int32() // table
		sc.Int16() // attribute number
		oid := uint32(sc.Int32())
		sc.Int16() // type size
		sc.Int32() // type modifier
		format := sc.Int16()
		cols = append(cols, column{name: name, oid: oid, binary: format == 1})
	}
	if sc.Err != nil {
		return nil, errMalformed
	}
	return cols, nil
}

// dataRow appends a DataRow's values to vals: nil is NULL. They alias
// body.
func dataRow(body []byte, vals [][]byte) ([][]byte, error) {
	sc := pgwire.NewScanner(body)
	n := int(sc.Int16())
	for range n {
		size := sc.Int32()
		if size < 0 {
			vals = append(vals, nil)
			continue
		}
		v := sc.Next(int(size))
		if v == nil {
			v = []byte{}
		}
		vals = append(vals, v)
	}
	if sc.Err != nil {
		return nil, errMalformed
	}
	return vals, nil
}

// OIDs the typed encoding reads.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

// typeNames gives PostgreSQL's name of the built-in types by OID.
var typeNames = sync.OnceValue(pgtype.NewMap)

// typeName returns the name of the type oid, "" when it is not built in
// (a type of the warehouse's own: an enum, a composite).
func typeName(oid uint32) string {
	if t, ok := typeNames().TypeForOID(oid); ok {
		return t.Name
	}
	return ""
}

// appendValue appends v, of column c, as a typed JSON value.
func appendValue(b []byte, c *column, v []byte) []byte {
	switch {
	case v == nil:
		return append(b, "null"...)
	case c.binary:
		return appendString(b, []byte(`\x`+hex.EncodeToString(v)))
	}
	switch c.oid {
	case oidBool:
		switch string(v) {
		case "t":
			return append(b, "true"...)
		case "f":
			return append(b, "false"...)
		}
	case oidInt2, oidInt4, oidOID, oidFloat4, oidFloat8:
		if jsonNumber(v) {
			return append(b, v...)
		}
	case oidInt8:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n <= 1<<53 && n >= -(1<<53) {
			return append(b, v...)
		}
	case oidJSON, oidJSONB:
		// Compacted: one line per row in NDJSON.
		out := bytes.NewBuffer(b)
		if json.Compact(out, v) == nil {
			return out.Bytes()
		}
		b = out.Bytes()[:len(b)]
	}
	return appendString(b, v)
}

// jsonNumber reports whether v is a number as JSON writes it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(v []byte) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch n := digits(); {
	case n == 0, n > 1 && v[i-n] == '0':
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(v)
}

// appendString appends s as a JSON string; bytes that are not UTF-8
// become U+FFFD, as encoding/json writes them.
func appendString(b, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not in JavaScript strings
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// jsonEncoder writes {"columns": [...], "rows": [[...], ...],
// "row_count": n, "command": tag}.
type jsonEncoder struct{ rows int64 }

func (e *jsonEncoder) header(b []byte, cols []column) []byte {
	b = append(b, `{"columns":[`...)
	for i := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, []byte(cols[i].name))
		b = append(b, `,"type":`...)
		if name := typeName(cols[i].oid); name != "" {
			b = appendString(b, []byte(name))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"oid":`...)
		b = strconv.AppendUint(b, uint64(cols[i].oid), 10)
		b = append(b, '}')
	}
	return append(b, `],"rows":[`...)
}

func (e *jsonEncoder) row(b []byte, cols []column, vals [][]byte) []byte {
	if e.rows > 0 {
		b = append(b, ',')
	}
	e.rows++
	b = append(b, "\n["...)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(b, &cols[i], v)
	}
	return append(b, ']')
}

func (e *jsonEncoder) footer(b []byte, rows int64, tag string) []byte {
	b = append(b, `],"row_count":`...)
	b = strconv.AppendInt(b, rows, 10)
	if tag != "" {
		b = append(b, `,"command":`...)
		b = appendString(b, []byte(tag))
	}
	return append(b, "}\n"...)
}

// ndjsonEncoder writes one object per row, by column name.
type ndjsonEncoder struct{ keys [][]byte }

func (e *ndjsonEncoder) header(b []byte, cols []column) []byte {
	e.keys = make([][]byte, len(cols))
	for i := range cols {
		e.keys[i] = append(appendString(nil, []byte(cols[i].name)), ':')
	}
	return b
}

func (e *ndjsonEncoder) row(b []byte, cols []column, vals [][]byte) []byte {
	b = append(b, '{')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.keys[i]...)
		b = appendValue(b, &cols[i], v)
	}
	return append(b, "}\n"...)
}

func (e *ndjsonEncoder) footer(b []byte, _ int64, _ string) []byte { return b }

// csvEncoder writes a header line of column names and the text forms.
type csvEncoder struct{}

func (csvEncoder) header(b []byte, cols []column) []byte {
	for i := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSV(b, []byte(cols[i].name))
	}
	return append(b, '\n')
}

func (csvEncoder) row(b []byte, cols []column, vals [][]byte) []byte {
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case v == nil: // NULL: an empty field
		case cols[i].binary:
			b = append(b, `\x`...)
			b = hex.AppendEncode(b, v)
		default:
			b = appendCSV(b, v)
		}
	}
	return append(b, '\n')
}

func (csvEncoder) footer(b []byte, _ int64, _ string) []byte { return b }

// appendCSV appends v as a CSV field, quoted when it must be: empty (an
// unquoted empty field is NULL), or holding a comma, a quote, a line
// break, or spaces at either end.
func appendCSV(b, v []byte) []byte {
	if len(v) > 0 && !bytes.ContainsAny(v, ",\"\r\n") && v[0] != ' ' && v[len(v)-1] != ' ' {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, c := range v {
		if c == '"' {
			b = append(b, '"')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
