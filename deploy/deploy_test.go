package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sqlcached/sqlcached/internal/config"
)

// metric is one metric sqlcached exports: its type and its labels.
type metric struct {
	kind   string // counter, gauge or histogram
	labels []string
}

// exported is the contract: every metric sqlcached exports under the
// sqlcached_ prefix, with its labels. The alert rules and the dashboard may
// use these and nothing else; a metric renamed in the code must be renamed
// here and in the assets in the same change.
var exported = map[string]metric{
	"sqlcached_requests_total":                     {"counter", []string{"outcome", "rule", "backend"}},
	"sqlcached_request_duration_seconds":           {"histogram", []string{"outcome", "rule", "backend"}},
	"sqlcached_warehouse_duration_seconds":         {"histogram", []string{"backend", "queue"}},
	"sqlcached_queue_wait_seconds":                 {"histogram", []string{"backend", "queue"}},
	"sqlcached_queue_depth":                        {"gauge", []string{"backend", "queue"}},
	"sqlcached_queue_busy_workers":                 {"gauge", []string{"backend", "queue"}},
	"sqlcached_queue_workers":                      {"gauge", []string{"backend", "queue"}},
	"sqlcached_timeouts_total":                     {"counter", []string{"rule", "backend"}},
	"sqlcached_cache_bytes":                        {"gauge", []string{"tier"}},
	"sqlcached_cache_entries":                      {"gauge", []string{"tier"}},
	"sqlcached_cache_evictions_total":              {"counter", []string{"tier"}},
	"sqlcached_invalidations_total":                {"counter", []string{"reason"}},
	"sqlcached_l2_duration_seconds":                {"histogram", []string{"op"}},
	"sqlcached_l2_errors_total":                    {"counter", nil},
	"sqlcached_l2_breaker_open":                    {"gauge", nil},
	"sqlcached_pool_connections":                   {"gauge", []string{"backend", "state"}},
	"sqlcached_pool_max_connections":               {"gauge", []string{"backend"}},
	"sqlcached_client_connections":                 {"gauge", nil},
	"sqlcached_warehouse_time_saved_seconds_total": {"counter", []string{"rule", "backend"}},
	"sqlcached_build_info":                         {"gauge", []string{"version"}},
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

const (
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
	dashboardFile  = "grafana/sqlcached.json"
	manifestFile   = "kubernetes/sqlcached.yaml"
	unitFile       = "systemd/sqlcached.service"
	dockerfile     = "Dockerfile"
)

// lookup returns the series name as written (a histogram's _bucket, _count
// or _sum included) and the labels its series carry, or false if sqlcached
// does not export it.
func lookup(name string) ([]string, bool) {
	if m, ok := exported[name]; ok {
		return append(slices.Clone(m.labels), targetLabels...), true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(name, suffix)
		if m, found := exported[base]; ok && found && m.kind == "histogram" {
			labels := append(slices.Clone(m.labels), targetLabels...)
			if suffix == "_bucket" {
				labels = append(labels, "le")
			}
			return labels, true
		}
	}
	return nil, false
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's prometheus package, as scripts/test.sh does", err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRulesPassPromtoolCheck(t *testing.T) {
	t.Parallel()
	promtool(t, "check", "rules", alertsFile)
}

func TestAlertRulesPassTheirUnitTests(t *testing.T) {
	t.Parallel()
	promtool(t, "test", "rules", alertTestsFile)
}

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestEveryAlertWaitsAndSaysWhatToDo(t *testing.T) {
	t.Parallel()
	var f ruleFile
	if err := yaml.Unmarshal(readFile(t, alertsFile), &f); err != nil {
		t.Fatal(err)
	}
	var n int
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			if r.For == "" {
				t.Errorf("%s: no for:", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
		}
	}
	if n < 7 {
		t.Errorf("%d alerts, want at least 7", n)
	}
}

func TestAssetsUseOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	for _, file := range []string{alertsFile, alertTestsFile, dashboardFile} {
		for _, s := range stringsIn(t, file) {
			for _, err := range checkQuery(s) {
				t.Errorf("%s: %v\n\tin: %s", file, err, s)
			}
		}
	}
}

