package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// validate returns the first error in file order, as an *Error with the
// line of its key.
func (c *Config) validate() error {
	for _, check := range []func() error{
		c.validateListen, c.validateTLS, c.validateAuth, c.validateBackends,
		c.validateDatabases, c.validatePoolModes, c.validateLimits, c.validateLog, c.validateCache,
		c.validateQueues, c.validateLabels, c.validatePolicies, c.validateHTTPAPI,
	} {
		if err := check(); err != nil {
			var ce *Error
			if errors.As(err, &ce) && ce.Line == 0 {
				ce.Line = c.line(ce.Key)
			}
			return err
		}
	}
	return nil
}

// errorf returns an error at key path key. validate adds its line.
func errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) validateListen() error {
	if err := checkAddr("listen.postgres", c.Listen.Postgres); err != nil {
		return err
	}
	if c.Listen.HTTP == "" {
		return nil // turned off
	}
	if err := checkAddr("listen.http", c.Listen.HTTP); err != nil {
		return err
	}
	if c.Listen.HTTP == c.Listen.Postgres {
		return errorf("listen.http", "same address as listen.postgres")
	}
	return nil
}

// checkAddr checks a host:port listen address.
func checkAddr(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errorf(key, "invalid address %q: want host:port, such as 127.0.0.1:6432 or :6432", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errorf(key, "invalid address %q: port must be a number from 0 to 65535", addr)
	}
	if strings.ContainsAny(host, " /") {
		return errorf(key, "invalid address %q: bad host", addr)
	}
	return nil
}

func (c *Config) validateTLS() error {
	t := c.TLS
	if t == nil {
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errorf("tls", "cert_file and key_file go together")
	}
	if t.CertFile == "" {
		return errorf("tls", "cert_file and key_file are required (remove tls for plain connections only)")
	}
	return nil
}

// Load reads the certificate and key and returns a server TLS configuration
// (TLS 1.2 or later). Errors are *Error naming tls.cert_file.
func (t *TLS) Load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, errorf("tls.cert_file", "loading key pair: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (c *Config) validateAuth() error {
	a := &c.Auth
	switch a.Method {
	case AuthTrust, AuthMD5, AuthSCRAMSHA256:
	case AuthPassword:
		if c.TLS == nil && !a.AllowCleartextWithoutTLS {
			return errorf("auth.method", "password sends passwords in clear text: configure tls, or set auth.allow_cleartext_without_tls")
		}
	default:
		return errorf("auth.method", "must be one of trust, password, md5, scram-sha-256 (not %q)", a.Method)
	}
	if len(a.Users) == 0 && (a.Method == AuthMD5 || a.Method == AuthSCRAMSHA256) {
		return errorf("auth.users", "required for method %s: the proxy checks passwords against them", a.Method)
	}
	seen := map[string]int{}
	for i, u := range a.Users {
		p := index("auth.users", i)
		switch j, dup := seen[u.Name]; {
		case u.Name == "":
			return errorf(p+".name", "required")
		case dup:
			return errorf(p+".name", "duplicate %q (also auth.users[%d])", u.Name, j)
		case u.Password == "" && a.Method != AuthTrust:
			return errorf(p+".password", "required for method %s", a.Method)
		}
		seen[u.Name] = i
	}
	for i, name := range a.AdminUsers {
		if name == "" {
			return errorf(index("auth.admin_users", i), "must not be empty")
		}
	}
	return nil
}

func (c *Config) validateBackends() error {
	if len(c.Backends) == 0 {
		return errorf("backends", "at least one backend is required")
	}
	seen := map[string]int{}
	for i, b := range c.Backends {
		p := index("backends", i)
		if err := checkName(p+".name", b.Name); err != nil {
			return err
		}
		if j, dup := seen[b.Name]; dup {
			return errorf(p+".name", "duplicate %q (also backends[%d])", b.Name, j)
		}
		seen[b.Name] = i
		if err := checkDSN(p, b); err != nil {
			return err
		}
		if b.MaxConns < 1 {
			return errorf(p+".max_conns", "must be at least 1")
		}
	}
	return nil
}

// checkDSN checks a backend's kind and the form of its DSN.
func checkDSN(p string, b Backend) error {
	switch b.Kind {
	case KindPostgres:
		if b.DSN == "" {
			return errorf(p+".dsn", "required")
		}
		if _, err := pgconn.ParseConfig(b.DSN); err != nil {
			return errorf(p+".dsn", "%v", err) // pgconn hides the password
		}
	case KindSnowflake:
		if b.DSN == "" {
			return errorf(p+".dsn", "required")
		}
	case KindDuckDB:
		// Empty: an in-memory database.
	default:
		return errorf(p+".kind", "must be one of postgres, snowflake, duckdb (not %q)", b.Kind)
	}
	return nil
}

