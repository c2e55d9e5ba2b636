package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Load or Parse return it with every
// default filled in and every rule checked that can be checked without I/O.
type Config struct {
	Listen    Listen            `yaml:"listen"`
	TLS       *TLS              `yaml:"tls"` // nil: plain connections only
	Auth      Auth              `yaml:"auth"`
	Backends  []Backend         `yaml:"backends"`
	Databases map[string]string `yaml:"databases"`
	Pool      Pool              `yaml:"pool"`
	Limits    Limits            `yaml:"limits"`
	Shutdown  Shutdown          `yaml:"shutdown"`
	Log       Log               `yaml:"log"`
	Cache     Cache             `yaml:"cache"`
	Queues    map[string]Queue  `yaml:"queues"`
	Labels    Labels            `yaml:"labels"`
	Policies  []Policy          `yaml:"policies"`
	HTTPAPI   HTTPAPI           `yaml:"http_api"`
	Audit     Audit             `yaml:"audit"`

	// Warnings are problems that do not stop the proxy from starting, such
	// as no policies at all (nothing is cached). cmd/sqlcached logs them.
	Warnings []string `yaml:"-"`
	// File is the path Load read, as it was given; "" after Parse. Errorf
	// names it in its errors.
	File string `yaml:"-"`

	// lines maps each key path found in the file ("policies[2].match.user")
	// to the line of its key, and each list element ("policies[2]") to the
	// line of the element. A key path present here was present in the file.
	lines map[string]int
}

// Listen holds the addresses sqlcached listens on, as host:port.
type Listen struct {
	// Postgres is the PostgreSQL wire protocol address, for BI tools and
	// drivers. If absent, it defaults to 127.0.0.1:6432 (pgbouncer's port).
	// Use :6432 to listen on every interface.
	Postgres string `yaml:"postgres"`
	// HTTP serves /metrics, /healthz, /readyz, /admin and the async query
	// API. If absent, it defaults to 127.0.0.1:8080; an explicit empty
	// string ("") turns the HTTP listener off.
	HTTP string `yaml:"http"`
}

// TLS configures TLS for clients. Paths are relative to the working
// directory. The files are read by TLS.Load, not by Parse.
type TLS struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain; required
	KeyFile  string `yaml:"key_file"`  // PEM private key; required
	// Require refuses clients that do not ask for TLS (SSLRequest) with
	// SQLSTATE 08P01. If false, both plain and TLS connections are accepted.
	Require bool `yaml:"require"`
}

// Authentication methods, as pg_hba.conf names them.
const (
	AuthTrust       = "trust"
	AuthPassword    = "password" // cleartext
	AuthMD5         = "md5"
	AuthSCRAMSHA256 = "scram-sha-256"
)

// Auth says how clients prove who they are.
type Auth struct {
	// Method is trust, password (cleartext), md5 or scram-sha-256. If
	// absent, it defaults to scram-sha-256 when Users are given and to trust
	// otherwise. md5 and scram-sha-256 need Users: the proxy checks the
	// password itself. password without Users passes the client's password
	// through to the warehouse, which checks it.
	Method string `yaml:"method"`
	// Users are the accounts the proxy checks passwords against. A user's
	// password is also used to connect to the warehouse unless the backend's
	// DSN names its own user and password.
	Users []User `yaml:"users"`
	// AdminUsers may use the admin console (database "sqlcached") and
	// /admin. They need not be listed in Users under trust.
	AdminUsers []string `yaml:"admin_users"`
	// AllowCleartextWithoutTLS lets method password run on connections
	// without TLS. Defaults to false: a cleartext password on a plain
	// connection can be read by anyone on the network path.
	AllowCleartextWithoutTLS bool `yaml:"allow_cleartext_without_tls"`
}

// User is one client account.
type User struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"` // usually ${NAME} from the environment
}

// Backend kinds.
const (
	KindPostgres  = "postgres"  // PostgreSQL and wire-compatible warehouses
	KindSnowflake = "snowflake" // Snowflake through gosnowflake
	KindDuckDB    = "duckdb"    // embedded DuckDB
)

