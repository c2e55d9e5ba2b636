package proxy

import (
	"strings"
	"testing"
	"unicode"
)

// TestScreens: the lexical screens that let a session relay a statement
// unanalysed say yes to whatever could change the session or write, in
// any case, and no to plain reads.
func TestScreens(t *testing.T) {
	for _, tc := range []struct {
		sql            string
		session, write bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 42;", false, false},
		{"select count(*) from orders where region = 'north'", false, false},
		{"SET search_path = public", true, false},
		{"reset all", true, false},
		{"LISTEN jobs", true, false},
		{"select pg_advisory_lock(1)", true, false},
		{"create temp table x (i int)", true, true},
		{"INSERT INTO t VALUES (1)", false, true},
		{"update t set v = 1", true, true}, // SET of an UPDATE: yes, to be safe
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", false, true},
		{"select * into newt from t", false, true},
		{"CALL refresh_all()", false, true},
		{"do $$ begin perform 1; end $$", false, true},
		{"execute stmt(1)", false, true},
		{"ALTER TABLE t ADD c int", false, true},
		{"select 'insert' as word", false, true}, // a word in a literal: yes, to be safe
		{"SELECT set_config('search_path', 'x', false)", true, false},
		{"SAVEPOINT a", true, false},
		{"rollback to savepoint a", true, false},
		{"RELEASE a", true, false},
	} {
		if got := mayChangeSession(tc.sql); got != tc.session {
			t.Errorf("mayChangeSession(%q) = %v", tc.sql, got)
		}
		if got := mayWrite(tc.sql); got != tc.write {
			t.Errorf("mayWrite(%q) = %v", tc.sql, got)
		}
	}
}

// TestScreenWords: every word the screens look for is found whatever its
// case and wherever it stands, the words around them are not, and the
// one-pass screen agrees with the two.
func TestScreenWords(t *testing.T) {
	check := func(sql string, session, write bool) {
		t.Helper()
		if got := mayChangeSession(sql); got != session {
			t.Errorf("mayChangeSession(%q) = %v, want %v", sql, got, session)
		}
		if got := mayWrite(sql); got != write {
			t.Errorf("mayWrite(%q) = %v, want %v", sql, got, write)
		}
		if got := mayChangeSessionOrWrite(sql); got != (session || write) {
			t.Errorf("mayChangeSessionOrWrite(%q) = %v", sql, got)
		}
	}
	session := map[string]bool{}
	for _, w := range sessionWords {
		session[w] = true
	}
	write := map[string]bool{}
	for _, w := range writeWords {
		write[w] = true
	}
	for _, words := range [][]string{sessionWords, writeWords} {
		for _, w := range words {
			mixed := []byte(w)
			for i := 0; i < len(mixed); i += 2 {
				mixed[i] = byte(unicode.ToUpper(rune(mixed[i])))
			}
			for _, v := range []string{w, strings.ToUpper(w), string(mixed)} {
				check("select 1 from t where x = 1 and "+v+"(2)", session[w], write[w])
				check(v, session[w], write[w])
				// Longer or shorter, it is another word.
				check("select "+v+"s, x"+v+", "+v[:len(v)-1]+" from t", false, false)
			}
		}
	}
	for sql, want := range map[string]bool{
		"select pg_advisory_xact_lock(1)":     true,
		"SELECT PG_TRY_ADVISORY_LOCK(1)":      true,
		"select pg_advisory from t":           false,
		"select étape, _set, set9 from t":     false,
		"select x from pgbench_accounts_long": false,
	} {
		check(sql, want, false)
	}
}

func TestPlannedText(t *testing.T) {
	for sql, want := range map[string]bool{
		"select * from t":                      true,
		" /* c */ -- x\n (SELECT 1)":           true,
		"WITH a AS (select 1) select * from a": true,
		"FETCH 10 FROM c":                      false,
		"show search_path":                     false,
		"explain select 1":                     false,
		";select 1":                            true,
		"\f\vvalues (1)":                       true,
		"; ;\f show x":                         false,
	} {
		if got := plannedText(sql); got != want {
			t.Errorf("plannedText(%q) = %v", sql, got)
		}
	}
}
