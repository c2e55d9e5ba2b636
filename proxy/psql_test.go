package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// The tests in this file and in pgbench_test.go, python_test.go and
// jdbc_test.go run real client programs twice, once on PostgreSQL itself
// and once through the proxy, and compare what a user would see.

// clientTarget is where a client program connects: the proxy, or
// PostgreSQL directly.
type clientTarget struct {
	Name     string // "proxy" or "direct"
	Host     string
	Port     int
	Database string
}

func (e *env) viaProxy() clientTarget {
	return clientTarget{Name: "proxy", Host: "127.0.0.1", Port: e.Port, Database: e.Database}
}

func (e *env) direct() clientTarget {
	return clientTarget{Name: "direct", Host: e.PG.Host, Port: e.PG.Port, Database: e.Database}
}

// twin returns a direct target on a second, fresh database of the same
// server, for tests that change data: the same steps run through the proxy
// on the env's database and directly on the twin, each from the same
// starting point.
func (e *env) twin(t testing.TB) clientTarget {
	t.Helper()
	return clientTarget{Name: "direct", Host: e.PG.Host, Port: e.PG.Port, Database: e.PG.NewDatabase(t)}
}

// DSN is a libpq URL for the target.
func (tg clientTarget) DSN() string {
	return fmt.Sprintf("postgresql://%s:%s@%s:%d/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, tg.Host, tg.Port, tg.Database)
}

// libpqEnv is the environment of a libpq program connecting to the target:
// the test's own, without any PG* variable, plus the target's.
func (tg clientTarget) libpqEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PGHOST="+tg.Host,
		"PGPORT="+strconv.Itoa(tg.Port),
		"PGUSER="+testenv.SuperUser,
		"PGPASSWORD="+testenv.SuperPassword,
		"PGDATABASE="+tg.Database,
		"PGSSLMODE=disable",
		"PGCONNECT_TIMEOUT=30",
		"PGAPPNAME=sqlcached-test",
		"LC_ALL=C.UTF-8",
	)
}

// toolRun is what a client program did.
type toolRun struct {
	Stdout, Stderr string
	Code           int
}

func (r toolRun) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.Code, clip(r.Stdout), clip(r.Stderr))
}

// clip shortens long output for a failure message.
func clip(s string) string {
	const max = 3000
	if len(s) <= max {
		return s
	}
	return s[:max/2] + fmt.Sprintf("\n[... %d bytes ...]\n", len(s)-max) + s[len(s)-max/2:]
}

// runTool runs a program with the target's libpq environment in dir,
// feeding it stdin. A program that cannot start fails the test.
func runTool(t testing.TB, tg clientTarget, dir string, stdin io.Reader, timeout time.Duration, name string, args ...string) toolRun {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = tg.libpqEnv()
	cmd.Dir = dir
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := toolRun{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s on %s: timed out after %v\n%s", name, strings.Join(args, " "), tg.Name, timeout, r)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s on %s: %v", name, tg.Name, err)
	}
	return r
}

// forEachMode runs a test with the answer cache off, the proxy only
// relaying, and on, with every statement it may cache cached for a minute.
func forEachMode(t *testing.T, f func(t *testing.T, cached bool)) {
	for _, cached := range []bool{false, true} {
		name := "relay"
		if cached {
			name = "cached"
		}
		t.Run(name, func(t *testing.T) { f(t, cached) })
	}
}

// psql runs psql without a psqlrc, stopping at the first error.
func psql(t testing.TB, tg clientTarget, dir string, stdin io.Reader, args ...string) toolRun {
	t.Helper()
	args = append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-P", "pager=off"}, args...)
	return runTool(t, tg, dir, stdin, 2*time.Minute, "psql", args...)
}

// sameRun fails t when two runs of a program differ in what a user sees.
func sameRun(t testing.TB, what string, direct, proxied toolRun) {
	t.Helper()
	if direct.Code != proxied.Code || direct.Stdout != proxied.Stdout || direct.Stderr != proxied.Stderr {
		t.Errorf("%s: the proxy differs from PostgreSQL\n=== direct: %s\n=== proxy: %s\n=== diff (direct -, proxy +):\n%s",
			what, direct, proxied, lineDiff(direct.String(), proxied.String()))
	}
}

