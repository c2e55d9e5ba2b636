package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var exampleEnv = map[string]string{
	"SUPERSET_PASSWORD": "superset-secret",
	"METABASE_PASSWORD": "metabase-secret",
	"SNOWFLAKE_DSN":     "user:pass@account/db",
}

func getenvFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestExampleFilesLoad(t *testing.T) {
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	for _, path := range []string{"testdata/example.yaml", "../../../shared/sqlcached.example.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("%v (the shared directory is expected beside the repository)", err)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			checkExample(t, c)
		})
	}
}

func checkExample(t *testing.T, c *Config) {
	t.Helper()
	got := []any{
		c.Listen.Postgres, c.Listen.HTTP, c.TLS.CertFile, c.TLS.Require,
		c.Auth.Method, len(c.Auth.Users), c.Auth.Users[0].Password, c.Auth.AdminUsers,
		c.Backends[0].Name, c.Backends[0].Kind, c.Backends[0].MaxConns, c.Databases["analytics"],
		c.Cache.L1.MaxBytes, c.Cache.L2.Redis.URL, c.Cache.L2.Timeout.Std(), c.Cache.MaxEntryBytes,
		c.Queues["dashboards"], c.Queues["reports"].MaxQueued, len(c.Policies),
	}
	want := []any{
		"127.0.0.1:6432", "127.0.0.1:8080", "/etc/sqlcached/server.crt", false,
		"scram-sha-256", 2, "superset-secret", []string{"ops"},
		"warehouse", "postgres", 20, "warehouse",
		256 * MiB, "redis://127.0.0.1:6379/1", 50 * time.Millisecond, 16 * MiB,
		Queue{Workers: 8, MaxQueued: 256, MaxWait: DefaultQueueMaxWait}, 64, 5,
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("field %d: got %#v, want %#v", i, got[i], want[i])
		}
	}
	fin := c.Policies[0]
	if fin.Name != "finance-dashboards" || fin.Match.Dashboard != "finance-*" || fin.TTL.Std() != 5*time.Minute ||
		fin.StaleTTL.Std() != time.Hour || fin.StaleIfError.Std() != 24*time.Hour || fin.Timeout.Std() != 5*time.Second ||
		fin.Queue != "dashboards" || !fin.Cache || fin.Shared || fin.MaxEntryBytes != 16*MiB {
		t.Errorf("policies[0] = %+v", fin)
	}
	if p := c.Policies[1]; p.Timeout != DefaultPolicyTimeout || p.Match.ApplicationName != "Metabase*" {
		t.Errorf("policies[1] = %+v", p)
	}
	if p := c.Policies[3]; p.Cache || p.Match.User != "ops" {
		t.Errorf("policies[3] = %+v, want cache false", p)
	}
	if p := c.Policies[4]; !p.Match.IsCatchAll() || p.Queue != "adhoc" || !p.CacheTimeFunctions || p.AllowHints {
		t.Errorf("policies[4] = %+v, want a catch-all on adhoc", p)
	}
	if want := []string{"comment", "set", "startup", "application_name"}; !reflect.DeepEqual(c.Labels.Dashboard, want) {
		t.Errorf("labels.dashboard = %q, want %q", c.Labels.Dashboard, want)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

func TestExampleNeedsItsEnvironment(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, getenvFrom(map[string]string{"SUPERSET_PASSWORD": "x"}))
	want := "line 20: auth.users[1].password: environment variable METABASE_PASSWORD is not set"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want %q...", err, want)
	}
}

