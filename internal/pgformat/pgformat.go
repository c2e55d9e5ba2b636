// Package pgformat turns a PostgreSQL answer in text result format into the
// same answer in binary result format, for the column types whose binary
// form follows exactly from their text form.
//
// A driver such as the JDBC driver asks for text results the first times it
// runs a statement and for binary results once it has prepared it; both are
// the same answer. Deriving one from the other saves the warehouse a second
// execution. The conversion is exact or refused: a type it does not know, a
// value it cannot parse unambiguously (an interval, an array, a float NaN,
// bytea in escape output, a date in a non-ISO DateStyle) makes ToBinary
// report false, and the caller asks the warehouse.
package pgformat

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
)

// Options says what the session's settings make exact.
type Options struct {
	// ExactFloats: float4 and float8 text output round-trips to the same
	// bits (extra_float_digits of 3, or of 1 or 2 on PostgreSQL 12 and
	// later).
	ExactFloats bool
}

// Type OIDs of the convertible types.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidUnknown     = 705
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// Convertible reports whether ToBinary can convert values of type oid.
func Convertible(oid uint32, o Options) bool {
	switch oid {
	case oidBool, oidBytea, oidName, oidInt8, oidInt2, oidInt4, oidText, oidOID, oidJSON, oidUnknown,
		oidBPChar, oidVarchar, oidDate, oidTime, oidTimestamp, oidTimestampTZ, oidNumeric, oidUUID, oidJSONB:
		return true
	case oidFloat4, oidFloat8:
		return o.ExactFloats
	}
	return false
}

// ToBinary converts answer, the messages of a statement's answer in text
// format (RowDescription, DataRows, CommandComplete, as PostgreSQL sends
// them), to what PostgreSQL sends when Bind asks for formats: none (all
// text), one for every column, or one per column. It returns false when it
// cannot convert exactly; answer is never modified.
func ToBinary(answer []byte, formats []int16, o Options) ([]byte, bool) {
	if len(answer) < 5 || answer[0] != 'T' {
		return nil, false
	}
	n := 1 + int(binary.BigEndian.Uint32(answer[1:5]))
	if n < 7 || n > len(answer) {
		return nil, false
	}
	rd := answer[:n]
	cols := int(binary.BigEndian.Uint16(rd[5:7]))
	binCols, ok := columnFormats(formats, cols)
	if !ok {
		return nil, false
	}
	out := make([]byte, 0, len(answer)+len(answer)/8)
	// RowDescription, each field's format code replaced.
	out = append(out, rd[:7]...)
	types := make([]uint32, cols)
	p := 7
	for i := range cols {
		end := p
		for end < len(rd) && rd[end] != 0 {
			end++
		}
		if end+19 > len(rd) {
			return nil, false
		}
		types[i] = binary.BigEndian.Uint32(rd[end+7:])
		if binCols[i] && !Convertible(types[i], o) {
			return nil, false
		}
		out = append(out, rd[p:end+17]...)
		if binary.BigEndian.Uint16(rd[end+17:]) != 0 {
			return nil, false // not a text answer
		}
		f := uint16(0)
		if binCols[i] {
			f = 1
		}
		out = binary.BigEndian.AppendUint16(out, f)
		p = end + 19
	}
	if p != len(rd) {
		return nil, false
	}
	// DataRows converted; anything else copied.
	for p = n; p < len(answer); {
		if len(answer)-p < 5 {
			return nil, false
		}
		l := int(binary.BigEndian.Uint32(answer[p+1:]))
		if l < 4 || l > len(answer)-p-1 {
			return nil, false
		}
		msg := answer[p : p+1+l]
		p += 1 + l
		if msg[0] != 'D' {
			out = append(out, msg...)
			continue
		}
		if out, ok = appendRow(out, msg, types, binCols); !ok {
			return nil, false
		}
	}
	return out, true
}