// lineDiff is a short list of the lines that differ between a and b, good
// enough to point at the difference in a failure message.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	n := 0
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x == y {
			continue
		}
		fmt.Fprintf(&out, "line %d:\n- %s\n+ %s\n", i+1, x, y)
		if n++; n == 20 {
			out.WriteString("...\n")
			break
		}
	}
	return out.String()
}

// TestPsqlCommandStrings runs -c strings of several statements (one Query
// message each, all results shown by psql 15), an error in the middle of
// one, which rolls back the implicit transaction of the whole string, and
// several -c options in a row, with a setting carried from one to the next.
func TestPsqlCommandStrings(t *testing.T) { forEachMode(t, testPsqlCommandStrings) }

func testPsqlCommandStrings(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 2, cache: cached})
	steps := [][]string{
		{"-c", `create table m (id int primary key, v text, n numeric(10,2), d date);
			insert into m select g, 'v' || g, g * 1.25, date '2024-01-01' + g from generate_series(1, 25) g;
			select * from m order by id;
			update m set v = upper(v) where id > 20;
			select count(*), sum(n), string_agg(v, ',' order by id) from m;
			delete from m where id % 5 = 0 returning id, v`},
		// The error rolls back the table created earlier in the same string.
		{"-c", `create table gone (id int); insert into gone values (1); select 1/0; select 2`},
		{"-c", `select count(*) from gone`},
		{"-c", `select count(*) from m`},
		{"-c", `set timezone = 'America/New_York'`, "-c", `show timezone`, "-c", `select timestamptz '2024-06-01 12:00:00+00' as t, to_char(timestamptz '2024-01-15 08:30:00+00', 'YYYY-MM-DD HH24:MI TZ') as c`},
		{"-c", `begin`, "-c", `insert into m values (100, 'in tx', 1, null)`, "-c", `select * from m where id = 100`, "-c", `rollback`, "-c", `select count(*) from m where id = 100`},
		{"-1", "-c", `insert into m values (101, 'single', 2, '2020-02-29')`, "-c", `select * from m where id >= 100 order by id`},
		{"-A", "-t", "-F", "|", "-c", `select id, v, n, d from m order by id desc limit 7`},
		{"--csv", "-c", `select id, v, n, d, null::text as nothing, 'a,"b"' as quoted from m order by id limit 5`},
		{"-x", "-c", `select id, v from m order by id limit 2; select version() = version() as same`},
		{"-c", `select 1 as a; select 'two' as b; select null as c; select`},
		{"-c", `select * from does_not_exist`},
		{"-c", `select 1; select not_a_column from m; select 3`},
		{"-c", `do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$`},
		{"-c", `vacuum analyze m`, "-c", `select attname, null_frac from pg_stats where tablename = 'm' order by attname`},
		{"-c", ``},
		{"-c", `;;; select 5 ;;`},
	}
	proxy, direct := e.viaProxy(), e.twin(t)
	dir := t.TempDir()
	for i, args := range steps {
		d := psql(t, direct, dir, nil, args...)
		p := psql(t, proxy, dir, nil, args...)
		sameRun(t, fmt.Sprintf("step %d %q", i, args), d, p)
		if i == 0 && (p.Code != 0 || !strings.Contains(p.Stdout, "DELETE 5")) {
			t.Fatalf("the first string failed:\n%s", p)
		}
	}
}