// Backend is a warehouse sqlcached sends queries to.
type Backend struct {
	// Name identifies the backend in Databases and in cache keys. Required,
	// unique.
	Name string `yaml:"name"`
	// Kind is postgres, snowflake or duckdb. If absent, it defaults to
	// postgres.
	Kind string `yaml:"kind"`
	// DSN is the connection string in the kind's own form: a libpq URL or
	// keyword/value string for postgres, a gosnowflake DSN for snowflake, a
	// file path for duckdb (empty: in memory). Required except for duckdb.
	DSN string `yaml:"dsn"`
	// MaxConns bounds the connections open to this backend at once. If
	// absent, it defaults to 20. Keep it at or under what the warehouse
	// allows this proxy replica; clients beyond it wait (Pool.MaxWait).
	MaxConns int `yaml:"max_conns"`
}

// Pool configures the warehouse connection pools.
type Pool struct {
	// MaxWait is how long a client waits for a warehouse connection before
	// it is answered with SQLSTATE 53300 (too_many_connections). If absent,
	// it defaults to 30s.
	MaxWait Duration `yaml:"max_wait"`
	// IdleTimeout closes warehouse connections idle for longer. If absent,
	// it defaults to 5m; 0 keeps idle connections open.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Mode is how client sessions share warehouse connections, as
	// pgbouncer's pool_mode: transaction (a connection for the length of
	// a transaction; many clients on few connections) or session (a
	// connection for the client's whole session and for it alone: what
	// cannot move between connections works, a client's pid is the one
	// its queries run on, each client holds a connection, which is closed
	// when the client leaves). If absent, it defaults to transaction.
	// Caching works in both.
	Mode string `yaml:"mode"`
	// DatabaseModes and UserModes override Mode for the clients of a
	// database or a user; a user's mode wins over its database's.
	DatabaseModes map[string]string `yaml:"database_modes"`
	UserModes     map[string]string `yaml:"user_modes"`
}

// Pool modes.
const (
	PoolTransaction = "transaction"
	PoolSession     = "session"
)

// PoolModeFor returns the pool mode of a client's session.
func (c *Config) PoolModeFor(user, database string) string {
	if m, ok := c.Pool.UserModes[user]; ok {
		return m
	}
	if m, ok := c.Pool.DatabaseModes[database]; ok {
		return m
	}
	return c.Pool.Mode
}

// Limits bound what clients may use.
type Limits struct {
	// MaxClients bounds client connections; one more is refused with
	// SQLSTATE 53300. If absent, it defaults to 1000.
	MaxClients int `yaml:"max_clients"`
	// MaxMessageBytes is the largest protocol message a client may send
	// (a query's text, a Bind's parameters, a COPY chunk); a larger one ends
	// the connection with SQLSTATE 54000. If absent, it defaults to 64MiB.
	// PostgreSQL's own limit is 1GB.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
}

// Shutdown configures a graceful stop.
type Shutdown struct {
	// Timeout is how long running queries may finish after SIGTERM before
	// connections are closed. If absent, it defaults to 30s; 0 closes them at
	// once.
	Timeout Duration `yaml:"timeout"`
}

// Audit configures the audit log: one JSON line per statement a client
// sent (time, user, client address, database, dashboard, shape, rule,
// outcome, rows, bytes, duration, SQLSTATE on error).
type Audit struct {
	// Enabled turns the audit log on.
	Enabled bool `yaml:"enabled"`
	// Path is the file the lines are appended to; "" writes them to
	// standard error with the process log.
	Path string `yaml:"path"`
	// Statements adds the text of each statement, here and on the status
	// page. Off by default: statements may hold what should not be logged.
	Statements bool `yaml:"statements"`
}

// HTTPAPI configures the async query API on the http listener
// (/v1/queries).
type HTTPAPI struct {
	// Disabled turns the API off; it is on wherever listen.http is.
	Disabled bool `yaml:"disabled"`
	// ResultTTL is how long a query's status and rows are kept, in the
	// cache tiers (any replica sharing Redis answers a poll). If absent,
	// it defaults to 10m.
	ResultTTL Duration `yaml:"result_ttl"`
	// MaxBodyBytes bounds a request's body. If absent, it defaults to 1MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxJobs bounds the queries in flight over HTTP; one more is answered
	// 429. If absent, it defaults to 1000.
	MaxJobs int `yaml:"max_jobs"`
	// Tokens are bearer tokens, each acting as a user of auth.users.
	Tokens []Token `yaml:"tokens"`
}

// Token is a bearer token for the HTTP API.
type Token struct {
	Token string `yaml:"token"` // required
	User  string `yaml:"user"`  // required: a name in auth.users
}

