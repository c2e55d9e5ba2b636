package snowflake

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/snowflakedb/gosnowflake"
)

// sqlStates maps the SQLSTATEs Snowflake reports in ODBC's spelling to
// PostgreSQL's; the others are the same in both.
var sqlStates = map[string]string{
	"42S02": "42P01", // table not found: undefined_table
	"42S22": "42703", // column not found: undefined_column
	"42S01": "42P07", // table exists: duplicate_table
	"22018": "22P02", // invalid character value for cast: invalid_text_representation
}

// pgErr turns an error from the driver into a *pgconn.PgError: a
// *gosnowflake.SnowflakeError keeps its SQLSTATE (in PostgreSQL's
// spelling) and message, with Snowflake's error number and query id as
// the detail; any other error becomes an internal error.
func pgErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	pe = &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "XX000", Message: err.Error()}
	var se *gosnowflake.SnowflakeError
	if errors.As(err, &se) {
		pe.Message = se.Message
		if len(se.MessageArgs) > 0 {
			pe.Message = fmt.Sprintf(se.Message, se.MessageArgs...)
		}
		if len(se.SQLState) == 5 {
			pe.Code = se.SQLState
			if s, ok := sqlStates[se.SQLState]; ok {
				pe.Code = s
			}
		}
		pe.Detail = fmt.Sprintf("Snowflake error %06d", se.Number)
		if se.QueryID != "" {
			pe.Detail += ", query id " + se.QueryID
		}
	}
	return pe
}

// invalidTimeZone is PostgreSQL's error for an unknown TimeZone.
func invalidTimeZone(tz string) error {
	return &pgconn.PgError{
		Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "22023",
		Message: fmt.Sprintf("invalid value for parameter \"TimeZone\": %q", tz),
	}
}