// describeSchema is a schema with what psql's \d commands show: keys,
// a foreign key, indexes of several kinds, checks, defaults, comments, a
// view, a sequence, a function, a partitioned table and a second schema.
const describeSchema = `
create schema sales;
create type mood as enum ('sad', 'ok', 'happy');
create table customers (
	id bigserial primary key,
	email text not null unique,
	name varchar(80) collate "C",
	mood mood default 'ok',
	created timestamptz not null default now(),
	tags text[],
	meta jsonb,
	check (email like '%@%')
);
comment on table customers is 'people who buy';
comment on column customers.email is 'login';
create index customers_lower_name on customers (lower(name)) where name is not null;
create index customers_meta on customers using gin (meta);
create table sales.orders (
	id int generated always as identity primary key,
	customer_id bigint not null references customers (id) on delete cascade,
	amount numeric(12,2) not null check (amount >= 0),
	placed date,
	note text
);
create index on sales.orders (customer_id, placed desc);
create view sales.big_orders as select o.id, c.email, o.amount from sales.orders o join customers c on c.id = o.customer_id where o.amount > 100;
create sequence invoice_no start 1000 increment 5;
create function add_one(int) returns int language sql immutable as 'select $1 + 1';
create table events (id int, at date not null, payload text) partition by range (at);
create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
insert into customers (email, name, tags, meta) select 'u' || g || '@x.org', 'User ' || g, array['a', 'b'], jsonb_build_object('g', g) from generate_series(1, 500) g;
insert into sales.orders (customer_id, amount, placed) select 1 + g % 500, g * 0.5, date '2024-01-01' + g % 300 from generate_series(1, 3000) g;
analyze;
`

// TestPsqlDescribe compares psql's catalog commands, which run catalog
// queries chosen by the server version the connection reports.
func TestPsqlDescribe(t *testing.T) { forEachMode(t, testPsqlDescribe) }

func testPsqlDescribe(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{cache: cached})
	e.PG.Exec(t, e.Database, describeSchema)
	// Sizes shown by \dt+ and \d+ include the free space and visibility
	// maps: make them now, not when autovacuum gets to it between two runs.
	e.PG.Exec(t, e.Database, "vacuum analyze")
	dir := t.TempDir()
	for _, cmd := range []string{
		`\d customers`, `\d+ customers`, `\d sales.orders`, `\d+ sales.orders`, `\dt+`, `\dt+ sales.*`, `\d+`,
		`\d`, `\di+ customers*`, `\dv sales.*`, `\d+ sales.big_orders`, `\ds+`, `\d invoice_no`,
		`\df add_one`, `\dT+ mood`, `\dn`, `\d+ events`, `\dx`, `\dp customers`, `\d does_not_exist`,
	} {
		d := psql(t, e.direct(), dir, nil, "-c", cmd)
		p := psql(t, e.viaProxy(), dir, nil, "-c", cmd)
		sameRun(t, cmd, d, p)
		if d.Code == 0 && strings.TrimSpace(d.Stdout) == "" {
			t.Errorf("%s printed nothing:\n%s", cmd, d)
		}
	}
}

// copyCSV writes n rows of CSV with the awkward cases: quotes, commas,
// line breaks inside fields, NULLs, empty strings, multibyte text.
func copyCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("id,name,amount,at,note\n")
	for i := 1; i <= n; i++ {
		var note string
		switch i % 7 {
		case 0:
			note = "" // NULL
		case 1:
			note = "plain"
		case 2:
			note = `"with, comma"`
		case 3:
			note = `"say ""hi"""`
		case 4:
			note = "\"two\nlines\""
		case 5:
			note = "ünïcødé ✓"
		case 6:
			note = `""`
		}
		fmt.Fprintf(&b, "%d,name %d,%d.%02d,2024-%02d-%02d %02d:%02d:%02d+00,%s\n", i, i, i*3, i%100, 1+i%12, 1+i%28, i%24, i%60, (i*7)%60, note)
	}
	return b.Bytes()
}

const copyTable = `create table c (id int primary key, name text, amount numeric(12,2), at timestamptz, note text)`

// TestPsqlBackslashCopy runs \copy from and to files: psql streams the
// file as CopyData through COPY FROM STDIN and writes COPY TO STDOUT to a
// file. The files written must be byte-identical, through the proxy and
// not, and equal to what went in.
func TestPsqlBackslashCopy(t *testing.T) { forEachMode(t, testPsqlBackslashCopy) }

