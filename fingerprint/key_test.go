package fingerprint

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// sameQueryVariant rewrites sql with the same tokens but different
// whitespace, comments, labels and keyword case: everything a key must
// ignore.
func sameQueryVariant(r *rand.Rand, sql string) string {
	toks, _ := lex(sql, nil)
	var b strings.Builder
	if r.IntN(2) == 0 {
		b.WriteString("/*dashboard='d" + itoa(r.IntN(100)) + "',chart='" + itoa(r.IntN(100)) + "'*/ ")
	}
	prev := -1
	var path pathState
	for i, t := range toks {
		if t.kind == tComment {
			continue
		}
		if prev >= 0 {
			gap := sql[toks[prev].end:t.start]
			switch {
			case t.kind == tString && toks[prev].kind == tString:
				b.WriteString(gap) // a newline here concatenates strings: keep it as is
			case gap == "" && r.IntN(2) == 0:
			default:
				b.WriteString(randomGap(r))
			}
		}
		text := sql[t.start:t.end]
		if inPath := path.word(t, text); t.kind == tIdent && !inPath { // a path's words keep their case
			text = randomCase(r, text)
		}
		b.WriteString(text)
		prev = i
	}
	if r.IntN(2) == 0 {
		b.WriteString("\n-- Metabase:: userID: " + itoa(r.IntN(9)) + " queryType: MBQL queryHash: abc\n")
	}
	return b.String()
}

func randomGap(r *rand.Rand) string {
	gaps := []string{" ", "  ", "\n", "\t", "\n    ", " /* note */ ", " -- trailing words\n", "\r\n", " /* a /* nested */ one */ "}
	g := gaps[r.IntN(len(gaps))]
	if strings.Contains(g, "nested") {
		return " " // nested comments make the text raw: tested on their own
	}
	return g
}

func randomCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if r.IntN(2) == 0 {
			if c >= 'a' && c <= 'z' {
				b[i] = c - 'a' + 'A'
			} else if c >= 'A' && c <= 'Z' {
				b[i] = c - 'A' + 'a'
			}
		}
	}
	return string(b)
}

// changeLiteral alters one literal or quoted identifier of sql, or
// reports false if it has none.
func changeLiteral(r *rand.Rand, sql string) (string, tokKind, bool) {
	toks, _ := lex(sql, nil)
	var cands []token
	for _, t := range toks {
		if t.kind == tString || t.kind == tNumber || t.kind == tQIdent {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return "", 0, false
	}
	t := cands[r.IntN(len(cands))]
	text := sql[t.start:t.end]
	var repl string
	switch t.kind {
	case tNumber:
		repl = text + "7"
	case tQIdent:
		inner := text[1 : len(text)-1]
		if flipped := randomCase(r, inner); flipped != inner && strings.EqualFold(flipped, inner) {
			repl = `"` + flipped + `"`
		} else {
			repl = `"` + inner + `X"`
		}
	default:
		repl = text[:len(text)-1] + "x" + text[len(text)-1:]
	}
	return sql[:t.start] + repl + sql[t.end:], t.kind, true
}

func corpusSQL(t *testing.T) []string {
	var out []string
	for _, c := range loadCorpus(t) {
		out = append(out, c.sql)
	}
	return out
}

func baseInput(norm string) KeyInput {
	return KeyInput{
		Backend: "pg-main", Database: "analytics", User: "alice", Normalized: norm,
		ParamOIDs: []uint32{23, 25}, ParamFormats: []int16{0}, Params: [][]byte{[]byte("42"), []byte("")},
		ResultFormats: []int16{1},
		Settings:      []Setting{{"DateStyle", "ISO, MDY"}, {"search_path", `"$user", public`}, {"TimeZone", "UTC"}},
	}
}

func TestKeyIgnoresWhitespaceCommentsLabelsAndCase(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, sql := range corpusSQL(t) {
		want := Analyze(sql)
		base := baseInput(want.Normalized)
		for range 5 {
			v := sameQueryVariant(r, sql)
			got := Analyze(v)
			if got.Normalized != want.Normalized {
				t.Fatalf("normalised text differs\n sql:     %q\n variant: %q\n got:  %q\n want: %q", sql, v, got.Normalized, want.Normalized)
			}
			in := baseInput(got.Normalized)
			if in.Key() != base.Key() {
				t.Fatalf("keys differ for %q and %q", sql, v)
			}
			if got.Parsed && got.ShapeID != want.ShapeID {
				t.Errorf("shape ids differ for %q and %q", sql, v)
			}
		}
	}
}

func TestKeyChangesWithLiterals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, sql := range corpusSQL(t) {
		changed, kind, ok := changeLiteral(r, sql)
		if !ok {
			continue
		}
		a, b := Analyze(sql), Analyze(changed)
		ka, kb := baseInput(a.Normalized).Key(), baseInput(b.Normalized).Key()
		if ka == kb {
			t.Errorf("same key for different literals:\n %q\n %q", sql, changed)
		}
		// pg_query's fingerprint ignores constants in queries (utility
		// statements keep theirs).
		dml := a.Kind == KindRead || a.Kind == KindWrite
		if a.Parsed && b.Parsed && dml && kind == tString && a.ShapeID != b.ShapeID {
			t.Errorf("shape id changed with a literal:\n %q\n %q", sql, changed)
		}
	}
}

