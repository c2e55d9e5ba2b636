package readpath

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/policy"
)

// warehouse answers every statement with one fixed row and counts runs.
type warehouse struct{ runs int }

func (w *warehouse) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	w.runs++
	if strings.Contains(req.SQL, "slow") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &executor.Result{Wire: []byte("C\x00\x00\x00\x0dSELECT 0\x00"), Rows: 0}, nil
}

func newPath(t *testing.T, rules *policy.Set) *Path {
	t.Helper()
	g, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	p, err := New(Config{Cache: g, Policy: rules})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlanKeysWhatChangesAnswers: labels and comments stay out of keys;
// user, database, settings, parameters and formats go in; a shared rule
// drops the user; what cannot be cached is not keyed.
func TestPlanKeysWhatChangesAnswers(t *testing.T) {
	p := newPath(t, policy.New(
		policy.Rule{Name: "shared", Match: policy.Match{Dashboard: policy.MustGlob("public-*")}, Cache: true, TTL: time.Minute, Shared: true},
		policy.Rule{Name: "all", Cache: true, TTL: time.Minute},
	))
	base := Request{Backend: "w", Login: executor.Login{User: "alice", Database: "db"}, Database: "db", SQL: "select 1 from t"}
	key := func(mod func(*Request)) (string, policy.Decision) {
		r := base
		mod(&r)
		pl := p.Plan(&r)
		return pl.Key.String(), pl.Decision
	}
	k0, d := key(func(*Request) {})
	if !d.Cache || d.Rule.Name != "all" {
		t.Fatalf("decision %+v", d)
	}
	same := map[string]func(*Request){
		"a comment":      func(r *Request) { r.SQL = "select 1 from t /*dashboard='x'*/" },
		"a label":        func(r *Request) { r.Session.SetDashboard = "sales" },
		"the case":       func(r *Request) { r.SQL = "SELECT 1 FROM t" },
		"a harmless SET": func(r *Request) { r.Settings = map[string]string{"application_name": "SET application_name = 'x'"} },
	}
	for what, mod := range same {
		if k, _ := key(mod); k != k0 {
			t.Errorf("%s changed the key", what)
		}
	}
	differ := map[string]func(*Request){
		"the user":          func(r *Request) { r.Login.User = "bob" },
		"the database":      func(r *Request) { r.Login.Database = "other" },
		"the backend":       func(r *Request) { r.Backend = "v" },
		"a key setting":     func(r *Request) { r.Settings = map[string]string{"timezone": "SET TimeZone = 'UTC'"} },
		"a literal":         func(r *Request) { r.SQL = "select 2 from t" },
		"a parameter":       func(r *Request) { r.SQL = "select $1 from t"; r.Params = [][]byte{[]byte("1")} },
		"the result format": func(r *Request) { r.ResultFormats = []int16{1} },
	}
	for what, mod := range differ {
		if k, _ := key(mod); k == k0 {
			t.Errorf("%s did not change the key", what)
		}
	}
	// A shared rule: one key for every user.
	ka, d := key(func(r *Request) { r.Session.SetDashboard = "public-kpis" })
	kb, _ := key(func(r *Request) { r.Session.SetDashboard = "public-kpis"; r.Login.User = "bob" })
	if !d.Shared || ka != kb {
		t.Errorf("a shared rule kept users apart (shared %v)", d.Shared)
	}
	// Not cacheable: no key, the analyzer's reason.
	r := base
	r.SQL = "select random()"
	if pl := p.Plan(&r); pl.Decision.Cache || pl.Decision.Reason == "" || pl.Key != ([16]byte{}) {
		t.Errorf("random(): %+v", pl.Decision)
	}
}

// TestGetRunsOnceAndTimesOut: a miss runs on the warehouse once and is
// then a hit; a run past its rule's timeout is answered with a
// TimeoutError naming the rule, and not stored.
func TestGetRunsOnceAndTimesOut(t *testing.T) {
	p := newPath(t, policy.New(policy.Rule{Name: "quick", Cache: true, TTL: time.Minute, Timeout: 50 * time.Millisecond}))
	wh := &warehouse{}
	req := Request{Backend: "w", Warehouse: wh, Login: executor.Login{User: "u", Database: "d"}, Database: "d", SQL: "select 1"}
	for i := range 3 {
		r := req
		pl := p.Plan(&r)
		res, err := p.Get(context.Background(), &r, &pl)
		if err != nil || (i > 0) != (res.Status != cache.Miss) {
			t.Fatalf("get %d: %v %v", i, res.Status, err)
		}
	}
	if wh.runs != 1 {
		t.Fatalf("%d runs, want 1", wh.runs)
	}
	slow := req
	slow.SQL = "select * from slow"
	slow.Analysis = nil
	pl := p.Plan(&slow)
	if !pl.Decision.Cache {
		t.Fatalf("the slow read: %+v", pl.Decision)
	}
	_, err := p.Get(context.Background(), &slow, &pl)
	var te *executor.TimeoutError
	if !errors.As(err, &te) || te.Rule != "quick" || te.Limit != 50*time.Millisecond {
		t.Fatalf("got %v, want the rule's timeout", err)
	}
	if _, ok := p.Peek(&pl); ok {
		t.Fatal("a timed-out run was stored")
	}
}

// TestExplainText: the explanation names the rule, the decision, the
// reason a statement is not cached, and the key's parts.
func TestExplainText(t *testing.T) {
	rules := policy.New(policy.Rule{Name: "finance", Match: policy.Match{Dashboard: policy.MustGlob("finance-*")}, Cache: true, TTL: time.Minute, Timeout: time.Second, Queue: "dashboards"},
		policy.Rule{Name: "rest", Cache: true, TTL: time.Hour, Timeout: time.Minute})
	p := newPath(t, rules)
	for sql, want := range map[string][]string{
		"select sum(x) from sales /*dashboard='finance-q3'*/": {"rule:", "finance (policies[0])", `dashboard="finance-q3" (from comment)`, "cached: ttl 1m0s", "queue dashboards", "backend w, database d, user u", `text "select sum ( x ) from sales"`},
		"select random()": {"rest (policies[1])", "cacheable:  no: volatile function", "not cached"},
	} {
		e := Explain(rules, p.Analyzer(), &Request{Backend: "w", Login: executor.Login{User: "u", Database: "d"}, Database: "d", SQL: sql})
		var b strings.Builder
		if err := e.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: explanation lacks %q:\n%s", sql, w, b.String())
			}
		}
	}
}
