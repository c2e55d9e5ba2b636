package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
)

// policyHead starts every configuration of TestPolicyCheck: lines 1 to
// 12, the policies section open at line 7 with its first rule.
const policyHead = `backends:
  - name: warehouse
    dsn: postgres://127.0.0.1:5432/wh
queues:
  dashboards: {workers: 4}
  adhoc: {workers: 2, max_queued: 16}
policies:
  - name: finance
    match:
      dashboard: "finance-*"
    ttl: 5m
    queue: dashboards
`

// `sqlcached policy check` lists the rules of a valid file and exits 0;
// for an invalid one it exits 2 naming the file, the line and the key.
func TestPolicyCheck(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		path := writeConfig(t, policyHead+`    stale_ttl: 1m
  - name: etl
    match: {user: "etl*"}
    cache: false
  - name: everything
    ttl: 10m
    queue: adhoc
`)
		var out, errb bytes.Buffer
		if code := run([]string{"policy", "check", "--config", path}, &out, &errb); code != 0 {
			t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
		if errb.Len() != 0 {
			t.Errorf("stderr of a valid file without warnings: %q", errb.String())
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		want := [][]string{
			{path + ": 3 rules, valid"},
			{"finance", "(policies[0])", `dashboard="finance-*"`, "ttl 5m0s", "queue dashboards"},
			{"etl", "(policies[1])", `user="etl*"`, "not cached"},
			{"everything", "(policies[2])", "matches everything", "ttl 10m0s", "queue adhoc"},
		}
		if len(lines) != len(want) {
			t.Fatalf("stdout has %d lines, want %d (a header and a line per rule):\n%s", len(lines), len(want), out.String())
		}
		for i, parts := range want {
			for _, p := range parts {
				if !strings.Contains(lines[i], p) {
					t.Errorf("line %d %q does not say %q", i+1, lines[i], p)
				}
			}
			if i > 0 && !strings.HasPrefix(strings.TrimSpace(lines[i]), parts[0]+" ") {
				t.Errorf("line %d %q does not start with the rule's name %q", i+1, lines[i], parts[0])
			}
		}
		if strings.Contains(lines[2], "ttl") {
			t.Errorf("the cache: false rule is listed with a ttl: %q", lines[2])
		}
	})

	cases := []struct {
		name string
		tail string // after policyHead, from line 13
		line int
		text string // what that line of the file holds (checks the count)
		key  string
		msg  string
	}{
		{
			name: "unknown key in a policy",
			tail: "    tll: 5m\n  - name: everything\n    ttl: 1h\n    queue: adhoc\n",
			line: 13, text: "tll: 5m", key: "policies[0].tll", msg: "unknown key",
		},
		{
			name: "bad duration",
			tail: "  - name: slow\n    ttl: 5 minutes\n    queue: adhoc\n  - name: everything\n    ttl: 1h\n    queue: adhoc\n",
			line: 14, text: "ttl: 5 minutes", key: "policies[1].ttl", msg: `invalid duration "5 minutes"`,
		},
		{
			name: "unknown queue",
			tail: "  - name: etl\n    match: {user: etl}\n    ttl: 5m\n    queue: nightly\n  - name: everything\n    ttl: 1h\n    queue: adhoc\n",
			line: 16, text: "queue: nightly", key: "policies[1].queue", msg: `unknown queue "nightly"`,
		},
		{
			name: "rule after the catch-all",
			tail: "  - name: everything\n    ttl: 1h\n    queue: adhoc\n  - name: late\n    match: {user: bob}\n    ttl: 1m\n    queue: adhoc\n",
			line: 16, text: "- name: late", key: "policies[2]", msg: "never matches: policies[1] (everything)",
		},
		{
			name: "no catch-all",
			tail: "  - name: bob\n    match: {user: bob}\n    ttl: 1h\n    queue: adhoc\n",
			line: 7, text: "policies:", key: "policies", msg: "no rule matches every query",
		},
		{
			name: "bad glob",
			tail: "  - name: fin2\n    match:\n      dashboard: \"fin[ance\"\n    ttl: 1m\n    queue: adhoc\n  - name: everything\n    ttl: 1h\n    queue: adhoc\n",
			line: 15, text: `dashboard: "fin[ance"`, key: "policies[1].match.dashboard", msg: `invalid pattern "fin[ance"`,
		},
		{
			name: "bad regexp",
			tail: "  - name: re\n    match:\n      sql: \"(unclosed\"\n    ttl: 1m\n    queue: adhoc\n  - name: everything\n    ttl: 1h\n    queue: adhoc\n",
			line: 15, text: `sql: "(unclosed"`, key: "policies[1].match.sql", msg: "invalid regular expression",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := policyHead + tc.tail
			if got := strings.Split(body, "\n")[tc.line-1]; !strings.Contains(got, tc.text) {
				t.Fatalf("test bug: line %d of the file is %q, not %q", tc.line, got, tc.text)
			}
			path := writeConfig(t, body)
			var out, errb bytes.Buffer
			code := run([]string{"policy", "check", "--config", path}, &out, &errb)
			if code != 2 {
				t.Fatalf("exit status %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("stdout of an invalid file: %q", out.String())
			}
			want := fmt.Sprintf("%s:%d: %s: ", path, tc.line, tc.key)
			if got := errb.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, tc.msg) {
				t.Errorf("stderr %q\nwant it to start with %q and say %q", got, want, tc.msg)
			}
		})
	}

	t.Run("usage", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run([]string{"policy", "check"}, &out, &errb); code != 2 {
			t.Errorf("policy check without --config: exit %d, want 2", code)
		}
		if code := run([]string{"policy", "check", "--config", filepath.Join(t.TempDir(), "absent.yaml")}, &out, &errb); code != 2 {
			t.Errorf("policy check of a missing file: exit %d, want 2", code)
		}
		if code := run([]string{"policy", "frobnicate"}, &out, &errb); code != 2 {
			t.Errorf("policy frobnicate: exit %d, want 2", code)
		}
	})
}

