//go:build cgo

package duckdb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgErr turns an error from DuckDB into a *pgconn.PgError with the
// SQLSTATE PostgreSQL would give it.
func pgErr(err error) error { return pgErrSQL(err, "") }

// pgErrSQL is pgErr for an error from running sql: DuckDB's "LINE 1: ..."
// pointer becomes the error's Position.
func pgErrSQL(err error, sql string) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	msg := err.Error()
	typ := duck.ErrorTypeInvalid
	var de *duck.Error
	if errors.As(err, &de) {
		typ, msg = de.Type, de.Msg
	}
	// DuckDB prefixes its messages with the error type ("Catalog Error: ").
	if prefix, rest, ok := strings.Cut(msg, ": "); ok && strings.HasSuffix(prefix, " Error") && !strings.Contains(prefix, "\n") {
		msg = rest
	}
	pe = &pgconn.PgError{
		Severity:            "ERROR",
		SeverityUnlocalized: "ERROR",
		Code:                sqlState(typ, msg),
		Message:             msg,
	}
	// DuckDB appends hints ("Did you mean ...") and a pointer into the
	// statement on lines of their own.
	if first, rest, ok := strings.Cut(msg, "\n"); ok {
		pe.Message = strings.TrimSpace(first)
		var detail []string
		lines := strings.Split(rest, "\n")
		for i := 0; i < len(lines); i++ {
			l := strings.TrimSpace(lines[i])
			switch {
			case l == "":
			case strings.HasPrefix(l, "LINE "):
				if i+1 < len(lines) {
					pe.Position = position(sql, lines[i], lines[i+1])
					i++
				}
			case strings.HasPrefix(l, "Did you mean"):
				pe.Hint = l
			default:
				detail = append(detail, l)
			}
		}
		pe.Detail = strings.Join(detail, "\n")
	}
	return pe
}

// position is the 1-based character position in sql that DuckDB's
// "LINE n: text" and caret lines point at, or 0.
func position(sql, line, caret string) int32 {
	head, _, ok := strings.Cut(line, ": ")
	if !ok || sql == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimPrefix(head, "LINE "))
	col := strings.IndexByte(caret, '^') - len(head) - 2
	if err != nil || n < 1 || col < 0 {
		return 0
	}
	// DuckDB prints a window of long lines, starting with "..." when it
	// cut the start: no position then.
	if strings.HasPrefix(line[len(head)+2:], "...") {
		return 0
	}
	lines := strings.SplitAfter(sql, "\n")
	if n > len(lines) {
		return 0
	}
	off := 0
	for _, l := range lines[:n-1] {
		off += len([]rune(l))
	}
	return int32(off + col + 1)
}

func sqlState(typ duck.ErrorType, msg string) string {
	lower := strings.ToLower(msg)
	if strings.Contains(lower, "division by zero") || strings.Contains(lower, "divide by zero") {
		return "22012"
	}
	switch typ {
	case duck.ErrorTypeParser, duck.ErrorTypeSyntax:
		return "42601"
	case duck.ErrorTypeCatalog:
		switch {
		case strings.Contains(lower, "function"), strings.Contains(lower, "macro"):
			return "42883"
		case strings.HasPrefix(lower, "type with name"):
			return "42704"
		case strings.Contains(lower, "schema"):
			return "3F000"
		case strings.Contains(lower, "column"):
			return "42703"
		case strings.Contains(lower, "already exists"):
			return "42P07"
		}
		return "42P01"
	case duck.ErrorTypeBinder:
		switch {
		case strings.Contains(lower, "column"):
			return "42703"
		case strings.Contains(lower, "no function matches"):
			return "42883"
		case strings.Contains(lower, "table"):
			return "42P01"
		}
		return "42000"
	case duck.ErrorTypeDivideByZero:
		return "22012"
	case duck.ErrorTypeConversion:
		return "22P02"
	case duck.ErrorTypeOutOfRange:
		return "22003"
	case duck.ErrorTypeInvalidInput:
		return "22023"
	case duck.ErrorTypeMismatchType, duck.ErrorTypeInvalidType:
		return "42804"
	case duck.ErrorTypeConstraint:
		switch {
		case strings.Contains(lower, "not null"):
			return "23502"
		case strings.Contains(lower, "foreign key"):
			return "23503"
		case strings.Contains(lower, "check constraint"):
			return "23514"
		}
		return "23505"
	case duck.ErrorTypeTransaction:
		return "40001"
	case duck.ErrorTypeNotImplemented:
		return "0A000"
	case duck.ErrorTypePermission:
		return "42501"
	case duck.ErrorTypeOutOfMemory:
		return "53200"
	case duck.ErrorTypeInterrupt:
		return "57014"
	case duck.ErrorTypeParameterNotResolved, duck.ErrorTypeParameterNotAllowed:
		return "42P18"
	case duck.ErrorTypeIO:
		return "58030"
	}
	return "XX000"
}

// newError is a *pgconn.PgError with code and message.
func newError(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{
		Severity:            "ERROR",
		SeverityUnlocalized: "ERROR",
		Code:                code,
		Message:             fmt.Sprintf(format, args...),
	}
}

// notSupported is a feature_not_supported (0A000) error.
func notSupported(format string, args ...any) error {
	return newError("0A000", format+" is not supported by the DuckDB warehouse", args...)
}
