// Command sqlcached is a caching reverse proxy in front of SQL warehouses.
//
//	sqlcached demo [--listen ADDR] [--http ADDR] [--orders N]
//	sqlcached serve --config FILE [--listen ADDR] [--http ADDR] [--backend-dsn DSN]
//	sqlcached policy check --config FILE
//	sqlcached policy explain --config FILE --user U [--database D] [--dashboard D] [--application-name A] SQL
//	sqlcached bench --workload FILE [--target NAME=DSN[,metrics=URL] ...] [--warehouse-dsn DSN] [--out DIR] [--duration D]
//	sqlcached bench simulate --log FILE ...
//	sqlcached version
//
// demo serves an embedded DuckDB filled with sample BI data on
// 127.0.0.1:6432, ready for psql. serve reloads the file's policies on SIGHUP and when the file changes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/internal/httpapi"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/procs"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
	"github.com/sqlcached/sqlcached/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

const usage = `usage:
  sqlcached demo [--listen ADDR] [--http ADDR] [--orders N]
  sqlcached serve --config FILE [--listen ADDR] [--http ADDR] [--backend-dsn DSN]
  sqlcached policy check --config FILE
  sqlcached policy explain --config FILE --user U [--database D] [--dashboard D] [--application-name A] SQL
  sqlcached bench --workload FILE [--target NAME=DSN[,metrics=URL] ...] [--warehouse-dsn DSN] [--out DIR] [--duration D]
  sqlcached bench simulate --log FILE ...
  sqlcached version`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitConfig
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "demo":
		return demo(args[1:], stdout, stderr)
	case "policy":
		return policyCommand(args[1:], stdout, stderr)
	case "bench":
		return benchCommand(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sqlcached", version)
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "sqlcached: unknown command %q\n", args[0])
	return exitConfig
}

type serveFlags struct {
	config, listen, http, dsn string
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "configuration file (required)")
	fs.StringVar(&f.listen, "listen", "", "PostgreSQL listen address, overriding listen.postgres")
	fs.StringVar(&f.http, "http", "", "HTTP listen address, overriding listen.http")
	fs.StringVar(&f.dsn, "backend-dsn", "", "DSN of the first backend, overriding backends[0].dsn")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if f.config == "" {
		fmt.Fprintln(stderr, "sqlcached serve: --config is required")
		return exitConfig
	}
	rules, cfg, err := policy.Load(f.config)
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached:", err)
		return exitConfig
	}
	if err := applyFlags(cfg, f); err != nil {
		fmt.Fprintln(stderr, "sqlcached:", err)
		return exitConfig
	}
	log := newLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fitScheduler(ctx, log)
	if err := runServer(ctx, cfg, rules, hup, nil, log); err != nil {
		log.Error("sqlcached stopped", "err", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return exitConfig
		}
		return exitFail
	}
	return exitOK
}

// fitScheduler sizes GOMAXPROCS to the load until ctx ends, unless the
// environment sets it (procs).
func fitScheduler(ctx context.Context, log *slog.Logger) {
	if procs.Auto() {
		go procs.Run(ctx, procs.Config{Logger: log})
	}
}

