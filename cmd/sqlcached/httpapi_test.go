package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// TestHTTPAPIAcrossProcesses: two sqlcached processes share a Redis. A
// query posted to the first over HTTP is answered; its result is fetched
// from the second; psql-like clients of either then get the answer from
// the cache, and a query a wire client ran first is a hit over HTTP: the
// warehouse ran each statement once.
func TestHTTPAPIAcrossProcesses(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pg.Exec(t, db, "create table sales (region text, amount numeric(10,2)); insert into sales values ('north', 10.50), ('south', 4.25), ('north', 1.25)")
	redis := testenv.SharedRedis(t)
	bin := buildSqlcached(t)
	type proc struct{ pgAddr, httpAddr string }
	procs := make([]proc, 2)
	for i := range procs {
		procs[i] = proc{freeAddr(t), freeAddr(t)}
		path := writeConfig(t, fmt.Sprintf(`
listen: {postgres: %q, http: %q}
auth:
  method: scram-sha-256
  users: [{name: %s, password: %s}]
backends:
  - {name: warehouse, dsn: %q, max_conns: 4}
cache:
  l2:
    redis: {url: %q}
    namespace: %s
queues:
  default: {workers: 2, max_queued: 16}
policies:
  - {name: everything, ttl: 1h}
shutdown: {timeout: 2s}
`, procs[i].pgAddr, procs[i].httpAddr, testenv.SuperUser, testenv.SuperPassword, pg.DSN(db), redis.URL(0), "api"+db))
		startSqlcached(t, bin, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	call := func(p proc, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		var resp *http.Response
		for deadline := time.Now().Add(15 * time.Second); ; {
			req, _ := http.NewRequestWithContext(ctx, method, "http://"+p.httpAddr+path, rd)
			req.SetBasicAuth(testenv.SuperUser, testenv.SuperPassword)
			var err error
			if resp, err = http.DefaultClient.Do(req); err == nil || time.Now().After(deadline) || body != nil {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			time.Sleep(50 * time.Millisecond) // the process is starting
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	waitDone := func(p proc, id string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			code, body := call(p, "GET", "/v1/queries/"+id, nil)
			var st map[string]any
			_ = json.Unmarshal(body, &st)
			if code == 200 && (st["status"] == "done" || st["status"] == "failed") {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s: %d %s", id, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wire := func(p proc) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, p.pgAddr, db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	// Wait for both HTTP listeners.
	for _, p := range procs {
		call(p, "GET", "/healthz", nil)
	}

	const byRegion = "select region, sum(amount) as total from sales group by region order by region"
	code, body := call(procs[0], "POST", "/v1/queries", map[string]any{"sql": byRegion, "database": db})
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var sub struct{ ID string }
	if err := json.Unmarshal(body, &sub); err != nil || sub.ID == "" {
		t.Fatalf("POST answer %s: %v", body, err)
	}
	if st := waitDone(procs[0], sub.ID); st["status"] != "done" {
		t.Fatalf("job: %v", st)
	}
	// The second process answers for the first's job.
	code, body = call(procs[1], "GET", "/v1/queries/"+sub.ID+"/result?format=json", nil)
	if code != 200 {
		t.Fatalf("result through the second process: %d %s", code, body)
	}
	var res struct {
		Rows [][]any `json:"rows"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Rows) != 2 || res.Rows[0][0] != "north" || res.Rows[0][1] != "11.75" {
		t.Fatalf("result %s: %v", body, err)
	}
	// Wire clients of either process get it from the cache.
	for _, p := range procs {
		var region, total string
		if err := wire(p).QueryRow(ctx, byRegion, pgx.QueryExecModeSimpleProtocol).Scan(&region, &total); err != nil || region != "north" || total != "11.75" {
			t.Fatalf("psql-like client: %s %s %v", region, total, err)
		}
	}
	if runs := pg.Calls(t, db, "select region, sum(amount)%"); runs != 1 {
		t.Errorf("the query ran %d times on the warehouse, want 1 (HTTP warms the cache for wire clients)", runs)
	}
	// And the reverse: a wire client first, then HTTP on the other process.
	const count = "select count(*) as n from sales"
	var n int64
	if err := wire(procs[1]).QueryRow(ctx, count, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count: %d %v", n, err)
	}
	time.Sleep(300 * time.Millisecond) // the second process writes to Redis behind its answer
	code, body = call(procs[0], "POST", "/v1/queries", map[string]any{"sql": count, "database": db})
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	_ = json.Unmarshal(body, &sub)
	st := waitDone(procs[0], sub.ID)
	if c, _ := st["cache"].(string); !strings.HasPrefix(c, "hit") {
		t.Errorf("a query a wire client ran first was %q over HTTP, want a hit", c)
	}
	if runs := pg.Calls(t, db, "select count(*)%from sales"); runs != 1 {
		t.Errorf("count ran %d times on the warehouse, want 1", runs)
	}
	// The OpenAPI description is served.
	if code, body := call(procs[1], "GET", "/v1/openapi.json", nil); code != 200 || !json.Valid(body) || !bytes.Contains(body, []byte("/v1/queries/{id}/events")) {
		t.Errorf("openapi.json: %d, %d bytes", code, len(body))
	}
}
