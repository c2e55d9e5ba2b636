//go:build cgo

package duckdb

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
)

func TestTimeZone(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	zone := func(name string) map[string]string {
		return map[string]string{"timezone": "SET TimeZone = '" + name + "'"}
	}
	before := *query(t, db, `select current_setting('TimeZone')`).rows[0][0]
	if before != "UTC" {
		t.Errorf("the database's TimeZone is %q, want UTC", before)
	}
	// What PostgreSQL 15 prints for the same statements and zones.
	cases := []struct {
		sql      string
		settings map[string]string
		want     string
	}{
		{`select timestamptz '2024-01-02 03:04:05+00'`, zone("Europe/Paris"), "2024-01-02 04:04:05+01"},
		{`select timestamptz '2024-07-02 03:04:05.25+00'`, zone("Europe/Paris"), "2024-07-02 05:04:05.25+02"},
		{`select timestamptz '2024-01-02 03:04:05+00'`, zone("Asia/Kolkata"), "2024-01-02 08:34:05+05:30"},
		{`select timestamptz '2024-01-02 03:04:05+00'`, zone("America/New_York"), "2024-01-01 22:04:05-05"},
		{`select timestamptz '2024-01-02 03:04:05+00'`, map[string]string{"timezone": "set time zone 'UTC'"}, "2024-01-02 03:04:05+00"},
		{`select timestamptz '2024-01-02 03:04:05+00'`, nil, "2024-01-02 03:04:05+00"},
		// DuckDB computes in the zone too: the day starts at local midnight.
		{`select date_trunc('day', timestamptz '2024-01-02 00:30:00+00')`, zone("Europe/Paris"), "2024-01-02 00:00:00+01"},
		{`select timestamptz '2024-01-02 00:30:00+00'::date`, zone("America/New_York"), "2024-01-01"},
		{`select timestamptz '2024-01-02 00:30:00+00'::date`, nil, "2024-01-02"},
		{`select timestamp '2024-01-02 03:04:05'::timestamptz`, zone("Europe/Paris"), "2024-01-02 03:04:05+01"},
		{`select [timestamptz '2024-01-02 03:04:05+00']`, zone("Europe/Paris"), `{"2024-01-02 04:04:05+01"}`},
	}
	for _, c := range cases {
		res, err := db.Execute(ctx, &executor.Request{SQL: c.sql, Settings: c.settings})
		if err != nil {
			t.Errorf("%s in %v: %v", c.sql, c.settings, err)
			continue
		}
		if a := decode(t, res.Wire); *a.rows[0][0] != c.want {
			t.Errorf("%s in %v: got %q, want %q", c.sql, c.settings, *a.rows[0][0], c.want)
		}
	}
	// The connection's zone is put back after each run.
	if after := *query(t, db, `select current_setting('TimeZone')`).rows[0][0]; after != before {
		t.Errorf("TimeZone left at %q, was %q", after, before)
	}
	_, err := db.Execute(ctx, &executor.Request{SQL: `select 1`, Settings: zone("Mars/Olympus")})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22023" {
		t.Errorf("unknown zone: got %v, want 22023", err)
	}
}

func TestSettingValue(t *testing.T) {
	for in, want := range map[string]string{
		"SET TimeZone = 'Europe/Paris'":    "Europe/Paris",
		"set timezone to 'UTC'":            "UTC",
		"SET TIME ZONE 'America/New_York'": "America/New_York",
		"SET SESSION TimeZone TO UTC;":     "UTC",
		`SET "timezone" = 'it''s'`:         "it's",
	} {
		if got := settingValue(in); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}
