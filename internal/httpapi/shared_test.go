package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/httpapi"
)

// TestSecondProcessAnswers checks that a process sharing the first's
// Redis answers for the jobs the first ran: status, rows, owner checks,
// and the records of a job still under way.
func TestSecondProcessAnswers(t *testing.T) {
	t.Parallel()
	rule := defaultRule
	rule.CancelAbandoned = true
	a := newEnv(t, options{rule: &rule})
	b := newEnv(t, options{rule: &rule, shared: a})

	st := a.run(t, query{SQL: typedSQL})
	if st.Status != "done" {
		t.Fatalf("run: %+v", st)
	}
	got := awaitShared(t, b, st.ID, func(st status) bool { return st.Status == "done" })
	if got.Status != "done" || got.Cache != "miss" || *got.Rows != 3 || !got.FinishedAt.Equal(st.FinishedAt) {
		t.Errorf("second process says %+v, first %+v", got, st)
	}
	if want, got := rowsOf(a.result(t, st.ID)), rowsOf(b.result(t, st.ID)); got != want {
		t.Errorf("second process's rows\n%s\nfirst's\n%s", got, want)
	}
	r := b.do(t, "alice", "GET", "/v1/queries/"+st.ID+"/result?format=csv", "")
	if r.code != http.StatusOK || !strings.HasPrefix(string(r.body), "i,big,n,") {
		t.Errorf("CSV from the second process: %d %s", r.code, r.body)
	}
	b.do(t, "bob", "GET", "/v1/queries/"+st.ID, "").expectError(t, http.StatusNotFound, "not_found")
	b.do(t, "bob", "GET", "/v1/queries/"+st.ID+"/result", "").expectError(t, http.StatusNotFound, "not_found")
	sts, _ := statuses(t, readEvents(t, b.events(t, "alice", st.ID)))
	if strings.Join(sts, " ") != "done" {
		t.Errorf("events from the second process %q, want done", sts)
	}

	// A job under way: the second process says what the first recorded.
	slow := a.post(t, "alice", query{SQL: "select slow_value(5, 3) /* shared slow */"}).ID
	awaitShared(t, b, slow, func(st status) bool { return st.Status == "running" })
	b.do(t, "alice", "DELETE", "/v1/queries/"+slow, "").expectError(t, http.StatusConflict, "running_elsewhere")
	b.do(t, "alice", "GET", "/v1/queries/"+slow+"/result", "").expectError(t, http.StatusConflict, "not_ready")
	sts, _ = statuses(t, readEvents(t, b.events(t, "alice", slow)))
	if len(sts) == 0 || sts[len(sts)-1] != "done" {
		t.Errorf("events from the second process %q, want them to end with done", sts)
	}
	if got := rowsOf(b.result(t, slow)); got != "[5]" {
		t.Errorf("rows %s, want [5]", got)
	}
}

// awaitShared polls job id in process e, which learns of it through
// Redis, until f accepts its status as alice sees it. The records reach
// Redis shortly after each change, in no set order: until the first one
// does, e does not know the job.
func awaitShared(t *testing.T, e *env, id string, f func(status) bool) status {
	t.Helper()
	var got status
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do(t, "alice", "GET", "/v1/queries/"+id, "")
		if r.code == http.StatusOK {
			if got = decodeStatus(t, r.body); f(got) {
				return got
			}
		} else if r.code != http.StatusNotFound {
			t.Fatalf("second process: %d %s", r.code, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("second process: job %s still %+v", id, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExpired checks that a job past ResultTTL is gone (410) while its
// tombstone lasts, unknown (404) after, and never shown to another user.
func TestExpired(t *testing.T) {
	t.Parallel()
	var clk clock
	e := newEnv(t, options{now: clk.Now, mutate: func(c *httpapi.Config) {
		c.ResultTTL = time.Minute
		c.ExpiredTTL = time.Hour
	}})
	b := newEnv(t, options{now: clk.Now, shared: e, mutate: func(c *httpapi.Config) {
		c.ResultTTL = time.Minute
		c.ExpiredTTL = time.Hour
	}})
	id := e.run(t, query{SQL: "select 'soon gone' as g"}).ID
	if got := rowsOf(e.result(t, id)); got != `["soon gone"]` {
		t.Fatalf("rows %s", got)
	}
	clk.Advance(2 * time.Minute)
	for range 2 { // from the job in memory, then from its record
		for _, p := range []struct{ method, path string }{
			{"GET", "/v1/queries/" + id},
			{"GET", "/v1/queries/" + id + "/result"},
			{"GET", "/v1/queries/" + id + "/events"},
			{"DELETE", "/v1/queries/" + id},
		} {
			e.do(t, "alice", p.method, p.path, "").expectError(t, http.StatusGone, "expired")
			e.do(t, "bob", p.method, p.path, "").expectError(t, http.StatusNotFound, "not_found")
		}
	}
	// The second process finds the tombstone once it has reached Redis.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := b.do(t, "alice", "GET", "/v1/queries/"+id, "")
		if r.code == http.StatusGone || time.Now().After(deadline) {
			r.expectError(t, http.StatusGone, "expired")
			break
		}
	}
	clk.Advance(2 * time.Hour)
	e.do(t, "alice", "GET", "/v1/queries/"+id, "").expectError(t, http.StatusNotFound, "not_found")
}
