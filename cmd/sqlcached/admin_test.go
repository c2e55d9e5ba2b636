package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

func TestAdminDatabaseIsTheReservedName(t *testing.T) {
	if proxy.AdminDatabase != config.AdminDatabase {
		t.Errorf("proxy.AdminDatabase %q, internal/config reserves %q", proxy.AdminDatabase, config.AdminDatabase)
	}
}

// table reads psql's unaligned output (-A, '|' between fields, the
// header first) into one map per row.
func table(out string) []map[string]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	head := strings.Split(lines[0], "|")
	var rows []map[string]string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "(") {
			break // "(2 rows)"
		}
		row := map[string]string{}
		for i, v := range strings.Split(l, "|") {
			if i < len(head) {
				row[head[i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// The console as an operator uses it: psql to database sqlcached, then
// the same over HTTP.
func TestAdminConsoleWithPsql(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, `create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, 100) i`)
	pgAddr, httpAddr := serveConfig(t, fmt.Sprintf(`
auth:
  method: scram-sha-256
  users: [{name: app, password: app-pw}, {name: ops, password: ops-pw}, {name: ana, password: ana-pw}]
  admin_users: [ops]
audit: {statements: true}
backends: [{name: wh, dsn: %q, max_conns: 4}]
queues: {dash: {workers: 2, max_queued: 10}}
policies:
  - {name: items, match: {tables: [items]}, ttl: 5m, stale_ttl: 1m, queue: dash}
  - {name: other, cache: false}
`, pg.DSNUser("postgres", testenv.SuperPassword, db)))
	host, port, _ := net.SplitHostPort(pgAddr)
	psql := func(user, password string, sqls ...string) (string, error) {
		t.Helper()
		args := []string{fmt.Sprintf("host=%s port=%s dbname=sqlcached user=%s", host, port, user), "-X", "-A", "-F", "|", "-v", "VERBOSITY=verbose"}
		for _, s := range sqls {
			args = append(args, "-c", s)
		}
		cmd := exec.Command("psql", args...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ops := func(sql string) string {
		t.Helper()
		out, err := psql("ops", "ops-pw", sql)
		if err != nil {
			t.Fatalf("psql %q: %v\n%s", sql, err, out)
		}
		return out
	}

	ctx := context.Background()
	app, err := pgx.Connect(ctx, fmt.Sprintf("postgres://app:app-pw@%s/%s?sslmode=disable", pgAddr, db))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	pg.ResetStatements(t)
	const query = "select count(*) from items where id < 50"
	ask := func() {
		t.Helper()
		if _, err := app.Exec(ctx, query, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	calls := func() int64 { return pg.Calls(t, db, "select count(*) from items where id < $1") }
	ask()
	ask()
	if n := calls(); n != 1 {
		t.Fatalf("the query ran %d times on the warehouse, want 1 (a miss, then a hit)", n)
	}

	stats := table(ops("SHOW STATS"))
	if len(stats) != 1 || stats[0]["miss"] != "1" || stats[0]["hit_l1"] != "1" || stats[0]["hit_ratio"] != "0.5" || stats[0]["since"] == "" {
		t.Errorf("SHOW STATS: %v", stats)
	}
	queries := table(ops("show queries;"))
	if len(queries) != 1 || queries[0]["rule"] != "items" || queries[0]["requests"] != "2" || queries[0]["hits"] != "1" ||
		queries[0]["runs"] != "1" || !strings.Contains(queries[0]["sql"], "from items where id < 50") || len(queries[0]["shape"]) != 16 {
		t.Errorf("SHOW QUERIES: %v", queries)
	}
	if p := table(ops("SHOW POLICIES")); len(p) != 2 || p[0]["name"] != "items" || p[0]["match"] != "tables=[items]" || p[0]["ttl"] != "00:05:00" ||
		p[0]["stale_ttl"] != "00:01:00" || p[0]["queue"] != "dash" || p[1]["cache"] != "f" {
		t.Errorf("SHOW POLICIES: %v", p)
	}
	if c := table(ops("SHOW CACHES")); len(c) != 2 || c[0]["tier"] != "l1" || c[0]["entries"] != "1" || c[0]["hits"] != "1" || c[1]["state"] != "off" {
		t.Errorf("SHOW CACHES: %v", c)
	}
	if p := table(ops("SHOW POOLS")); len(p) != 1 || p[0]["backend"] != "wh" || p[0]["max"] != "4" || p[0]["waiting"] != "0" {
		t.Errorf("SHOW POOLS: %v", p)
	}
	if q := table(ops("SHOW QUEUES")); len(q) != 1 || q[0]["queue"] != "dash" || q[0]["workers"] != "2" || q[0]["busy"] != "0" {
		t.Errorf("SHOW QUEUES: %v", q)
	}
	clients := map[string]map[string]string{}
	for _, c := range table(ops("SHOW CLIENTS")) {
		clients[c["user"]] = c
	}
	if len(clients) != 2 || clients["app"]["database"] != db || clients["app"]["state"] != "idle" ||
		clients["ops"]["state"] != "console" || clients["ops"]["application_name"] != "psql" || clients["ops"]["connected_since"] == "" {
		t.Errorf("SHOW CLIENTS: %v", clients)
	}
	if h := ops("SHOW HELP"); !strings.Contains(h, "INVALIDATE DASHBOARD 'label'") {
		t.Errorf("SHOW HELP:\n%s", h)
	}

	// INVALIDATE TABLE: the next ask runs on the warehouse again.
	if out := ops("INVALIDATE TABLE items"); strings.TrimSpace(out) != "INVALIDATE" {
		t.Errorf("INVALIDATE TABLE items said %q", out)
	}
	ask()
	if n := calls(); n != 2 {
		t.Errorf("after INVALIDATE TABLE items the query ran %d times in all, want 2", n)
	}
	if got := sum(scrape(t, httpAddr), "sqlcached_invalidations_total", `reason="admin"`); got != 1 {
		t.Errorf("invalidations{admin} = %v, want 1", got)
	}

	// A bad command is an error in a session that goes on; RELOAD without
	// a file says so.
	out, err := psql("ops", "ops-pw", "SHOW STATS", "select 1", "RELOAD", "SHOW POOLS")
	if err != nil || !strings.Contains(out, "ERROR:  42601: unknown admin command") || !strings.Contains(out, "HINT:  The commands are: SHOW STATS") ||
		!strings.Contains(out, "ERROR:  55000: nothing to reload") || !strings.Contains(out, "backend|busy|idle|waiting|max") {
		t.Errorf("a session with bad commands: %v\n%s", err, out)
	}
	// Anyone else is refused.
	if out, err := psql("ana", "ana-pw", "SHOW STATS"); err == nil || !strings.Contains(out, `FATAL:  user "ana" is not allowed to use the admin console`) {
		t.Errorf("a user who is not an admin: %v\n%s", err, out)
	}
	if out, err := psql("ops", "wrong", "SHOW STATS"); err == nil || !strings.Contains(out, "password authentication failed") {
		t.Errorf("a wrong password: %v\n%s", err, out)
	}

	// The same over HTTP.
	call := func(method, path, user, password, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+httpAddr+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, h, _ := call("GET", "/admin/stats", "", "", ""); code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no credentials: %d %v", code, h)
	}
	if code, _, _ := call("GET", "/admin/stats", "ops", "wrong", ""); code != 401 {
		t.Errorf("a wrong password: %d", code)
	}
	if code, _, body := call("GET", "/admin/stats", "ana", "ana-pw", ""); code != 403 || !strings.Contains(body, "not allowed") {
		t.Errorf("not an admin: %d %s", code, body)
	}
	code, _, body := call("GET", "/admin/stats", "ops", "ops-pw", "")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st["miss"] != 2.0 || st["hit_l1"] != 1.0 {
		t.Errorf("GET /admin/stats: %d %s", code, body)
	}
	code, _, body = call("GET", "/admin/queries", "ops", "ops-pw", "")
	var qs []map[string]any
	if err := json.Unmarshal([]byte(body), &qs); code != 200 || err != nil || len(qs) != 1 || !strings.Contains(fmt.Sprint(qs[0]["sql"]), "from items where id < 50") || qs[0]["requests"] != 3.0 {
		t.Errorf("GET /admin/queries: %d %s", code, body)
	}
	for _, path := range []string{"/admin/caches", "/admin/policies", "/admin/queues", "/admin/pools", "/admin/clients", "/admin/errors", "/admin/help"} {
		if code, _, body := call("GET", path, "ops", "ops-pw", ""); code != 200 || !strings.HasPrefix(body, "[") {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, _, body := call("POST", "/admin/invalidate", "ops", "ops-pw", `{"table": "items"}`); code != 200 || !strings.Contains(body, `"done": "INVALIDATE"`) {
		t.Errorf("POST /admin/invalidate: %d %s", code, body)
	}
	ask()
	if n := calls(); n != 3 {
		t.Errorf("after POST /admin/invalidate the query ran %d times in all, want 3", n)
	}
	if code, _, _ := call("POST", "/admin/invalidate", "ops", "ops-pw", `{}`); code != 400 {
		t.Errorf("an empty invalidation: %d, want 400", code)
	}
	if code, _, body := call("POST", "/admin/reload", "ops", "ops-pw", ""); code != 409 || !strings.Contains(body, `"sqlstate":"55000"`) {
		t.Errorf("POST /admin/reload without a file: %d %s", code, body)
	}
	if code, _, _ := call("GET", "/admin/invalidate", "ops", "ops-pw", ""); code != 405 {
		t.Errorf("GET /admin/invalidate: %d, want 405", code)
	}
}

// RELOAD puts the file's policies in force, and a file that does not load
// leaves them as they were.
func TestAdminConsoleReloadsTheFile(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pgAddr := freeAddr(t)
	file := filepath.Join(t.TempDir(), "sqlcached.yaml")
	write := func(ttl string) {
		t.Helper()
		body := fmt.Sprintf("listen: {postgres: %q, http: \"\"}\nshutdown: {timeout: 5s}\nauth: {method: trust, admin_users: [ops]}\n"+
			"backends: [{name: wh, dsn: %q}]\npolicies:\n  - {name: all, ttl: %s}\n", pgAddr, pg.DSNUser("postgres", testenv.SuperPassword, db), ttl)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("5m")
	rules, cfg, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() {
		done <- runServer(ctx, cfg, rules, nil, &serveExtras{ready: func(*cache.Group, string, string) { close(ready) }}, slog.New(slog.DiscardHandler))
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("runServer: %v", err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("runServer: %v", err)
		}
	}()
	host, port, _ := net.SplitHostPort(pgAddr)
	psql := func(sql string) (string, error) {
		out, err := exec.Command("psql", fmt.Sprintf("host=%s port=%s dbname=sqlcached user=ops", host, port),
			"-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-c", sql).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	ttl := func() string {
		t.Helper()
		out, err := psql("SHOW POLICIES")
		if err != nil {
			t.Fatalf("SHOW POLICIES: %v\n%s", err, out)
		}
		return strings.Split(out, "|")[4]
	}
	if got := ttl(); got != "00:05:00" {
		t.Fatalf("ttl %q at the start", got)
	}
	write("90s")
	if out, err := psql("RELOAD"); err != nil || out != "RELOAD" {
		t.Fatalf("RELOAD: %v %q", err, out)
	}
	if got := ttl(); got != "00:01:30" {
		t.Errorf("ttl %q after RELOAD, want 00:01:30", got)
	}
	write("forever")
	if out, err := psql("RELOAD"); err == nil || !strings.Contains(out, "F0000") || !strings.Contains(out, "ttl") {
		t.Errorf("RELOAD of a bad file: %v %q", err, out)
	}
	if got := ttl(); got != "00:01:30" {
		t.Errorf("ttl %q after a failed RELOAD, want 00:01:30 still", got)
	}
}