func applyFlags(cfg *config.Config, f serveFlags) error {
	if f.listen != "" {
		cfg.Listen.Postgres = f.listen
	}
	if f.http != "" {
		cfg.Listen.HTTP = f.http
	}
	if f.dsn != "" {
		if len(cfg.Backends) == 0 {
			return &config.Error{Key: "backends", Msg: "--backend-dsn needs a backend to override"}
		}
		if _, err := pgconn.ParseConfig(f.dsn); err != nil {
			return &config.Error{Key: "--backend-dsn", Msg: err.Error()}
		}
		cfg.Backends[0].DSN = f.dsn
	}
	return nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runServer wires the configuration into a proxy and serves until ctx is
// done, then shuts down within shutdown.timeout. The policies are put in
// force again from cfg.File on each value of hup and when it changes.
func runServer(ctx context.Context, cfg *config.Config, rules *policy.Set, hup <-chan os.Signal, extra *serveExtras, log *slog.Logger) error {
	if extra == nil {
		extra = &serveExtras{}
	}
	bs, err := openBackends(ctx, cfg, extra.warehouses, log)
	if err != nil {
		return err
	}
	defer bs.Close()
	obs, closeAudit, err := newObserver(cfg, log)
	if err != nil {
		return err
	}
	defer closeAudit()
	pcfg := proxy.Config{
		AuthMethod:               cfg.Auth.Method,
		Users:                    map[string]string{},
		AllowCleartextWithoutTLS: cfg.Auth.AllowCleartextWithoutTLS,
		MaxClients:               cfg.Limits.MaxClients,
		MaxMessageBytes:          int(cfg.Limits.MaxMessageBytes),
		AcquireTimeout:           cfg.Pool.MaxWait.Std(),
		SessionPooling: func(user, database string) bool {
			return cfg.PoolModeFor(user, database) == config.PoolSession
		},
		Logger:  log,
		Route:   router(cfg, bs),
		Observe: obs,
	}
	for _, u := range cfg.Auth.Users {
		pcfg.Users[u.Name] = u.Password
	}
	var api *httpapi.Server
	var g *cache.Group
	var queues *executor.Queues
	con := &console{cfg: cfg, obs: obs, bs: bs, log: log}
	if len(cfg.Policies) > 0 {
		g, err = newCache(cfg, obs, log)
		if err != nil {
			return err
		}
		defer g.Close()
		queues = newQueues(cfg)
		reads, err := readpath.New(readpath.Config{Cache: g, Policy: rules, Queues: queues, Observe: obs})
		if err != nil {
			return err
		}
		pcfg.Reads = reads
		con.reads = reads
		if cfg.Listen.HTTP != "" && !cfg.HTTPAPI.Disabled {
			if api, err = newAPI(cfg, bs, reads, g, queues, log); err != nil {
				log.Warn("the HTTP query API is off", "why", err)
			} else {
				defer api.Close()
			}
		}
		log.Info("answer cache on", "rules", len(cfg.Policies), "l2", cfg.Cache.L2 != nil)
		if cfg.File != "" {
			rl := &policy.Reloader{Path: cfg.File, Log: log, Apply: func(s *policy.Set, next *config.Config) {
				reads.SetPolicy(s)
				if restartNeeded(cfg, next) {
					log.Warn("the new policies are in force; other changes to the file need a restart")
				}
			}}
			rctx, stopReload := context.WithCancel(ctx)
			defer stopReload()
			go rl.Run(rctx, hup)
			con.reload = rl.Reload
		}
	} else if hup != nil {
		rctx, stopHup := context.WithCancel(ctx)
		defer stopHup()
		go func() {
			for {
				select {
				case <-rctx.Done():
					return
				case <-hup:
					log.Warn("SIGHUP: the configuration had no policies at start, so there is no cache to apply them to; restart to turn it on")
				}
			}
		}()
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.Load()
		if err != nil {
			return err
		}
		pcfg.TLS, pcfg.RequireTLS = tc, cfg.TLS.Require
	}
	pcfg.Admin = newAdmin(con)
	srv, err := proxy.NewServer(pcfg)
	if err != nil {
		return err
	}
	obs.Register(newGauges(srv, bs, g, queues))
	con.srv, con.cache, con.queues = srv, g, queues
	l, err := net.Listen("tcp", cfg.Listen.Postgres)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(l) }()
	var hs *http.Server
	httpAddr := ""
	if cfg.Listen.HTTP != "" {
		hl, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			_ = srv.Close()
			return err
		}
		httpAddr = hl.Addr().String()
		handler := proxy.HTTPHandler(srv, poolList(bs.pools))
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", obs.Handler())
		if api != nil {
			mux.Handle("/v1/", api.Handler())
		}
		if g != nil {
			mux.Handle("GET /stats", statsHandler(g))
		}
		mux.Handle("GET /{$}", statusPage(con))
		mux.Handle("/admin/", adminAPI(con))
		mux.Handle("/", handler)
		handler = mux
		hs = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- hs.Serve(hl) }()
	}
	log.Info("sqlcached serving", "postgres", l.Addr().String(), "http", cfg.Listen.HTTP, "version", version)
	if extra.ready != nil {
		extra.ready(g, l.Addr().String(), httpAddr)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = srv.Close()
		return err
	}
	log.Info("shutting down", "timeout", cfg.Shutdown.Timeout.Std())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout.Std())
	defer cancel()
	if api != nil {
		api.Close() // ends event streams and jobs, so that the listener can drain
	}
	if hs != nil {
		_ = hs.Shutdown(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("sessions still open at the shutdown timeout were closed", "err", err)
	}
	return nil
}

