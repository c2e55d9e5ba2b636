package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// pollInterval is how often an event stream for a job another process
// runs reads its record again.
const pollInterval = 500 * time.Millisecond

// events serves GET /v1/queries/{id}/events: Server-Sent Events, one
// "status" event per status the job has had, in order, ending after a
// final one. A job this process runs reports every change; one another
// process runs reports the changes its records show.
func (s *Server) events(w http.ResponseWriter, r *http.Request, user string) {
	j, rec, _, ok := s.found(w, r, user)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // the stream lasts as long as the job
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	st := &stream{w: w, rc: rc}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	if j != nil {
		s.localEvents(r, st, j, heartbeat.C)
	} else {
		s.sharedEvents(r, st, rec, heartbeat.C)
	}
}

// localEvents streams the statuses of a job this process runs. It does
// not stop at Close: Close cancels the job, whose final status comes
// soon.
func (s *Server) localEvents(r *http.Request, st *stream, j *job, heartbeat <-chan time.Time) {
	for sent := 0; ; {
		recs, changed := j.since(sent)
		for _, rec := range recs {
			if st.status(s.view(j, rec)) != nil || final(rec.Status) {
				return
			}
			sent++
		}
		select {
		case <-changed:
		case <-heartbeat:
			if st.comment("heartbeat") != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// sharedEvents streams the statuses the cache records for a job another
// process runs, starting with rec.
func (s *Server) sharedEvents(r *http.Request, st *stream, rec record, heartbeat <-chan time.Time) {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	last := ""
	for {
		if rec.Status != last {
			if st.status(s.view(nil, rec)) != nil || final(rec.Status) {
				return
			}
			last = rec.Status
		}
		select {
		case <-poll.C:
			next, _, ok := s.lookup(r.Context(), rec.ID)
			if !ok {
				return // expired, or evicted: nothing more to tell
			}
			rec = next
		case <-heartbeat:
			if st.comment("heartbeat") != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// stream writes Server-Sent Events.
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  int // events sent, for their ids
}

func (st *stream) status(v statusView) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	st.n++
	var b bytes.Buffer
	b.WriteString("id: " + strconv.Itoa(st.n) + "\nevent: status\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return st.write(b.Bytes())
}

func (st *stream) comment(text string) error {
	return st.write([]byte(": " + text + "\n\n"))
}

func (st *stream) write(b []byte) error {
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}