// columnFormats returns which of cols columns formats asks in binary.
func columnFormats(formats []int16, cols int) ([]bool, bool) {
	bin := make([]bool, cols)
	switch {
	case len(formats) == 0:
	case len(formats) == 1:
		if formats[0] != 0 && formats[0] != 1 {
			return nil, false
		}
		for i := range bin {
			bin[i] = formats[0] == 1
		}
	case len(formats) == cols:
		for i, f := range formats {
			if f != 0 && f != 1 {
				return nil, false
			}
			bin[i] = f == 1
		}
	default:
		return nil, false
	}
	return bin, true
}

// appendRow appends DataRow msg with the binary columns converted.
func appendRow(out, msg []byte, types []uint32, bin []bool) ([]byte, bool) {
	if len(msg) < 7 || int(binary.BigEndian.Uint16(msg[5:])) != len(types) {
		return nil, false
	}
	start := len(out)
	out = append(out, msg[:7]...)
	p := 7
	for i := range types {
		if len(msg)-p < 4 {
			return nil, false
		}
		l := int32(binary.BigEndian.Uint32(msg[p:]))
		p += 4
		if l < 0 {
			out = binary.BigEndian.AppendUint32(out, uint32(l))
			continue
		}
		if int(l) > len(msg)-p {
			return nil, false
		}
		v := msg[p : p+int(l)]
		p += int(l)
		if !bin[i] {
			out = binary.BigEndian.AppendUint32(out, uint32(l))
			out = append(out, v...)
			continue
		}
		at := len(out)
		out = append(out, 0, 0, 0, 0)
		var ok bool
		if out, ok = appendValue(out, types[i], string(v)); !ok {
			return nil, false
		}
		binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	}
	if p != len(msg) {
		return nil, false
	}
	binary.BigEndian.PutUint32(out[start+1:], uint32(len(out)-start-1))
	return out, true
}

// appendValue appends the binary form of text value s of type oid.
func appendValue(out []byte, oid uint32, s string) ([]byte, bool) {
	switch oid {
	case oidText, oidVarchar, oidBPChar, oidName, oidJSON, oidUnknown:
		return append(out, s...), true
	case oidJSONB:
		return append(append(out, 1), s...), true
	case oidBool:
		switch s {
		case "t":
			return append(out, 1), true
		case "f":
			return append(out, 0), true
		}
	case oidInt2:
		v, err := strconv.ParseInt(s, 10, 16)
		return binary.BigEndian.AppendUint16(out, uint16(v)), err == nil && canonicalInt(s)
	case oidInt4:
		v, err := strconv.ParseInt(s, 10, 32)
		return binary.BigEndian.AppendUint32(out, uint32(v)), err == nil && canonicalInt(s)
	case oidOID:
		v, err := strconv.ParseUint(s, 10, 32)
		return binary.BigEndian.AppendUint32(out, uint32(v)), err == nil && canonicalInt(s)
	case oidInt8:
		v, err := strconv.ParseInt(s, 10, 64)
		return binary.BigEndian.AppendUint64(out, uint64(v)), err == nil && canonicalInt(s)
	case oidFloat4:
		v, err := strconv.ParseFloat(s, 32)
		if err != nil || math.IsNaN(v) {
			return nil, false
		}
		return binary.BigEndian.AppendUint32(out, math.Float32bits(float32(v))), true
	case oidFloat8:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return nil, false // NaN's bits are not in its text
		}
		return binary.BigEndian.AppendUint64(out, math.Float64bits(v)), true
	case oidNumeric:
		return appendNumeric(out, s)
	case oidUUID:
		return appendUUID(out, s)
	case oidBytea:
		if len(s) < 2 || s[:2] != `\x` || len(s)%2 != 0 {
			return nil, false // escape output is ambiguous to parse back
		}
		at := len(out)
		out = append(out, make([]byte, (len(s)-2)/2)...)
		_, err := hex.Decode(out[at:], []byte(s[2:]))
		return out, err == nil
	case oidDate:
		d, ok := parseDate(s)
		return binary.BigEndian.AppendUint32(out, uint32(d)), ok
	case oidTime:
		us, ok := parseTime(s)
		return binary.BigEndian.AppendUint64(out, uint64(us)), ok && us <= usecsPerDay
	case oidTimestamp, oidTimestampTZ:
		us, ok := parseTimestamp(s, oid == oidTimestampTZ)
		return binary.BigEndian.AppendUint64(out, uint64(us)), ok
	}
	return nil, false
}