// checkName checks the name of a backend, queue or policy: it appears in
// metrics labels and cache keys, so it is kept to letters, digits, -, _ and .
func checkName(key, name string) error {
	if name == "" {
		return errorf(key, "required")
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errorf(key, "%q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

func (c *Config) validateDatabases() error {
	for _, db := range sortedKeys(c.Databases) {
		key := "databases." + db
		if db == AdminDatabase {
			return errorf(key, "reserved for the admin console")
		}
		if c.Backend(c.Databases[db]) == nil {
			return errorf(key, "unknown backend %q", c.Databases[db])
		}
	}
	return nil
}

func (c *Config) validatePoolModes() error {
	check := func(key, mode string) error {
		if mode != PoolTransaction && mode != PoolSession {
			return errorf(key, "must be transaction or session, not %q", mode)
		}
		return nil
	}
	if err := check("pool.mode", c.Pool.Mode); err != nil {
		return err
	}
	for _, db := range sortedKeys(c.Pool.DatabaseModes) {
		if err := check("pool.database_modes."+db, c.Pool.DatabaseModes[db]); err != nil {
			return err
		}
	}
	for _, u := range sortedKeys(c.Pool.UserModes) {
		if err := check("pool.user_modes."+u, c.Pool.UserModes[u]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateLimits() error {
	switch {
	case c.Pool.MaxWait <= 0:
		return errorf("pool.max_wait", "must be positive")
	case c.Pool.IdleTimeout < 0:
		return errorf("pool.idle_timeout", "must not be negative")
	case c.Limits.MaxClients < 1:
		return errorf("limits.max_clients", "must be at least 1")
	case c.Limits.MaxMessageBytes < 8*KiB:
		return errorf("limits.max_message_bytes", "must be at least 8KiB")
	case c.Shutdown.Timeout < 0:
		return errorf("shutdown.timeout", "must not be negative")
	}
	return nil
}

func (c *Config) validateLog() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return errorf("log.level", "must be one of debug, info, warn, error (not %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return errorf("log.format", "must be text or json (not %q)", c.Log.Format)
	}
	return nil
}

func (c *Config) validateCache() error {
	switch {
	case c.Cache.L1.MaxBytes <= 0:
		return errorf("cache.l1.max_bytes", "must be positive")
	case c.Cache.MaxEntryBytes <= 0:
		return errorf("cache.max_entry_bytes", "must be positive")
	case c.Cache.MaxEntryBytes > c.Cache.L1.MaxBytes:
		return errorf("cache.max_entry_bytes", "%v is more than cache.l1.max_bytes (%v)", c.Cache.MaxEntryBytes, c.Cache.L1.MaxBytes)
	}
	l2 := c.Cache.L2
	if l2 == nil {
		return nil
	}
	if l2.Timeout <= 0 {
		return errorf("cache.l2.timeout", "must be positive")
	}
	if l2.Namespace == "" {
		return errorf("cache.l2.namespace", "must not be empty")
	}
	return l2.Redis.validate("cache.l2.redis")
}

func (r *Redis) validate(p string) error {
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		return errorf(p, "url or addrs is required")
	case r.URL != "" && len(r.Addrs) > 0:
		return errorf(p, "url and addrs are alternatives: give one")
	case r.Mode == RedisSentinel && r.MasterName == "" && !strings.Contains(r.URL, "master_name="):
		return errorf(p+".master_name", "required in sentinel mode")
	case r.DB < 0:
		return errorf(p+".db", "must not be negative")
	}
	for i, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return errorf(index(p+".addrs", i), "invalid address %q: want host:port", a)
		}
	}
	var err error
	switch r.Mode {
	case RedisStandalone:
		if r.URL != "" {
			_, err = redis.ParseURL(r.URL)
		}
	case RedisCluster:
		if r.URL != "" {
			_, err = redis.ParseClusterURL(r.URL)
		}
	case RedisSentinel:
		if r.URL != "" {
			_, err = redis.ParseFailoverURL(r.URL)
		}
	default:
		return errorf(p+".mode", "must be one of standalone, sentinel, cluster (not %q)", r.Mode)
	}
	if err != nil {
		return errorf(p+".url", "%v", err)
	}
	return nil
}

func (c *Config) validateQueues() error {
	for _, name := range sortedKeys(c.Queues) {
		q, p := c.Queues[name], "queues."+name
		if err := checkName(p, name); err != nil {
			return err
		}
		if q.Workers < 1 {
			return errorf(p+".workers", "must be at least 1")
		}
		if q.MaxQueued < 0 {
			return errorf(p+".max_queued", "must not be negative")
		}
		if q.MaxWait <= 0 {
			return errorf(p+".max_wait", "must be positive")
		}
	}
	return nil
}

func (c *Config) validateLabels() error {
	const key = "labels.dashboard"
	if len(c.Labels.Dashboard) == 0 {
		return errorf(key, "must not be empty: list the sources to try, from %s", strings.Join(labelSources, ", "))
	}
	seen := map[string]int{}
	for i, src := range c.Labels.Dashboard {
		p := index(key, i)
		if !slices.Contains(labelSources, src) {
			return errorf(p, "must be one of %s (not %q)", strings.Join(labelSources, ", "), src)
		}
		if j, dup := seen[src]; dup {
			return errorf(p, "duplicate %q (also %s[%d])", src, key, j)
		}
		seen[src] = i
	}
	return nil
}

// validatePolicies checks each rule, then their order: with at least one
// rule, the last must match every query and no rule may follow one that
// does.
func (c *Config) validatePolicies() error {
	seen := map[string]int{}
	catchAll := -1
	for i, pol := range c.Policies {
		p := index("policies", i)
		if err := checkName(p+".name", pol.Name); err != nil {
			return err
		}
		if j, dup := seen[pol.Name]; dup {
			return errorf(p+".name", "duplicate %q (also policies[%d])", pol.Name, j)
		}
		seen[pol.Name] = i
		if err := pol.validate(p, c); err != nil {
			return err
		}
		if catchAll >= 0 {
			return errorf(p, "never matches: policies[%d] (%s) before it matches every query", catchAll, c.Policies[catchAll].Name)
		}
		if pol.Match.IsCatchAll() {
			catchAll = i
		}
	}
	if len(c.Policies) > 0 && catchAll < 0 {
		return errorf("policies", "no rule matches every query: end the list with a rule without match (queries no rule matches would not be cached)")
	}
	return nil
}

func (pol *Policy) validate(p string, c *Config) error {
	switch {
	case pol.TTL < 0:
		return errorf(p+".ttl", "must not be negative")
	case pol.StaleTTL < 0:
		return errorf(p+".stale_ttl", "must not be negative")
	case pol.RefreshAhead < 0:
		return errorf(p+".refresh_ahead", "must not be negative")
	case pol.RefreshAhead > 0 && pol.RefreshAhead >= pol.TTL:
		return errorf(p+".refresh_ahead", "must be shorter than ttl (%v)", pol.TTL)
	case pol.StaleIfError < 0:
		return errorf(p+".stale_if_error", "must not be negative")
	case pol.Timeout <= 0:
		return errorf(p+".timeout", "must be positive")
	case pol.MaxEntryBytes <= 0:
		return errorf(p+".max_entry_bytes", "must be positive")
	case pol.MaxEntryBytes > c.Cache.L1.MaxBytes:
		return errorf(p+".max_entry_bytes", "%v is more than cache.l1.max_bytes (%v)", pol.MaxEntryBytes, c.Cache.L1.MaxBytes)
	}
	if !pol.Cache {
		if c.has(p + ".queue") {
			if _, ok := c.Queues[pol.Queue]; !ok {
				return errorf(p+".queue", "unknown queue %q", pol.Queue)
			}
		}
		return nil
	}
	if pol.TTL == 0 {
		return errorf(p+".ttl", "required when cache is true")
	}
	if _, ok := c.Queues[pol.Queue]; !ok {
		if !c.has(p + ".queue") {
			return errorf(p+".queue", "required: no queue is named %q", DefaultQueue)
		}
		return errorf(p+".queue", "unknown queue %q", pol.Queue)
	}
	return nil
}

// warnings lists what is allowed but probably a mistake.
func (c *Config) warnings() []string {
	var w []string
	if len(c.Policies) == 0 {
		w = append(w, "policies: no rules, so no query is cached (add a rule without match to cache every query)")
	}
	for i, pol := range c.Policies {
		if !pol.Cache && (pol.TTL != 0 || pol.StaleTTL != 0 || pol.StaleIfError != 0) {
			w = append(w, fmt.Sprintf("policies[%d] (%s): cache is false, so its ttl, stale_ttl and stale_if_error have no effect", i, pol.Name))
		}
	}
	return w
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) validateHTTPAPI() error {
	a := &c.HTTPAPI
	switch {
	case a.ResultTTL <= 0:
		return errorf("http_api.result_ttl", "must be positive")
	case a.MaxBodyBytes <= 0:
		return errorf("http_api.max_body_bytes", "must be positive")
	case a.MaxJobs < 1:
		return errorf("http_api.max_jobs", "must be at least 1")
	}
	users := map[string]bool{}
	for _, u := range c.Auth.Users {
		users[u.Name] = true
	}
	seen := map[string]bool{}
	for i, tk := range a.Tokens {
		p := index("http_api.tokens", i)
		switch {
		case tk.Token == "":
			return errorf(p+".token", "required")
		case len(tk.Token) < 16:
			return errorf(p+".token", "too short: use at least 16 characters")
		case seen[tk.Token]:
			return errorf(p+".token", "duplicate token")
		case !users[tk.User]:
			return errorf(p+".user", "must name a user of auth.users (%q does not)", tk.User)
		}
		seen[tk.Token] = true
	}
	return nil
}
