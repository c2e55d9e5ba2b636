//go:build cgo

package snowflake

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver
	"github.com/snowflakedb/gosnowflake"
)

// Defaults and bounds.
const (
	// DefaultChunkRows is the rows per result chunk when Options.ChunkRows
	// is 0.
	DefaultChunkRows = 1000
	// maxResultRows bounds one statement's answer; a larger one fails.
	maxResultRows = 1 << 20
	// maxKeptResults is how many answers keep their chunks for the driver
	// to fetch; the oldest is dropped first.
	maxKeptResults = 64
	// maxRequestBytes bounds a request body.
	maxRequestBytes = 16 << 20
	// maxQueries bounds the statements Queries remembers.
	maxQueries = 100000
)

// Options configures a Server.
type Options struct {
	// ChunkRows is the number of rows per result chunk: the first chunk
	// travels inside the query response, the others as URLs the driver
	// fetches from this server. If 0, it defaults to DefaultChunkRows.
	ChunkRows int
	// JSON sends results as JSON rowsets instead of Arrow IPC streams.
	JSON bool
}

// Query is one statement the server received.
type Query struct {
	SQL string
	// QueryTag is the statement's QUERY_TAG parameter, "" without one.
	QueryTag string
	// Params are the parameters sent with the statement, by name, as
	// text.
	Params map[string]string
	// Canceled reports that the statement was cancelled while it ran, by
	// an abort request or by the driver hanging up.
	Canceled bool
	// Err is the error message the statement ended with, "" on success.
	Err string
}

// Server is a running Snowflake stand-in.
type Server struct {
	db        *sql.DB
	ln        net.Listener
	srv       *http.Server
	chunkRows int
	done      chan struct{} // closed when Serve returns
	served    atomic.Int64  // result chunks fetched

	mu       sync.Mutex // protects the fields below
	json     bool
	queries  []Query
	running  map[string]*runningQuery // by the driver's request id
	results  map[string][][]byte      // chunk bodies after the first, by query id
	order    []string                 // query ids of results, oldest first
	sessions map[string]int64         // session tokens, to session ids
	nextID   int64
}

// runningQuery is a statement being executed.
type runningQuery struct {
	cancel context.CancelFunc
	index  int // into Server.queries
}

// setup defines the Snowflake functions and type names in DuckDB.
var setup = []string{
	`SET TimeZone = 'UTC'`,
	`CREATE TYPE timestamp_ntz AS TIMESTAMP`,
	`CREATE TYPE timestamp_ltz AS TIMESTAMPTZ`,
	`CREATE MACRO parse_json(x) AS json(x)`,
	`CREATE MACRO to_timestamp_ntz(x) AS CAST(x AS TIMESTAMP)`,
	`CREATE MACRO to_timestamp_ltz(x) AS CAST(x AS TIMESTAMPTZ)`,
	`CREATE MACRO to_timestamp_tz(x) AS struct_pack(
		__sf_timestamp_tz := CAST(regexp_replace(CAST(x AS VARCHAR), '\s+([+-]\d\d(:?\d\d)?)$', '\1') AS TIMESTAMPTZ),
		__sf_offset := CASE WHEN regexp_matches(CAST(x AS VARCHAR), '[+-]\d\d:?\d\d$')
			THEN (CASE WHEN regexp_extract(CAST(x AS VARCHAR), '([+-])(\d\d):?(\d\d)$', 1) = '-' THEN -1 ELSE 1 END)
				* (CAST(regexp_extract(CAST(x AS VARCHAR), '([+-])(\d\d):?(\d\d)$', 2) AS INTEGER) * 60
				+ CAST(regexp_extract(CAST(x AS VARCHAR), '([+-])(\d\d):?(\d\d)$', 3) AS INTEGER))
			ELSE 0 END)`,
}