func TestKeyChangesWithEveryField(t *testing.T) {
	t.Parallel()
	base := baseInput("select * from orders where id = $1 and note = $2")
	k := base.Key()
	mutations := map[string]func(*KeyInput){
		"backend":       func(in *KeyInput) { in.Backend = "pg-replica" },
		"database":      func(in *KeyInput) { in.Database = "analytics2" },
		"user":          func(in *KeyInput) { in.User = "bob" },
		"shared":        func(in *KeyInput) { in.Shared = true },
		"normalized":    func(in *KeyInput) { in.Normalized += " limit 1" },
		"quoted case":   func(in *KeyInput) { in.Normalized = `select * from "Orders"` },
		"param type":    func(in *KeyInput) { in.ParamOIDs = []uint32{20, 25} },
		"param format":  func(in *KeyInput) { in.ParamFormats = []int16{1} },
		"param value":   func(in *KeyInput) { in.Params = [][]byte{[]byte("43"), []byte("")} },
		"null vs empty": func(in *KeyInput) { in.Params = [][]byte{[]byte("42"), nil} },
		"missing param": func(in *KeyInput) { in.Params = in.Params[:1] },
		"result format": func(in *KeyInput) { in.ResultFormats = []int16{0} },
		"timezone": func(in *KeyInput) {
			in.Settings = []Setting{{"DateStyle", "ISO, MDY"}, {"search_path", `"$user", public`}, {"TimeZone", "Europe/Paris"}}
		},
		"extra setting": func(in *KeyInput) { in.Settings = append(in.Settings, Setting{"extra_float_digits", "3"}) },
		"setting name": func(in *KeyInput) {
			in.Settings = []Setting{{"DateStyle", "ISO, MDY"}, {"search_path", `"$user", public`}, {"TimeZones", "UTC"}}
		},
		"setting value cut": func(in *KeyInput) {
			in.Settings = []Setting{{"DateStyle", "ISO, MDY"}, {"search_path", `"$user"`}, {"TimeZone", "UTC"}}
		},
	}
	seen := map[Key]string{k: "base"}
	for name, mutate := range mutations {
		in := base
		in.Settings = append([]Setting(nil), base.Settings...)
		mutate(&in)
		got := in.Key()
		if other, ok := seen[got]; ok {
			t.Errorf("%s: same key as %s", name, other)
		}
		seen[got] = name
	}
}

func TestKeyEquivalentInputs(t *testing.T) {
	t.Parallel()
	base := baseInput("select 1")
	k := base.Key()
	same := map[string]func(*KeyInput){
		"user ignored when shared": nil,
		"settings unsorted": func(in *KeyInput) {
			in.Settings = []Setting{{"TimeZone", "UTC"}, {"DateStyle", "ISO, MDY"}, {"search_path", `"$user", public`}}
		},
		"setting name case": func(in *KeyInput) {
			in.Settings = []Setting{{"datestyle", "ISO, MDY"}, {"SEARCH_PATH", `"$user", public`}, {"timezone", "UTC"}}
		},
		"param formats expanded":   func(in *KeyInput) { in.ParamFormats = []int16{0, 0} },
		"no param formats is text": func(in *KeyInput) { in.ParamFormats = nil },
	}
	for name, mutate := range same {
		in := base
		if mutate == nil {
			a, b := base, base
			a.Shared, b.Shared = true, true
			b.User = "bob"
			if a.Key() != b.Key() {
				t.Errorf("%s: keys differ", name)
			}
			continue
		}
		mutate(&in)
		if in.Key() != k {
			t.Errorf("%s: key changed", name)
		}
	}
	a, b := KeyInput{Normalized: "select 1"}, KeyInput{Normalized: "select 1", ResultFormats: []int16{0}}
	if a.Key() != b.Key() {
		t.Error("no result formats and [0] should both mean text")
	}
}

func TestKeyFieldsDoNotRunTogether(t *testing.T) {
	t.Parallel()
	pairs := [][2]KeyInput{
		{{Backend: "ab", Database: "c"}, {Backend: "a", Database: "bc"}},
		{{Database: "x", User: "y"}, {Database: "xy"}},
		{{Params: [][]byte{[]byte("ab")}}, {Params: [][]byte{[]byte("a"), []byte("b")}}},
		{{Settings: []Setting{{"a", "bc"}}}, {Settings: []Setting{{"ab", "c"}}}},
		{{Settings: []Setting{{"a", "b"}, {"c", "d"}}}, {Settings: []Setting{{"a", "b,c=d"}}}},
		{{Normalized: "select 1", User: ""}, {Normalized: "select", User: " 1"}},
	}
	for i, p := range pairs {
		if p[0].Key() == p[1].Key() {
			t.Errorf("pair %d: inputs collide", i)
		}
	}
}

func TestKeyString(t *testing.T) {
	t.Parallel()
	k := KeyOf(KeyInput{Normalized: "select 1"})
	if s := k.String(); len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Errorf("String() = %q, want 32 hex digits", s)
	}
	if k != KeyOf(KeyInput{Normalized: "select 1"}) {
		t.Error("Key is not deterministic")
	}
}
