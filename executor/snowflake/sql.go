package snowflake

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// scanCode calls code for each stretch of sql outside string literals,
// quoted names, $$-strings and comments, and other for the rest.
func scanCode(sql string, code, other func(string)) {
	start := 0
	for i := 0; i < len(sql); i++ {
		end := -1
		switch {
		case sql[i] == '\'' || sql[i] == '"':
			end = closing(sql, i+1, sql[i])
		case strings.HasPrefix(sql[i:], "$$"):
			end = after(sql, i, "$$")
		case strings.HasPrefix(sql[i:], "--"):
			end = after(sql, i, "\n")
		case strings.HasPrefix(sql[i:], "/*"):
			end = after(sql, i, "*/")
		}
		if end < 0 {
			continue
		}
		code(sql[start:i])
		other(sql[i:end])
		start, i = end, end-1
	}
	code(sql[start:])
}

// closing is the index after the quote q that closes a literal whose
// text starts at from; a doubled quote does not close it.
func closing(sql string, from int, q byte) int {
	for i := from; i < len(sql); i++ {
		if sql[i] == q {
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(sql)
}

// after is the index after the end marker that closes what opens at i.
func after(sql string, i int, end string) int {
	open := 2
	if j := strings.Index(sql[i+open:], end); j >= 0 {
		return i + open + j + len(end)
	}
	return len(sql)
}

var dollarParam = regexp.MustCompile(`(^|[^A-Za-z0-9_$])\$([0-9]+)`)

// placeholders rewrites PostgreSQL's parameter references $1, $2 to
// Snowflake's :1, :2.
func placeholders(sql string) string {
	if !strings.Contains(sql, "$") {
		return sql
	}
	var b strings.Builder
	scanCode(sql, func(s string) {
		b.WriteString(dollarParam.ReplaceAllString(s, "$1:$2"))
	}, func(s string) { b.WriteString(s) })
	return b.String()
}

// paramCount is the highest parameter reference $n in sql.
func paramCount(sql string) int {
	n := 0
	scanCode(sql, func(s string) {
		for _, m := range dollarParam.FindAllStringSubmatch(s, -1) {
			if k, err := strconv.Atoi(m[2]); err == nil && k > n && k <= 65535 {
				n = k
			}
		}
	}, func(string) {})
	return n
}

var leading = regexp.MustCompile(`^(?:\s+|--[^\n]*\n?|/\*(?s:.*?)\*/|\()*`)

// firstKeyword is the statement's first word, upper case.
func firstKeyword(sql string) string {
	rest := leading.ReplaceAllString(sql, "")
	end := strings.IndexFunc(rest, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_')
	})
	if end >= 0 {
		rest = rest[:end]
	}
	return strings.ToUpper(rest)
}

// returnsRows reports whether a statement starting with keyword answers
// with rows.
func returnsRows(keyword string) bool {
	switch keyword {
	case "SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "LIST", "LS", "CALL", "FROM":
		return true
	}
	return false
}

// setting returns the value of the setting name (case-insensitive) from
// the SQL that applies it: SET name = 'value', SET name TO value, or SET
// TIME ZONE 'value'.
func setting(settings map[string]string, name string) (string, bool) {
	for k, sql := range settings {
		if strings.EqualFold(k, name) {
			return settingValue(sql), true
		}
	}
	return "", false
}

var setValue = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?(?:TIME\s+ZONE|[A-Za-z0-9_."]+)\s*(?:=|\bTO\b)?\s*(.*?)\s*;?\s*$`)

func settingValue(sql string) string {
	v := sql
	if m := setValue.FindStringSubmatch(sql); m != nil {
		v = m[1]
	}
	if strings.HasPrefix(v, "'") {
		end := closing(v, 1, '\'')
		return strings.ReplaceAll(v[1:max(end-1, 1)], "''", "'")
	}
	return v
}

// location is the time zone named by a PostgreSQL TimeZone value.
func location(name string) (*time.Location, error) {
	switch strings.ToUpper(name) {
	case "", "UTC", "GMT", "Z", "ZULU", "UCT":
		return time.UTC, nil
	}
	return time.LoadLocation(name)
}
