package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/simulate"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// The simulation's promise, checked where it matters: a dashboard mix is
// run against a PostgreSQL logging every statement (csvlog), `bench
// simulate` predicts the hit rate from that log, and the same statements,
// in the same order and at the same pace, replayed through a real
// sqlcached with the same policies, are measured by its /metrics. Time is
// compressed: a 2s TTL over 10s of viewers.
func TestSimulatePredictsTheReplayedHitRate(t *testing.T) {
	pg := testenv.NewPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table sales (id int primary key, region text, product text, day date, amount numeric(12,2));
		insert into sales select i, 'region' || (i % 8), 'p' || (i % 30), date '2026-01-01' + (i % 90), (i % 997) / 10.0 from generate_series(1, 50000) i;
		create table events (id serial primary key, note text);
		insert into events (note) select 'seed ' || i from generate_series(1, 20) i;
		analyze`)
	for _, sql := range []string{
		"alter system set logging_collector = on",
		"alter system set log_destination = 'csvlog,stderr'",
	} {
		pg.Exec(t, "postgres", sql)
	}
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", "alter database "+db+" set log_min_duration_statement = 0")

	ran := recordDashboards(t, pg.DSN(db), 10*time.Second)
	logDir := filepath.Join(pg.Dir, "log")
	csvlog := waitForLog(t, logDir, "*.csv", simulate.FormatCSVLog, ran)
	stderrLog := waitForLog(t, logDir, "*.log", simulate.FormatStderr, ran)

	cfgBody := fmt.Sprintf(`
auth: {method: trust}
backends: [{name: wh, dsn: %q, max_conns: 8}]
policies:
  - {name: dashboards, ttl: 2s}
`, pg.DSN(db))
	cfgFile := filepath.Join(t.TempDir(), "sqlcached.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgBody), 0o644); err != nil {
		t.Fatal(err)
	}
	predicted := predictHitRate(t, csvlog, "--config", cfgFile, "--l1", "256MiB")
	if fromStderr := predictHitRate(t, stderrLog, "--format", "pg-stderr", "--config", cfgFile, "--l1", "256MiB"); fromStderr.Statements != predicted.Statements || fromStderr.Hits != predicted.Hits {
		t.Errorf("the stderr log predicts %+v, the csvlog %+v", fromStderr, predicted)
	}
	if predicted.Statements != ran {
		t.Fatalf("the log has %d statements, the viewers ran %d", predicted.Statements, ran)
	}

	recs, _, err := simulate.ParseFile(csvlog, simulate.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pgAddr, httpAddr := serveConfig(t, cfgBody)
	replayLog(t, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgAddr, db), recs)
	m := scrape(t, httpAddr)
	var hits, total float64
	for _, out := range []string{"hit_l1", "hit_l2", "collapsed", "stale", "miss", "bypass", "error"} {
		n := sum(m, "sqlcached_requests_total", `outcome="`+out+`"`)
		total += n
		if out == "hit_l1" || out == "hit_l2" || out == "collapsed" || out == "stale" {
			hits += n
		}
	}
	if errs := sum(m, "sqlcached_requests_total", `outcome="error"`); errs > 0 || int(total) != len(recs) {
		t.Fatalf("sqlcached answered %v statements with %v errors, want %d without", total, errs, len(recs))
	}
	measured := hits / total
	t.Logf("%d statements: predicted hit rate %.1f%% (%d hits, %d collapsed), measured %.1f%% (%v hits, %v collapsed)",
		len(recs), 100*predicted.HitRate, predicted.Hits, predicted.Collapsed, 100*measured, hits,
		sum(m, "sqlcached_requests_total", `outcome="collapsed"`))
	if predicted.HitRate < 0.2 || predicted.HitRate > 0.95 {
		t.Errorf("predicted hit rate %.1f%%: the mix should neither always nor never hit", 100*predicted.HitRate)
	}
	if d := math.Abs(predicted.HitRate - measured); d > 0.05 {
		t.Errorf("predicted %.1f%%, measured %.1f%%: %.1f points apart, want at most 5", 100*predicted.HitRate, 100*measured, 100*d)
	}
}

// predictHitRate runs `bench simulate` on a log and returns its one result.
func predictHitRate(t *testing.T, log string, args ...string) simulate.Result {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := benchSimulate(append([]string{"--log", log, "--out", out}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("bench simulate: exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep simulate.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	return rep.Results[0]
}

// mixChart is one query of the dashboard mix; args picks its literals.
type mixChart struct {
	weight int
	sql    string
	params bool // sent with the extended protocol, the literal bound as $1
	args   func(r *rand.Rand, z *rand.Zipf) string
}

var dashboardMix = []mixChart{
	{4, "select region, sum(amount) from sales where product = '%s' group by region order by 1", false,
		func(_ *rand.Rand, z *rand.Zipf) string { return fmt.Sprintf("p%d", z.Uint64()) }},
	{3, "select day, sum(amount) from sales where region = $1 group by day order by day", true,
		func(_ *rand.Rand, z *rand.Zipf) string { return fmt.Sprintf("region%d", z.Uint64()%8) }},
	{2, "select count(*), sum(amount) from sales", false, nil},
	{1, "select product, avg(amount), count(distinct day) from sales group by product order by 1", false, nil},
	{1, "select id, note from events order by id desc limit 5", false, nil},
	// Slow enough (a few tens of ms) for viewers to meet while it runs.
	{1, "select s.region, count(*) from sales s join sales t on t.product = s.product and t.day = s.day where s.id <= 3000 group by 1 order by 1", false, nil},
	{1, "select * from sales where id = $1", true, func(r *rand.Rand, _ *rand.Zipf) string { return fmt.Sprint(1 + r.IntN(50000)) }},
}

// recordDashboards runs four viewers of the mix and a writer against
// dsn for d, and returns how many statements ran.
func recordDashboards(t *testing.T, dsn string, d time.Duration) int {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(d)
	var (
		mu  sync.Mutex
		ran int
		wg  sync.WaitGroup
	)
	for v := range 5 {
		conn, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close(ctx)
			r := rand.New(rand.NewPCG(uint64(v), 7))
			z := rand.NewZipf(r, 1.3, 1, 29)
			for time.Now().Before(deadline) {
				var sql string
				var params [][]byte
				var pause time.Duration
				if v == 4 { // the writer
					sql, pause = "insert into events (note) values ('viewed')", 1500*time.Millisecond
				} else {
					sql, params = pickChart(r, z)
					pause = time.Duration(30+r.IntN(120)) * time.Millisecond
				}
				if err := execStatement(ctx, conn, sql, params); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ran++
				mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
	return ran
}

func pickChart(r *rand.Rand, z *rand.Zipf) (string, [][]byte) {
	total := 0
	for _, c := range dashboardMix {
		total += c.weight
	}
	n := r.IntN(total)
	for _, c := range dashboardMix {
		if n -= c.weight; n >= 0 {
			continue
		}
		switch {
		case c.args == nil:
			return c.sql, nil
		case c.params:
			return c.sql, [][]byte{[]byte(c.args(r, z))}
		}
		return fmt.Sprintf(c.sql, c.args(r, z)), nil
	}
	panic("unreachable")
}

// execStatement sends sql with the simple protocol, or with the extended one when
// it has parameters (nil: none).
func execStatement(ctx context.Context, conn *pgconn.PgConn, sql string, params [][]byte) error {
	if params != nil {
		return conn.ExecParams(ctx, sql, params, nil, nil, nil).Read().Err
	}
	_, err := conn.Exec(ctx, sql).ReadAll()
	return err
}

// waitForLog returns the log file of format in dir once it holds want
// statements: the logging collector writes behind the server.
func waitForLog(t *testing.T, dir, glob string, format simulate.Format, want int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, glob))
		got := -1
		if len(files) == 1 {
			recs, _, err := simulate.ParseFile(files[0], simulate.ParseOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			if got = len(recs); got >= want {
				return files[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: files %v, %d statements; want one file of %d", filepath.Join(dir, glob), files, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replayLog runs recs through dsn at the pace they were logged, each
// session's statements in order on a connection of its own.
func replayLog(t *testing.T, dsn string, recs []simulate.Record) {
	t.Helper()
	ctx := context.Background()
	sessions := map[string][]simulate.Record{}
	for _, r := range recs {
		sessions[r.Session] = append(sessions[r.Session], r)
	}
	var wg sync.WaitGroup
	start, first := time.Now().Add(200*time.Millisecond), recs[0].Start
	for _, list := range sessions {
		conn, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close(ctx)
			for _, r := range list {
				time.Sleep(time.Until(start.Add(r.Start.Sub(first))))
				if err := execStatement(ctx, conn, r.SQL, r.Params); err != nil {
					t.Errorf("line %d: %s: %v", r.Line, strings.TrimSpace(r.SQL), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestBenchSimulateReadsEachFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		log  string
		args []string
		want string
	}{
		{"pg15.csv", nil, "(pg-csvlog): 7 statements"},
		{"pg-stderr-userdb.log", []string{"--format", "pg-stderr"}, "(pg-stderr): 7 statements"},
		{"pg-stderr-default.log", []string{"--prefix", "%m [%p] "}, "(pg-stderr): 7 statements"},
		{"snowflake-query-history.csv", []string{"--format", "snowflake-csv", "--ttls", "10s,1m"}, "(snowflake-csv): 4 statements"},
	} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		args := append([]string{"--log", filepath.Join("..", "..", "internal", "simulate", "testdata", tc.log), "--out", out}, tc.args...)
		if code := benchSimulate(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.log, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.want) || !strings.Contains(stdout.String(), "| hit rate |") {
			t.Errorf("%s: the report lacks %q:\n%s", tc.log, tc.want, stdout.String())
		}
		for _, f := range []string{"report.md", "report.json", "hitrate.png", "hitrate.svg", "timesaved.png", "timesaved.svg"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: %v", tc.log, err)
			}
		}
	}
}

func TestBenchSimulateNamesTheBadLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "postgresql.csv")
	good := `2026-12-03 07:10:00.040 UTC,"u","d",1,"h","s",1,"SELECT",2026-12-03 07:00:00 UTC,3/1,0,LOG,00000,"duration: 1.000 ms  statement: select 1",,,,,,,,,"app","client backend",,0` + "\n"
	if err := os.WriteFile(bad, []byte(good+good+"2026-12-03 07:10:01.000 UTC,\"u\",\"d\",1,\"unterminated\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "simulate", "--log", bad, "--format", "pg-csvlog", "--out", dir}, &stdout, &stderr)
	if want := bad + ":3: "; code != exitConfig || !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "quote") {
		t.Errorf("exit %d, stderr %q; want %d and %q naming the quote", code, stderr.String(), exitConfig, want)
	}
	for _, args := range [][]string{
		{"--log", bad, "--ttls", "soon"},
		{"--log", bad, "--l1", "lots"},
		{"--ttls", "1m"},
	} {
		stderr.Reset()
		if code := benchSimulate(args, &stdout, &stderr); code != exitConfig || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want %d and a message", args, code, stderr.String(), exitConfig)
		}
	}
}
