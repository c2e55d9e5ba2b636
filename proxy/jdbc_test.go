package proxy_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

// jdbcDriver is the PostgreSQL JDBC driver Metabase and Tableau use.
const jdbcDriver = "/usr/share/java/postgresql.jar"

// TestJDBC compiles testdata/jdbc/BiClient.java against the PostgreSQL JDBC
// driver and runs it directly and through the proxy, comparing every line
// it prints: DatabaseMetaData (tables, columns, keys, indexes, type info),
// prepared statements run 20 times by two connections at once (past
// prepareThreshold, so both drivers name their different statements S_1,
// S_2, ...), setQueryTimeout cancelling with 57014, autocommit off with
// commit, rollback and a savepoint, batches of 1000 inserts, fetching with
// a fetch size (portals suspended and resumed), and errors.
func TestJDBC(t *testing.T) { forEachMode(t, testJDBC) }

func testJDBC(t *testing.T, cached bool) {
	e := newEnv(t, envOptions{maxConns: 3, cache: cached})
	proxy, direct := e.viaProxy(), e.twin(t)
	for _, db := range []string{proxy.Database, direct.Database} {
		e.PG.Exec(t, db, describeSchema)
	}
	src, err := filepath.Abs("testdata/jdbc/BiClient.java")
	if err != nil {
		t.Fatal(err)
	}
	classes := t.TempDir()
	if r := runTool(t, direct, classes, nil, 3*time.Minute, "javac", "-cp", jdbcDriver, "-d", classes, src); r.Code != 0 {
		t.Fatalf("javac:\n%s", r)
	}
	out := map[string]string{}
	for _, tg := range []clientTarget{direct, proxy} {
		url := fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s&password=%s&sslmode=disable&ApplicationName=sqlcached-test",
			tg.Host, tg.Port, tg.Database, testenv.SuperUser, testenv.SuperPassword)
		r := runTool(t, tg, classes, nil, 3*time.Minute, "java", "-cp", classes+":"+jdbcDriver, "BiClient", url)
		if r.Code != 0 || !strings.HasSuffix(r.Stdout, "done\n") {
			t.Fatalf("BiClient on %s:\n%s", tg.Name, r)
		}
		out[tg.Name] = r.Stdout
	}
	if out["direct"] != out["proxy"] {
		t.Errorf("the proxy differs from PostgreSQL (direct -, proxy +):\n%s", lineDiff(out["direct"], out["proxy"]))
	}
	p := out["proxy"]
	for _, want := range []string{
		"metadata tables | TABLE_SCHEM=public | TABLE_NAME=customers | TABLE_TYPE=TABLE | REMARKS=people who buy\n",
		"metadata public.customers pk | COLUMN_NAME=id | KEY_SEQ=1 | PK_NAME=customers_pkey\n",
		"metadata sales.orders imported | PKTABLE_SCHEM=public | PKTABLE_NAME=customers | PKCOLUMN_NAME=id | FKCOLUMN_NAME=customer_id",
		"prepared a | 20 | 40 | x20! | 2.50 | numeric\n",
		"prepared b | 20 | 200 | u9@x.org\n",
		"prepared | wrong answers | 0\n",
		"timeout | PSQLException 57014 ERROR: canceling statement due to user request\n",
		"timeout | within 5s | true | after 1s | true\n",
		"timeout prepared | PSQLException 57014 ERROR: canceling statement due to user request\n",
		"timeout prepared | within 5s | true\n",
		"timeout | after | 42\n",
		"transactions | in tx | 10 | 47.50 | seen outside | 0\n",
		"transactions | after commit seen outside | 10 | 47.50\n",
		"transactions | after rollback | 10 | 47.50\n",
		"transactions ledger | rows | 11\n",
		"batch | autocommit true | statements | 1000 | rows | 1000\n",
		"batch | autocommit false | statements | 1000 | rows | 1000\n",
		"batch | duplicate | 23505 | 23505\n",
		"batch | statement batch | 300\n",
		"batch totals | n=2000 | s=10310.00 | lo=1 | hi=2000\n",
		"fetch | 1 | 20000 | 200010000 |",
		"fetch | max rows | 250\n",
		"errors | 0 | PSQLException 22012 ERROR: division by zero\n",
		"errors | 2 | 5\n",
		"errors | multi results | 3\n",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("through the proxy, no line %q", want)
		}
	}
	if strings.Contains(p, "UNEXPECTED") {
		t.Errorf("unexpected exceptions through the proxy:\n%s", clip(p))
	}
}