// canonicalInt reports whether s is an integer as PostgreSQL prints one:
// an optional minus, no plus, no leading zeros.
func canonicalInt(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Numeric sign words of the binary form.
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// appendNumeric appends numeric s (as numeric_out prints it) in
// numeric_send's form: ndigits, weight, sign, dscale, then base-10000
// digits without leading or trailing zero digits.
func appendNumeric(out []byte, s string) ([]byte, bool) {
	head := func(ndigits, weight int, sign, dscale uint16) []byte {
		out = binary.BigEndian.AppendUint16(out, uint16(ndigits))
		out = binary.BigEndian.AppendUint16(out, uint16(int16(weight)))
		out = binary.BigEndian.AppendUint16(out, sign)
		return binary.BigEndian.AppendUint16(out, dscale)
	}
	// numeric_send reads the special values' header through the short
	// format's masks: the infinities' flag bit shows as a dscale of 32.
	switch s {
	case "NaN":
		return head(0, 0, numericNaN, 0), true
	case "Infinity":
		return head(0, 0, numericPInf, 32), true
	case "-Infinity":
		return head(0, 0, numericNInf, 32), true
	}
	sign := uint16(numericPos)
	if s != "" && s[0] == '-' {
		sign, s = numericNeg, s[1:]
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			if frac == "" {
				return nil, false
			}
			break
		}
	}
	if intPart == "" || len(intPart) > 1 && intPart[0] == '0' || !allDigits(intPart) || !allDigits(frac) || len(frac) > math.MaxInt16 {
		return nil, false
	}
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	// Base-10000 digits: the integer part padded on the left, the
	// fraction on the right, to whole groups of four.
	ig := (len(intPart) + 3) / 4
	fg := (len(frac) + 3) / 4
	digits := make([]uint16, 0, ig+fg)
	lead := ig*4 - len(intPart)
	for g := range ig {
		var d uint16
		for k := range 4 {
			i := g*4 + k - lead
			d *= 10
			if i >= 0 {
				d += uint16(intPart[i] - '0')
			}
		}
		digits = append(digits, d)
	}
	for g := range fg {
		var d uint16
		for k := range 4 {
			i := g*4 + k
			d *= 10
			if i < len(frac) {
				d += uint16(frac[i] - '0')
			}
		}
		digits = append(digits, d)
	}
	weight := ig - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits, weight = digits[1:], weight-1
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		if sign == numericNeg {
			return nil, false // numeric_out never prints -0
		}
		weight = 0
	}
	out = head(len(digits), weight, sign, uint16(len(frac)))
	for _, d := range digits {
		out = binary.BigEndian.AppendUint16(out, d)
	}
	return out, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func appendUUID(out []byte, s string) ([]byte, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, false
	}
	var b [16]byte
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'F' {
			return nil, false // uuid_out prints lower case
		}
	}
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return nil, false
	}
	return append(out, b[:]...), true
}

// Dates and times, as DateStyle ISO prints them. The binary forms count
// days (int32) or microseconds (int64) from 2000-01-01 00:00:00.
const (
	usecsPerDay        = int64(86400_000_000)
	postgresEpochJDate = 2451545 // date2j(2000, 1, 1)
)

// date2j is PostgreSQL's Julian day number of a proleptic Gregorian date.
func date2j(y, m, d int) int {
	if m > 2 {
		m++
		y += 4800
	} else {
		m += 13
		y += 4799
	}
	century := y / 100
	julian := y*365 - 32167
	julian += y/4 - century + century/4
	julian += 7834*m/256 + d
	return julian
}