func testPsqlBackslashCopy(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{cache: cached})
	proxy, direct := e.viaProxy(), e.twin(t)
	const rows = 5000
	dir := t.TempDir()
	in := copyCSV(rows)
	if err := os.WriteFile(filepath.Join(dir, "in.csv"), in, 0o644); err != nil {
		t.Fatal(err)
	}
	outs := map[string][][]byte{}
	for _, tg := range []clientTarget{direct, proxy} {
		tdir := filepath.Join(dir, tg.Name)
		if err := os.Mkdir(tdir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := psql(t, tg, dir, nil,
			"-c", copyTable,
			"-c", `\copy c from 'in.csv' with (format csv, header)`,
			"-c", `select count(*), sum(amount), count(note), count(*) filter (where note = '') from c`,
			"-c", `\copy c to '`+tg.Name+`/out.csv' with (format csv, header)`,
			"-c", `\copy (select * from c where id % 3 = 0 order by id desc) to '`+tg.Name+`/part.txt'`,
			"-c", `\copy c from 'in.csv' with (format csv, header)`,
		)
		outs[tg.Name+" run"] = [][]byte{[]byte(r.String())}
		if !strings.Contains(r.Stdout, fmt.Sprintf("COPY %d", rows)) {
			t.Errorf("%s: no COPY %d in\n%s", tg.Name, rows, r)
		}
		// The last \copy fails on the duplicate key, 23505, on both.
		if r.Code == 0 || !strings.Contains(r.Stderr, "23505") {
			t.Errorf("%s: the duplicate \\copy did not fail with 23505:\n%s", tg.Name, r)
		}
		for _, f := range []string{"out.csv", "part.txt"} {
			b, err := os.ReadFile(filepath.Join(tdir, f))
			if err != nil {
				t.Fatal(err)
			}
			outs[f] = append(outs[f], b)
		}
		// The connection is fine after the failed COPY.
		r = psql(t, tg, dir, nil, "-c", `select count(*) from c`)
		if r.Code != 0 || !strings.Contains(r.Stdout, strconv.Itoa(rows)) {
			t.Errorf("%s: after the COPY:\n%s", tg.Name, r)
		}
	}
	if d, p := string(outs["direct run"][0]), string(outs["proxy run"][0]); d != p {
		t.Errorf("psql output differs:\n%s", lineDiff(d, p))
	}
	for _, f := range []string{"out.csv", "part.txt"} {
		if !bytes.Equal(outs[f][0], outs[f][1]) {
			t.Errorf("%s differs: direct %d bytes, proxy %d bytes\n%s", f, len(outs[f][0]), len(outs[f][1]), lineDiff(string(outs[f][0]), string(outs[f][1])))
		}
	}
	if !bytes.Equal(outs["out.csv"][1], in) {
		t.Errorf("the file copied out through the proxy is not the file copied in:\n%s", lineDiff(string(in), string(outs["out.csv"][1])))
	}
	if n := bytes.Count(outs["part.txt"][1], []byte("\n")); n != rows/3 {
		t.Errorf("part.txt has %d lines, want %d", n, rows/3)
	}
}

// TestPsqlRepeatedQuery runs the same query 50 times in one session with
// \g (as \watch would), plus \gset and \gexec, and a query whose answer
// changes between repeats.
func TestPsqlRepeatedQuery(t *testing.T) { forEachMode(t, testPsqlRepeatedQuery) }

func testPsqlRepeatedQuery(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 2, cache: cached})
	e.PG.Exec(t, e.Database, `create table w (id int primary key, v text); insert into w select g, md5(g::text) from generate_series(1, 200) g;
		create sequence ticks`)
	proxy, direct := e.viaProxy(), e.twin(t)
	e.PG.Exec(t, direct.Database, `create table w (id int primary key, v text); insert into w select g, md5(g::text) from generate_series(1, 200) g;
		create sequence ticks`)
	var script strings.Builder
	script.WriteString("select count(*), min(v), max(v), sum(id) from w where id % 7 <> 0;\n")
	for i := 0; i < 49; i++ {
		script.WriteString("\\g\n")
	}
	script.WriteString("select nextval('ticks') as tick, (select count(*) from w) as n \\gset\n")
	script.WriteString("\\echo tick :tick n :n\n")
	for i := 0; i < 50; i++ {
		script.WriteString("select nextval('ticks') as tick, v from w where id = :tick;\n")
	}
	script.WriteString("select format('select %s * 2 as doubled', g) from generate_series(1, 5) g \\gexec\n")
	script.WriteString("select $$update w set v = 'x' where id = 1$$ \\gexec\n")
	script.WriteString("select v from w where id = 1;\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "repeat.sql"), []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := psql(t, direct, dir, nil, "-f", "repeat.sql")
	p := psql(t, proxy, dir, nil, "-f", "repeat.sql")
	sameRun(t, "repeat.sql", d, p)
	if d.Code != 0 {
		t.Fatalf("the script fails on PostgreSQL:\n%s", d)
	}
	first := strings.SplitN(p.Stdout, "\n", 4)
	if len(first) < 3 || strings.Count(p.Stdout, first[2]) != 50 {
		t.Errorf("the repeated query's row does not show 50 times:\n%s", p.Stdout)
	}
}