// Log configures the process log (log/slog).
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error; default info
	Format string `yaml:"format"` // text or json; default text
}

// Cache configures the two cache tiers.
type Cache struct {
	L1 L1  `yaml:"l1"`
	L2 *L2 `yaml:"l2"` // nil: L1 only
	// MaxEntryBytes is the largest answer stored; larger answers stream
	// through uncached. If absent, it defaults to 16MiB. At most
	// L1.MaxBytes.
	MaxEntryBytes ByteSize `yaml:"max_entry_bytes"`
}

// L1 is the in-process cache.
type L1 struct {
	// MaxBytes bounds the encoded bytes held in process. If absent, it
	// defaults to 256MiB. Size it to the hot set: every answer of every
	// dashboard in use.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// L2 is the Redis cache shared by every proxy replica.
type L2 struct {
	Redis Redis `yaml:"redis"`
	// Timeout bounds every Redis call; a slower call counts as a miss, never
	// as an error. If absent, it defaults to 50ms.
	Timeout Duration `yaml:"timeout"`
	// Namespace prefixes every Redis key; replicas with the same namespace
	// share entries. If absent, it defaults to "sqlcached".
	Namespace string `yaml:"namespace"`
}

// Redis modes.
const (
	RedisStandalone = "standalone"
	RedisSentinel   = "sentinel"
	RedisCluster    = "cluster"
)

// Redis says how to reach Redis: URL or Addrs, not both.
type Redis struct {
	// URL is a redis://, rediss:// or unix:// URL (redis://user:pass@host:6379/1).
	URL string `yaml:"url"`
	// Addrs are host:port pairs: the server, the cluster's seed nodes or the
	// sentinels, depending on Mode.
	Addrs []string `yaml:"addrs"`
	// Mode is standalone, sentinel or cluster. If absent, it defaults to
	// standalone.
	Mode string `yaml:"mode"`
	// MasterName is the Sentinel master's name; required in sentinel mode
	// unless URL carries ?master_name=.
	MasterName string `yaml:"master_name"`
	// Username, Password and DB apply with Addrs; a URL carries its own.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
}

// Queue is a worker pool that runs cache misses. A miss that finds every
// worker busy and MaxQueued already waiting is answered with SQLSTATE 53000
// at once.
type Queue struct {
	// Workers is how many of the queue's queries run at once. Required, at
	// least 1. The workers of all queues share the backends' MaxConns.
	Workers int `yaml:"workers"`
	// MaxQueued bounds the queries waiting for a worker. If absent, it
	// defaults to 256; 0 means none wait.
	MaxQueued int `yaml:"max_queued"`
	// MaxWait bounds how long a query waits for a worker; longer is
	// answered with SQLSTATE 53000. If absent, it defaults to 30s.
	MaxWait Duration `yaml:"max_wait"`
}

// DefaultQueue is the queue a cached policy without a queue uses, and the
// only queue when the file has no queues section.
const DefaultQueue = "default"

// Sources of a label, as Labels lists them.
const (
	LabelFromComment         = "comment"          // the statement's comments: sqlcommenter, Metabase, Looker, Redash
	LabelFromSet             = "set"              // SET sqlcached.dashboard = '...' in the session
	LabelFromStartup         = "startup"          // the startup option -c sqlcached.dashboard=...
	LabelFromApplicationName = "application_name" // the client's application_name
)

// labelSources are the sources of a label, in their default order.
var labelSources = []string{LabelFromComment, LabelFromSet, LabelFromStartup, LabelFromApplicationName}

// Labels says where the labels that rules match on come from.
type Labels struct {
	// Dashboard is the order in which the dashboard label's sources are
	// tried: the first that has a label gives it, and a source not listed
	// is never used. Sources are comment, set, startup and
	// application_name. If absent, it defaults to all four in that order;
	// put application_name first for tools that name the dashboard there,
	// or leave it out when application_name only names the tool.
	Dashboard []string `yaml:"dashboard"`
}

// Policy is one rule. Rules are tried in order and the first whose Match
// fits the query decides. The last rule must match every query (a rule
// without match) and only the last may: a rule after it would never apply.
// Without policies nothing is cached.
type Policy struct {
	// Name identifies the rule in metrics and in `policy explain`.
	// Required, unique.
	Name string `yaml:"name"`
	// Match selects queries; an empty Match matches every query.
	Match Match `yaml:"match"`
	// Cache says whether answers are cached. If absent, it defaults to
	// true; false sends matching queries straight to the warehouse.
	Cache bool `yaml:"cache"`
	// TTL is how long an answer is fresh. Required when Cache is true.
	TTL Duration `yaml:"ttl"`
	// StaleTTL is how long after TTL a stale answer is served while one
	// refresh runs in the background. Default 0: no stale answers.
	StaleTTL Duration `yaml:"stale_ttl"`
	// StaleIfError is the age up to which an answer is served, with a
	// notice, when the warehouse is down or failing. Default 0: never.
	StaleIfError Duration `yaml:"stale_if_error"`
	// Timeout bounds the warehouse execution of a miss; when it fires the
	// query is cancelled on the warehouse and waiters get SQLSTATE 57014.
	// If absent, it defaults to 60s.
	Timeout Duration `yaml:"timeout"`
	// Queue names the queue misses run on. If absent, it defaults to
	// "default", which must then exist (it does when queues is absent).
	Queue string `yaml:"queue"`
	// CancelAbandoned cancels a miss's run on the warehouse when every
	// client waiting for it has gone. If false (the default) the run
	// finishes and its answer is cached for the next viewer.
	CancelAbandoned bool `yaml:"cancel_abandoned"`
	// RefreshAhead refreshes, in the background, an entry asked for
	// within this long before its TTL ends, so that a dashboard viewed
	// often never waits for a miss. Default 0: off.
	RefreshAhead Duration `yaml:"refresh_ahead"`
	// Shared gives one answer to every user instead of one per user. Only
	// for data every user may see.
	Shared bool `yaml:"shared"`
	// MaxEntryBytes overrides Cache.MaxEntryBytes for this rule's answers.
	// If absent, Cache.MaxEntryBytes applies. At most Cache.L1.MaxBytes.
	MaxEntryBytes ByteSize `yaml:"max_entry_bytes"`
	// AllowHints lets comment hints (/* sqlcached:ttl=30s */) lengthen the
	// TTL. Default false: hints may only shorten it or turn caching off, so
	// that whoever writes the SQL cannot keep answers longer than the rule
	// allows.
	AllowHints bool `yaml:"allow_hints"`
	// CacheTimeFunctions says whether statements that call now(),
	// current_date, current_timestamp, localtimestamp and their kin may be
	// cached; their answers then hold the time they were computed at, for
	// up to TTL (and StaleTTL). If absent, it defaults to true; false sends
	// them straight to the warehouse, for dashboards that must show the
	// current time.
	CacheTimeFunctions bool `yaml:"cache_time_functions"`
}

// Match says what a query must fit, all of it; an absent key matches
// anything. Patterns are globs (*, ?, [a-z], as path.Match) except SQL, a
// regular expression. Parse does not compile them: package policy does, and
// reports a bad one with Config.Errorf.
type Match struct {
	Dashboard       string `yaml:"dashboard"`        // label: see Labels for where it comes from
	Chart           string `yaml:"chart"`            // label from sqlcommenter or a tool's comment
	ApplicationName string `yaml:"application_name"` // the client's application_name
	User            string `yaml:"user"`             // the client's user name
	Database        string `yaml:"database"`         // the database the client asked for
	Table           string `yaml:"table"`            // any table the query reads; as Tables with one glob
	// Tables matches a query that reads any table matching any of these
	// globs.
	Tables []string `yaml:"tables"`
	// TablesAll matches a query when every one of these globs matches some
	// table the query reads: [orders, customers] selects the joins of both.
	TablesAll []string `yaml:"tables_all"`
	Tool      string   `yaml:"tool"`  // the BI tool, as fingerprint detects it
	Shape     string   `yaml:"shape"` // the literal-free shape id
	// SQL is a regular expression (Go's RE2 syntax) searched for in the
	// query's text; anchor it with ^ and $ to match the whole text.
	SQL string `yaml:"sql"`
}

// Defaults.
const (
	DefaultListenPostgres  = "127.0.0.1:6432"
	DefaultListenHTTP      = "127.0.0.1:8080"
	DefaultMaxConns        = 20
	DefaultPoolMaxWait     = Duration(30e9)
	DefaultPoolIdleTimeout = Duration(5 * 60e9)
	DefaultMaxClients      = 1000
	DefaultMaxMessageBytes = 64 * MiB
	DefaultShutdownTimeout = Duration(30e9)
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	DefaultL1MaxBytes      = 256 * MiB
	DefaultL2Timeout       = Duration(50e6)
	DefaultL2Namespace     = "sqlcached"
	DefaultMaxEntryBytes   = 16 * MiB
	DefaultQueueWorkers    = 8   // of the queue made when queues is absent
	DefaultMaxQueued       = 256 // queued per queue
	DefaultQueueMaxWait    = Duration(30e9)
	DefaultResultTTL       = Duration(10 * 60e9)
	DefaultMaxBodyBytes    = 1 * MiB
	DefaultMaxJobs         = 1000
	DefaultPolicyTimeout   = Duration(60e9)
)

// AdminDatabase is the database name of the admin console.
const AdminDatabase = "sqlcached"

// Error is a configuration error at one key.
type Error struct {
	File string // the file's path, as Load was given it; "" after Parse
	// Line is the line of the key at fault or, when the key is absent from
	// the file (a required key), of its nearest parent in the file; for a
	// value that cannot be decoded, the value's line. 0 if unknown.
	Line int
	Key  string // key path: "backends[0].max_conns", "databases.analytics"
	Msg  string
}

// Error formats e as "FILE:LINE: KEY: MSG", or "line LINE: KEY: MSG"
// without a file, leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns an error at key path key ("policies[2].match.sql") of the
// file c was loaded from, with c's file and the line of key or, if key is
// not in the file, of its nearest parent that is ("policies[2].match", then
// "policies[2]", then "policies"). It is for problems found after Parse,
// such as a pattern package policy cannot compile.
func (c *Config) Errorf(key, format string, args ...any) *Error {
	e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	if c != nil {
		e.File, e.Line = c.File, c.line(key)
	}
	return e
}

// line returns the line of key path key or of its nearest parent present
// in the file, or 0.
func (c *Config) line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if n, ok := c.lines[k]; ok {
			return n
		}
	}
	return 0
}

