package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/internal/httpapi"
)

// typedSQL returns a value of every kind the typed JSON encoding tells
// apart, over three rows.
const typedSQL = `select i, i::int8 * 4000000000000000 as big, (i * 1.25)::numeric(10,2) as n,
	i % 2 = 0 as even, case when i = 2 then null else 'v' || i end as t,
	jsonb_build_object('i', i, 'a', jsonb_build_array(1, 'x')) as j,
	timestamptz '2024-01-02 03:04:05+00' + i * interval '1 hour' as ts,
	i / 4.0::float8 as f, 'NaN'::float8 as nan, 'sp, "q"' as q, '' as e
	from generate_series(1, 3) i /* typed */`

func TestQueryLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	accepted := e.post(t, "alice", query{SQL: typedSQL})
	// The answer is the job as it stands when it is written: a worker
	// may already have taken it, or finished it.
	switch accepted.Status {
	case "queued", "running", "done":
	default:
		t.Fatalf("POST answered %+v, want an accepted job", accepted)
	}
	if len(accepted.ID) != 26 {
		t.Fatalf("POST answered id %q, want 26 characters", accepted.ID)
	}
	id := accepted.ID
	for name, want := range map[string]string{"self": "/v1/queries/" + id, "result": "/v1/queries/" + id + "/result", "events": "/v1/queries/" + id + "/events"} {
		if got := accepted.Links[name]; got != want {
			t.Errorf("link %s = %q, want %q", name, got, want)
		}
	}
	st := e.wait(t, "alice", id)
	if st.Status != "done" || st.Cache != "miss" || st.Rows == nil || *st.Rows != 3 || st.Error != nil {
		t.Fatalf("final status %+v, want done, miss, 3 rows", st)
	}
	if st.SubmittedAt.IsZero() || st.StartedAt.Before(st.SubmittedAt) || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("timings out of order: submitted %v, started %v, finished %v", st.SubmittedAt, st.StartedAt, st.FinishedAt)
	}
	if want := st.FinishedAt.Sub(st.SubmittedAt).Milliseconds(); st.DurationMS == nil || *st.DurationMS != want {
		t.Errorf("duration_ms %v, want %d", st.DurationMS, want)
	}
	if want := st.FinishedAt.Add(httpapi.DefaultResultTTL); !st.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", st.ExpiresAt, want)
	}

	t.Run("json", func(t *testing.T) {
		res := e.result(t, id)
		var cols []string
		for _, c := range res.Columns {
			typ := "null"
			if c.Type != nil {
				typ = *c.Type
			}
			cols = append(cols, c.Name+":"+typ)
		}
		if got, want := strings.Join(cols, " "), "i:int4 big:int8 n:numeric even:bool t:text j:jsonb ts:timestamptz f:float8 nan:float8 q:text e:text"; got != want {
			t.Errorf("columns\n got %s\nwant %s", got, want)
		}
		want := strings.Join([]string{
			`[1,4000000000000000,"1.25",false,"v1",{"a":[1,"x"],"i":1},"2024-01-02 04:04:05+00",0.25,"NaN","sp, \"q\"",""]`,
			`[2,8000000000000000,"2.50",true,null,{"a":[1,"x"],"i":2},"2024-01-02 05:04:05+00",0.5,"NaN","sp, \"q\"",""]`,
			`[3,"12000000000000000","3.75",false,"v3",{"a":[1,"x"],"i":3},"2024-01-02 06:04:05+00",0.75,"NaN","sp, \"q\"",""]`,
		}, "\n")
		if got := rowsOf(res); got != want {
			t.Errorf("rows\n got %s\nwant %s", got, want)
		}
		if res.RowCount != 3 || res.Command != "SELECT 3" {
			t.Errorf("row_count %d, command %q; want 3, SELECT 3", res.RowCount, res.Command)
		}
	})

	wantCSV := "i,big,n,even,t,j,ts,f,nan,q,e\n" +
		`1,4000000000000000,1.25,f,v1,"{""a"": [1, ""x""], ""i"": 1}",2024-01-02 04:04:05+00,0.25,NaN,"sp, ""q""",""` + "\n" +
		`2,8000000000000000,2.50,t,,"{""a"": [1, ""x""], ""i"": 2}",2024-01-02 05:04:05+00,0.5,NaN,"sp, ""q""",""` + "\n" +
		`3,12000000000000000,3.75,f,v3,"{""a"": [1, ""x""], ""i"": 3}",2024-01-02 06:04:05+00,0.75,NaN,"sp, ""q""",""` + "\n"
	for _, how := range []struct {
		name   string
		path   string
		header []string
		want   string // the Content-Type's media type
	}{
		{"csv by Accept", "", []string{"Accept", "text/csv"}, "text/csv"},
		{"csv by format", "?format=csv", []string{"Accept", "application/json"}, "text/csv"},
		{"ndjson by Accept", "", []string{"Accept", "text/html, application/x-ndjson;q=0.9, text/csv;q=0.5"}, "application/x-ndjson"},
		{"ndjson by format", "?format=ndjson", nil, "application/x-ndjson"},
		{"json by default", "", []string{"Accept", "*/*"}, "application/json"},
	} {
		t.Run(how.name, func(t *testing.T) {
			r := e.do(t, "alice", "GET", "/v1/queries/"+id+"/result"+how.path, "", how.header...)
			if r.code != http.StatusOK {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, how.want) {
				t.Fatalf("Content-Type %q, want %s", ct, how.want)
			}
			switch how.want {
			case "text/csv":
				if string(r.body) != wantCSV {
					t.Errorf("CSV\n got %s\nwant %s", r.body, wantCSV)
				}
				recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
				if err != nil || len(recs) != 4 || len(recs[1]) != 11 {
					t.Errorf("CSV does not parse as 4 records of 11 fields: %v", err)
				}
			case "application/x-ndjson":
				lines := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
				if len(lines) != 3 {
					t.Fatalf("%d lines, want 3:\n%s", len(lines), r.body)
				}
				want := `{"i":3,"big":"12000000000000000","n":"3.75","even":false,"t":"v3","j":{"a":[1,"x"],"i":3},"ts":"2024-01-02 06:04:05+00","f":0.75,"nan":"NaN","q":"sp, \"q\"","e":""}`
				if lines[2] != want {
					t.Errorf("third line\n got %s\nwant %s", lines[2], want)
				}
				for _, l := range lines {
					if !json.Valid([]byte(l)) {
						t.Errorf("line is not JSON: %s", l)
					}
				}
			default:
				decodeResult(t, r.body)
			}
		})
	}
}

