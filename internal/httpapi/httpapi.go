package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/readpath"
)

// Defaults of Config.
const (
	DefaultResultTTL      = 10 * time.Minute
	DefaultExpiredTTL     = time.Hour
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxJobs        = 1000
	DefaultMaxResultBytes = 16 << 20
	DefaultHeartbeat      = 15 * time.Second
)

// RouteFunc maps the database a request names to the backend that serves
// it: its name (in cache keys), the warehouse that runs its statements,
// and the database to open there ("" for the name asked). ok is false for
// a database no backend serves.
type RouteFunc func(database string) (backend string, wh executor.Warehouse, whDatabase string, ok bool)

// Config configures a Server. The zero value of each optional field means
// its default.
type Config struct {
	// Reads is the read path statements go through: the one the
	// PostgreSQL frontends use, so that answers are shared. Required.
	Reads *readpath.Path
	// Cache keeps job records and results, under keys of their own: the
	// read path's Group. Processes whose Groups share a Redis (URL and
	// namespace) answer for each other's finished jobs. Required.
	Cache *cache.Group
	// Route maps a request's database to its backend, as the proxy does
	// for a startup packet; a request without a database asks for the
	// one named after its user, as psql does. Required.
	Route RouteFunc

	// Users are the accounts HTTP Basic authentication checks, name to
	// password; the password also opens the user's warehouse connections
	// unless the backend's DSN names its own. Tokens map bearer tokens to
	// user names. At least one user or token is required: the API never
	// runs anonymous queries.
	Users  map[string]string
	Tokens map[string]string

	// Queues are the queues the read path runs misses on (the same
	// readpath.Config.Queues). Statements the rules do not cache run on
	// them too, and a queued job's position is read from them. If nil,
	// uncached statements run directly on the warehouse and positions are
	// not reported.
	Queues *executor.Queues
	// Settings are the session settings HTTP queries run under, each as
	// the SQL that applies it, as the proxy writes them (SET timezone =
	// 'UTC'); those that change answers enter cache keys. If nil, the
	// warehouse's defaults apply, and a query's key is that of a
	// PostgreSQL session that set none.
	Settings map[string]string

	// ResultTTL is how long a finished job's status and rows are kept.
	// If zero, it defaults to 10 minutes. Results live in the cache: L1
	// and Redis must hold ResultTTL's worth of them.
	ResultTTL time.Duration
	// ExpiredTTL is how long after ResultTTL a job's id is still known,
	// and answered 410 Gone rather than 404. If zero, it defaults to one
	// hour; a record is a few hundred bytes.
	ExpiredTTL time.Duration
	// MaxBodyBytes bounds a request's body; larger is refused with 413.
	// If zero, it defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxJobs bounds the jobs queued or running at once in this process;
	// one more is refused with 429. If zero, it defaults to 1000.
	MaxJobs int
	// MaxResultBytes bounds the answer of a statement the rules do not
	// cache, held for its job; a cached statement's answer is bounded by
	// its rule's max_entry_bytes. If zero, it defaults to 16 MiB; keep it
	// at most the Group's MaxEntryBytes, or such results cannot be kept.
	MaxResultBytes int
	// Heartbeat is how often an event stream with nothing to say sends a
	// comment, so that proxies in between keep it open. If zero, it
	// defaults to 15 seconds.
	Heartbeat time.Duration

	// Logger receives what goes wrong outside any request. If nil, logs
	// are discarded.
	Logger *slog.Logger
	// Now returns the current time. If nil, it defaults to time.Now.
	// Tests share one clock between the Server and its Group.
	Now func() time.Time
}

// withDefaults returns a copy of c with defaults filled in, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Reads == nil:
		return c, errors.New("httpapi: Reads is required")
	case c.Cache == nil:
		return c, errors.New("httpapi: Cache is required")
	case c.Route == nil:
		return c, errors.New("httpapi: Route is required")
	case len(c.Users) == 0 && len(c.Tokens) == 0:
		return c, errors.New("httpapi: no Users or Tokens: every request must authenticate")
	case c.ResultTTL < 0, c.ExpiredTTL < 0, c.MaxBodyBytes < 0, c.MaxJobs < 0, c.MaxResultBytes < 0, c.Heartbeat < 0:
		return c, errors.New("httpapi: durations and bounds can't be negative")
	}
	c.ResultTTL = cmp.Or(c.ResultTTL, DefaultResultTTL)
	c.ExpiredTTL = cmp.Or(c.ExpiredTTL, DefaultExpiredTTL)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxJobs = cmp.Or(c.MaxJobs, DefaultMaxJobs)
	c.MaxResultBytes = cmp.Or(c.MaxResultBytes, DefaultMaxResultBytes)
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Server serves the query API. It is safe for concurrent use.
type Server struct {
	cfg    Config
	tokens map[[sha256.Size]byte]string // SHA-256 of a token -> user
	mux    *http.ServeMux

	slots chan struct{} // one per job queued or running

	ctx    context.Context // ended by Close: jobs and event streams stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // running jobs

	mu        sync.Mutex // protects jobs, closed, lastSweep
	jobs      map[string]*job
	closed    bool
	lastSweep time.Time
}