// parentKey drops the last element of a key path: "a.b[2]" -> "a.b" ->
// "a" -> "".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// has reports whether key path key was present in the file.
func (c *Config) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// Load reads and parses the file at path, expanding ${NAME} from the
// process environment. Errors in the file are *Error naming path in File.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data, os.Getenv)
	if err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ce.File = path
		return nil, ce
	}
	c.File = path
	return c, nil
}

// Parse parses a configuration file's contents, fills in defaults and
// validates it. ${NAME} and ${NAME:-default} in values expand from getenv
// (a variable that is empty counts as unset) and $$ is a literal $;
// expansion happens inside values only, so comments and keys are never
// expanded and an expanded value cannot change the file's structure.
// Errors are *Error, naming the key at fault and its line.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Line: yamlErrorLine(err), Key: "(file)", Msg: err.Error()}
	}
	c := Config{lines: make(map[string]int)}
	d := &decoder{getenv: getenv, lines: c.lines}
	if len(root.Content) > 0 {
		if err := d.decode(root.Content[0], reflect.ValueOf(&c).Elem(), ""); err != nil {
			return nil, err
		}
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.Warnings = c.warnings()
	return &c, nil
}

// yamlErrorLine returns the line of a yaml syntax error ("yaml: line 3:
// mapping values are not allowed in this context"), or 0.
func yamlErrorLine(err error) int {
	rest, ok := strings.CutPrefix(err.Error(), "yaml: line ")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return n
}