const minimal = `
backends:
  - name: wh
    dsn: postgres://127.0.0.1:5432/db
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal+"policies:\n  - {name: all, ttl: 1m}\n"), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen:   Listen{Postgres: "127.0.0.1:6432", HTTP: "127.0.0.1:8080"},
		Auth:     Auth{Method: "trust"},
		Backends: []Backend{{Name: "wh", Kind: "postgres", DSN: "postgres://127.0.0.1:5432/db", MaxConns: 20}},
		Pool:     Pool{MaxWait: Duration(30 * time.Second), IdleTimeout: Duration(5 * time.Minute), Mode: PoolTransaction},
		Limits:   Limits{MaxClients: 1000, MaxMessageBytes: 64 * MiB},
		Shutdown: Shutdown{Timeout: Duration(30 * time.Second)},
		Log:      Log{Level: "info", Format: "text"},
		Cache:    Cache{L1: L1{MaxBytes: 256 * MiB}, MaxEntryBytes: 16 * MiB},
		Queues:   map[string]Queue{"default": {Workers: 8, MaxQueued: 256, MaxWait: DefaultQueueMaxWait}},
		Labels:   Labels{Dashboard: []string{"comment", "set", "startup", "application_name"}},
		Policies: []Policy{{Name: "all", Cache: true, TTL: Duration(time.Minute), Timeout: Duration(time.Minute),
			Queue: "default", MaxEntryBytes: 16 * MiB, CacheTimeFunctions: true}},
		HTTPAPI: HTTPAPI{ResultTTL: DefaultResultTTL, MaxBodyBytes: DefaultMaxBodyBytes, MaxJobs: DefaultMaxJobs},
	}
	got := *c
	got.lines = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if b := c.BackendFor("anything"); b == nil || b.Name != "wh" {
		t.Errorf("BackendFor(anything) = %v, want the first backend", b)
	}
}

func TestDefaultsDependingOnOtherKeys(t *testing.T) {
	c, err := Parse([]byte(minimal+`
auth: {users: [{name: a, password: p}]}
cache:
  l2: {redis: {url: "redis://127.0.0.1:6379/0"}}
  max_entry_bytes: 1MiB
policies: [{name: all, ttl: 1m}]
`), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Method != AuthSCRAMSHA256 {
		t.Errorf("auth.method = %q, want scram-sha-256 when users are given", c.Auth.Method)
	}
	if l2 := c.Cache.L2; l2.Timeout.Std() != 50*time.Millisecond || l2.Namespace != "sqlcached" || l2.Redis.Mode != RedisStandalone {
		t.Errorf("cache.l2 = %+v", l2)
	}
	if got := c.Policies[0].MaxEntryBytes; got != MiB {
		t.Errorf("policies[0].max_entry_bytes = %v, want cache.max_entry_bytes", got)
	}
}

func TestPoolModes(t *testing.T) {
	c, err := Parse([]byte(minimal+"pool: {mode: transaction, database_modes: {analytics: session}, user_modes: {etl: transaction, ops: session}}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ user, db, want string }{
		{"superset", "analytics", PoolSession},
		{"superset", "other", PoolTransaction},
		{"etl", "analytics", PoolTransaction}, // the user's mode wins
		{"ops", "other", PoolSession},
	} {
		if got := c.PoolModeFor(tt.user, tt.db); got != tt.want {
			t.Errorf("PoolModeFor(%q, %q) = %q, want %q", tt.user, tt.db, got, tt.want)
		}
	}
}

func TestDatabasesRouteToBackends(t *testing.T) {
	c, err := Parse([]byte(minimal+`
  - {name: duck, kind: duckdb}
databases: {analytics: wh, demo: duck}
policies: [{name: all, ttl: 1m}]
`), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	for db, want := range map[string]string{"analytics": "wh", "demo": "duck", "other": ""} {
		got := ""
		if b := c.BackendFor(db); b != nil {
			got = b.Name
		}
		if got != want {
			t.Errorf("BackendFor(%q) = %q, want %q", db, got, want)
		}
	}
}

func TestEnvironmentExpansion(t *testing.T) {
	env := getenvFrom(map[string]string{"PW": "a: b # c", "N": "7", "HOST": "10.0.0.1"})
	c, err := Parse([]byte(`