// TestPsqlCopyStdin runs COPY ... FROM STDIN and TO STDOUT as plain SQL:
// data inline in a script (-f), data piped on stdin, text, CSV and binary
// formats, and a COPY that fails on a bad row, after which the session
// goes on.
func TestPsqlCopyStdin(t *testing.T) { forEachMode(t, testPsqlCopyStdin) }

func testPsqlCopyStdin(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 2, cache: cached})
	proxy, direct := e.viaProxy(), e.twin(t)
	dir := t.TempDir()
	const rows = 10000
	if err := os.WriteFile(filepath.Join(dir, "big.csv"), copyCSV(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	script := copyTable + `;
copy c (id, name, note) from stdin;
1	one	\N
2	two	tab\there
3	three	back\\slash
\.
copy c (id, name) from stdin with (format csv);
4,"four, quoted"
5,
\.
select * from c order by id;
copy c to stdout;
copy (select id, name from c order by id) to stdout with (format csv, header, force_quote *);
copy c (id, name) from stdin;
6	six
seven	7
8	eight
\.
select 'not reached';
`
	if err := os.WriteFile(filepath.Join(dir, "copy.sql"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		stdin string // a file to feed on stdin
		args  []string
		code  int    // psql's exit code
		want  string // in stdout or stderr
	}{
		{"", []string{"-f", "copy.sql"}, 3, "22P02"},
		{"", []string{"-c", "select count(*) from c"}, 0, "     5\n"},
		{"", []string{"-c", "create table big (like c including all)"}, 0, "CREATE TABLE"},
		{"big.csv", []string{"-c", "copy big from stdin with (format csv, header)"}, 0, fmt.Sprintf("COPY %d", rows)},
		{"", []string{"-c", "select count(*), sum(amount), md5(string_agg(note, '|' order by id)) from big"}, 0, "(1 row)"},
		{"", []string{"-c", "copy (select * from big order by id) to stdout with (format csv, header)"}, 0, "\"say \"\"hi\"\"\""},
		{"", []string{"-c", "copy (select * from big where id < 500 order by id) to stdout with (format binary)"}, 0, "PGCOPY"},
		{"big.csv", []string{"-c", "copy big from stdin with (format csv, header)"}, 1, "23505"},
		{"", []string{"-c", "select count(*) from big"}, 0, fmt.Sprint(rows)},
		{"", []string{"-c", "copy big to stdout with (format xml)"}, 1, "22023"},
		{"", []string{"-c", "copy big from stdin with (format csv, header, force_null (nope))"}, 1, "42703"},
	} {
		var d, p toolRun
		for _, tg := range []clientTarget{direct, proxy} {
			var stdin io.Reader
			if step.stdin != "" {
				f, err := os.Open(filepath.Join(dir, step.stdin))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				stdin = f
			}
			r := psql(t, tg, dir, stdin, step.args...)
			if tg.Name == "direct" {
				d = r
			} else {
				p = r
			}
		}
		if p.Code != step.code || !strings.Contains(p.Stdout+p.Stderr, step.want) {
			t.Errorf("%v through the proxy: want exit %d and %q:\n%s", step.args, step.code, step.want, p)
		}
		sameRun(t, fmt.Sprint(step.args), d, p)
	}
}