// setDefaults fills in every absent key that has a default.
func (c *Config) setDefaults() {
	def := func(key string, set func()) {
		if !c.has(key) {
			set()
		}
	}
	def("listen.postgres", func() { c.Listen.Postgres = DefaultListenPostgres })
	def("listen.http", func() { c.Listen.HTTP = DefaultListenHTTP })
	def("auth.method", func() {
		c.Auth.Method = AuthTrust
		if len(c.Auth.Users) > 0 {
			c.Auth.Method = AuthSCRAMSHA256
		}
	})
	for i := range c.Backends {
		b, p := &c.Backends[i], index("backends", i)
		def(p+".kind", func() { b.Kind = KindPostgres })
		def(p+".max_conns", func() { b.MaxConns = DefaultMaxConns })
	}
	def("pool.max_wait", func() { c.Pool.MaxWait = DefaultPoolMaxWait })
	def("pool.idle_timeout", func() { c.Pool.IdleTimeout = DefaultPoolIdleTimeout })
	def("pool.mode", func() { c.Pool.Mode = PoolTransaction })
	def("limits.max_clients", func() { c.Limits.MaxClients = DefaultMaxClients })
	def("limits.max_message_bytes", func() { c.Limits.MaxMessageBytes = DefaultMaxMessageBytes })
	def("shutdown.timeout", func() { c.Shutdown.Timeout = DefaultShutdownTimeout })
	def("http_api.result_ttl", func() { c.HTTPAPI.ResultTTL = DefaultResultTTL })
	def("http_api.max_body_bytes", func() { c.HTTPAPI.MaxBodyBytes = DefaultMaxBodyBytes })
	def("http_api.max_jobs", func() { c.HTTPAPI.MaxJobs = DefaultMaxJobs })
	def("log.level", func() { c.Log.Level = DefaultLogLevel })
	def("log.format", func() { c.Log.Format = DefaultLogFormat })
	def("cache.l1.max_bytes", func() { c.Cache.L1.MaxBytes = DefaultL1MaxBytes })
	def("cache.max_entry_bytes", func() { c.Cache.MaxEntryBytes = DefaultMaxEntryBytes })
	if l2 := c.Cache.L2; l2 != nil {
		def("cache.l2.timeout", func() { l2.Timeout = DefaultL2Timeout })
		def("cache.l2.namespace", func() { l2.Namespace = DefaultL2Namespace })
		def("cache.l2.redis.mode", func() { l2.Redis.Mode = RedisStandalone })
	}
	def("queues", func() {
		c.Queues = map[string]Queue{DefaultQueue: {Workers: DefaultQueueWorkers, MaxQueued: DefaultMaxQueued, MaxWait: DefaultQueueMaxWait}}
	})
	for name, q := range c.Queues {
		def("queues."+name+".max_queued", func() { q.MaxQueued = DefaultMaxQueued })
		def("queues."+name+".max_wait", func() { q.MaxWait = DefaultQueueMaxWait })
		c.Queues[name] = q
	}
	def("labels.dashboard", func() { c.Labels.Dashboard = append([]string(nil), labelSources...) })
	for i := range c.Policies {
		pol, p := &c.Policies[i], index("policies", i)
		def(p+".cache", func() { pol.Cache = true })
		def(p+".cache_time_functions", func() { pol.CacheTimeFunctions = true })
		def(p+".timeout", func() { pol.Timeout = DefaultPolicyTimeout })
		def(p+".queue", func() { pol.Queue = DefaultQueue })
		def(p+".max_entry_bytes", func() { pol.MaxEntryBytes = c.Cache.MaxEntryBytes })
	}
}