func TestSecondQueryIsAHit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	q := query{SQL: "select count(*) as n from generate_series(1, 1000) /* hit test */"}
	if st := e.run(t, q); st.Status != "done" || st.Cache != "miss" {
		t.Fatalf("first run: %+v, want done from a miss", st)
	}
	if st := e.run(t, q); st.Status != "done" || st.Cache != "hit_l1" {
		t.Fatalf("second run: %+v, want done from L1", st)
	}
	// A bearer token for the same user shares her answers.
	st := e.wait(t, "token:alice-token", e.post(t, "token:alice-token", q).ID)
	if st.Status != "done" || st.Cache != "hit_l1" {
		t.Fatalf("run with alice's token: %+v, want done from L1", st)
	}
	if n := e.pg.Calls(t, e.db, "%hit test%"); n != 1 {
		t.Errorf("the warehouse ran the query %d times, want 1", n)
	}
	if got := rowsOf(e.result(t, st.ID)); got != "[1000]" {
		t.Errorf("rows %s, want [1000]", got)
	}
}

// TestCacheSharedWithWireProtocol checks that an HTTP query warms the
// cache for a psql session and the reverse: the same read path, the same
// key as a simple query under the warehouse's defaults.
func TestCacheSharedWithWireProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	psql := func(sql string) cache.Status {
		t.Helper()
		req := e.psqlRequest(sql)
		pl := e.reads.Plan(req)
		if !pl.Decision.Cache {
			t.Fatalf("%s: not cached: %s", sql, pl.Decision.Reason)
		}
		res, err := e.reads.Get(ctx, req, &pl)
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}

	httpFirst := "select 'warmed by http' as w /* warm http */"
	if st := e.run(t, query{SQL: httpFirst}); st.Status != "done" || st.Cache != "miss" {
		t.Fatalf("HTTP run: %+v", st)
	}
	if st := psql(httpFirst); st == cache.Miss {
		t.Errorf("psql after HTTP: %v, want a hit", st)
	}
	if n := e.pg.Calls(t, e.db, "%warm http%"); n != 1 {
		t.Errorf("warehouse executions %d, want 1", n)
	}

	psqlFirst := "select 'warmed by psql' as w, 2 as two /* warm psql */"
	if st := psql(psqlFirst); st != cache.Miss {
		t.Fatalf("first psql run: %v, want a miss", st)
	}
	if st := e.run(t, query{SQL: psqlFirst}); st.Status != "done" || st.Cache != "hit_l1" {
		t.Errorf("HTTP after psql: %+v, want done from L1", st)
	}
	if n := e.pg.Calls(t, e.db, "%warm psql%"); n != 1 {
		t.Errorf("warehouse executions %d, want 1", n)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	sql := `select $1::int + 1 as a, $2::text as b, $3::text is null as c, $4::bool as d,
		$5::numeric * 2 as e, $6::jsonb -> 'k' as f, $7::text = '' as g /* params */`
	params := []any{41, "x y", nil, true, 1.25, map[string]any{"k": []int{1}}, ""}
	st := e.run(t, query{SQL: sql, Params: params})
	if st.Status != "done" || st.Cache != "miss" {
		t.Fatalf("run: %+v", st)
	}
	if got, want := rowsOf(e.result(t, st.ID)), `[42,"x y",true,true,"2.50",[1],true]`; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if st := e.run(t, query{SQL: sql, Params: params}); st.Cache != "hit_l1" {
		t.Errorf("same parameters: %+v, want a hit", st)
	}
	params[0] = 1
	st = e.run(t, query{SQL: sql, Params: params})
	if st.Cache != "miss" {
		t.Errorf("other parameters: %+v, want a miss", st)
	}
	if got, want := rowsOf(e.result(t, st.ID)), `[2,"x y",true,true,"2.50",[1],true]`; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
}

func TestUncachedReadRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	q := query{SQL: "select random() >= 0 as ok /* uncached read */"}
	for range 2 {
		st := e.run(t, q)
		if st.Status != "done" || st.Cache != "bypass" {
			t.Fatalf("run: %+v, want done, bypass", st)
		}
		if got := rowsOf(e.result(t, st.ID)); got != "[true]" {
			t.Errorf("rows %s, want [true]", got)
		}
	}
	if n := e.pg.Calls(t, e.db, "%uncached read%"); n != 2 {
		t.Errorf("warehouse executions %d, want 2", n)
	}
}

func TestFailedQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	st := e.run(t, query{SQL: "select 1 / 0 as x"})
	if st.Status != "failed" || st.Error == nil || st.Error.SQLState != "22012" || st.Error.Code != "sql_error" {
		t.Fatalf("status %+v, want failed with SQLSTATE 22012", st)
	}
	if !strings.Contains(st.Error.Message, "division by zero") {
		t.Errorf("message %q", st.Error.Message)
	}
	r := e.do(t, "alice", "GET", "/v1/queries/"+st.ID+"/result", "")
	if r.expectError(t, http.StatusUnprocessableEntity, "sql_error").SQLState != "22012" {
		t.Errorf("result error %s, want SQLSTATE 22012", r.body)
	}
}

func TestTimedOut(t *testing.T) {
	t.Parallel()
	rule := defaultRule
	rule.Timeout = time.Second
	e := newEnv(t, options{rule: &rule})
	st := e.run(t, query{SQL: "select slow_value(1, 10) /* times out */"})
	if st.Status != "timed_out" || st.Error == nil || st.Error.SQLState != "57014" || st.Error.Code != "timeout" {
		t.Fatalf("status %+v, want timed_out with SQLSTATE 57014", st)
	}
	if d := st.FinishedAt.Sub(st.StartedAt); d < time.Second || d > 8*time.Second {
		t.Errorf("ran %v, want about the rule's 1s", d)
	}
	e.awaitNoActive(t, "times out")
	e.do(t, "alice", "GET", "/v1/queries/"+st.ID+"/result", "").expectError(t, http.StatusUnprocessableEntity, "timeout")
}
