package fingerprint

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func mustNew(t testing.TB, cfg Config) *Analyzer {
	t.Helper()
	z, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{MemoMaxSQLBytes: -1},
		{MemoBytes: -5},
		{MemoBytes: 1000, MemoMaxSQLBytes: 4096},
	}
	for _, cfg := range bad {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
	z := mustNew(t, Config{})
	if z.maxSQL != DefaultMemoMaxSQLBytes || z.memo == nil {
		t.Errorf("zero Config did not get its defaults")
	}
	if z := mustNew(t, Config{MemoEntries: -1}); z.memo != nil {
		t.Error("negative MemoEntries should turn the memo off")
	}
}

func TestMemoHitReturnsSharedAnalysis(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{})
	sql := "SELECT count(*) FROM orders WHERE region = 'EU'"
	a, b := z.Analyze(sql), z.Analyze(sql)
	if a != b {
		t.Error("second Analyze of the same text did not come from the memo")
	}
	if c := z.Analyze(sql + " "); c == a {
		t.Error("memo is keyed by exact text; a different text must not hit")
	}
}

func TestMemoSkipsLongTexts(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{MemoMaxSQLBytes: 64})
	long := "SELECT 1 /*" + string(make([]byte, 100)) + "*/"
	first := z.Analyze(long)
	if z.Analyze(long) == first {
		t.Error("a text above MemoMaxSQLBytes was memoised")
	}
}

func TestMemoIsBounded(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{MemoEntries: 64})
	for i := range 1000 {
		z.Analyze(fmt.Sprintf("SELECT %d FROM t", i))
	}
	if n := z.memo.len(); n > 64 {
		t.Errorf("memo holds %d entries, want at most 64", n)
	}
	z2 := mustNew(t, Config{MemoBytes: 64 << 10, MemoMaxSQLBytes: 1 << 10})
	for i := range 1000 {
		z2.Analyze(fmt.Sprintf("SELECT %d FROM t", i))
	}
	for i := range z2.memo.shards {
		if s := &z2.memo.shards[i]; s.bytes > s.maxBytes {
			t.Errorf("shard %d holds %d bytes, over its %d", i, s.bytes, s.maxBytes)
		}
	}
}

func TestMemoEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{MemoEntries: memoShards}) // one entry per shard
	first := z.Analyze("SELECT 1")
	for i := range 200 {
		z.Analyze(fmt.Sprintf("SELECT %d", i+2))
	}
	if z.Analyze("SELECT 1") == first {
		t.Error("entry survived 200 newer texts in a memo of one entry per shard")
	}
}

func TestSetVolatilityDropsDependentEntries(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{})
	withFunc := "SELECT my_rollup(id) FROM orders"
	noFunc := "SELECT id FROM orders"
	a := z.Analyze(withFunc)
	b := z.Analyze(noFunc)
	if a.Cacheable {
		t.Fatal("unknown function must not be cacheable")
	}
	m := BuiltinVolatility()
	m["my_rollup"] = Stable
	z.SetVolatility(m)
	a2 := z.Analyze(withFunc)
	if a2 == a || !a2.Cacheable {
		t.Errorf("after SetVolatility: same entry %v, cacheable %v; want a fresh, cacheable analysis", a2 == a, a2.Cacheable)
	}
	if z.Analyze(noFunc) != b {
		t.Error("an analysis that called no function was dropped")
	}
	z.SetVolatility(nil)
	if z.Analyze(withFunc).Cacheable {
		t.Error("SetVolatility(nil) should restore the built-in list")
	}
}

func TestVolatilityMapQualifiedNames(t *testing.T) {
	t.Parallel()
	m := VolatilityMap{"f": Immutable, "billing.g": Stable, "pg_catalog.h": Volatile}
	cases := []struct {
		schema, name string
		want         Volatility
		ok           bool
	}{
		{"", "f", Immutable, true},
		{"pg_catalog", "f", Immutable, true},
		{"billing", "f", 0, false},
		{"billing", "g", Stable, true},
		{"", "g", 0, false},
		{"pg_catalog", "h", Volatile, true},
	}
	for _, c := range cases {
		v, ok := m.lookup(c.schema, c.name)
		if v != c.want || ok != c.ok {
			t.Errorf("lookup(%q, %q) = %v, %v; want %v, %v", c.schema, c.name, v, ok, c.want, c.ok)
		}
	}
}