# ${NOT_SET} in a comment is left alone
listen: {postgres: "${HOST}:6432", http: "${HTTP_ADDR:-127.0.0.1:9090}"}
auth:
  method: md5
  users:
    - name: u
      password: ${PW}
    - {name: v, password: "$${PW}$x"}
backends:
  - name: wh
    dsn: "host=${HOST}"
    max_conns: ${N}
policies: [{name: all, ttl: 1m}]
`), env)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Listen.Postgres, c.Listen.HTTP, c.Auth.Users[0].Password, c.Auth.Users[1].Password, c.Backends[0].MaxConns}
	want := []any{"10.0.0.1:6432", "127.0.0.1:9090", "a: b # c", "${PW}$x", 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	pol := "\npolicies: [{name: all, ttl: 1m}]\n"
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unknown key", minimal + "listen: {postgress: x}", "listen.postgress: unknown key"},
		{"unknown nested key", minimal + "cache: {l2: {redis: {uri: x}}}", "cache.l2.redis.uri: unknown key"},
		{"unknown top key", minimal + "listne: {}", "listne: unknown key"},
		{"unknown key in list", minimal + "    maxconns: 3", "backends[0].maxconns: unknown key"},
		{"unknown match key", minimal + "policies: [{name: a, ttl: 1m, match: {dashbord: x}}]", "policies[0].match.dashbord: unknown key"},
		{"duplicate key", minimal + "listen: {http: ':1', http: ':2'}", "listen.http: duplicate key"},
		{"unset variable", minimal + "listen: {http: '${NOPE}'}", "listen.http: environment variable NOPE is not set"},
		{"bad variable", minimal + "listen: {http: '${NO PE}'}", `listen.http: invalid environment variable name "NO PE"`},
		{"not a number", minimal + "    max_conns: many", `backends[0].max_conns: must be a whole number, not "many"`},
		{"not a bool", minimal + "tls: {cert_file: a, key_file: b, require: sometimes}", `tls.require: must be true or false, not "sometimes"`},
		{"not a list", "backends: {name: x}", "backends: must be a list"},
		{"not a mapping", minimal + "listen: 6432", "listen: must be a mapping of keys to values"},
		{"bad duration", minimal + "pool: {max_wait: 30}", `pool.max_wait: invalid duration "30"`},
		{"bad size", minimal + "cache: {l1: {max_bytes: 1XB}}", `cache.l1.max_bytes: invalid size "1XB"`},
		{"no backends", "listen: {}", "backends: at least one backend is required"},
		{"short token", minimal + "auth: {users: [{name: u, password: p}]}\nhttp_api: {tokens: [{token: abc, user: u}]}", "http_api.tokens[0].token: too short"},
		{"token of nobody", minimal + "auth: {users: [{name: u, password: p}]}\nhttp_api: {tokens: [{token: 0123456789abcdef, user: v}]}", `http_api.tokens[0].user: must name a user of auth.users ("v" does not)`},
		{"result ttl", minimal + "http_api: {result_ttl: 0s}", "http_api.result_ttl: must be positive"},
		{"queue wait", minimal + "queues: {q: {workers: 1, max_wait: 0s}}", "queues.q.max_wait: must be positive"},
		{"refresh ahead", minimal + "policies: [{name: a, ttl: 1m, refresh_ahead: 1m}]", "policies[0].refresh_ahead: must be shorter than ttl"},
		{"max_conns zero", minimal + "    max_conns: 0", "backends[0].max_conns: must be at least 1"},
		{"backend name", "backends: [{dsn: x}]", "backends[0].name: required"},
		{"backend duplicate", minimal + "  - {name: wh, kind: duckdb}", `backends[1].name: duplicate "wh" (also backends[0])`},
		{"backend kind", "backends: [{name: a, kind: oracle, dsn: x}]", `backends[0].kind: must be one of postgres, snowflake, duckdb (not "oracle")`},
		{"backend dsn", "backends: [{name: a}]", "backends[0].dsn: required"},
		{"backend bad dsn", "backends: [{name: a, dsn: 'postgres://h:notaport/db'}]", "backends[0].dsn: cannot parse"},
		{"snowflake dsn", "backends: [{name: a, kind: snowflake}]", "backends[0].dsn: required"},
		{"unknown backend", minimal + "databases: {analytics: wh2}", `databases.analytics: unknown backend "wh2"`},
		{"admin database", minimal + "databases: {sqlcached: wh}", "databases.sqlcached: reserved for the admin console"},
		{"auth method", minimal + "auth: {method: ldap}", `auth.method: must be one of trust, password, md5, scram-sha-256`},
		{"cleartext", minimal + "auth: {method: password}", "auth.method: password sends passwords in clear text"},
		{"scram without users", minimal + "auth: {method: scram-sha-256}", "auth.users: required for method scram-sha-256"},
		{"user without password", minimal + "auth: {users: [{name: a}]}", "auth.users[0].password: required for method scram-sha-256"},
		{"user duplicate", minimal + "auth: {method: trust, users: [{name: a}, {name: a}]}", `auth.users[1].name: duplicate "a" (also auth.users[0])`},
		{"tls half", minimal + "tls: {cert_file: a.crt}", "tls: cert_file and key_file go together"},
		{"tls none", minimal + "tls: {require: true}", "tls: cert_file and key_file are required"},
		{"listen address", minimal + "listen: {postgres: localhost}", `listen.postgres: invalid address "localhost"`},
		{"listen port", minimal + "listen: {postgres: 'localhost:99999'}", `listen.postgres: invalid address "localhost:99999": port`},
		{"listen same", minimal + "listen: {postgres: ':1', http: ':1'}", "listen.http: same address as listen.postgres"},
		{"max_wait", minimal + "pool: {max_wait: 0s}", "pool.max_wait: must be positive"},
		{"idle_timeout", minimal + "pool: {idle_timeout: -1s}", "pool.idle_timeout: must not be negative"},
		{"pool mode", minimal + "pool: {mode: statement}", `pool.mode: must be transaction or session, not "statement"`},
		{"database pool mode", minimal + "pool: {database_modes: {analytics: sesion}}", `pool.database_modes.analytics: must be transaction or session, not "sesion"`},
		{"user pool mode", minimal + "pool: {user_modes: {metabase: ''}}", `pool.user_modes.metabase: must be transaction or session, not ""`},
		{"max_clients", minimal + "limits: {max_clients: 0}", "limits.max_clients: must be at least 1"},
		{"max_message_bytes", minimal + "limits: {max_message_bytes: 100}", "limits.max_message_bytes: must be at least 8KiB"},
		{"shutdown", minimal + "shutdown: {timeout: -1s}", "shutdown.timeout: must not be negative"},
		{"log level", minimal + "log: {level: loud}", `log.level: must be one of debug, info, warn, error`},
		{"log format", minimal + "log: {format: xml}", `log.format: must be text or json`},
		{"l1 zero", minimal + "cache: {l1: {max_bytes: 0}}", "cache.l1.max_bytes: must be positive"},
		{"entry over l1", minimal + "cache: {l1: {max_bytes: 1MiB}}", "cache.max_entry_bytes: 16MiB is more than cache.l1.max_bytes (1MiB)"},
		{"l2 no redis", minimal + "cache: {l2: {timeout: 1s}}", "cache.l2.redis: url or addrs is required"},
		{"l2 both", minimal + "cache: {l2: {redis: {url: 'redis://h:1', addrs: ['h:1']}}}", "cache.l2.redis: url and addrs are alternatives"},
		{"l2 mode", minimal + "cache: {l2: {redis: {addrs: ['h:1'], mode: ring}}}", "cache.l2.redis.mode: must be one of standalone, sentinel, cluster"},
		{"l2 sentinel", minimal + "cache: {l2: {redis: {addrs: ['h:1'], mode: sentinel}}}", "cache.l2.redis.master_name: required in sentinel mode"},
		{"l2 addr", minimal + "cache: {l2: {redis: {addrs: ['h']}}}", `cache.l2.redis.addrs[0]: invalid address "h"`},
		{"l2 url", minimal + "cache: {l2: {redis: {url: 'http://h:1'}}}", "cache.l2.redis.url: "},
		{"l2 timeout", minimal + "cache: {l2: {redis: {url: 'redis://h:1'}, timeout: 0s}}", "cache.l2.timeout: must be positive"},
		{"queue workers", minimal + "queues: {q: {max_queued: 1}}", "queues.q.workers: must be at least 1"},
		{"queue max_queued", minimal + "queues: {q: {workers: 1, max_queued: -1}}", "queues.q.max_queued: must not be negative"},
		{"queue name", minimal + "queues: {'a b': {workers: 1}}", `queues.a b: "a b": use letters`},
		{"policy name", minimal + "policies: [{ttl: 1m}]", "policies[0].name: required"},
		{"policy duplicate", minimal + "policies: [{name: a, ttl: 1m}, {name: a, ttl: 1m}]", `policies[1].name: duplicate "a" (also policies[0])`},
		{"policy queue", minimal + "queues: {q: {workers: 1}}\npolicies: [{name: a, ttl: 1m, queue: q, match: {user: u}}, {name: b, ttl: 1m, queue: q, match: {user: v}}, {name: c, ttl: 1m, queue: x}]", `policies[2].queue: unknown queue "x"`},
		{"policy default queue", minimal + "queues: {q: {workers: 1}}\npolicies: [{name: a, ttl: 1m}]", `policies[0].queue: required: no queue is named "default"`},
		{"policy ttl", minimal + "policies: [{name: a}]", "policies[0].ttl: required when cache is true"},
		{"policy negative", minimal + "policies: [{name: a, ttl: 1m, stale_ttl: -1s}]", "policies[0].stale_ttl: must not be negative"},
		{"policy timeout", minimal + "policies: [{name: a, ttl: 1m, timeout: 0s}]", "policies[0].timeout: must be positive"},
		{"policy entry", minimal + "policies: [{name: a, ttl: 1m, max_entry_bytes: 1GiB}]", "policies[0].max_entry_bytes: 1GiB is more than cache.l1.max_bytes (256MiB)"},
		{"policy tables", minimal + "policies: [{name: a, ttl: 1m, match: {tables: orders}}]", "policies[0].match.tables: must be a list"},
		{"rule after catch-all", minimal + "policies: [{name: a, ttl: 1m, match: {user: x}}, {name: all, ttl: 1m}, {name: late, ttl: 1m}]",
			"policies[2]: never matches: policies[1] (all) before it matches every query"},
		{"star rule after catch-all", minimal + "policies: [{name: all, ttl: 1m, match: {user: '*', tables: ['*']}}, {name: late, ttl: 1m}]",
			"policies[1]: never matches: policies[0] (all) before it matches every query"},
		{"no catch-all", minimal + "policies: [{name: a, ttl: 1m, match: {user: x}}, {name: b, ttl: 1m, match: {sql: '^select'}}]",
			"policies: no rule matches every query: end the list with a rule without match"},
		{"label source", minimal + "labels: {dashboard: [comment, header]}", `labels.dashboard[1]: must be one of comment, set, startup, application_name (not "header")`},
		{"label duplicate", minimal + "labels: {dashboard: [set, comment, set]}", `labels.dashboard[2]: duplicate "set" (also labels.dashboard[0])`},
		{"labels empty", minimal + "labels: {dashboard: []}", "labels.dashboard: must not be empty: list the sources to try, from comment, set, startup, application_name"},
		{"labels not a list", minimal + "labels: {dashboard: comment}", "labels.dashboard: must be a list"},
		{"yaml syntax", "backends: [", "(file): yaml: line "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.yaml
			if !strings.Contains(src, "policies:") {
				src += pol
			}
			_, err := Parse([]byte(src), getenvFrom(nil))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *Error %q", err, err, tt.want)
			}
			if got := ce.Key + ": " + ce.Msg; !strings.HasPrefix(got, tt.want) {
				t.Errorf("err = %q\nwant %q...", got, tt.want)
			}
		})
	}
}

func TestDSNErrorsHidePasswords(t *testing.T) {
	for _, dsn := range []string{"postgres://u:s3cret@h:bad/db", "host=h port=bad password=s3cret"} {
		_, err := Parse([]byte("backends: [{name: a, dsn: '"+dsn+"'}]"), getenvFrom(nil))
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("dsn %q: err = %v, want an error without the password", dsn, err)
		}
	}
}

func TestWarnings(t *testing.T) {
	for _, tt := range []struct {
		name, policies string
		want           []string
	}{
		{"catch-all last", "policies: [{name: a, ttl: 1m, match: {user: x}}, {name: b, ttl: 1m}]", nil},
		{"star is catch-all", "policies: [{name: a, ttl: 1m, match: {user: '*'}}]", nil},
		{"no policies key", "", []string{"policies: no rules, so no query is cached"}},
		{"empty policies", "policies: []", []string{"policies: no rules, so no query is cached"}},
		{"uncached ttl", "policies: [{name: a, cache: false, ttl: 1m}]", []string{"policies[0] (a): cache is false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+tt.policies), getenvFrom(nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) != len(tt.want) {
				t.Fatalf("warnings = %q, want %q", c.Warnings, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(c.Warnings[i], w) {
					t.Errorf("warning %d = %q, want %q...", i, c.Warnings[i], w)
				}
			}
		})
	}
}

func TestTLSLoad(t *testing.T) {
	tl := &TLS{CertFile: "testdata/missing.crt", KeyFile: "testdata/missing.key"}
	_, err := tl.Load()
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "tls.cert_file" {
		t.Fatalf("err = %v, want an *Error at tls.cert_file", err)
	}
}

func TestLoadNamesTheFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, yaml, want string }{
		{"validation", "listen: {}\nbackends: []\n", ":2: backends: at least one backend is required"},
		{"decoding", "backends:\n  - name: wh\n    dsn: x\n    maxconns: 3\n", ":4: backends[0].maxconns: unknown key"},
		{"no line", "listen: {}\n", ": backends: at least one backend is required"},
		{"yaml syntax", "a: b\nc: d: e\n", ":2: (file): yaml: line 2: mapping values are not allowed in this context"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var ce *Error
			if !errors.As(err, &ce) || ce.File != path {
				t.Fatalf("err = %v (%T), want an *Error naming %s", err, err, path)
			}
			if got := err.Error(); got != path+tt.want {
				t.Errorf("err = %q\nwant %q", got, path+tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func TestLoadSetsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sqlcached.yaml")
	if err := os.WriteFile(path, []byte(lined), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}
	err = c.Errorf("policies[0].match.dashboard", "invalid glob %q", "finance-[")
	if want := path + `:7: policies[0].match.dashboard: invalid glob "finance-["`; err.Error() != want {
		t.Errorf("Errorf: %q\nwant %q", err, want)
	}
}

// lined is a valid configuration whose line numbers the tests rely on.
const lined = `backends:
  - name: wh
    dsn: postgres://127.0.0.1:5432/db