const explainConfig = `backends:
  - name: warehouse
    dsn: postgres://127.0.0.1:5432/wh
queues:
  dashboards: {workers: 4}
  adhoc: {workers: 2}
policies:
  - name: finance
    match: {dashboard: "finance-*"}
    ttl: 5m
    queue: dashboards
  - name: metabase
    match: {application_name: "Metabase*"}
    ttl: 2m
    queue: dashboards
  - name: etl
    match: {user: "etl*"}
    cache: false
  - name: live
    match: {user: ops}
    ttl: 1m
    queue: adhoc
    cache_time_functions: false
  - name: everything
    ttl: 10m
    queue: adhoc
`

// explained is the output of `sqlcached policy explain`: its fields by
// name ("decision") and the lines under "key:" (the key's components).
type explained struct {
	text   string
	fields map[string]string
	key    []string
}

func parseExplain(t *testing.T, out string) explained {
	t.Helper()
	e := explained{text: out, fields: map[string]string{}}
	inKey := false
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(line, " ") {
			if !inKey {
				t.Fatalf("continuation line %q outside key:\n%s", line, out)
			}
			e.key = append(e.key, strings.TrimSpace(line))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("line %q is not NAME: VALUE:\n%s", line, out)
		}
		if _, dup := e.fields[name]; dup {
			t.Fatalf("field %q twice:\n%s", name, out)
		}
		e.fields[name] = strings.TrimSpace(value)
		inKey = name == "key"
	}
	return e
}

// has fails t unless field name holds each of parts.
func (e explained) has(t *testing.T, name string, parts ...string) {
	t.Helper()
	v, ok := e.fields[name]
	if !ok {
		t.Errorf("no %s: line:\n%s", name, e.text)
		return
	}
	for _, p := range parts {
		if !strings.Contains(v, p) {
			t.Errorf("%s: %q does not say %q\n%s", name, v, p, e.text)
		}
	}
}