func TestAnalyzeSessionTempTables(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{})
	sql := "SELECT * FROM scratch JOIN orders USING (id)"
	plain := z.Analyze(sql)
	if !plain.Cacheable {
		t.Fatalf("plain analysis not cacheable: %s", plain.Reason)
	}
	if got := z.AnalyzeSession(sql, TempTables{"other": true}); got != plain {
		t.Error("unrelated temp tables should return the shared analysis")
	}
	got := z.AnalyzeSession(sql, TempTables{"scratch": true})
	if got.Cacheable || got.Statements[0].Cacheable {
		t.Error("statement on a session temp table is cacheable")
	}
	if !plain.Cacheable {
		t.Error("AnalyzeSession modified the shared analysis")
	}
}

func TestAnalyzerConcurrentUse(t *testing.T) {
	t.Parallel()
	z := mustNew(t, Config{MemoEntries: 32})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				sql := fmt.Sprintf("SELECT %d FROM t WHERE f(x)", (i*7+g)%50)
				if a := z.Analyze(sql); a.Cacheable {
					t.Errorf("unknown f() made %q cacheable", sql)
					return
				}
				if i%100 == 0 {
					z.SetVolatility(BuiltinVolatility())
				}
			}
		}()
	}
	wg.Wait()
}

func TestAnalyzeDetails(t *testing.T) {
	t.Parallel()
	a := Analyze("BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL TimeZone = 'UTC'; SELECT 1; COMMIT")
	if len(a.Statements) != 4 {
		t.Fatalf("got %d statements, want 4", len(a.Statements))
	}
	if tx := a.Statements[0].Tx; tx == nil || tx.Op != TxBegin || tx.Isolation != "serializable" {
		t.Errorf("BEGIN: %+v", tx)
	}
	if s := a.Statements[1].Set; s == nil || s.Name != "timezone" || s.Value != "UTC" || !s.Local || !s.Key {
		t.Errorf("SET LOCAL: %+v", s)
	}
	if s := a.Statements[2]; !s.Cacheable || s.Normalized != "select 1" || s.Text != "SELECT 1" {
		t.Errorf("SELECT 1: cacheable %v, normalized %q, text %q", s.Cacheable, s.Normalized, s.Text)
	}
	if a.Kind != KindSession || a.Cacheable {
		t.Errorf("analysis kind %v cacheable %v, want session, false", a.Kind, a.Cacheable)
	}
	if a.Normalized != "begin isolation level serializable; set local timezone = 'UTC'; select 1; commit" {
		t.Errorf("Normalized = %q", a.Normalized)
	}
}

func TestNormalizedFallsBackToRawWhenUnsure(t *testing.T) {
	t.Parallel()
	cases := []string{
		`SELECT 'a\' /* x */ , 'b'`,         // backslash: a dialect may read the string differently
		"SELECT 1 /* a /* b */ c */ FROM t", // nested comment: dialects disagree on its end
		"SELECT 'unterminated",              // unterminated quote
		"SELECT 123abc",                     // trailing junk after a number
	}
	for _, sql := range cases {
		if got := Analyze(sql).Normalized; got != sql {
			t.Errorf("Normalized(%q) = %q, want the raw text", sql, got)
		}
	}
	a, b := Analyze(`SELECT 'a\' /* x */ , 'b'`), Analyze(`SELECT 'a\' /* y */ , 'b'`)
	if a.Normalized == b.Normalized {
		t.Error("texts that differ inside what may be a string share a key text")
	}
}

func TestLabelsStayOutOfKeys(t *testing.T) {
	t.Parallel()
	a := Analyze("/*dashboard='sales'*/ SELECT count(*) FROM orders")
	b := Analyze("SELECT count(*) FROM orders -- Metabase:: userID: 5 queryType: MBQL queryHash: 00ff")
	if a.Normalized != b.Normalized || a.ShapeID != b.ShapeID {
		t.Errorf("labels changed the key text or shape: %q vs %q", a.Normalized, b.Normalized)
	}
	if a.Labels.Dashboard != "sales" || b.Labels.User != "5" || b.Labels.Source != "metabase" {
		t.Errorf("labels: %+v / %+v", a.Labels, b.Labels)
	}
}

func TestStringContinuationKeepsNewline(t *testing.T) {
	t.Parallel()
	joined := Analyze("SELECT 'a'\n'b'")
	spaced := Analyze("SELECT 'a' 'b'")
	if joined.Normalized == spaced.Normalized {
		t.Errorf("'a' newline 'b' (one string) and 'a' 'b' share %q", joined.Normalized)
	}
}