func poolList(m map[string]*postgres.Pool) []proxy.Pinger {
	out := make([]proxy.Pinger, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// newObserver makes what counts the proxy's work, with the audit log the
// configuration asks for; the function returned closes the audit file.
func newObserver(cfg *config.Config, log *slog.Logger) (*observe.Observer, func(), error) {
	oc := observe.Config{Version: version, Statements: cfg.Audit.Statements}
	closeAudit := func() {}
	if cfg.Audit.Enabled {
		var w io.Writer = os.Stderr
		if cfg.Audit.Path != "" {
			f, err := os.OpenFile(cfg.Audit.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				return nil, nil, &config.Error{Key: "audit.path", Msg: err.Error()}
			}
			w, closeAudit = f, func() { f.Close() }
		}
		oc.Audit = slog.New(slog.NewJSONHandler(w, nil))
		log.Info("audit log on", "path", cfg.Audit.Path, "statements", cfg.Audit.Statements)
	}
	return observe.New(oc), closeAudit, nil
}

// console is what the status page, the admin console and /admin/ read
// and act on. cache, queues and reads are nil when nothing is cached;
// reload is nil without a configuration file.
type console struct {
	cfg    *config.Config
	obs    *observe.Observer
	srv    *proxy.Server
	bs     *backends
	cache  *cache.Group
	queues *executor.Queues
	reads  *readpath.Path
	reload func() error
	log    *slog.Logger
}

// serveExtras are what a command running the server itself (the demo)
// adds to a configuration.
type serveExtras struct {
	// warehouses supplies a backend's warehouse by name, already open.
	warehouses map[string]executor.Warehouse
	// ready is called once the server listens, with its cache (nil when
	// nothing is cached) and the addresses it listens on.
	ready func(g *cache.Group, pgAddr, httpAddr string)
}

// statsHandler serves the cache's counters as JSON, with the share of
// lookups answered from the cache.
func statsHandler(g *cache.Group) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := g.Stats()
		hits := st.L1Hits + st.L2Hits + st.Collapsed + st.Stale + st.StaleIfError
		ratio := 0.0
		if total := hits + st.Misses; total > 0 {
			ratio = float64(hits) / float64(total)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			cache.Stats
			Hits     uint64  `json:"Hits"`
			HitRatio float64 `json:"HitRatio"`
		}{st, hits, ratio})
	})
}

// router maps a client's database to its backend. A database listed in
// `databases` uses the backend DSN's database when the DSN names one; one
// routed by default keeps the client's name.
func router(cfg *config.Config, bs *backends) func(string) *proxy.Backend {
	return func(database string) *proxy.Backend {
		b := cfg.BackendFor(database)
		if b == nil {
			return nil
		}
		return &proxy.Backend{Name: b.Name, Pool: bs.pool(b.Name), Database: warehouseDatabase(cfg, b, database)}
	}
}

// warehouseDatabase is the database of b a client asking for database
// opens: the DSN's when the database is listed in `databases` and the DSN
// names one, else "" (the client's own name).
func warehouseDatabase(cfg *config.Config, b *config.Backend, database string) string {
	if _, listed := cfg.Databases[database]; listed {
		if pc, err := pgconn.ParseConfig(b.DSN); err == nil && dsnNamesDatabase(b.DSN) {
			return pc.Database
		}
	}
	return ""
}

