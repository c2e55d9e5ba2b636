package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/httpapi"
)

func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	r := e.do(t, "", "GET", "/v1/openapi.json", "")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s", r.code, r.header.Get("Content-Type"))
	}
	var spec struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
		Comps   map[string]map[string]map[string]any  `json:"components"`
	}
	if err := json.Unmarshal(r.body, &spec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.0.") {
		t.Errorf("openapi %q, want 3.0.x", spec.OpenAPI)
	}
	want := map[string][]string{
		"post /v1/queries":            {"202", "400", "401", "403", "405", "413", "429", "503"},
		"get /v1/queries/{id}":        {"200", "401", "404", "405", "410"},
		"delete /v1/queries/{id}":     {"200", "202", "401", "404", "405", "409", "410"},
		"get /v1/queries/{id}/result": {"200", "400", "401", "404", "405", "409", "410", "422", "503"},
		"get /v1/queries/{id}/events": {"200", "401", "404", "405", "410"},
		"get /v1/openapi.json":        {"200", "405"},
	}
	got := map[string][]string{}
	for path, ops := range spec.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct{ Responses map[string]json.RawMessage }
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			var codes []string
			for c := range op.Responses {
				codes = append(codes, c)
			}
			sort.Strings(codes)
			got[method+" "+path] = codes
		}
	}
	for route, codes := range want {
		if !slices.Equal(got[route], codes) {
			t.Errorf("%s: statuses %v, want %v", route, got[route], codes)
		}
	}
	for route := range got {
		if _, ok := want[route]; !ok {
			t.Errorf("%s described but not served", route)
		}
	}
	for _, s := range []string{"QueryRequest", "Status", "Error", "Result"} {
		if _, ok := spec.Comps["schemas"][s]; !ok {
			t.Errorf("no schema %s", s)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	good := httpapi.Config{Reads: e.reads, Cache: e.group, Route: func(string) (string, executor.Warehouse, string, bool) { return "", nil, "", false }, Users: users}
	if _, err := httpapi.New(good); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	for name, mutate := range map[string]func(*httpapi.Config){
		"no reads":       func(c *httpapi.Config) { c.Reads = nil },
		"no cache":       func(c *httpapi.Config) { c.Cache = nil },
		"no route":       func(c *httpapi.Config) { c.Route = nil },
		"no credentials": func(c *httpapi.Config) { c.Users = nil },
		"negative ttl":   func(c *httpapi.Config) { c.ResultTTL = -time.Second },
	} {
		c := good
		mutate(&c)
		if _, err := httpapi.New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
