package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/httpapi"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	rule := defaultRule
	rule.CancelAbandoned = true
	e := newEnv(t, options{rule: &rule, queue: &executor.QueueConfig{Workers: 1, MaxQueued: 10}})

	first := e.post(t, "alice", query{SQL: "select slow_value(1, 30) /* cancel running */"}).ID
	e.await(t, "alice", first, func(st status) bool { return st.Status == "running" })
	second := e.post(t, "alice", query{SQL: "select slow_value(2, 30) /* cancel queued */"}).ID
	st := e.await(t, "alice", second, func(st status) bool { return st.Position == 1 })
	if st[len(st)-1].Status != "queued" {
		t.Fatalf("second job %+v, want queued at position 1", st[len(st)-1])
	}
	e.do(t, "alice", "GET", "/v1/queries/"+first+"/result", "").expectError(t, http.StatusConflict, "not_ready")

	for _, id := range []string{second, first} {
		r := e.do(t, "alice", "DELETE", "/v1/queries/"+id, "")
		if r.code != http.StatusOK {
			t.Fatalf("DELETE: got %d %s", r.code, r.body)
		}
		st := decodeStatus(t, r.body)
		if st.Status != "canceled" || st.Error == nil || st.Error.Code != "canceled" || st.Error.SQLState != "57014" {
			t.Errorf("after DELETE: %+v, want canceled", st)
		}
		if got := e.get(t, "alice", id); got.Status != "canceled" {
			t.Errorf("GET after DELETE: %+v", got)
		}
	}
	// cancel_abandoned: the run nobody waits for stops on the warehouse.
	e.awaitNoActive(t, "cancel running")
	if n := e.pg.Calls(t, e.db, "%cancel queued%"); n != 0 {
		t.Errorf("the canceled queued job ran %d times", n)
	}
	// A DELETE of a finished job leaves it as it is.
	done := e.run(t, query{SQL: "select 1 as one"})
	r := e.do(t, "alice", "DELETE", "/v1/queries/"+done.ID, "")
	if r.code != http.StatusOK || decodeStatus(t, r.body).Status != "done" {
		t.Errorf("DELETE of a done job: %d %s", r.code, r.body)
	}
	e.do(t, "alice", "GET", "/v1/queries/"+first+"/result", "").expectError(t, http.StatusUnprocessableEntity, "canceled")
}

// event is one Server-Sent Event, or a comment.
type event struct {
	id, name, data string
	comment        string
}

// readEvents reads an event stream until it ends.
func readEvents(t testing.TB, resp *http.Response) []event {
	t.Helper()
	defer resp.Body.Close()
	var (
		out []event
		ev  event
	)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, ev)
			ev = event{}
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.name = v
			case "data":
				ev.data = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading events: %v", err)
	}
	return out
}

func (e *env) events(t testing.TB, who auth, id string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/queries/"+id+"/events", nil)
	e.authorize(req, who)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp
}

// statuses returns the statuses of the status events, and how many
// comments came.
func statuses(t testing.TB, evs []event) (sts []string, comments int) {
	t.Helper()
	n := 0
	for _, ev := range evs {
		if ev.comment != "" {
			comments++
			continue
		}
		n++
		if ev.name != "status" || ev.id != fmt.Sprint(n) {
			t.Errorf("event %d: %+v", n, ev)
		}
		var st status
		if err := json.Unmarshal([]byte(ev.data), &st); err != nil {
			t.Fatalf("event data %q: %v", ev.data, err)
		}
		sts = append(sts, st.Status)
	}
	return sts, comments
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{mutate: func(c *httpapi.Config) { c.Heartbeat = 100 * time.Millisecond }})
	id := e.post(t, "alice", query{SQL: "select slow_value(3, 1) /* events */"}).ID
	sts, comments := statuses(t, readEvents(t, e.events(t, "alice", id)))
	if got := strings.Join(sts, " "); got != "queued running done" {
		t.Errorf("statuses %q, want queued running done", got)
	}
	if comments == 0 {
		t.Errorf("no heartbeat in a second of a 100ms heartbeat")
	}
	// A finished job's stream tells its end at once.
	sts, _ = statuses(t, readEvents(t, e.events(t, "alice", id)))
	if got := strings.Join(sts, " "); got != "queued running done" {
		t.Errorf("statuses of a finished job %q, want its whole history", got)
	}
	failed := e.post(t, "alice", query{SQL: "select 1 / 0 as x /* events fail */"}).ID
	sts, _ = statuses(t, readEvents(t, e.events(t, "alice", failed)))
	if len(sts) == 0 || sts[len(sts)-1] != "failed" {
		t.Errorf("statuses %q, want the last failed", sts)
	}
}

