package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBareServerAnswersAsPostgreSQL: the bare server, given PostgreSQL's
// answers to the dashboard queries, answers psql exactly as PostgreSQL
// does, answers a query it was not given with an error, and carries a
// pgbench run of the dashboard mix without a failed transaction.
func TestBareServerAnswersAsPostgreSQL(t *testing.T) {
	t.Setenv("PGPASSWORD", testenv.SuperPassword)
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	for _, s := range DashboardData(2000) {
		pg.Exec(t, db, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sqls := make([]string, len(DashboardQueries))
	for i, q := range DashboardQueries {
		sqls[i] = q.SQL
	}
	answers, err := FetchAnswers(ctx, pg.DSN(db), sqls)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := StartBare(answers)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Stop()
	bin := PostgresBinDir()
	direct := Endpoint{Host: "127.0.0.1", Port: pg.Port}
	for _, q := range DashboardQueries {
		want, err := Psql(ctx, bin, direct, db, q.SQL)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Psql(ctx, bin, bs.Endpoint, db, q.SQL)
		if err != nil || got != want || strings.Count(want, "\n") < 2 {
			t.Fatalf("%s: bare answered %q (%v), PostgreSQL %q", q.Name, got, err, want)
		}
	}
	if out, err := Psql(ctx, bin, bs.Endpoint, db, "select 42"); err == nil || !strings.Contains(err.Error(), "no answer for this query") {
		t.Fatalf("an unknown query: %q, %v", out, err)
	}
	dir := t.TempDir()
	args := []string{"-n", "-M", "simple", "-c", "4", "-j", "2", "-t", "200", "-h", "127.0.0.1", "-p", strconv.Itoa(bs.Endpoint.Port), "-U", "postgres"}
	for _, q := range DashboardQueries {
		if err := os.WriteFile(filepath.Join(dir, q.file()), []byte(q.SQL), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", filepath.Join(dir, q.file())+"@1")
	}
	out, err := exec.CommandContext(ctx, bin+"/pgbench", append(args, db)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	s, err := ParsePgbenchSummary(string(out))
	if err != nil || s.Transactions != 800 || !strings.Contains(string(out), "number of failed transactions: 0") {
		t.Fatalf("pgbench against the bare server: %+v %v\n%s", s, err, out)
	}
}