// Backend returns the backend named name, or nil.
func (c *Config) Backend(name string) *Backend {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return &c.Backends[i]
		}
	}
	return nil
}

// BackendFor returns the backend that serves database, the name a client
// asked for at startup: the one Databases maps it to or, when Databases is
// empty, the first backend. It returns nil for a database Databases does
// not list (the proxy answers SQLSTATE 3D000).
func (c *Config) BackendFor(database string) *Backend {
	if len(c.Databases) == 0 {
		if len(c.Backends) == 0 {
			return nil
		}
		return &c.Backends[0]
	}
	name, ok := c.Databases[database]
	if !ok {
		return nil
	}
	return c.Backend(name)
}

// IsAdmin reports whether user may use the admin console.
func (c *Config) IsAdmin(user string) bool {
	for _, u := range c.Auth.AdminUsers {
		if u == user {
			return true
		}
	}
	return false
}

// IsCatchAll reports whether the rule matches every query: every glob is
// absent or "*", Tables is empty or holds "*", every glob of TablesAll is
// "*", and SQL is absent or ".*".
func (m Match) IsCatchAll() bool {
	for _, g := range []string{m.Dashboard, m.Chart, m.ApplicationName, m.User, m.Database, m.Table, m.Tool, m.Shape} {
		if g != "" && g != "*" {
			return false
		}
	}
	for _, g := range m.TablesAll {
		if g != "*" {
			return false
		}
	}
	anyTable := len(m.Tables) == 0
	for _, g := range m.Tables {
		anyTable = anyTable || g == "*"
	}
	return anyTable && (m.SQL == "" || m.SQL == ".*")
}