func TestTooManyJobs(t *testing.T) {
	t.Parallel()
	rule := defaultRule
	rule.CancelAbandoned = true
	e := newEnv(t, options{rule: &rule, mutate: func(c *httpapi.Config) { c.MaxJobs = 2 }})
	a := e.post(t, "alice", query{SQL: "select slow_value(1, 30) /* too many */"}).ID
	b := e.post(t, "bob", query{SQL: "select slow_value(2, 30) /* too many */"}).ID
	r := e.do(t, "alice", "POST", "/v1/queries", `{"sql": "select 1", "database": "analytics"}`)
	r.expectError(t, http.StatusTooManyRequests, "too_many")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	e.do(t, "alice", "DELETE", "/v1/queries/"+a, "")
	if st := e.run(t, query{SQL: "select 1 as one"}); st.Status != "done" {
		t.Errorf("after a slot was freed: %+v", st)
	}
	e.do(t, "bob", "DELETE", "/v1/queries/"+b, "")
	e.awaitNoActive(t, "too many")
}

// TestCloseWaitsForJobs checks that Close cancels the jobs under way,
// returns once they have ended, and leaves no goroutine behind. It does
// not run in parallel: it counts the process's goroutines.
func TestCloseWaitsForJobs(t *testing.T) {
	rule := defaultRule
	rule.CancelAbandoned = true
	e := newEnv(t, options{rule: &rule})
	e.run(t, query{SQL: "select 1 as warm"})
	e.client.CloseIdleConnections()
	before := settledGoroutines(0)

	cached := e.post(t, "alice", query{SQL: "select slow_value(1, 30) /* close cached */"}).ID
	uncached := e.post(t, "alice", query{SQL: "select pg_sleep(30) /* close uncached */"}).ID
	for _, id := range []string{cached, uncached} {
		e.await(t, "alice", id, func(st status) bool { return st.Status == "running" })
	}
	stream := e.events(t, "alice", cached)
	done := make(chan []event)
	go func() { done <- readEvents(t, stream) }()

	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	for _, id := range []string{cached, uncached} {
		if st := e.get(t, "alice", id); st.Status != "canceled" || !strings.Contains(st.Error.Message, "shutting down") {
			t.Errorf("after Close: %+v, want canceled by the shutdown", st)
		}
	}
	sts, _ := statuses(t, <-done)
	if got := strings.Join(sts, " "); got != "queued running canceled" {
		t.Errorf("events %q, want queued running canceled", got)
	}
	e.do(t, "alice", "POST", "/v1/queries", `{"sql": "select 1", "database": "analytics"}`).expectError(t, http.StatusServiceUnavailable, "closing")
	e.awaitNoActive(t, "close cached")
	e.awaitNoActive(t, "close uncached")

	e.client.CloseIdleConnections()
	if after := settledGoroutines(before); after > before {
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Errorf("%d goroutines after Close, %d before the jobs", after, before)
	}
}

// settledGoroutines returns the number of goroutines once it has stopped
// falling, or has fallen to want, within ten seconds.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m <= want || (want == 0 && m == n) {
			return m
		}
		n = m
	}
	return n
}
