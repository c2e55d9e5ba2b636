//go:build cgo

package duckdb

import (
	"context"
	"database/sql/driver"
	"io"
	"strings"
	"time"
	_ "time/tzdata" // zone names must not depend on the host's zoneinfo

	duck "github.com/duckdb/duckdb-go/v2"
)

// A session is what a run applies of the request's settings: the zone
// timestamptz values are computed and printed in. Only TimeZone changes
// DuckDB's answers in ways PostgreSQL's clients would see; the rest are
// ignored (see the package documentation).
type session struct {
	zone string         // the DuckDB TimeZone to run under; "" leaves it
	loc  *time.Location // where timestamptz values are printed; never nil
}

// sessionOf reads the settings of req that this package honours.
func sessionOf(settings map[string]string) (session, error) {
	s := session{loc: time.UTC}
	set, ok := settings["timezone"]
	if !ok {
		return s, nil
	}
	v := settingValue(set)
	switch strings.ToLower(v) {
	case "", "default", "local":
		return s, nil
	}
	loc, err := time.LoadLocation(v)
	if err != nil || strings.ContainsAny(v, "'\\") {
		return s, newError("22023", "invalid value for parameter \"TimeZone\": %q (the DuckDB warehouse takes IANA zone names such as 'Europe/Paris' or 'UTC')", v)
	}
	s.zone, s.loc = v, loc
	return s, nil
}

// settingValue is the value that sql, a SET statement, sets: from
// "SET TimeZone = 'UTC'", "set timezone to 'UTC'", "SET TIME ZONE 'UTC'".
func settingValue(sql string) string {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sql), ";"))
	f := strings.Fields(s)
	if len(f) < 2 || !strings.EqualFold(f[0], "set") {
		return s
	}
	rest := strings.TrimSpace(s[len(f[0]):])
	for _, w := range []string{"session", "local"} {
		if len(rest) > len(w) && strings.EqualFold(rest[:len(w)+1], w+" ") {
			rest = strings.TrimSpace(rest[len(w):])
		}
	}
	// The name: one word, or TIME ZONE.
	if len(rest) >= 9 && strings.EqualFold(rest[:9], "time zone") {
		rest = rest[9:]
	} else if i := strings.IndexAny(rest, " ="); i >= 0 {
		rest = rest[i:]
	} else {
		return ""
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.HasPrefix(rest, "="):
		rest = strings.TrimSpace(rest[1:])
	case len(rest) > 3 && strings.EqualFold(rest[:3], "to "):
		rest = strings.TrimSpace(rest[3:])
	}
	if len(rest) >= 2 && rest[0] == '\'' && rest[len(rest)-1] == '\'' {
		return strings.ReplaceAll(rest[1:len(rest)-1], "''", "'")
	}
	return strings.Trim(rest, `"`)
}

// apply sets DuckDB's TimeZone on c for a run and returns the function
// that puts the previous one back.
func (s session) apply(ctx context.Context, c *duck.Conn) (restore func(), err error) {
	if s.zone == "" {
		return func() {}, nil
	}
	old, err := currentSetting(ctx, c, "TimeZone")
	if err != nil {
		return nil, err
	}
	if old == s.zone {
		return func() {}, nil
	}
	if _, err := c.ExecContext(ctx, "SET TimeZone = "+quoteLiteral(s.zone), nil); err != nil {
		return nil, err
	}
	return func() {
		// Not under ctx: the connection goes back to the pool either way.
		_, _ = c.ExecContext(context.Background(), "SET TimeZone = "+quoteLiteral(old), nil)
	}, nil
}

func currentSetting(ctx context.Context, c *duck.Conn, name string) (string, error) {
	rows, err := c.QueryContext(ctx, "SELECT current_setting("+quoteLiteral(name)+")::VARCHAR", nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	vals := make([]driver.Value, 1)
	if err := rows.Next(vals); err != nil {
		if err == io.EOF {
			return "", nil
		}
		return "", err
	}
	s, _ := vals[0].(string)
	return s, nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