// New returns a Server configured by cfg, with defaults filled in. It
// starts no goroutine until a job is posted.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		tokens: make(map[[sha256.Size]byte]string, len(cfg.Tokens)),
		slots:  make(chan struct{}, cfg.MaxJobs),
		jobs:   make(map[string]*job),
	}
	for tok, user := range cfg.Tokens {
		s.tokens[sha256.Sum256([]byte(tok))] = user
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/v1/queries", s.methods(map[string]handler{http.MethodPost: s.submit}))
	s.mux.HandleFunc("/v1/queries/{id}", s.methods(map[string]handler{http.MethodGet: s.status, http.MethodDelete: s.cancelJob}))
	s.mux.HandleFunc("/v1/queries/{id}/result", s.methods(map[string]handler{http.MethodGet: s.result}))
	s.mux.HandleFunc("/v1/queries/{id}/events", s.methods(map[string]handler{http.MethodGet: s.events}))
	s.mux.HandleFunc("/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(openAPI))
	})
	s.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &apiError{Code: CodeNotFound, Message: "no such endpoint: " + r.URL.Path})
	})
	return s, nil
}

// Handler returns the handler of the API's endpoints, all under /v1/.
// Mount it at the root of a mux: the links it gives start with /v1/.
func (s *Server) Handler() http.Handler { return s.mux }

// Close cancels every job still queued or running (each is then
// canceled), ends the event streams, refuses new jobs with 503, and waits
// for the jobs' goroutines. Status and results stay readable. Close is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// handler serves one method of an endpoint for an authenticated user.
type handler func(w http.ResponseWriter, r *http.Request, user string)

// methods dispatches by method, answering others with 405 and callers
// without valid credentials with 401.
func (s *Server) methods(m map[string]handler) http.HandlerFunc {
	allow := strings.Join(slices.Sorted(maps.Keys(m)), ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := m[r.Method]
		if !ok {
			methodNotAllowed(w, allow)
			return
		}
		user, ok := s.authenticate(r)
		if !ok {
			w.Header().Add("WWW-Authenticate", `Basic realm="sqlcached", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="sqlcached"`)
			writeError(w, http.StatusUnauthorized, &apiError{Code: CodeUnauthorized, Message: "authentication required: HTTP Basic with a configured user and password, or a bearer token"})
			return
		}
		h(w, r, user)
	}
}

// dummyPassword is compared with when the user is unknown, so that an
// unknown user takes as long as a wrong password.
const dummyPassword = "sqlcached: no such user, compared for constant time"

// authenticate returns the user r's credentials prove.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	if name, password, ok := r.BasicAuth(); ok {
		want, known := s.cfg.Users[name]
		if !known {
			want = dummyPassword
		}
		match := subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
		return name, known && match
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	// Looked up by digest: the time a lookup takes says nothing of the
	// token.
	user, ok := s.tokens[sha256.Sum256([]byte(strings.TrimSpace(token)))]
	return user, ok
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, &apiError{Code: CodeMethodNotAllowed, Message: "method not allowed; allowed: " + allow})
}

// Codes of apiError, the "code" of every error the API answers.
const (
	CodeBadJSON          = "bad_json"
	CodeUnknownField     = "unknown_field"
	CodeTooLarge         = "too_large"
	CodeMissingSQL       = "missing_sql"
	CodeBadParams        = "bad_params"
	CodeBadSQL           = "bad_sql"
	CodeSeveral          = "several_statements"
	CodeReadOnly         = "read_only"
	CodeUnknownDatabase  = "unknown_database"
	CodeTooMany          = "too_many"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeExpired          = "expired"
	CodeNotReady         = "not_ready"
	CodeBadFormat        = "bad_format"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeElsewhere        = "running_elsewhere"
	CodeClosing          = "closing"
	CodeUnavailable      = "result_unavailable"

	// Codes of a job's error.
	CodeSQL            = "sql_error"             // the warehouse's error; sqlstate says which
	CodeTimeout        = "timeout"               // the rule's timeout (57014)
	CodeCanceled       = "canceled"              // DELETE or shutdown (57014)
	CodeOverloaded     = "overloaded"            // a full queue, a wait too long (53000, 53300)
	CodeResultTooLarge = "result_too_large"      // larger than a job may hold (54000)
	CodeWarehouse      = "warehouse_unavailable" // connection lost or refused (08006)
	CodeInternal       = "internal"
)

// apiError is the body of every error: {"error": {...}}, and a job's
// error in its status.
type apiError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	SQLState string `json:"sqlstate,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Hint     string `json:"hint,omitempty"`
}

func writeError(w http.ResponseWriter, status int, e *apiError) {
	writeJSON(w, status, struct {
		Error *apiError `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