// parseYMD parses "YYYY-MM-DD" (four or more year digits) at the start of
// s, returning the rest.
func parseYMD(s string) (y, m, d int, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < 4 || i > 9 || len(s) < i+6 || s[i] != '-' || s[i+3] != '-' {
		return 0, 0, 0, "", false
	}
	y, _ = strconv.Atoi(s[:i])
	m, ok1 := twoDigits(s[i+1:])
	d, ok2 := twoDigits(s[i+4:])
	if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 || d > 31 || i > 4 && s[0] == '0' {
		return 0, 0, 0, "", false
	}
	return y, m, d, s[i+6:], true
}

func twoDigits(s string) (int, bool) {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// bc strips a trailing " BC", turning year y into its astronomical number.
func bc(y int, rest string) (int, string) {
	if len(rest) >= 3 && rest[len(rest)-3:] == " BC" {
		return 1 - y, rest[:len(rest)-3]
	}
	return y, rest
}

func parseDate(s string) (int32, bool) {
	switch s {
	case "infinity":
		return math.MaxInt32, true
	case "-infinity":
		return math.MinInt32, true
	}
	y, m, d, rest, ok := parseYMD(s)
	if !ok {
		return 0, false
	}
	y, rest = bc(y, rest)
	if rest != "" || y == 0 && s[len(s)-3:] != " BC" {
		return 0, false
	}
	return int32(date2j(y, m, d) - postgresEpochJDate), true
}

// parseTime parses "HH:MM:SS[.ffffff]" at the start of s into
// microseconds.
func parseTime(s string) (int64, bool) {
	t, rest, ok := parseClock(s)
	return t, ok && rest == ""
}

func parseClock(s string) (int64, string, bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, "", false
	}
	h, ok1 := twoDigits(s)
	mi, ok2 := twoDigits(s[3:])
	se, ok3 := twoDigits(s[6:])
	if !ok1 || !ok2 || !ok3 || h > 24 || mi > 59 || se > 60 {
		return 0, "", false
	}
	us := (int64(h)*3600 + int64(mi)*60 + int64(se)) * 1_000_000
	rest := s[8:]
	if rest != "" && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 || i > 7 || rest[i-1] == '0' {
			return 0, "", false // time_out trims trailing zeros
		}
		f, _ := strconv.Atoi(rest[1:i])
		for k := i; k < 7; k++ {
			f *= 10
		}
		us += int64(f)
		rest = rest[i:]
	}
	return us, rest, true
}

// parseTimestamp parses "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]".
func parseTimestamp(s string, tz bool) (int64, bool) {
	switch s {
	case "infinity":
		return math.MaxInt64, true
	case "-infinity":
		return math.MinInt64, true
	}
	y, m, d, rest, ok := parseYMD(s)
	if !ok || rest == "" || rest[0] != ' ' {
		return 0, false
	}
	y, rest = bc(y, rest)
	if y == 0 && s[len(s)-3:] != " BC" {
		return 0, false
	}
	clock, rest, ok := parseClock(rest[1:])
	if !ok {
		return 0, false
	}
	var offset int64
	if tz {
		if len(rest) < 3 || rest[0] != '+' && rest[0] != '-' {
			return 0, false
		}
		neg := rest[0] == '-'
		parts := []int{0, 0, 0}
		r := rest[1:]
		for k := range 3 {
			v, ok := twoDigits(r)
			if !ok {
				return 0, false
			}
			parts[k] = v
			r = r[2:]
			if r == "" {
				break
			}
			if r[0] != ':' || k == 2 {
				return 0, false
			}
			r = r[1:]
		}
		offset = int64(parts[0])*3600 + int64(parts[1])*60 + int64(parts[2])
		if neg {
			offset = -offset
		}
		rest = ""
	}
	if rest != "" {
		return 0, false
	}
	days := int64(date2j(y, m, d) - postgresEpochJDate)
	return days*usecsPerDay + clock - offset*1_000_000, true
}