var (
	metricName = regexp.MustCompile(`\bsqlcached_[a-z0-9_]+`)
	selector   = regexp.MustCompile(`\b(sqlcached_[a-z0-9_]+)\s*\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// checkQuery checks the sqlcached_ metrics a PromQL expression (or any
// text) names: each must be exported, its selectors may match only its
// labels, and by (...) may group only by labels of the metrics named.
func checkQuery(s string) []error {
	var errs []error
	var labels []string
	for _, name := range metricName.FindAllString(s, -1) {
		l, ok := lookup(name)
		if !ok {
			errs = append(errs, errors.New(name+" is not exported by sqlcached"))
		}
		labels = append(labels, l...)
	}
	for _, m := range selector.FindAllStringSubmatch(s, -1) {
		l, _ := lookup(m[1])
		for _, mm := range matcher.FindAllStringSubmatch(quoted.ReplaceAllString(m[2], `""`), -1) {
			if !slices.Contains(l, mm[1]) {
				errs = append(errs, errors.New(m[1]+" has no label "+mm[1]))
			}
		}
	}
	if len(labels) == 0 {
		return errs
	}
	for _, g := range grouping.FindAllStringSubmatch(s, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
				errs = append(errs, errors.New("grouping by "+l+", a label none of the metrics has"))
			}
		}
	}
	return errs
}

func TestCheckQueryFindsMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		bad   bool
	}{
		{`sum by (backend, le) (rate(sqlcached_warehouse_duration_seconds_bucket{backend=~"$backend"}[5m]))`, false},
		{`sum(rate(sqlcached_requests_total{outcome!="bypass", rule=~"a|b"}[5m]))`, false},
		{`sqlcached_l2_breaker_open{instance="a:8080"} == 1`, false},
		{`sum(rate(sqlcached_request_total[5m]))`, true},
		{`sqlcached_queue_depth{rule="default"}`, true},
		{`sum by (queue) (sqlcached_cache_bytes)`, true},
		{`rate(sqlcached_requests_total_bucket[5m])`, true},
		{`sqlcached_l2_errors_total_sum`, true},
	} {
		if got := len(checkQuery(tc.query)) > 0; got != tc.bad {
			t.Errorf("checkQuery(%s) found a mistake: %v, want %v", tc.query, got, tc.bad)
		}
	}
}

// dashboard is the part of the Grafana JSON model these tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int `json:"schemaVersion"`
	Panels        []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

func TestDashboardUsesTheDatasourceInputAndVariables(t *testing.T) {
	t.Parallel()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want the one Prometheus input DS_PROMETHEUS", d.Inputs)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want at least 39", d.SchemaVersion)
	}
	for _, p := range d.Panels {
		if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}") {
			t.Errorf("panel %q: datasource %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, want := range []string{"backend", "rule"} {
		if !slices.Contains(vars, want) {
			t.Errorf("templating variables %v, want %s among them", vars, want)
		}
	}
}

func TestDashboardShowsEveryMetric(t *testing.T) {
	t.Parallel()
	used := make(map[string]bool)
	for _, s := range stringsIn(t, dashboardFile) {
		for _, name := range metricName.FindAllString(s, -1) {
			used[name] = true
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				used[strings.TrimSuffix(name, suffix)] = true
			}
		}
	}
	for name := range exported {
		if !used[name] {
			t.Errorf("%s: no panel shows %s", dashboardFile, name)
		}
	}
}

// manifest is the part of the Kubernetes objects these tests read.
type manifest struct {
	Kind     string            `yaml:"kind"`
	Data     map[string]string `yaml:"data"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe  probe `yaml:"readinessProbe"`
		LivenessProbe   probe `yaml:"livenessProbe"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		EnvFrom []struct {
			SecretRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
	} `yaml:"containers"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// manifests decodes every object in the Kubernetes manifest, by kind.
func manifests(t *testing.T) map[string]manifest {
	t.Helper()
	objs := make(map[string]manifest)
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, manifestFile)))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		objs[m.Kind] = m
	}
}

