package bench

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestExampleWorkloadsParse(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"../deploy/bench/dashboards.yaml", "../deploy/bench/dashboards-local.yaml"} {
		w, err := LoadDashboards(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Boards) < 3 || len(w.Targets) == 0 || w.Duration <= 0 {
			t.Errorf("%s: %d dashboards, %d targets, duration %s", f, len(w.Boards), len(w.Targets), w.Duration)
		}
		s := w.Schedule()
		if s.Len() == 0 {
			t.Fatalf("%s: an empty schedule", f)
		}
		for _, v := range s.Viewers {
			for _, r := range v {
				if strings.Contains(r.SQL, "{{") {
					t.Fatalf("%s: a parameter left in %q", f, r.SQL)
				}
			}
		}
	}
}

const goodWorkload = `name: small
duration: 20s
seed: 7
viewers: 3
think_time: 2s
refresh_interval: 1s
round: 4s
protocol: extended
popularity: {dashboards: 0, params: 2}
targets:
  - {name: a, dsn: "postgres://x@127.0.0.1:1/db", metrics: "http://127.0.0.1:2/metrics"}
dashboards:
  - name: one
    refresh_interval: 0s
    params:
      region: {ints: {from: 1, to: 5, step: 2}}
      day: {dates: {from: 2024-12-30, to: 2025-01-02}}
      name: [o'brien, 7, true]
    charts:
      - sql: select {{region}}, {{day}}, {{ name }}, {{own}}
        params:
          own: {list: [x], zipf: 0}
  - name: two
    charts:
      - name: plain
        sql: select 1
`