policies:
  - name: finance
    match:
      dashboard: "finance-*"
      tables: [orders, "ledger_*"]
    ttl: 5m
  - name: all
    ttl: 1m
`

func TestErrorfResolvesLines(t *testing.T) {
	c, err := Parse([]byte(lined), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		line int
	}{
		{"policies[0].match.dashboard", 7},
		{"policies[0].match.tables", 8},
		{"policies[0].match.tables[1]", 8},
		{"policies[0].match.sql", 6},  // absent: its parent, match
		{"policies[1].match.sql", 10}, // match absent too: the rule
		{"policies[1]", 10},
		{"policies[1].ttl", 11},
		{"policies", 4},
		{"backends[0].max_conns", 2},
		{"labels.dashboard", 0}, // nothing of it in the file
		{"(file)", 0},
	} {
		e := c.Errorf(tt.key, "bad %d", 1)
		if e.Line != tt.line || e.Key != tt.key || e.Msg != "bad 1" || e.File != "" {
			t.Errorf("Errorf(%q) = %+v, want line %d", tt.key, *e, tt.line)
		}
	}
	var none *Config
	if e := none.Errorf("policies", "x"); e.Line != 0 || e.Error() != "policies: x" {
		t.Errorf("nil Config: Errorf = %+v", *e)
	}
}

func TestErrorsNameTheLine(t *testing.T) {
	const base = "backends:\n  - {name: wh, dsn: 'postgres://127.0.0.1:5432/db'}\n" // lines 1 and 2
	for _, tt := range []struct {
		name, yaml, key string
		line            int
		msg             string
	}{
		{"unknown key", base + "listen:\n  http: ':1'\n  postgress: x\n", "listen.postgress", 5, "unknown key"},
		{"unknown key in a list", "backends:\n  - name: wh\n    dsn: x\n    maxconns: 3\n", "backends[0].maxconns", 4, "unknown key"},
		{"duplicate key", base + "listen:\n  http: ':1'\n  http: ':2'\n", "listen.http", 5, "duplicate key (first on line 4)"},
		{"bad duration", base + "pool:\n  idle_timeout: 5m\n  max_wait: 30\n", "pool.max_wait", 5, `invalid duration "30"`},
		{"bad size", base + "cache:\n  l1:\n    max_bytes: 1XB\n", "cache.l1.max_bytes", 5, `invalid size "1XB"`},
		{"not a number", base + "limits:\n\n  max_clients: many\n", "limits.max_clients", 5, "must be a whole number"},
		{"unset variable", base + "auth:\n  method: md5\n  users:\n    - name: u\n      password: ${NOPE}\n", "auth.users[0].password", 7, "environment variable NOPE is not set"},
		{"not a list", "listen: {}\nbackends:\n  name: x\n", "backends", 3, "must be a list"},
		{"unknown queue", base + "queues: {q: {workers: 1}}\npolicies:\n  - name: a\n    ttl: 1m\n    queue: x\n", "policies[0].queue", 7, `unknown queue "x"`},
		{"missing workers", base + "queues:\n  q:\n    max_queued: 1\n", "queues.q.workers", 4, "must be at least 1"},
		{"missing ttl", base + "policies:\n  - name: a\n    match: {user: x}\n    ttl: 1m\n  - name: b\n    timeout: 5s\n", "policies[1].ttl", 7, "required when cache is true"},
		{"missing name", "backends:\n  - kind: postgres\n    dsn: postgres://h/db\n", "backends[0].name", 2, "required"},
		{"missing default", base + "cache:\n  l1: {max_bytes: 1MiB}\n", "cache.max_entry_bytes", 3, "16MiB is more than"},
		{"missing everything", "listen: {}\n", "backends", 0, "at least one backend is required"},
		{"rule after catch-all", base + "policies:\n  - name: all\n    ttl: 1m\n  - name: late\n    ttl: 1m\n", "policies[1]", 6, "never matches: policies[0] (all)"},
		{"no catch-all", base + "\npolicies:\n  - {name: a, ttl: 1m, match: {user: x}}\n", "policies", 4, "no rule matches every query"},
		{"label source", base + "labels:\n  dashboard:\n    - comment\n    - header\n", "labels.dashboard[1]", 6, "must be one of"},
		{"label duplicate", base + "labels:\n  dashboard: [set, set]\n", "labels.dashboard[1]", 4, "duplicate"},
		{"yaml syntax", base + "a: b\nc: d: e\n", "(file)", 4, "yaml: line 4:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), getenvFrom(nil))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want an *Error", err, err)
			}
			if ce.Key != tt.key || ce.Line != tt.line || !strings.HasPrefix(ce.Msg, tt.msg) {
				t.Errorf("err = %+v\nwant line %d, key %q, msg %q...", *ce, tt.line, tt.key, tt.msg)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{Key: "backends", Msg: "required"}, "backends: required"},
		{Error{Line: 3, Key: "backends", Msg: "required"}, "line 3: backends: required"},
		{Error{File: "c.yaml", Line: 3, Key: "backends", Msg: "required"}, "c.yaml:3: backends: required"},
		{Error{File: "c.yaml", Key: "backends", Msg: "required"}, "c.yaml: backends: required"},
		{Error{File: "c.yaml", Line: 3, Msg: "required"}, "c.yaml:3: required"},
		{Error{Msg: "required"}, "required"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestPolicyKeys(t *testing.T) {
	c, err := Parse([]byte(minimal+`
