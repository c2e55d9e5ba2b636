package proxy_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// python is the system interpreter, which has Debian's psycopg2 and
// SQLAlchemy 1.4, the stack Superset runs on.
const python = "/usr/bin/python3"

// TestPythonSuperset runs testdata/python/superset.py, what Superset does
// with a PostgreSQL database through psycopg2 and SQLAlchemy 1.4, directly
// and through the proxy, and compares its JSON report: schema reflection,
// typed values as parameters and results, a 100000-row server-side cursor
// (with and without WITH HOLD), statement_timeout and connection.cancel()
// each giving 57014 and leaving the connection usable.
func TestPythonSuperset(t *testing.T) { forEachMode(t, testPythonSuperset) }

func testPythonSuperset(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 3, cache: cached})
	proxy, direct := e.viaProxy(), e.twin(t)
	for _, db := range []string{proxy.Database, direct.Database} {
		e.PG.Exec(t, db, describeSchema)
	}
	script, err := filepath.Abs("testdata/python/superset.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reports := map[string]map[string]any{}
	raw := map[string]string{}
	for _, tg := range []clientTarget{direct, proxy} {
		r := runTool(t, tg, dir, nil, 3*time.Minute, python, script, tg.DSN())
		if r.Code != 0 {
			t.Fatalf("superset.py on %s:\n%s", tg.Name, r)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Fatalf("superset.py on %s printed no JSON: %v\n%s", tg.Name, err, r)
		}
		reports[tg.Name], raw[tg.Name] = rep, r.Stdout
	}
	if raw["direct"] != raw["proxy"] {
		t.Errorf("the proxy differs from PostgreSQL (direct -, proxy +):\n%s", lineDiff(raw["direct"], raw["proxy"]))
	}
	// What the report must say, so that two equally broken runs do not
	// pass.
	p := reports["proxy"]
	for name, v := range p {
		if m, ok := v.(map[string]any); ok && m["unexpected"] != nil {
			t.Errorf("section %q failed: %v", name, m["unexpected"])
		}
	}
	get := func(path ...string) any {
		var v any = p
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"connect", "one"}, 1.0},
		{[]string{"connect", "database"}, true},
		{[]string{"server-side cursor", "big", "rows"}, 100000.0},
		{[]string{"server-side cursor", "big_hold", "rows"}, 100000.0},
		{[]string{"server-side cursor", "big", "sum"}, "2500025000.0"},
		{[]string{"server-side cursor", "after"}, 1.0},
		{[]string{"statement timeout", "error", "pgcode"}, "57014"},
		{[]string{"statement timeout", "fast"}, true},
		{[]string{"statement timeout", "after"}, 1.0},
		{[]string{"statement timeout", "setting"}, "200ms"},
		{[]string{"statement timeout", "in transaction", "pgcode"}, "57014"},
		{[]string{"statement timeout", "aborted", "pgcode"}, "25P02"},
		{[]string{"statement timeout", "after rollback"}, 2.0},
		{[]string{"cancel", "error 0", "pgcode"}, "57014"},
		{[]string{"cancel", "error 0", "message"}, "canceling statement due to user request"},
		{[]string{"cancel", "fast 0"}, true},
		{[]string{"cancel", "after 0"}, 3.0},
		{[]string{"cancel", "error 1", "pgcode"}, "57014"},
		{[]string{"cancel", "after 1"}, 3.0},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%s: got %v, want %v", strings.Join(c.path, " / "), got, c.want)
		}
	}
	if tables, _ := get("inspect", "tables").(map[string]any); len(tables) != 4 {
		t.Errorf("reflected %d tables, want customers, events, events_2024, sales.orders: %v", len(tables), tables)
	}
	if rows, _ := get("typed values", "rows").([]any); len(rows) != 2 {
		t.Errorf("typed values: %d rows, want 2", len(rows))
	}
}
