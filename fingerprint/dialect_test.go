package fingerprint

import "testing"

// TestDialectsKeyAndLabelCorrectly: Snowflake and DuckDB statements that
// PostgreSQL's parser rejects are analysed by the lexer: reads are
// cacheable, with their tables, labels and literal-keeping keys;
// case-sensitive variant paths stay apart; what samples or travels in time
// is judged as such.
func TestDialectsKeyAndLabelCorrectly(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		cacheable bool
		tables    []string
		usesTime  bool
	}{
		{"SELECT region, amount FROM sales QUALIFY ROW_NUMBER() OVER (PARTITION BY region ORDER BY amount DESC) = 1", true, []string{"sales"}, false},
		{"SELECT v:customer.name::string AS name FROM raw_events", true, []string{"raw_events"}, false},
		{"SELECT f.value:id FROM events, LATERAL FLATTEN(input => events.payload:items) f", true, []string{"events"}, false},
		{`SELECT $$it's$$ AS s, "Quoted Col" FROM "My Table"`, true, []string{"My Table"}, false},
		{"SELECT * FROM orders SAMPLE (10)", false, nil, false},
		{"SELECT * FROM orders AT(TIMESTAMP => '2024-01-01'::timestamp)", true, []string{"orders"}, true},
		{"SELECT * EXCLUDE (secret) FROM users", true, []string{"users"}, false},
		{"SELECT list_value(1,2,3), struct_pack(a := 1) FROM range(10)", true, nil, false},
	} {
		a := Analyze(tc.sql)
		if a.Cacheable != tc.cacheable || a.UsesTime != tc.usesTime {
			t.Errorf("%s: cacheable %v (%s), uses time %v", tc.sql, a.Cacheable, a.Reason, a.UsesTime)
			continue
		}
		if tc.tables != nil && (len(a.ReadTables) != len(tc.tables) || a.ReadTables[0] != tc.tables[0]) {
			t.Errorf("%s: tables %v, want %v", tc.sql, a.ReadTables, tc.tables)
		}
	}
	key := func(sql string) string { return Analyze(sql).Normalized }
	// Words of a variant path are case-sensitive; identifiers are not.
	if key("SELECT v:Customer.Name FROM raw_events") == key("SELECT v:customer.name FROM raw_events") {
		t.Error("v:Customer.Name and v:customer.name share a key")
	}
	if key("SELECT V:customer FROM RAW_EVENTS") != key("select v:customer from raw_events") {
		t.Error("identifiers' case split a key")
	}
	if key("SELECT x::STRING FROM t") != key("select x::string from t") {
		t.Error("a cast's type name kept its case after the path ended")
	}
	// Literals stay in the key; labels do not.
	if key("SELECT * FROM sales QUALIFY rn = 1") == key("SELECT * FROM sales QUALIFY rn = 2") {
		t.Error("two literals share a key")
	}
	a, b := Analyze("SELECT * FROM sales QUALIFY rn = 1 /*dashboard='snow'*/"), Analyze("SELECT * FROM sales QUALIFY rn = 1")
	if a.Normalized != b.Normalized || a.Labels.Dashboard != "snow" {
		t.Errorf("labels of a dialect statement: %q / %q, dashboard %q", a.Normalized, b.Normalized, a.Labels.Dashboard)
	}
}