// `sqlcached policy explain` says, for one statement, which rule decides
// it, whether and for how long it is cached, and from what its key is made.
func TestPolicyExplain(t *testing.T) {
	path := writeConfig(t, explainConfig)
	analyzer, err := fingerprint.New(fingerprint.Config{})
	if err != nil {
		t.Fatal(err)
	}
	explain := func(t *testing.T, args ...string) explained {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"policy", "explain", "--config", path}, args...)
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%q: exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
		}
		if errb.Len() != 0 {
			t.Errorf("%q: stderr %q", args, errb.String())
		}
		return parseExplain(t, out.String())
	}
	const (
		bare      = "select sum(amount) from orders where region = 'EU'"
		commented = "/*dashboard='finance-q3'*/ " + bare
	)
	norm := analyzer.Analyze(bare).Normalized
	if norm == "" {
		t.Fatalf("the analyzer normalises %q to nothing", bare)
	}

	var fromComment explained
	t.Run("dashboard from a sqlcommenter comment", func(t *testing.T) {
		e := explain(t, "--user", "alice", "--database", "sales", commented)
		fromComment = e
		e.has(t, "statement", norm)
		e.has(t, "kind", "read")
		e.has(t, "reads", "orders")
		e.has(t, "labels", `dashboard="finance-q3" (from comment)`)
		e.has(t, "rule", "finance (policies[0])", `dashboard="finance-*"`)
		e.has(t, "cacheable", "yes")
		e.has(t, "decision", "cached: ttl 5m0s", "queue dashboards", "shared false")
		if _, ok := e.fields["hint"]; ok {
			t.Errorf("a hint line without a hint:\n%s", e.text)
		}
		if e.fields["key"] == "" {
			t.Fatalf("no key:\n%s", e.text)
		}
		wantKey := []string{
			"backend warehouse, database sales, user alice",
			"text " + strconv.Quote(norm),
		}
		for _, w := range wantKey {
			found := false
			for _, k := range e.key {
				found = found || k == w
			}
			if !found {
				t.Errorf("the key's components do not include %q:\n%s", w, e.text)
			}
		}
		for _, k := range append([]string{e.fields["statement"]}, e.key...) {
			if strings.Contains(k, "finance-q3") || strings.Contains(k, "/*") {
				t.Errorf("the comment enters the statement or the key: %q", k)
			}
		}
	})

	t.Run("dashboard from SET", func(t *testing.T) {
		e := explain(t, "--user", "alice", "--database", "sales", "--dashboard", "finance-q4", bare)
		e.has(t, "labels", `dashboard="finance-q4" (from set)`)
		e.has(t, "rule", "finance (policies[0])")
		e.has(t, "decision", "cached: ttl 5m0s")
		// Labels choose rules and never enter keys: the same statement
		// has the same key whichever dashboard asks.
		if fromComment.fields["key"] != "" && e.fields["key"] != fromComment.fields["key"] {
			t.Errorf("key %q under SET, %q under a comment: labels entered the key", e.fields["key"], fromComment.fields["key"])
		}
	})

	t.Run("the comment wins over SET", func(t *testing.T) {
		e := explain(t, "--user", "alice", "--database", "sales", "--dashboard", "sales-weekly", commented)
		e.has(t, "labels", `dashboard="finance-q3" (from comment)`)
		e.has(t, "rule", "finance (policies[0])")
	})

	t.Run("uncacheable", func(t *testing.T) {
		e := explain(t, "--user", "ops", "select now()")
		e.has(t, "rule", "live (policies[3])")
		e.has(t, "decision", "not cached: "+policy.ReasonTime)
		noKey(t, e)

		e = explain(t, "--user", "ops", "select random()")
		e.has(t, "rule", "live (policies[3])")
		e.has(t, "cacheable", "no:", "random")
		e.has(t, "decision", "not cached:", "random")
		noKey(t, e)

		e = explain(t, "--user", "alice", "insert into orders (amount) values (1)")
		e.has(t, "kind", "write")
		e.has(t, "rule", "everything (policies[4])")
		e.has(t, "cacheable", "no:")
		e.has(t, "decision", "not cached:")
		noKey(t, e)

		// The catch-all caches the clock: cache_time_functions defaults
		// to true.
		e = explain(t, "--user", "alice", "select now()")
		e.has(t, "rule", "everything (policies[4])")
		e.has(t, "decision", "cached: ttl 10m0s")
	})

	t.Run("user with cache false", func(t *testing.T) {
		e := explain(t, "--user", "etl_loader", "--database", "sales", bare)
		e.has(t, "rule", "etl (policies[2])", `user="etl*"`)
		e.has(t, "cacheable", "yes")
		e.has(t, "decision", "not cached: "+policy.ReasonRuleOff)
		noKey(t, e)
	})

	t.Run("hint", func(t *testing.T) {
		e := explain(t, "--user", "alice", "--dashboard", "finance-q3", "/* sqlcached:ttl=30s */ select count(*) from orders")
		e.has(t, "rule", "finance (policies[0])")
		e.has(t, "decision", "cached: ttl 30s,")
		e.has(t, "hint", "sqlcached:ttl=30s", "shortens", "5m0s")
		e.has(t, "key", "")
		for _, k := range e.key {
			if strings.Contains(k, "sqlcached:ttl") {
				t.Errorf("the hint enters the key: %q", k)
			}
		}
		// Without allow_hints a hint may not lengthen the TTL.
		e = explain(t, "--user", "alice", "--dashboard", "finance-q3", "/* sqlcached:ttl=1h */ select count(*) from orders")
		e.has(t, "decision", "cached: ttl 5m0s,")
		e.has(t, "hint", "ignored")
	})

	t.Run("application_name", func(t *testing.T) {
		e := explain(t, "--user", "alice", "--application-name", "Metabase v0.50", "select count(*) from orders")
		e.has(t, "rule", "metabase (policies[1])", `application_name="Metabase*"`)
		e.has(t, "decision", "cached: ttl 2m0s", "queue dashboards")
		// --database defaults to the user name, as psql's does.
		if !containsLine(e.key, "backend warehouse, database alice, user alice") {
			t.Errorf("key components:\n%s", e.text)
		}
		// Another application is not matched by the rule.
		e = explain(t, "--user", "alice", "--application-name", "psql", "select count(*) from orders")
		e.has(t, "rule", "everything (policies[4])")
	})

	t.Run("usage", func(t *testing.T) {
		for name, args := range map[string][]string{
			"no --user":       {"policy", "explain", "--config", path, "select 1"},
			"no --config":     {"policy", "explain", "--user", "alice", "select 1"},
			"no statement":    {"policy", "explain", "--config", path, "--user", "alice"},
			"two statements":  {"policy", "explain", "--config", path, "--user", "alice", "select 1", "select 2"},
			"unknown flag":    {"policy", "explain", "--config", path, "--user", "alice", "--dashbord", "x", "select 1"},
			"invalid file":    {"policy", "explain", "--config", writeConfig(t, "backends: []\n"), "--user", "alice", "select 1"},
			"file not there":  {"policy", "explain", "--config", filepath.Join(t.TempDir(), "absent.yaml"), "--user", "alice", "select 1"},
			"no such command": {"policy", "explian", "--config", path, "--user", "alice", "select 1"},
		} {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 2 {
				t.Errorf("%s: exit status %d, want 2 (stdout %q, stderr %q)", name, code, out.String(), errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("%s: stdout %q", name, out.String())
			}
		}
		var out, errb bytes.Buffer
		run([]string{"policy", "explain", "--config", path, "select 1"}, &out, &errb)
		if !strings.Contains(errb.String(), "usage:") || !strings.Contains(errb.String(), "--user") {
			t.Errorf("missing --user: stderr %q does not show the usage", errb.String())
		}
	})
}

