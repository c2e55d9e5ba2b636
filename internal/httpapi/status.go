package httpapi

import (
	"context"
	"net/http"
	"time"
)

// statusView is a job's status as the API shows it.
type statusView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Position is, while the job is queued, how many runs wait for a
	// worker of its queue, itself included: its place at worst.
	Position    int       `json:"position,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// DurationMS is from submission to the end, once finished.
	DurationMS *int64    `json:"duration_ms,omitempty"`
	Cache      string    `json:"cache,omitempty"`
	Rows       *int64    `json:"rows,omitempty"`
	Error      *apiError `json:"error,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Links      links     `json:"links"`
}

type links struct {
	Self   string `json:"self"`
	Result string `json:"result"`
	Events string `json:"events"`
}

func jobPath(id string) string { return "/v1/queries/" + id }

// view returns rec as the API shows it; j is its job when this process
// runs it.
func (s *Server) view(j *job, rec record) statusView {
	v := statusView{
		ID: rec.ID, Status: rec.Status, SubmittedAt: rec.Submitted, StartedAt: rec.Started,
		FinishedAt: rec.Finished, Cache: rec.Cache, Error: rec.Error, ExpiresAt: rec.Expires,
		Links: links{Self: jobPath(rec.ID), Result: jobPath(rec.ID) + "/result", Events: jobPath(rec.ID) + "/events"},
	}
	if rec.Status == StatusQueued && j != nil && j.queue != nil {
		v.Position = j.queue.Stats().Waiting
	}
	if final(rec.Status) {
		ms := rec.Finished.Sub(rec.Submitted).Milliseconds()
		v.DurationMS = &ms
	}
	if rec.Status == StatusDone {
		rows := rec.Rows
		v.Rows = &rows
	}
	return v
}

// found finds the job r names for user, answering 404 or 410 itself when
// there is none to show.
func (s *Server) found(w http.ResponseWriter, r *http.Request, user string) (j *job, rec record, wire []byte, ok bool) {
	id := r.PathValue("id")
	j, rec, wire, ok = s.find(r.Context(), id, user)
	if !ok {
		writeError(w, http.StatusNotFound, &apiError{Code: CodeNotFound, Message: "no query " + id})
		return nil, record{}, nil, false
	}
	if rec.expired(s.now()) {
		if j != nil {
			s.forget(j)
		}
		writeError(w, http.StatusGone, &apiError{Code: CodeExpired, Message: "query " + id + " finished at " +
			rec.Finished.Format(time.RFC3339) + "; its result was kept until " + rec.Expires.Format(time.RFC3339)})
		return nil, record{}, nil, false
	}
	return j, rec, wire, true
}

// status serves GET /v1/queries/{id}.
func (s *Server) status(w http.ResponseWriter, r *http.Request, user string) {
	j, rec, _, ok := s.found(w, r, user)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.view(j, rec))
}

// cancelWait bounds how long DELETE waits for the job to end: the
// warehouse acknowledges a cancel within seconds.
const cancelWait = 30 * time.Second

// cancelJob serves DELETE /v1/queries/{id}: a queued or running job stops
// waiting and is canceled; a finished one is left as it is.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, user string) {
	j, rec, _, ok := s.found(w, r, user)
	if !ok {
		return
	}
	if final(rec.Status) {
		writeJSON(w, http.StatusOK, s.view(j, rec))
		return
	}
	if j == nil {
		writeError(w, http.StatusConflict, &apiError{Code: CodeElsewhere, Message: "query " + rec.ID +
			" runs in another sqlcached process, which alone can cancel it; its status here is what that process last recorded"})
		return
	}
	j.mu.Lock()
	j.deleted = true
	j.mu.Unlock()
	j.cancel()
	ctx, cancel := context.WithTimeout(r.Context(), cancelWait)
	defer cancel()
	for {
		rec, changed := j.current()
		if final(rec.Status) {
			writeJSON(w, http.StatusOK, s.view(j, rec))
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			writeJSON(w, http.StatusAccepted, s.view(j, rec))
			return
		}
	}
}

// resultWait bounds how long a process waits for the answer of a job it
// did not run and knows is done: the answer may reach Redis after the
// record does.
const resultWait = 2 * time.Second

// result serves GET /v1/queries/{id}/result.
func (s *Server) result(w http.ResponseWriter, r *http.Request, user string) {
	format, ok := resultFormat(r)
	if !ok {
		writeError(w, http.StatusBadRequest, &apiError{Code: CodeBadFormat, Message: "format is json, csv or ndjson (or Accept: application/json, text/csv, application/x-ndjson)"})
		return
	}
	_, rec, wire, ok := s.found(w, r, user)
	if !ok {
		return
	}
	switch {
	case !final(rec.Status):
		writeError(w, http.StatusConflict, &apiError{Code: CodeNotReady, Message: "query " + rec.ID + " is " + rec.Status + "; its result is not ready"})
		return
	case rec.Status != StatusDone:
		writeError(w, http.StatusUnprocessableEntity, rec.Error)
		return
	}
	if wire == nil {
		wire = s.answerOf(r.Context(), rec.ID)
	}
	if wire == nil {
		writeError(w, http.StatusServiceUnavailable, &apiError{Code: CodeUnavailable, Message: "query " + rec.ID +
			" is done, but its result is no longer in the cache (evicted before result_ttl); run it again"})
		return
	}
	if err := writeResult(w, format, wire); err != nil {
		s.cfg.Logger.Warn("writing an http query result", "id", rec.ID, "err", err)
	}
}

// answerOf returns the wire bytes of job id's answer, waiting a little
// for them to reach Redis.
func (s *Server) answerOf(ctx context.Context, id string) []byte {
	deadline := time.Now().Add(resultWait)
	for {
		if b := s.get(ctx, jobKey(kindAnswer, id), s.cfg.ResultTTL); b != nil {
			if _, wire, ok := splitResult(b); ok {
				return wire
			}
			return nil
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}
