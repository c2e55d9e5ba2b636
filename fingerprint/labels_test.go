package fingerprint

import "testing"

// TestLabelsOfEachTool: the comments each BI tool writes, as its source
// writes them, give the dashboard, chart, user and tool.
func TestLabelsOfEachTool(t *testing.T) {
	for _, tc := range []struct {
		name, sql                    string
		dashboard, chart, user, tool string
	}{
		{"sqlcommenter", "SELECT 1 /*dashboard='finance%20daily',chart='7',application='superset'*/",
			"finance daily", "7", "", "superset"},
		{"metabase postgres", "-- Metabase:: userID: 5 queryType: MBQL queryHash: 00ff\nSELECT 1",
			"", "", "5", "metabase"},
		{"metabase redshift", `-- /* partner: "metabase", {"dashboard_id":5678,"chart_id":1234,"optional_user_id":7} */ Metabase:: userID: 7 queryType: MBQL queryHash: ab
SELECT 1`, "5678", "1234", "7", "metabase"},
		{"looker", `SELECT 1 -- Looker Query Context '{"user_id":9,"history_slug":"abc","instance_slug":"x"}'`,
			"", "", "9", "looker"},
		{"redash", "/* Username: alice@example.com, query_id: 42, Queue: queries, Job ID: 1f, Query Hash: 9a, Scheduled: False */ SELECT 1",
			"", "42", "alice@example.com", "redash"},
		{"redash adhoc", "/* Username: bob, query_id: adhoc, Queue: queries */ SELECT 1",
			"", "", "bob", "redash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Analyze(tc.sql).Labels
			if l.Dashboard != tc.dashboard || l.Chart != tc.chart || l.User != tc.user || l.Source != tc.tool {
				t.Errorf("got dashboard %q chart %q user %q tool %q, want %q %q %q %q",
					l.Dashboard, l.Chart, l.User, l.Source, tc.dashboard, tc.chart, tc.user, tc.tool)
			}
		})
	}
}

// TestSqlcachedSettingsDoNotPin: SET sqlcached.dashboard labels a session
// without tying it to its warehouse connection.
func TestSqlcachedSettingsDoNotPin(t *testing.T) {
	for _, sql := range []string{"SET sqlcached.dashboard = 'finance'", "SET LOCAL sqlcached.chart = '7'"} {
		a := Analyze(sql)
		if a.Pin != "" || a.Statements[0].Set == nil || !a.Statements[0].Set.Known {
			t.Errorf("%s: pin %q, set %+v", sql, a.Pin, a.Statements[0].Set)
		}
	}
}
