package fingerprint

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A corpus case is a statement with its expected classification, written
// by hand in testdata/corpus/*.sql:
//
//	-- name: superset_timeseries
//	-- expect: kind=read cacheable=true reads=public.orders time=true
//	SELECT ...
//
// kind and cacheable are required. reads, writes, time, peruser and pin
// are always checked and default to none/false. Other keys are checked
// when given: reason (substring), parsed, statements, command, dashboard,
// chart, user, hash, source, nocache, ttl, tx, isolation, readonly,
// setname, setvalue, setlocal, known, createstemp, catalog, temps (the session's
// temporary tables, for AnalyzeSession). A value with spaces is quoted;
// "-" is an empty list or string.
type corpusCase struct {
	file, name string
	line       int
	expect     map[string]string
	sql        string
}

func loadCorpus(t testing.TB) []corpusCase {
	files, err := filepath.Glob("testdata/corpus/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var cases []corpusCase
	for _, f := range files {
		cases = append(cases, parseCorpusFile(t, f)...)
	}
	return cases
}

func parseCorpusFile(t testing.TB, path string) []corpusCase {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var cases []corpusCase
	var cur *corpusCase
	var body []string
	flush := func() {
		if cur != nil {
			cur.sql = strings.TrimSpace(strings.Join(body, "\n"))
			cases = append(cases, *cur)
		}
		body = nil
	}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-- name:"):
			flush()
			cur = &corpusCase{file: filepath.Base(path), line: n, name: strings.TrimSpace(line[len("-- name:"):]), expect: map[string]string{}}
		case cur != nil && len(body) == 0 && strings.HasPrefix(line, "-- expect:"):
			for k, v := range parseExpect(t, line[len("-- expect:"):]) {
				cur.expect[k] = v
			}
		case cur != nil:
			body = append(body, line)
		}
	}
	flush()
	return cases
}

// parseExpect reads key=value pairs; values may be double-quoted.
func parseExpect(t testing.TB, s string) map[string]string {
	m := map[string]string{}
	s = strings.TrimSpace(s)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			t.Fatalf("bad expect %q", s)
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			v, s = s[1:end+1], s[end+2:]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			v, s = s[:sp], s[sp:]
		}
		m[k] = v
		s = strings.TrimSpace(s)
	}
	return m
}

// listOf splits a comma-separated list and sorts it, as the analysis
// sorts its lists.
func listOf(v string) []string {
	if v == "-" || v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	slices.Sort(l)
	return l
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	cases := loadCorpus(t)
	if len(cases) < 150 {
		t.Errorf("corpus has %d statements, want at least 150", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Errorf("%s:%d: duplicate name %s", c.file, c.line, c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			checkCase(t, c)
		})
	}
}

func checkCase(t *testing.T, c corpusCase) {
	var a *Analysis
	if temps := listOf(c.expect["temps"]); temps != nil {
		tt := TempTables{}
		for _, n := range temps {
			tt[n] = true
		}
		a = withTemps(Analyze(c.sql), tt)
	} else {
		a = Analyze(c.sql)
	}
	where := c.file + ":" + strconv.Itoa(c.line)
	e := c.expect
	for _, k := range []string{"kind", "cacheable"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("%s: expect has no %s", where, k)
		}
	}
	for _, k := range []string{"reads", "writes", "pin"} {
		if _, ok := e[k]; !ok {
			e[k] = "-"
		}
	}
	for _, k := range []string{"time", "peruser"} {
		if _, ok := e[k]; !ok {
			e[k] = "false"
		}
	}
	var st *Statement
	if len(a.Statements) > 0 {
		st = &a.Statements[0]
	}
	for k, want := range e {
		var got string
		ok := true
		switch k {
		case "kind":
			got = a.Kind.String()
		case "cacheable":
			got = strconv.FormatBool(a.Cacheable)
		case "reason":
			got = a.Reason
			ok = strings.Contains(got, want)
		case "reads":
			got = strings.Join(a.ReadTables, ",")
			ok = slices.Equal(a.ReadTables, listOf(want))
		case "writes":
			got = strings.Join(a.WriteTables, ",")
			ok = slices.Equal(a.WriteTables, listOf(want))
		case "time":
			got = strconv.FormatBool(a.UsesTime)
		case "peruser":
			got = strconv.FormatBool(a.PerUser)
		case "catalog":
			got = strconv.FormatBool(a.ReadsCatalog)
		case "pin":
			got = a.Pin
			if want == "-" {
				ok = got == ""
			} else {
				ok = strings.Contains(got, want)
			}
		case "parsed":
			got = strconv.FormatBool(a.Parsed)
		case "statements":
			got = strconv.Itoa(len(a.Statements))
		case "command":
			got = st.Command
		case "dashboard":
			got = a.Labels.Dashboard
		case "chart":
			got = a.Labels.Chart
		case "user":
			got = a.Labels.User
		case "hash":
			got = a.Labels.QueryHash
		case "source":
			got = a.Labels.Source
		case "nocache":
			got = strconv.FormatBool(a.Hints.NoCache)
		case "ttl":
			d, err := time.ParseDuration(want)
			if err != nil {
				t.Fatalf("%s: ttl %q: %v", where, want, err)
			}
			got, ok = a.Hints.TTL.String(), a.Hints.TTL == d
		case "tx":
			got = txName(st)
		case "isolation":
			if st.Tx != nil {
				got = st.Tx.Isolation
			}
			ok = got == strings.ReplaceAll(strings.TrimPrefix(want, "-"), "_", " ")
		case "readonly":
			if st.Tx != nil {
				got = strconv.FormatBool(st.Tx.ReadOnly)
			}
		case "setname", "setvalue", "setlocal", "known":
			if st.Set != nil {
				got = map[string]string{"setname": st.Set.Name, "setvalue": st.Set.Value,
					"setlocal": strconv.FormatBool(st.Set.Local), "known": strconv.FormatBool(st.Set.Known)}[k]
			}
			if want == "-" {
				want = ""
			}
		case "createstemp":
			got = strings.Join(st.CreatesTemp, ",")
		case "temps":
			continue
		default:
			t.Fatalf("%s: unknown expect key %q", where, k)
		}
		if ok && got != want && k != "reason" && k != "pin" && k != "reads" && k != "writes" && k != "ttl" && k != "isolation" {
			ok = false
		}
		if !ok {
			t.Errorf("%s: %s = %q, want %q (reason %q)", where, k, got, want, a.Reason)
		}
	}
}

func txName(s *Statement) string {
	if s == nil || s.Tx == nil {
		return ""
	}
	return [...]string{"", "begin", "commit", "rollback", "savepoint", "release", "rollback_to",
		"prepare", "commit_prepared", "rollback_prepared", "set_transaction"}[s.Tx.Op]
}