labels: {dashboard: [application_name, comment]}
policies:
  - name: ledger
    match:
      table: invoices
      tables: [orders, "ledger_*"]
      tables_all: [orders, customers]
      sql: '(?i)\bgroup by\b'
    ttl: 1m
    allow_hints: true
    cache_time_functions: false
  - name: all
    ttl: 1m
`), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Match{Table: "invoices", Tables: []string{"orders", "ledger_*"}, TablesAll: []string{"orders", "customers"}, SQL: `(?i)\bgroup by\b`}
	if p := c.Policies[0]; !reflect.DeepEqual(p.Match, want) || !p.AllowHints || p.CacheTimeFunctions {
		t.Errorf("policies[0] = %+v, want match %+v, allow_hints, no cache_time_functions", p, want)
	}
	if p := c.Policies[1]; p.AllowHints || !p.CacheTimeFunctions {
		t.Errorf("policies[1] = %+v, want the defaults: allow_hints false, cache_time_functions true", p)
	}
	if want := []string{"application_name", "comment"}; !reflect.DeepEqual(c.Labels.Dashboard, want) {
		t.Errorf("labels.dashboard = %q, want %q", c.Labels.Dashboard, want)
	}
}

func TestMatchPatternsAreLeftToPolicy(t *testing.T) {
	// Globs and regular expressions are compiled by package policy, which
	// reports them with Config.Errorf; Parse takes them as they are.
	_, err := Parse([]byte(minimal+"policies: [{name: a, ttl: 1m, match: {table: '[a', sql: '('}}, {name: all, ttl: 1m}]"), getenvFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
}

func TestIsCatchAll(t *testing.T) {
	for _, tt := range []struct {
		m    Match
		want bool
	}{
		{Match{}, true},
		{Match{User: "*", Dashboard: "*", Table: "*", Shape: "*"}, true},
		{Match{User: "x"}, false},
		{Match{Chart: "7"}, false},
		{Match{Tables: []string{"*"}}, true},
		{Match{Tables: []string{"orders", "*"}}, true}, // any one matching is enough
		{Match{Tables: []string{"orders"}}, false},
		{Match{TablesAll: []string{"*", "*"}}, true},
		{Match{TablesAll: []string{"*", "orders"}}, false},
		{Match{SQL: ".*"}, true},
		{Match{SQL: "^select"}, false},
		{Match{Tables: []string{"*"}, SQL: "(?i)select"}, false},
	} {
		if got := tt.m.IsCatchAll(); got != tt.want {
			t.Errorf("%+v.IsCatchAll() = %v, want %v", tt.m, got, tt.want)
		}
	}
}