func TestKubernetesConfigLoads(t *testing.T) {
	t.Parallel()
	objs := manifests(t)
	cfg := kubernetesConfig(t, objs["ConfigMap"])
	grace := time.Duration(objs["Deployment"].Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace <= cfg.Shutdown.Timeout.Std() {
		t.Errorf("terminationGracePeriodSeconds %v, want more than shutdown.timeout %v", grace, cfg.Shutdown.Timeout)
	}
	for _, addr := range []string{cfg.Listen.Postgres, cfg.Listen.HTTP} {
		if !strings.HasPrefix(addr, ":") && !strings.HasPrefix(addr, "0.0.0.0:") {
			t.Errorf("listens on %q, which other pods cannot reach", addr)
		}
	}
}

// kubernetesConfig loads the ConfigMap's sqlcached.yaml as sqlcached would,
// with every ${NAME} set.
func kubernetesConfig(t *testing.T, cm manifest) *config.Config {
	t.Helper()
	data, ok := cm.Data["sqlcached.yaml"]
	if !ok {
		t.Fatalf("%s: the ConfigMap has no sqlcached.yaml", manifestFile)
	}
	cfg, err := config.Parse([]byte(data), func(string) string { return "secret" })
	if err != nil {
		t.Fatalf("%s: the ConfigMap's sqlcached.yaml: %v", manifestFile, err)
	}
	return cfg
}

func TestKubernetesProbesAndPorts(t *testing.T) {
	t.Parallel()
	objs := manifests(t)
	d := objs["Deployment"]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas %v, want at least 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := make(map[string]int)
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, tc := range []struct {
		name string
		p    probe
		path string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if tc.p.HTTPGet.Path != tc.path || ports[tc.p.HTTPGet.Port] != 8080 {
			t.Errorf("%s: GET %s on port %q (%d), want %s on 8080", tc.name, tc.p.HTTPGet.Path, tc.p.HTTPGet.Port, ports[tc.p.HTTPGet.Port], tc.path)
		}
	}
	ann := d.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "8080" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v, want Prometheus to scrape :8080/metrics", ann)
	}
	svc := make(map[string]int)
	for _, p := range objs["Service"].Spec.Ports {
		svc[p.Name] = p.Port
	}
	if svc["postgres"] != 6432 || svc["http-metrics"] != 8080 {
		t.Errorf("Service ports %v, want postgres 6432 and http-metrics 8080", svc)
	}
	if _, ok := objs["PodDisruptionBudget"]; !ok {
		t.Error("no PodDisruptionBudget")
	}
}

func TestKubernetesRunsLockedDown(t *testing.T) {
	t.Parallel()
	pod := manifests(t)["Deployment"].Spec.Template.Spec
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v, want a non-root user", pod.SecurityContext)
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v, want a read-only root and no privilege escalation", sc)
	}
	if len(c.EnvFrom) == 0 || c.EnvFrom[0].SecretRef == nil {
		t.Error("the container takes no environment from a Secret")
	}
	if uid := dockerUser(t); uid != strconv.Itoa(pod.SecurityContext.RunAsUser) {
		t.Errorf("the image runs as %s, the pod as %d", uid, pod.SecurityContext.RunAsUser)
	}
}

// dockerUser returns the uid of the Dockerfile's last USER.
func dockerUser(t *testing.T) string {
	t.Helper()
	var uid string
	for _, line := range strings.Split(string(readFile(t, dockerfile)), "\n") {
		if rest, ok := strings.CutPrefix(line, "USER "); ok {
			uid, _, _ = strings.Cut(strings.TrimSpace(rest), ":")
		}
	}
	return uid
}

func TestDockerfileChecksHealthAndServes(t *testing.T) {
	t.Parallel()
	df := string(readFile(t, dockerfile))
	for _, want := range []string{
		"CGO_ENABLED=1",
		"-trimpath",
		"-X main.version=",
		"./cmd/sqlcached",
		"FROM debian:bookworm-slim",
		"EXPOSE 6432 8080",
		"http://127.0.0.1:8080/healthz",
		`ENTRYPOINT ["/usr/local/bin/sqlcached", "serve", "--config", "/etc/sqlcached/sqlcached.yaml"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("%s does not say %s", dockerfile, want)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	unit := string(readFile(t, unitFile))
	settings := make(map[string][]string)
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for key, want := range map[string]string{
		"ExecStart":       "/usr/local/bin/sqlcached serve --config /etc/sqlcached/sqlcached.yaml",
		"ExecReload":      "/bin/kill -HUP $MAINPID",
		"Restart":         "on-failure",
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"DynamicUser":     "yes",
	} {
		if !slices.Contains(settings[key], want) {
			t.Errorf("%s: %s=%v, want %s", unitFile, key, settings[key], want)
		}
	}
	for _, key := range []string{"EnvironmentFile", "LimitNOFILE", "ExecStartPost"} {
		if len(settings[key]) == 0 {
			t.Errorf("%s: no %s", unitFile, key)
		}
	}
	if !strings.Contains(strings.Join(settings["ExecStartPost"], " "), "/healthz") {
		t.Errorf("%s: ExecStartPost=%v does not wait for /healthz", unitFile, settings["ExecStartPost"])
	}
	if !strings.Contains(unit, "/readyz") {
		t.Errorf("%s does not point load balancers at /readyz", unitFile)
	}
	stop, err := time.ParseDuration(strings.Join(settings["TimeoutStopSec"], ""))
	if err != nil || stop <= config.DefaultShutdownTimeout.Std() {
		t.Errorf("%s: TimeoutStopSec=%v, want more than the default shutdown.timeout %v", unitFile, settings["TimeoutStopSec"], config.DefaultShutdownTimeout)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stringsIn returns every string value in a YAML or JSON file (JSON is
// YAML): the expressions, annotations, series and queries in it.
func stringsIn(t *testing.T, name string) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(readFile(t, name), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}
