package fingerprint

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func addSeeds(f *testing.F) {
	for _, c := range loadCorpus(f) {
		f.Add(c.sql)
	}
	for _, s := range []string{
		"", ";", ";;", "--", "/*", "'", "\"", "$$", "$a$ x $a", "E'\\''", "U&'\\0041'",
		"SELECT 1..2", "SELECT 0x1F, 1_000, .5e-3, 1.e5", "SELECT a<=-1", "SELECT 'a'\n'b'",
		"WITH x AS (UPDATE t SET a=1 RETURNING *) SELECT * FROM x",
		"SELECT * FROM t FOR UPDATE", "SELECT 1 INTO t", "SELECT $1::int",
	} {
		f.Add(s)
	}
}

// FuzzAnalyze checks that Analyze never panics, never calls a statement
// that writes cacheable (judged by pg_query's own view of the same text),
// and that its key text is stable and means the same query.
func FuzzAnalyze(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		a := Analyze(sql)
		if a.Cacheable {
			checkCacheableReallyReads(t, sql, a)
		}
		if _, flags := lex(sql, nil); flags&unsure == 0 {
			b := Analyze(a.Normalized)
			if b.Normalized != a.Normalized {
				t.Fatalf("normalising is not idempotent:\n in:     %q\n once:   %q\n twice:  %q", sql, a.Normalized, b.Normalized)
			}
			if a.Parsed && (!b.Parsed || b.ShapeID != a.ShapeID) {
				t.Fatalf("normalised text does not mean the same query:\n in:   %q\n norm: %q\n parsed %v, shape %x vs %x", sql, a.Normalized, b.Parsed, a.ShapeID, b.ShapeID)
			}
		}
	})
}

func checkCacheableReallyReads(t *testing.T, sql string, a *Analysis) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		if a.Parsed {
			t.Fatalf("analysis parsed %q but pg_query does not: %v", sql, err)
		}
		if len(a.Statements) != 1 {
			t.Fatalf("unparsed text of %d statements is cacheable: %q", len(a.Statements), sql)
		}
		n := a.Statements[0].Normalized
		if !strings.HasPrefix(n, "select") && !strings.HasPrefix(n, "with") && !strings.HasPrefix(strings.ToLower(n), "select") && !strings.HasPrefix(strings.ToLower(n), "with") {
			t.Fatalf("unparsed text that does not start with SELECT or WITH is cacheable: %q", sql)
		}
		return
	}
	for i, raw := range tree.Stmts {
		sel := raw.Stmt.GetSelectStmt()
		if sel == nil {
			t.Fatalf("statement %d of %q is %T, yet cacheable", i, sql, raw.Stmt.Node)
		}
		if sel.IntoClause != nil {
			t.Fatalf("SELECT INTO is cacheable: %q", sql)
		}
	}
	utility, err := pg_query.IsUtilityStmt(sql)
	if err != nil {
		t.Fatalf("IsUtilityStmt(%q): %v", sql, err)
	}
	for i, u := range utility {
		if u {
			t.Fatalf("statement %d of %q is a utility statement, yet cacheable", i, sql)
		}
	}
	sum, err := pg_query.Summary(sql, -1)
	if err != nil {
		return
	}
	for _, st := range sum.StatementTypes {
		if st != "SelectStmt" {
			t.Fatalf("%q holds a %s, yet is cacheable", sql, st)
		}
	}
	for _, tb := range sum.Tables {
		if tb.Context == pg_query.SummaryResult_DML || tb.Context == pg_query.SummaryResult_DDL {
			t.Fatalf("%q writes %s, yet is cacheable", sql, tb.Name)
		}
	}
}

// FuzzLex checks the lexer against PostgreSQL's own scanner: wherever the
// lexer is sure of itself, its tokens must be the scanner's.
func FuzzLex(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		toks, flags := lex(sql, nil)
		if flags&unsure != 0 || strings.IndexByte(sql, 0) >= 0 {
			return // the C scanner stops at NUL; Analyze refuses such text
		}
		res, err := pg_query.Scan(sql)
		if err != nil {
			return
		}
		var got, want []string
		for i, tk := range toks {
			if i > 0 && continues(sql, toks[i-1], tk) {
				// PostgreSQL scans a continued string as one token.
				got[len(got)-1] = sql[toks[i-1].start:tk.end]
				toks[i].start = toks[i-1].start
				continue
			}
			text := sql[tk.start:tk.end]
			if tk.kind == tString && (text[0] == 'n' || text[0] == 'N') {
				// PostgreSQL scans N'...' as the keyword NATIONAL CHARACTER
				// then a string; the lexer keeps them together so that the
				// key text cannot confuse them with a type named n.
				got = append(got, text[:1], text[1:])
				continue
			}
			got = append(got, text)
		}
		for _, tk := range res.Tokens {
			want = append(want, sql[tk.Start:tk.End])
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("tokens of %q differ from PostgreSQL's:\n got:  %q\n want: %q", sql, got, want)
		}
	})
}