func TestParseGoodWorkload(t *testing.T) {
	t.Parallel()
	w, err := ParseDashboards("good.yaml", []byte(goodWorkload))
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "small" || w.Duration != 20*time.Second || w.Seed != 7 || w.Viewers != 3 || w.ThinkTime != 2*time.Second ||
		w.RefreshInterval != time.Second || w.Round != 4*time.Second || w.Protocol != ProtocolExtended || w.DashboardZipf != 0 || w.ParamZipf != 2 {
		t.Errorf("got %+v", w)
	}
	if len(w.Targets) != 1 || w.Targets[0].MetricsURL != "http://127.0.0.1:2/metrics" {
		t.Errorf("targets %+v", w.Targets)
	}
	b := w.Boards[0]
	if !b.HasRefresh || b.RefreshInterval != 0 || w.Boards[1].HasRefresh {
		t.Errorf("refresh intervals: %+v", w.Boards)
	}
	want := map[string]string{
		"region": "1 3 5",
		"day":    "'2025-01-02' '2025-01-01' '2024-12-31' '2024-12-30'", // the latest first
		"name":   "'o''brien' 7 true",
	}
	for _, p := range b.Params {
		if got := strings.Join(p.Values, " "); got != want[p.Name] || p.Zipf != 2 {
			t.Errorf("%s: %s (zipf %v), want %s", p.Name, got, p.Zipf, want[p.Name])
		}
	}
	if c := b.Charts[0]; c.Name != "chart 1" || c.Params[0].Zipf != 0 {
		t.Errorf("chart %+v", c)
	}
	defaults, err := ParseDashboards("d.yaml", []byte("dashboards: [{name: a, charts: [{sql: select 1}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	if defaults.Name != "d.yaml" || defaults.Duration != time.Minute || defaults.Viewers != 8 || defaults.Round != 5*time.Second ||
		defaults.Protocol != ProtocolSimple || defaults.DashboardZipf != 1 || defaults.ParamZipf != 1 || defaults.ThinkTime != 5*time.Second {
		t.Errorf("defaults: %+v", defaults)
	}
}

func TestBadWorkloadNamesFileLineAndReason(t *testing.T) {
	t.Parallel()
	ok := "dashboards:\n  - name: a\n    charts:\n      - sql: select 1\n"
	for _, tt := range []struct{ body, want string }{
		{"viewers: [1\n", "bad.yaml:1: did not find expected ',' or ']'"},
		{"viewers: 0\n" + ok, "bad.yaml:1: viewers: \"0\" is not a whole number of at least 1"},
		{"duration: soon\n" + ok, "bad.yaml:1: duration: \"soon\" is not a duration such as 30s or 2m"},
		{"protocol: binary\n" + ok, "bad.yaml:1: protocol: \"binary\" is not simple, extended or prepared"},
		{"popularity: {dashboards: -1}\n" + ok, "bad.yaml:1: popularity.dashboards: \"-1\" is not a Zipf exponent between 0 and 10"},
		{"viewrs: 3\n" + ok, "bad.yaml:1: viewrs: unknown key"},
		{"name: x\n", "bad.yaml:1: dashboards: missing: a workload needs at least one dashboard"},
		{"dashboards:\n  - name: a\n    charts: []\n", "bad.yaml:3: dashboards[0].charts: empty: a dashboard needs at least one chart"},
		{"dashboards:\n  - name: a\n    charts:\n      - name: c\n", "bad.yaml:4: dashboards[0].charts[0].sql: missing: a chart needs its SQL"},
		{ok + "  - name: a\n    charts: [{sql: select 2}]\n", "bad.yaml:5: dashboards[1].name: dashboard \"a\" is defined twice"},
		{"dashboards:\n  - name: a\n    charts:\n      - sql: |\n          select 1\n          where x = {{regoin}}\n",
			"bad.yaml:6: dashboards[0].charts[0].sql: {{regoin}} is not a parameter of the chart or its dashboard"},
		{"dashboards:\n  - name: a\n    charts:\n      - sql: select {{x\n", "bad.yaml:4: dashboards[0].charts[0].sql: \"{{x\" has no closing }}"},
		{"dashboards:\n  - name: a\n    params:\n      r: {ints: {from: 5, to: 1}}\n    charts: [{sql: \"select {{r}}\"}]\n",
			"bad.yaml:4: dashboards[0].params.r.ints: needs from and to, from at most to"},
		{"dashboards:\n  - name: a\n    params:\n      d: {dates: {from: 2024-01-01, to: 2024-02-30}}\n    charts: [{sql: \"select {{d}}\"}]\n",
			"bad.yaml:4: dashboards[0].params.d.dates.to: \"2024-02-30\" is not a date such as 2024-12-31"},
		{"dashboards:\n  - name: a\n    params:\n      d: {list: [1], ints: {from: 1, to: 2}}\n    charts: [{sql: \"select {{d}}\"}]\n",
			"bad.yaml:4: dashboards[0].params.d: give exactly one of list, ints or dates"},
		{"dashboards:\n  - name: a\n    params:\n      d: []\n    charts: [{sql: \"select {{d}}\"}]\n",
			"bad.yaml:4: dashboards[0].params.d: empty: a domain needs at least one value"},
		{"targets:\n  - {name: a}\n" + ok, "bad.yaml:2: targets[0]: a target needs a name and a dsn"},
	} {
		_, err := ParseDashboards("bad.yaml", []byte(tt.body))
		var we *WorkloadError
		if !errors.As(err, &we) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q:\n got %v\nwant %s", tt.body, err, tt.want)
		}
	}
}

// TestScheduleIsTheSeeds: the same workload and seed give the same
// schedule; dashboards and values follow their Zipf popularity; a
// refreshing dashboard reloads within a visit.
func TestScheduleIsTheSeeds(t *testing.T) {
	t.Parallel()
	w, err := ParseDashboards("w.yaml", []byte(`duration: 10m
viewers: 4
think_time: 3s
popularity: {dashboards: 1, params: 1}
dashboards:
  - name: a
    params: {v: {ints: {from: 1, to: 10}}}
    charts: [{sql: "select {{v}}"}, {sql: "select -{{v}}"}]
  - name: b
    refresh_interval: 1s
    charts: [{sql: select 'b'}]
`))
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := w.Schedule(), w.Schedule()
	if s1.Len() != s2.Len() || s1.Viewers[3][17] != s2.Viewers[3][17] {
		t.Fatal("two schedules of one seed differ")
	}
	boards, values := map[int]int{}, map[string]int{}
	for _, v := range s1.Viewers {
		for i, r := range v {
			if i > 0 && r.At < v[i-1].At {
				t.Fatal("a viewer's requests out of order")
			}
			if r.Chart == 0 {
				boards[r.Board]++
			}
			if r.Board == 0 && r.Chart == 0 {
				values[r.SQL]++
			}
		}
	}
	// b refreshes, so it has more loads per visit than a; a's visits are
	// twice b's. Values of a: 1 about twice as often as 2, 10 times 10.
	if values["select 1"] < values["select 2"]*3/2 || values["select 1"] < values["select 10"]*5 {
		t.Errorf("values not Zipf(1): %v", values)
	}
	if boards[1] <= boards[0]/2 {
		t.Errorf("b's refreshes missing: %v", boards)
	}
	if between := s1.Between(0, time.Minute, 2*time.Minute); len(between) == 0 || between[0].At < time.Minute || between[len(between)-1].At >= 2*time.Minute {
		t.Errorf("Between: %v", between)
	}
}

func TestZipf(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	z := NewZipf(3, 0)
	n := [3]int{}
	for range 30000 {
		n[z.Draw(r)]++
	}
	for _, c := range n {
		if c < 9000 || c > 11000 {
			t.Errorf("s=0 is not uniform: %v", n)
		}
	}
}

func TestParseOutcomes(t *testing.T) {
	t.Parallel()
	o, err := parseOutcomes(strings.NewReader(`# HELP sqlcached_requests_total Statements answered.
# TYPE sqlcached_requests_total counter
sqlcached_requests_total{backend="wh",outcome="hit_l1",rule="a"} 80
sqlcached_requests_total{backend="wh",outcome="hit_l1",rule="b"} 10
sqlcached_requests_total{backend="wh",outcome="miss",rule="a"} 6
sqlcached_requests_total{backend="wh",outcome="collapsed",rule="a"} 4
sqlcached_requests_total{backend="wh",outcome="error",rule="a"} 5
sqlcached_request_duration_seconds_count{outcome="miss"} 99
`))
	if err != nil {
		t.Fatal(err)
	}
	hit, _ := o.HitRatio()
	col, _ := o.CollapseRatio()
	if o["hit_l1"] != 90 || hit != 0.9 || col != 0.4 {
		t.Errorf("got %v, hit ratio %v, collapse ratio %v", o, hit, col)
	}
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@h:5/db?sslmode=disable": "postgres://u:xxxxx@h:5/db?sslmode=disable",
		"host=h password=secret user=u":              "host=h password=xxxxx user=u",
		"host=h password='se cret' user=u":           "host=h password=xxxxx user=u",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