func noKey(t *testing.T, e explained) {
	t.Helper()
	if _, ok := e.fields["key"]; ok || len(e.key) > 0 {
		t.Errorf("an answer that is not cached has a key:\n%s", e.text)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// countLines returns how many lines of s contain every one of parts.
func countLines(s *testenv.LogBuffer, parts ...string) int {
	n := 0
	for _, line := range strings.Split(s.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all && line != "" {
			n++
		}
	}
	return n
}

// pgbenchRun is a pgbench running in the background.
type pgbenchRun struct {
	args           []string
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
	ended          time.Time
}

// libpqEnv returns the test's environment without PG* variables, plus
// those that connect to database at addr as the superuser.
func libpqEnv(addr, database string) []string {
	host, port, _ := strings.Cut(addr, ":")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGHOST="+host, "PGPORT="+port, "PGUSER="+testenv.SuperUser,
		"PGPASSWORD="+testenv.SuperPassword, "PGDATABASE="+database, "PGSSLMODE=disable",
		"PGCONNECT_TIMEOUT=10", "PGAPPNAME=sqlcached-reload-test")
}

func startPgbench(ctx context.Context, t *testing.T, dir string, env []string, args ...string) *pgbenchRun {
	t.Helper()
	r := &pgbenchRun{args: args, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	go func() {
		r.err = cmd.Wait()
		r.ended = time.Now()
		close(r.done)
	}()
	return r
}

func (r *pgbenchRun) String() string {
	return fmt.Sprintf("pgbench %s: %v\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(r.args, " "), r.err, r.stdout.String(), r.stderr.String())
}

// reloadDeadline is how soon a change to the file, or a SIGHUP, must be
// in force.
const reloadDeadline = time.Second

// TestReloadPoliciesUnderLoad changes a running server's policies, by
// rewriting its file and by SIGHUP, while pgbench's clients query through
// it in both protocols: each change is in force within a second, an
// invalid file changes nothing, and no client notices anything else.
func TestReloadPoliciesUnderLoad(t *testing.T) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		t.Fatalf("pgbench is required by this test: %v", err)
	}
	start := time.Now()
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// pgbench's tables, made on the warehouse directly.
	initCmd := exec.CommandContext(ctx, "pgbench", "-i", "-s", "1", "-q")
	initCmd.Env, initCmd.Dir = libpqEnv(pg.Addr(), db), dir
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	// One table per probe, so that each starts uncached.
	var ddl strings.Builder
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&ddl, "create table reload_p%d (x int); insert into reload_p%d select generate_series(1, %d);\n", i, i, 10*i)
	}
	pg.Exec(t, db, ddl.String())
	script := filepath.Join(dir, "branches.sql")
	if err := os.WriteFile(script, []byte("select count(*) from pgbench_branches;\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	pgAddr := freeAddr(t)
	const cacheVar = "SQLCACHED_TEST_RELOAD_CACHE"
	t.Setenv(cacheVar, "true")
	head := fmt.Sprintf(`listen: {postgres: %q, http: ""}
auth:
  method: scram-sha-256
  users: [{name: postgres, password: %q}]
backends:
  - {name: warehouse, dsn: %q, max_conns: 8}
shutdown: {timeout: 5s}
policies:
  - name: everything
`, pgAddr, testenv.SuperPassword, pg.DSN(db))
	const (
		ttlHour   = "    ttl: 1h\n"
		ttlSecond = "    ttl: 1s\n"
		cacheOff  = "    cache: false\n"
		invalid   = "    ttl: nonsense\n" // line 10
		fromEnv   = "    cache: ${" + cacheVar + "}\n    ttl: 1h\n"
	)
	path := writeConfig(t, head+ttlHour)
	// rewrite replaces the file at once, as editors and config management
	// do (a rename), so that the server never reads half a file.
	rewrite := func(t *testing.T, body string) time.Time {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(head+body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	rules, cfg, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	hup := make(chan os.Signal, 1)
	srvCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- runServer(srvCtx, cfg, rules, hup, nil, slog.New(slog.NewTextHandler(logs, nil))) }()
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()

	dsn := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, pgAddr, db)
	var conn *pgx.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err = pgx.Connect(cctx, dsn)
		ccancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connecting through the proxy: %v\n%s", err, logs.String())
	}
	defer conn.Close(context.Background())

	// calls is testenv's PG.Calls on one connection: connecting anew for
	// each count is slow under load.
	stats := pg.Connect(t, "postgres")
	calls := func(t *testing.T, like string) int64 {
		t.Helper()
		var n int64
		err := stats.QueryRow(ctx, `SELECT coalesce(sum(s.calls), 0)::bigint
			FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
			WHERE d.datname = $1 AND s.query LIKE $2`, db, like).Scan(&n)
		if err != nil {
			t.Fatalf("reading pg_stat_statements: %v", err)
		}
		return n
	}
	// probe runs "select count(*) from reload_pN" n times through the
	// proxy and checks that the warehouse ran it want times meanwhile.
	probe := func(t *testing.T, table int, n int, want int64) {
		t.Helper()
		q := fmt.Sprintf("select count(*) from reload_p%d", table)
		like := fmt.Sprintf("%%reload_p%d%%", table)
		before := calls(t, like)
		for i := 0; i < n; i++ {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			var got int64
			err := conn.QueryRow(qctx, q).Scan(&got)
			qcancel()
			if err != nil {
				t.Fatalf("%s through the proxy (run %d): %v", q, i+1, err)
			}
			if got != int64(10*table) {
				t.Fatalf("%s = %d, want %d", q, got, 10*table)
			}
		}
		ran := calls(t, like) - before
		for deadline := time.Now().Add(200 * time.Millisecond); ran < want && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			ran = calls(t, like) - before
		}
		if ran != want {
			t.Errorf("%s %d times: the warehouse ran it %d times, want %d", q, n, ran, want)
		}
	}
	// waitLog waits until the server has logged lines with every one of
	// parts more than had times, within reloadDeadline of since.
	waitLog := func(t *testing.T, since time.Time, had int, parts ...string) {
		t.Helper()
		for countLines(logs, parts...) <= had {
			if time.Since(since) > reloadDeadline {
				t.Fatalf("no log line with %q within %v", parts, reloadDeadline)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%q logged %v after the change", parts, time.Since(since).Round(time.Millisecond))
	}
	reloaded := []string{"configuration reloaded"}
	refused := []string{"configuration not reloaded"}

	// The load: pgbench's select-only script and a fixed query, in the
	// simple and in the prepared protocol, for longer than the changes
	// below take. -R keeps the two cores of a test machine from being
	// saturated, so that the probes below take milliseconds, not seconds.
	env := libpqEnv(pgAddr, db)
	var benches []*pgbenchRun
	for _, mode := range []string{"simple", "prepared"} {
		benches = append(benches, startPgbench(ctx, t, dir, env,
			"-n", "-M", mode, "-c", "4", "-j", "2", "-T", "8", "-R", "300", "-b", "select-only@1", "-f", script+"@1"))
	}
	defer func() {
		for _, b := range benches {
			<-b.done
		}
	}()
	time.Sleep(300 * time.Millisecond) // the clients connect and run

	// ttl 1h: repeats are answered from the cache.
	probe(t, 1, 4, 1)

	// ttl 1s: answers expire after a second.
	had := countLines(logs, reloaded...)
	since := rewrite(t, ttlSecond)
	waitLog(t, since, had, reloaded...)
	probe(t, 2, 3, 1)
	time.Sleep(1200 * time.Millisecond)
	probe(t, 2, 1, 1)

	// cache: false: every statement runs on the warehouse, even one whose
	// answer is cached and fresh.
	had = countLines(logs, reloaded...)
	since = rewrite(t, cacheOff)
	waitLog(t, since, had, reloaded...)
	probe(t, 1, 3, 3)
	probe(t, 3, 3, 3)

	// ttl 1h again.
	had = countLines(logs, reloaded...)
	since = rewrite(t, ttlHour)
	waitLog(t, since, had, reloaded...)
	probe(t, 4, 3, 1)
	probe(t, 1, 2, 0) // cached before cache: false, and still fresh

	// An invalid file: logged with its line and key, and the rules in
	// force stay.
	had, hadRefused := countLines(logs, reloaded...), countLines(logs, refused...)
	since = rewrite(t, invalid)
	waitLog(t, since, hadRefused, refused...)
	if want := fmt.Sprintf("%s:10: policies[0].ttl: invalid duration", path); countLines(logs, append(refused, want)...) == 0 {
		t.Errorf("the refused reload is not logged with %q", want)
	}
	probe(t, 4, 3, 0)
	probe(t, 5, 3, 1)
	if n := countLines(logs, reloaded...); n != had {
		t.Errorf("%d reloads logged after an invalid file", n-had)
	}

	// A valid file again, whose cache comes from the environment: on
	// SIGHUP the environment is read again, though the file is unchanged.
	had = countLines(logs, reloaded...)
	since = rewrite(t, fromEnv)
	waitLog(t, since, had, reloaded...)
	probe(t, 6, 3, 1)
	t.Setenv(cacheVar, "false")
	hadHup := countLines(logs, append(reloaded, "SIGHUP")...)
	since = time.Now()
	hup <- syscall.SIGHUP
	waitLog(t, since, hadHup, append(reloaded, "SIGHUP")...)
	probe(t, 6, 3, 3)
	t.Setenv(cacheVar, "true")
	hadHup = countLines(logs, append(reloaded, "SIGHUP")...)
	since = time.Now()
	hup <- syscall.SIGHUP
	waitLog(t, since, hadHup, append(reloaded, "SIGHUP")...)
	probe(t, 6, 3, 0)
	changesDone := time.Now()

	// Only the policies changed: nothing asks for a restart.
	if n := countLines(logs, "need a restart"); n != 0 {
		t.Errorf("%d reloads that changed only the policies logged that a restart is needed", n)
	}

	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	failed := regexp.MustCompile(`number of failed transactions: (\d+)`)
	for _, b := range benches {
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("pgbench did not end")
		}
		var ee *exec.ExitError
		if b.err != nil && !errors.As(b.err, &ee) {
			t.Errorf("%s", b)
			continue
		}
		if b.err != nil {
			t.Errorf("pgbench failed (a client aborted?):\n%s", b)
		}
		if m := processed.FindStringSubmatch(b.stdout.String()); m == nil || m[1] == "0" {
			t.Errorf("pgbench processed no transactions:\n%s", b)
		}
		if m := failed.FindStringSubmatch(b.stdout.String()); m != nil && m[1] != "0" {
			t.Errorf("pgbench: %s failed transactions:\n%s", m[1], b)
		}
		if s := b.stderr.String(); strings.Contains(s, "abort") || strings.Contains(s, "error") || strings.Contains(s, "ERROR") {
			t.Errorf("pgbench reported errors:\n%s", b)
		}
		if b.ended.Before(changesDone) {
			t.Errorf("pgbench ended %v before the last change: not every change was made under load", changesDone.Sub(b.ended).Round(time.Millisecond))
		}
	}

	// The probe's session lived through every change.
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("the probe's session after the changes: %v", err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runServer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop")
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