// Start starts a server on 127.0.0.1 with a new in-memory DuckDB database.
func Start(opts Options) (*Server, error) {
	if opts.ChunkRows < 0 {
		return nil, errors.New("snowflake: negative ChunkRows")
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("snowflake: setting up DuckDB: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{
		db:        db,
		ln:        ln,
		chunkRows: opts.ChunkRows,
		done:      make(chan struct{}),
		json:      opts.JSON,
		running:   make(map[string]*runningQuery),
		results:   make(map[string][][]byte),
		sessions:  make(map[string]int64),
	}
	if s.chunkRows == 0 {
		s.chunkRows = DefaultChunkRows
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /session/v1/login-request", s.login)
	mux.HandleFunc("POST /session/token-request", s.renew)
	mux.HandleFunc("POST /session/heartbeat", s.authed(s.ok))
	mux.HandleFunc("POST /session", s.authed(s.closeSession))
	mux.HandleFunc("POST /telemetry/send", s.ok)
	mux.HandleFunc("POST /queries/v1/query-request", s.authed(s.query))
	mux.HandleFunc("POST /queries/v1/abort-request", s.authed(s.abort))
	mux.HandleFunc("GET /chunks/{id}/{n}", s.chunk)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// DSN is a gosnowflake data source name for this server: plain HTTP to
// 127.0.0.1, account "sqlcached", warehouse "WH", role SYSADMIN, schema
// PUBLIC.
func (s *Server) DSN(user, password, database string) string {
	addr := s.ln.Addr().(*net.TCPAddr)
	dsn, err := gosnowflake.DSN(&gosnowflake.Config{
		Account:       "sqlcached",
		User:          user,
		Password:      password,
		Database:      database,
		Schema:        "PUBLIC",
		Warehouse:     "WH",
		Role:          "SYSADMIN",
		Host:          "127.0.0.1",
		Port:          addr.Port,
		Protocol:      "http",
		MaxRetryCount: 1,
	})
	if err != nil {
		// Only a Config without account, user or host fails.
		panic(err)
	}
	return dsn
}

// Exec runs setup SQL (one statement or several) on the backing DuckDB
// database, as it is: none of the Snowflake spellings are rewritten.
func (s *Server) Exec(sql string) error {
	_, err := s.db.Exec(sql)
	return err
}

// SetJSON switches the result format of the statements that follow: JSON
// rowsets when on, Arrow IPC streams when off.
func (s *Server) SetJSON(on bool) {
	s.mu.Lock()
	s.json = on
	s.mu.Unlock()
}

// Queries returns every statement received so far, in order (the last
// 100000 of them).
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Query, len(s.queries))
	for i, q := range s.queries {
		out[i] = q
		out[i].Params = make(map[string]string, len(q.Params))
		for k, v := range q.Params {
			out[i].Params[k] = v
		}
	}
	return out
}

// Close cancels the running statements, stops the server and closes the
// database.
func (s *Server) Close() error {
	s.mu.Lock()
	for _, r := range s.running {
		r.cancel()
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// response is the envelope of every Snowflake REST answer.
type response struct {
	Data    any     `json:"data"`
	Code    *string `json:"code"`
	Message *string `json:"message"`
	Success bool    `json:"success"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with a Snowflake error: HTTP 200, success false.
func fail(w http.ResponseWriter, code, sqlState, msg string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if sqlState != "" {
		data["sqlState"] = sqlState
	}
	writeJSON(w, response{Data: data, Code: &code, Message: &msg})
}

func (s *Server) ok(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, response{Success: true})
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// login accepts any user and password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Data struct {
			LoginName   string `json:"LOGIN_NAME"`
			AccountName string `json:"ACCOUNT_NAME"`
		} `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		fail(w, "390100", "08004", "malformed login request: "+err.Error(), nil)
		return
	}
	if req.Data.LoginName == "" {
		fail(w, "390100", "08004", "Incorrect username or password was specified.", nil)
		return
	}
	token, id := s.newSession()
	q := r.URL.Query()
	writeJSON(w, response{Success: true, Data: map[string]any{
		"token":                   token,
		"validityInSeconds":       3600,
		"masterToken":             "master-" + token,
		"masterValidityInSeconds": 14400,
		"displayUserName":         req.Data.LoginName,
		"serverVersion":           "9.0.0",
		"sessionId":               id,
		"parameters": []map[string]any{
			{"name": "TIMEZONE", "value": "UTC"},
			{"name": "CLIENT_SESSION_KEEP_ALIVE", "value": false},
			{"name": "CLIENT_RESULT_CHUNK_SIZE", "value": 160},
		},
		"sessionInfo": map[string]any{
			"databaseName":  q.Get("databaseName"),
			"schemaName":    q.Get("schemaName"),
			"warehouseName": q.Get("warehouse"),
			"roleName":      q.Get("roleName"),
		},
	}})
}

func (s *Server) newSession() (string, int64) {
	token := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.sessions[token] = s.nextID
	return token, s.nextID
}

// renew hands out a new session token for a master token.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	master, _ := strings.CutPrefix(tokenOf(r), "master-")
	s.mu.Lock()
	id, ok := s.sessions[master]
	s.mu.Unlock()
	if !ok {
		fail(w, "390114", "08004", "Authentication token has expired.", nil)
		return
	}
	writeJSON(w, response{Success: true, Data: map[string]any{
		"sessionToken":        master,
		"validityInSecondsST": 3600,
		"masterToken":         "master-" + master,
		"validityInSecondsMT": 14400,
		"sessionId":           id,
	}})
}

// tokenOf is the token of an Authorization: Snowflake Token="..." header.
func tokenOf(r *http.Request) string {
	h := r.Header.Get("Authorization")
	_, t, _ := strings.Cut(h, `Token="`)
	return strings.TrimSuffix(t, `"`)
}

// authed refuses requests without a live session token.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		_, ok := s.sessions[tokenOf(r)]
		s.mu.Unlock()
		if !ok {
			fail(w, "390112", "08001", "Your session has expired. Please login again.", nil)
			return
		}
		h(w, r)
	}
}

func (s *Server) closeSession(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("delete") == "true" {
		s.mu.Lock()
		delete(s.sessions, tokenOf(r))
		s.mu.Unlock()
	}
	s.ok(w, r)
}

// abort cancels the statement sent with the request id in the body.
func (s *Server) abort(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RequestID string `json:"requestId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		fail(w, "000605", "", "malformed abort request", nil)
		return
	}
	s.mu.Lock()
	q, ok := s.running[req.RequestID]
	if ok {
		s.queries[q.index].Canceled = true
		q.cancel()
	}
	s.mu.Unlock()
	if !ok {
		fail(w, "000605", "", "Identified SQL statement is not currently executing.", nil)
		return
	}
	s.ok(w, r)
}

// chunk serves a result chunk after the first.
func (s *Server) chunk(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	s.mu.Lock()
	chunks := s.results[r.PathValue("id")]
	s.mu.Unlock()
	if err != nil || n < 0 || n >= len(chunks) {
		http.Error(w, "no such chunk", http.StatusNotFound)
		return
	}
	s.served.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(chunks[n])
}

// keep stores the chunks of an answer for the driver to fetch, dropping
// the oldest answer past maxKeptResults.
func (s *Server) keep(id string, chunks [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[id] = chunks
	s.order = append(s.order, id)
	if len(s.order) > maxKeptResults {
		delete(s.results, s.order[0])
		s.order = s.order[1:]
	}
}
