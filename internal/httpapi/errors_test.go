package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sqlcached/sqlcached/internal/httpapi"
)

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{mutate: func(c *httpapi.Config) { c.MaxBodyBytes = 1024 }})
	long := `{"sql": "select '` + strings.Repeat("x", 2000) + `'"}`
	for _, c := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed JSON", `{"sql": "select 1"`, 400, "bad_json"},
		{"not an object", `["select 1"]`, 400, "bad_json"},
		{"wrong type", `{"sql": 1}`, 400, "bad_json"},
		{"trailing data", `{"sql": "select 1", "database": "analytics"} {}`, 400, "bad_json"},
		{"unknown field", `{"sql": "select 1", "timeout": 5}`, 400, "unknown_field"},
		{"unknown label", `{"sql": "select 1", "labels": {"team": "x"}}`, 400, "unknown_field"},
		{"too large", long, 413, "too_large"},
		{"no sql", `{"database": "analytics"}`, 400, "missing_sql"},
		{"blank sql", `{"sql": "  ", "database": "analytics"}`, 400, "missing_sql"},
		{"no statement", `{"sql": ";", "database": "analytics"}`, 400, "bad_sql"},
		{"two statements", `{"sql": "select 1; select 2", "database": "analytics"}`, 400, "several_statements"},
		{"insert", `{"sql": "insert into t values (1)", "database": "analytics"}`, 403, "read_only"},
		{"ddl", `{"sql": "create table t (a int)", "database": "analytics"}`, 403, "read_only"},
		{"set", `{"sql": "set search_path = x", "database": "analytics"}`, 403, "read_only"},
		{"unknown database", `{"sql": "select 1", "database": "nope"}`, 400, "unknown_database"},
		{"default database is the user's", `{"sql": "select 1"}`, 400, "unknown_database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.do(t, "alice", "POST", "/v1/queries", c.body).expectError(t, c.status, c.code)
		})
	}
	t.Run("too large without a length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/queries", io.MultiReader(strings.NewReader(long)))
		req.ContentLength = -1
		e.authorize(req, "alice")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reply{code: resp.StatusCode, header: resp.Header, body: b}.expectError(t, 413, "too_large")
	})
	t.Run("format is ignored", func(t *testing.T) {
		if r := e.do(t, "alice", "POST", "/v1/queries", `{"sql": "select 1 as one", "database": "analytics", "format": "csv"}`); r.code != 202 {
			t.Errorf("got %d %s, want 202", r.code, r.body)
		}
	})
}

func TestAuthAndOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	id := e.run(t, query{SQL: "select 'mine' as m"}).ID
	paths := []struct{ method, path string }{
		{"GET", "/v1/queries/" + id},
		{"GET", "/v1/queries/" + id + "/result"},
		{"GET", "/v1/queries/" + id + "/events"},
		{"DELETE", "/v1/queries/" + id},
		{"POST", "/v1/queries"},
	}
	for _, p := range paths {
		for _, who := range []auth{"", "mallory", "token:wrong"} {
			r := e.do(t, who, p.method, p.path, `{"sql": "select 1"}`)
			r.expectError(t, http.StatusUnauthorized, "unauthorized")
			if h := r.header.Values("WWW-Authenticate"); len(h) != 2 || !strings.HasPrefix(h[0], "Basic ") || !strings.HasPrefix(h[1], "Bearer ") {
				t.Errorf("WWW-Authenticate %q", h)
			}
		}
	}
	// A wrong password for a real user.
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/queries/"+id, nil)
	req.SetBasicAuth("alice", "bob-pw")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	// Another user's job is unknown to bob, whatever he asks.
	for _, p := range paths[:4] {
		e.do(t, "bob", p.method, p.path, "").expectError(t, http.StatusNotFound, "not_found")
	}
	// The owner's token sees it.
	if st := e.get(t, "token:alice-token", id); st.Status != "done" {
		t.Errorf("with alice's token: %+v", st)
	}
	for _, path := range []string{"/v1/queries/aaaaaaaaaaaaaaaaaaaaaaaaaa", "/v1/queries/not-an-id", "/v1/queries/aaaaaaaaaaaaaaaaaaaaaaaaaa/result", "/v1/nothing"} {
		e.do(t, "alice", "GET", path, "").expectError(t, http.StatusNotFound, "not_found")
	}
	r := e.do(t, "alice", "PUT", "/v1/queries/"+id, "")
	r.expectError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
	e.do(t, "alice", "GET", "/v1/queries/"+id+"/result?format=xml", "").expectError(t, http.StatusBadRequest, "bad_format")
}
