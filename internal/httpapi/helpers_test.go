package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/httpapi"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The accounts of every test server.
var (
	users  = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}
	tokens = map[string]string{"alice-token": "alice"}
)

// database is what requests name; route sends it to the test's database.
const database = "analytics"

// setupSQL runs in every test database before the server starts:
// answers in UTC, and a STABLE function that takes its time.
const setupSQL = `
create function slow_value(v int, secs float8) returns int stable language plpgsql as $$
begin perform pg_sleep(secs); return v; end $$;`

// defaultRule caches everything for a minute.
var defaultRule = policy.Rule{Name: "t", Cache: true, TTL: time.Minute, Timeout: 30 * time.Second, MaxEntryBytes: 16 << 20, Queue: "default"}

// env is an HTTP API server over a private database of the test
// PostgreSQL, with L1 and the shared Redis as L2.
type env struct {
	t      testing.TB
	pg     *testenv.PG
	db     string
	ns     string // the Redis namespace
	pool   *postgres.Pool
	group  *cache.Group
	reads  *readpath.Path
	queues *executor.Queues
	srv    *httpapi.Server
	ts     *httptest.Server
	client *http.Client
}

type options struct {
	rule   *policy.Rule          // default: defaultRule
	queue  *executor.QueueConfig // default: 4 workers, 100 queued
	mutate func(*httpapi.Config) // last changes to the config
	now    func() time.Time      // the Server's and the Group's clock
	shared *env                  // another process of the same deployment: same database, same Redis namespace
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	pg := testenv.SharedPostgreSQL(t)
	e := &env{t: t, pg: pg}
	if o.shared != nil {
		e.db, e.ns = o.shared.db, o.shared.ns
	} else {
		e.db, e.ns = pg.NewDatabase(t), testenv.UniqueName(t)
		pg.Exec(t, "postgres", fmt.Sprintf("alter database %s set timezone = 'UTC'", e.db))
		pg.Exec(t, e.db, setupSQL)
	}
	pool, err := postgres.NewPool(postgres.Config{
		DSN:      fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, pg.Addr(), e.db),
		MaxConns: 10, MaxWait: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	group, err := cache.New(cache.Config{
		L2:  &cache.L2Config{URL: testenv.SharedRedis(t).URL(0), Namespace: e.ns, Timeout: 2 * time.Second},
		Now: o.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(group.Close)
	e.group = group
	rule, qc := defaultRule, executor.QueueConfig{Workers: 4, MaxQueued: 100}
	if o.rule != nil {
		rule = *o.rule
	}
	if o.queue != nil {
		qc = *o.queue
	}
	e.queues = executor.NewQueues([]string{"pg"}, map[string]executor.QueueConfig{"default": qc})
	e.reads, err = readpath.New(readpath.Config{Cache: group, Policy: policy.New(rule), Queues: e.queues})
	if err != nil {
		t.Fatal(err)
	}
	e.loadVolatility()
	cfg := httpapi.Config{
		Reads: e.reads, Cache: group, Queues: e.queues, Users: users, Tokens: tokens,
		Route: func(db string) (string, executor.Warehouse, string, bool) {
			if db != database {
				return "", nil, "", false
			}
			return "pg", pool, e.db, true
		},
		Now: o.now,
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	e.srv, err = httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Close)
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	e.client = e.ts.Client()
	e.client.Timeout = time.Minute
	return e
}

// loadVolatility tells the analyzer which functions of the warehouse are
// stable, as the proxy does on its first connection.
func (e *env) loadVolatility() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := e.pool.Volatility(ctx, e.psqlLogin())
	if err != nil {
		e.t.Fatal(err)
	}
	vm := make(fingerprint.VolatilityMap, len(m))
	for k, v := range m {
		vm[k] = fingerprint.Volatility(v)
	}
	e.reads.Analyzer().SetVolatility(vm)
}

func (e *env) psqlLogin() executor.Login {
	return executor.Login{User: "alice", Password: users["alice"], Database: e.db}
}

// psqlRequest is the request the proxy makes of `psql -c sql` by alice
// against database: a simple query under the warehouse's defaults.
func (e *env) psqlRequest(sql string) *readpath.Request {
	return &readpath.Request{Backend: "pg", Warehouse: e.pool, Login: e.psqlLogin(), Database: database, SQL: sql}
}

// reply is an HTTP response, read whole.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

// apiErr is the error object of a reply.
type apiErr struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	SQLState string `json:"sqlstate"`
}

func (r reply) err() apiErr {
	var v struct{ Error apiErr }
	_ = json.Unmarshal(r.body, &v)
	return v.Error
}

// expectError fails t unless r is an error with code and HTTP status.
func (r reply) expectError(t testing.TB, status int, code string) apiErr {
	t.Helper()
	if r.code != status || r.err().Code != code {
		t.Fatalf("got %d %s, want %d with code %q", r.code, r.body, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	return r.err()
}

// auth is how a request authenticates: a user's name for Basic with
// their password, "token:<t>" for a bearer token, "" for none.
type auth string

func (e *env) do(t testing.TB, who auth, method, path, body string, header ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	e.authorize(req, who)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) authorize(req *http.Request, who auth) {
	switch {
	case who == "":
	case strings.HasPrefix(string(who), "token:"):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(string(who), "token:"))
	default:
		req.SetBasicAuth(string(who), users[string(who)])
	}
}

// query is the body of a POST.
type query struct {
	SQL      string            `json:"sql"`
	Database string            `json:"database,omitempty"`
	Params   []any             `json:"params,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// post submits q as who and returns the accepted job's status.
func (e *env) post(t testing.TB, who auth, q query) status {
	t.Helper()
	if q.Database == "" {
		q.Database = database
	}
	b, _ := json.Marshal(q)
	r := e.do(t, who, "POST", "/v1/queries", string(b))
	if r.code != http.StatusAccepted {
		t.Fatalf("POST %s: got %d %s, want 202", q.SQL, r.code, r.body)
	}
	st := decodeStatus(t, r.body)
	if loc := r.header.Get("Location"); loc != "/v1/queries/"+st.ID {
		t.Errorf("Location %q, want /v1/queries/%s", loc, st.ID)
	}
	return st
}

// status is a job's status as the API shows it.
type status struct {
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Position    int               `json:"position"`
	SubmittedAt time.Time         `json:"submitted_at"`
	StartedAt   time.Time         `json:"started_at"`
	FinishedAt  time.Time         `json:"finished_at"`
	DurationMS  *int64            `json:"duration_ms"`
	Cache       string            `json:"cache"`
	Rows        *int64            `json:"rows"`
	Error       *apiErr           `json:"error"`
	ExpiresAt   time.Time         `json:"expires_at"`
	Links       map[string]string `json:"links"`
}

func decodeStatus(t testing.TB, b []byte) status {
	t.Helper()
	var st status
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("decoding status %s: %v", b, err)
	}
	return st
}

// get returns job id's status as who sees it.
func (e *env) get(t testing.TB, who auth, id string) status {
	t.Helper()
	r := e.do(t, who, "GET", "/v1/queries/"+id, "")
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: got %d %s", id, r.code, r.body)
	}
	return decodeStatus(t, r.body)
}

// await polls job id until f accepts its status, and returns every
// status it saw, in order, without repeats.
func (e *env) await(t testing.TB, who auth, id string, f func(status) bool) []status {
	t.Helper()
	var seen []status
	deadline := time.Now().Add(time.Minute)
	for {
		st := e.get(t, who, id)
		if len(seen) == 0 || seen[len(seen)-1].Status != st.Status {
			seen = append(seen, st)
		} else {
			seen[len(seen)-1] = st
		}
		if f(st) {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %+v after a minute", id, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func finished(st status) bool {
	switch st.Status {
	case "queued", "running":
		return false
	}
	return true
}

// wait polls job id until it finishes and returns its final status.
func (e *env) wait(t testing.TB, who auth, id string) status {
	t.Helper()
	seen := e.await(t, who, id, finished)
	return seen[len(seen)-1]
}

// run posts q as alice and waits for its job to finish.
func (e *env) run(t testing.TB, q query) status {
	t.Helper()
	return e.wait(t, "alice", e.post(t, "alice", q).ID)
}

// jsonResult is a JSON result.
type jsonResult struct {
	Columns []struct {
		Name string  `json:"name"`
		Type *string `json:"type"`
		OID  uint32  `json:"oid"`
	} `json:"columns"`
	Rows     []json.RawMessage `json:"rows"`
	RowCount int               `json:"row_count"`
	Command  string            `json:"command"`
}

func decodeResult(t testing.TB, b []byte) jsonResult {
	t.Helper()
	var res jsonResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decoding result %s: %v", b, err)
	}
	return res
}

// rowsOf returns the rows of a JSON result, compacted, one a line.
func rowsOf(res jsonResult) string {
	var out []string
	for _, r := range res.Rows {
		var b bytes.Buffer
		_ = json.Compact(&b, r)
		out = append(out, b.String())
	}
	return strings.Join(out, "\n")
}

// result fetches job id's rows as JSON.
func (e *env) result(t testing.TB, id string) jsonResult {
	t.Helper()
	r := e.do(t, "alice", "GET", "/v1/queries/"+id+"/result", "")
	if r.code != http.StatusOK {
		t.Fatalf("GET result %s: got %d %s", id, r.code, r.body)
	}
	return decodeResult(t, r.body)
}

// activeQueries counts the statements running in the database whose
// text contains like.
func (e *env) activeQueries(t testing.TB, like string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := e.pg.Connect(t, "postgres")
	var n int
	err := conn.QueryRow(ctx, `select count(*) from pg_stat_activity
		where datname = $1 and state = 'active' and query like $2`, e.db, "%"+like+"%").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// awaitNoActive waits until no statement containing like runs in the
// database.
func (e *env) awaitNoActive(t testing.TB, like string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.activeQueries(t, like) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%q still runs on the warehouse", like)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clock is a clock tests move by hand.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