func dsnNamesDatabase(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		rest := dsn[strings.Index(dsn, "://")+3:]
		if i := strings.IndexAny(rest, "?"); i >= 0 {
			rest = rest[:i]
		}
		slash := strings.Index(rest, "/")
		return slash >= 0 && slash < len(rest)-1 || strings.Contains(dsn, "dbname=")
	}
	return strings.Contains(dsn, "dbname=")
}

// newCache builds the cache group of the configuration.
func newCache(cfg *config.Config, obs *observe.Observer, log *slog.Logger) (*cache.Group, error) {
	cc := cache.Config{
		L1MaxBytes: int64(cfg.Cache.L1.MaxBytes), MaxEntryBytes: int(cfg.Cache.MaxEntryBytes), Logger: log,
		OnL2Call: obs.L2Call, OnRemoteInvalidation: func() { obs.Invalidated("remote") },
	}
	if l2 := cfg.Cache.L2; l2 != nil {
		cc.L2 = &cache.L2Config{
			URL: l2.Redis.URL, Addrs: l2.Redis.Addrs, Mode: l2.Redis.Mode, MasterName: l2.Redis.MasterName,
			Username: l2.Redis.Username, Password: l2.Redis.Password, DB: l2.Redis.DB,
			Namespace: l2.Namespace, Timeout: l2.Timeout.Std(),
		}
	}
	g, err := cache.New(cc)
	if err != nil {
		return nil, &config.Error{Key: "cache", Msg: err.Error()}
	}
	return g, nil
}

// newAPI makes the HTTP query API over the read path: users from
// auth.users, bearer tokens from http_api.tokens, databases routed as the
// proxy routes them.
func newAPI(cfg *config.Config, bs *backends, reads *readpath.Path, g *cache.Group, queues *executor.Queues, log *slog.Logger) (*httpapi.Server, error) {
	users := map[string]string{}
	for _, u := range cfg.Auth.Users {
		users[u.Name] = u.Password
	}
	tokens := map[string]string{}
	for _, tk := range cfg.HTTPAPI.Tokens {
		tokens[tk.Token] = tk.User
	}
	route := router(cfg, bs)
	return httpapi.New(httpapi.Config{
		Reads: reads, Cache: g, Queues: queues, Users: users, Tokens: tokens, Logger: log,
		ResultTTL: cfg.HTTPAPI.ResultTTL.Std(), MaxBodyBytes: int64(cfg.HTTPAPI.MaxBodyBytes), MaxJobs: cfg.HTTPAPI.MaxJobs,
		MaxResultBytes: int(cfg.Cache.MaxEntryBytes),
		Route: func(database string) (string, executor.Warehouse, string, bool) {
			b := route(database)
			if b == nil {
				return "", nil, "", false
			}
			return b.Name, bs.pools[b.Name], b.Database, true
		},
	})
}

// newQueues makes every backend's copy of the configured queues.
func newQueues(cfg *config.Config) *executor.Queues {
	qc := make(map[string]executor.QueueConfig, len(cfg.Queues))
	for name, q := range cfg.Queues {
		qc[name] = executor.QueueConfig{Workers: q.Workers, MaxQueued: q.MaxQueued, MaxWait: q.MaxWait.Std()}
	}
	var backends []string
	for _, b := range cfg.Backends {
		backends = append(backends, b.Name)
	}
	return executor.NewQueues(backends, qc)
}

// restartNeeded reports whether next differs from cfg in more than what
// a reload applies (policies and labels).
func restartNeeded(cfg, next *config.Config) bool {
	fixed := func(c *config.Config) []any {
		return []any{c.Listen, c.TLS, c.Auth, c.Backends, c.Databases, c.Pool, c.Limits, c.Shutdown, c.Log, c.Cache, c.Queues}
	}
	return !reflect.DeepEqual(fixed(cfg), fixed(next))
}
