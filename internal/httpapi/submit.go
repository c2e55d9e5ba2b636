package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// queryRequest is the body of POST /v1/queries.
type queryRequest struct {
	SQL      string `json:"sql"`
	Database string `json:"database"`
	// Params are bound as text-format parameters of unspecified type: a
	// string as it is, a number as written, true and false, null as NULL,
	// an array or object as its JSON text (for json and jsonb).
	Params []json.RawMessage `json:"params"`
	Labels *struct {
		Dashboard string `json:"dashboard"`
		Chart     string `json:"chart"`
	} `json:"labels"`
	// Format is accepted and ignored: a result's format is chosen when it
	// is fetched.
	Format json.RawMessage `json:"format"`
}

// maxParams is the most parameters the PostgreSQL protocol can bind.
const maxParams = 65535

// submit serves POST /v1/queries: it checks the request, plans its
// statement, and starts its job.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, user string) {
	q, status, e := s.decode(w, r)
	if e != nil {
		writeError(w, status, e)
		return
	}
	req, status, e := s.request(q, user)
	if e != nil {
		writeError(w, status, e)
		return
	}
	pl := s.cfg.Reads.Plan(req)
	if status, e := readOnly(pl.Analysis); e != nil {
		writeError(w, status, e)
		return
	}
	j, status, e := s.start(user, req, &pl)
	if e != nil {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, status, e)
		return
	}
	rec, _ := j.current()
	w.Header().Set("Location", jobPath(j.id))
	writeJSON(w, http.StatusAccepted, s.view(j, rec))
}

// decode reads the body as a queryRequest, strictly: one JSON object of
// known fields, within MaxBodyBytes.
func (s *Server) decode(w http.ResponseWriter, r *http.Request) (*queryRequest, int, *apiError) {
	tooLarge := &apiError{Code: CodeTooLarge, Message: fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes)}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	var q queryRequest
	err := dec.Decode(&q)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return nil, http.StatusBadRequest, &apiError{Code: CodeUnknownField, Message: "unknown field " + field + "; known: sql, database, params, labels (dashboard, chart), format"}
	default:
		return nil, http.StatusBadRequest, &apiError{Code: CodeBadJSON, Message: "the body is not a JSON query object: " + err.Error()}
	}
	if strings.TrimSpace(q.SQL) == "" {
		return nil, http.StatusBadRequest, &apiError{Code: CodeMissingSQL, Message: `the body has no "sql"`}
	}
	return &q, 0, nil
}

// request turns q into the read path's request, for user.
func (s *Server) request(q *queryRequest, user string) (*readpath.Request, int, *apiError) {
	database := q.Database
	if database == "" {
		database = user // as psql does
	}
	backend, wh, whDatabase, ok := s.cfg.Route(database)
	if !ok {
		return nil, http.StatusBadRequest, &apiError{Code: CodeUnknownDatabase, SQLState: "3D000", Message: fmt.Sprintf("database %q does not exist", database)}
	}
	if whDatabase == "" {
		whDatabase = database
	}
	params, err := textParams(q.Params)
	if err != nil {
		return nil, http.StatusBadRequest, &apiError{Code: CodeBadParams, Message: err.Error()}
	}
	req := &readpath.Request{
		Backend: backend, Warehouse: wh,
		Login:    executor.Login{User: user, Password: s.cfg.Users[user], Database: whDatabase},
		Database: database,
		SQL:      q.SQL,
		Params:   params,
		Settings: s.cfg.Settings,
	}
	if l := q.Labels; l != nil {
		req.Session = policy.SessionLabels{SetDashboard: l.Dashboard, SetChart: l.Chart}
	}
	return req, 0, nil
}

// textParams returns JSON values as text-format parameters: nil is NULL.
func textParams(raw []json.RawMessage) ([][]byte, error) {
	if len(raw) > maxParams {
		return nil, fmt.Errorf("%d parameters: at most %d can be bound", len(raw), maxParams)
	}
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([][]byte, len(raw))
	for i, v := range raw {
		v = bytes.TrimSpace(v)
		switch v[0] {
		case 'n':
			out[i] = nil
		case '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("parameter $%d: %v", i+1, err)
			}
			out[i] = append([]byte{}, s...) // never nil: "" is not NULL
		case '[', '{':
			var b bytes.Buffer
			if err := json.Compact(&b, v); err != nil {
				return nil, fmt.Errorf("parameter $%d: %v", i+1, err)
			}
			out[i] = b.Bytes()
		default: // true, false, a number: as written
			out[i] = append([]byte{}, v...)
		}
	}
	return out, nil
}

// readOnly refuses anything but one read: writes, DDL and session
// statements go through the PostgreSQL protocol, which invalidates what
// writes change.
func readOnly(a *fingerprint.Analysis) (int, *apiError) {
	switch {
	case len(a.Statements) == 0:
		return http.StatusBadRequest, &apiError{Code: CodeBadSQL, Message: "the query holds no statement"}
	case len(a.Statements) > 1:
		return http.StatusBadRequest, &apiError{Code: CodeSeveral, Message: fmt.Sprintf("the query holds %d statements; send one at a time", len(a.Statements))}
	case a.Kind != fingerprint.KindRead:
		return http.StatusForbidden, &apiError{Code: CodeReadOnly, Message: fmt.Sprintf(
			"the HTTP API runs reads only (SELECT, VALUES, TABLE, WITH), not %s statements (%s); send those through the PostgreSQL protocol",
			a.Kind, a.Statements[0].Command)}
	}
	return 0, nil
}
