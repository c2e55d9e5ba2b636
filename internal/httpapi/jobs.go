package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/readpath"
)

// Statuses of a job.
const (
	StatusQueued   = "queued"    // accepted; waiting for a worker of its queue, or for a run of the same statement
	StatusRunning  = "running"   // its statement is on the warehouse
	StatusDone     = "done"      // its rows are ready
	StatusFailed   = "failed"    // error says why
	StatusTimedOut = "timed_out" // its rule's timeout ended it
	StatusCanceled = "canceled"  // DELETE or shutdown ended it
)

func final(status string) bool {
	return status != StatusQueued && status != StatusRunning
}

// Where a job's answer came from, as its status says.
const (
	CacheMiss      = "miss"      // this job's run filled the cache
	CacheHitL1     = "hit_l1"    // from this process's cache
	CacheHitL2     = "hit_l2"    // from Redis
	CacheCollapsed = "collapsed" // from a run another request had started
	CacheStale     = "stale"     // past its TTL, within stale_ttl or stale_if_error
	CacheBypass    = "bypass"    // the rules do not cache the statement: run for this job alone
)

func cacheStatus(st cache.Status) string {
	switch st {
	case cache.HitL1:
		return CacheHitL1
	case cache.HitL2:
		return CacheHitL2
	case cache.Shared:
		return CacheCollapsed
	case cache.Stale, cache.StaleIfError:
		return CacheStale
	}
	return CacheMiss
}

// record is what is known of a job at one status: kept in memory by the
// process that runs it, and in the cache for every process.
type record struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Status    string    `json:"status"`
	Submitted time.Time `json:"submitted_at"`
	Started   time.Time `json:"started_at,omitzero"`
	Finished  time.Time `json:"finished_at,omitzero"`
	Cache     string    `json:"cache,omitempty"`
	Rows      int64     `json:"rows,omitempty"`
	Error     *apiError `json:"error,omitempty"`
	// Expires is when a finished job's result and status are dropped.
	Expires time.Time `json:"expires_at,omitzero"`
}

// expired reports whether the finished job of r is past its ResultTTL.
func (r *record) expired(now time.Time) bool {
	return final(r.Status) && !r.Expires.IsZero() && !now.Before(r.Expires)
}

// job is a query this process runs.
type job struct {
	id, owner string
	queue     *executor.Queue // its rule's, for its position; nil: unknown
	ctx       context.Context // ended by DELETE, Close, or the end of the job
	cancel    context.CancelFunc

	mu        sync.Mutex    // protects the fields below
	history   []record      // every status the job had, in order; the current last
	changed   chan struct{} // closed at the next change
	finishing bool          // the final record is being stored: no other change
	deleted   bool          // canceled by DELETE rather than by Close
}

// current returns the job's record and a channel closed at its next
// change.
func (j *job) current() (record, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.history[len(j.history)-1], j.changed
}

// since returns the records from the nth on, and a channel closed at the
// next change.
func (j *job) since(n int) ([]record, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]record(nil), j.history[min(n, len(j.history)):]...), j.changed
}

// update applies f to a copy of the current record and, when f says it
// changed it, makes the copy current. A job that is finishing no longer
// changes.
func (j *job) update(f func(r *record) bool) (record, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := j.history[len(j.history)-1]
	if j.finishing || !f(&rec) {
		return rec, false
	}
	j.publishLocked(rec)
	return rec, true
}

func (j *job) publishLocked(rec record) {
	j.history = append(j.history, rec)
	close(j.changed)
	j.changed = make(chan struct{})
}

// newID returns a job id: 128 random bits, in lower-case base32.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// validID reports whether id could have come from newID.
func validID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// start admits a job for user and starts it on its own goroutine.
func (s *Server) start(user string, req *readpath.Request, pl *readpath.Plan) (*job, int, *apiError) {
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, http.StatusTooManyRequests, &apiError{Code: CodeTooMany, Message: fmt.Sprintf("%d jobs are queued or running already; try again later", s.cfg.MaxJobs)}
	}
	now := s.now()
	j := &job{id: newID(), owner: user, changed: make(chan struct{})}
	j.history = []record{{ID: j.id, Owner: user, Status: StatusQueued, Submitted: now}}
	if r := s.cfg.Reads.Rule(req, pl.Analysis); r != nil {
		j.queue = s.cfg.Queues.Get(req.Backend, r.Queue)
	}
	req.Warehouse = jobWarehouse{Warehouse: req.Warehouse, s: s, j: j}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.slots
		return nil, http.StatusServiceUnavailable, &apiError{Code: CodeClosing, Message: "the server is shutting down"}
	}
	s.sweepLocked(now)
	s.jobs[j.id] = j
	j.ctx, j.cancel = context.WithCancel(s.ctx)
	s.wg.Add(1)
	s.mu.Unlock()

	s.putRecord(kindQueued, j.history[0])
	go s.run(j, req, pl)
	return j, 0, nil
}

// sweepLocked forgets the jobs whose results have expired, once in a
// while; their tombstones stay in the cache.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < max(s.cfg.ResultTTL/4, time.Second) {
		return
	}
	s.lastSweep = now
	for id, j := range s.jobs {
		if rec, _ := j.current(); rec.expired(now) {
			delete(s.jobs, id)
		}
	}
}

// forget drops j from memory.
func (s *Server) forget(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs[j.id] == j {
		delete(s.jobs, j.id)
	}
}

// run answers j's statement and records how it ended.
func (s *Server) run(j *job, req *readpath.Request, pl *readpath.Plan) {
	defer s.wg.Done()
	defer j.cancel()
	begun := s.now()
	wire, rows, how, err := s.answer(j.ctx, req, pl)
	rec := s.finish(j, begun, wire, rows, how, err)
	<-s.slots // before the job says it has finished: its slot is free then
	j.mu.Lock()
	j.publishLocked(rec)
	j.mu.Unlock()
}

// answer returns the answer to req: through the read path when the rules
// cache it, else run on the rule's queue under its timeout.
func (s *Server) answer(ctx context.Context, req *readpath.Request, pl *readpath.Plan) (wire []byte, rows int64, how string, err error) {
	if pl.Decision.Cache {
		res, err := s.cfg.Reads.Get(ctx, req, pl)
		if err != nil {
			return nil, 0, "", err
		}
		return res.Entry.Payload, res.Entry.Rows, cacheStatus(res.Status), nil
	}
	var (
		q       *executor.Queue
		name    string
		timeout time.Duration
	)
	if r := s.cfg.Reads.Rule(req, pl.Analysis); r != nil {
		q, name, timeout = s.cfg.Queues.Get(req.Backend, r.Queue), r.Name, r.Timeout
	}
	ex := &executor.Request{
		Login: req.Login, SQL: req.SQL, Params: req.Params, Settings: req.Settings,
		MaxBytes: s.cfg.MaxResultBytes,
	}
	res, err := executor.Run(ctx, q, executor.Foreground, req.Warehouse, ex, name, timeout)
	if err != nil {
		return nil, 0, "", err
	}
	return res.Wire, res.Rows, CacheBypass, nil
}

// jobWarehouse marks its job running when a worker takes its statement to
// the warehouse. A background refresh of the entry (stale_ttl,
// refresh_ahead) runs through it too, for no job: it marks nothing.
type jobWarehouse struct {
	executor.Warehouse
	s *Server
	j *job
}

func (w jobWarehouse) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	if !cache.Background(ctx) {
		w.s.running(w.j)
	}
	return w.Warehouse.Execute(ctx, req)
}

// running marks j running, once, unless it has finished: a refresh of a
// finished job's entry runs through the same warehouse.
func (s *Server) running(j *job) {
	now := s.now()
	rec, ok := j.update(func(r *record) bool {
		if r.Status != StatusQueued {
			return false
		}
		r.Status, r.Started = StatusRunning, now
		return true
	})
	if ok {
		s.putRecord(kindRunning, rec)
	}
}

// finish returns j's final record: its answer (wire, rows, from how) or
// err. It stores the result and the record first, so that whoever sees
// the job finished finds them.
func (s *Server) finish(j *job, begun time.Time, wire []byte, rows int64, how string, err error) record {
	now := s.now()
	j.mu.Lock()
	j.finishing = true
	rec := j.history[len(j.history)-1]
	deleted := j.deleted
	j.mu.Unlock()

	rec.Finished, rec.Expires, rec.Cache = now, now.Add(s.cfg.ResultTTL), how
	if rec.Started.IsZero() {
		rec.Started = begun
	}
	switch {
	case err != nil:
		rec.Status, rec.Error = s.jobError(j.ctx, deleted, err)
	case !s.putResult(rec, wire, rows):
		rec.Status, rec.Error = StatusFailed, &apiError{Code: CodeResultTooLarge, SQLState: "54000", Message: fmt.Sprintf(
			"the answer (%d bytes) could not be kept for its job: it is larger than the cache keeps", len(wire))}
	default:
		rec.Status, rec.Rows = StatusDone, rows
	}
	if rec.Status != StatusDone {
		rec.Cache = ""
	}
	s.putRecord(kindFinal, rec)
	if rec.Status == StatusFailed && rec.Error.Code == CodeInternal {
		s.cfg.Logger.Warn("http query failed", "id", j.id, "user", j.owner, "err", err)
	}
	return rec
}

// jobError returns the status and error of a job that ended with err;
// ctx is the job's, deleted says DELETE canceled it.
func (s *Server) jobError(ctx context.Context, deleted bool, err error) (string, *apiError) {
	var (
		pe *pgconn.PgError
		te *executor.TimeoutError
		qe *executor.QueueError
		ce *pgconn.ConnectError
		ne net.Error
	)
	switch {
	case ctx.Err() != nil && deleted:
		return StatusCanceled, &apiError{Code: CodeCanceled, SQLState: "57014", Message: "canceled by DELETE"}
	case ctx.Err() != nil:
		return StatusCanceled, &apiError{Code: CodeCanceled, SQLState: "57014", Message: "canceled: the server is shutting down"}
	case errors.As(err, &te):
		return StatusTimedOut, &apiError{Code: CodeTimeout, SQLState: "57014", Message: te.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return StatusTimedOut, &apiError{Code: CodeTimeout, SQLState: "57014", Message: "canceling statement due to statement timeout"}
	case errors.As(err, &pe):
		return StatusFailed, &apiError{Code: CodeSQL, SQLState: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}
	case errors.As(err, &qe):
		return StatusFailed, &apiError{Code: CodeOverloaded, SQLState: "53000", Message: qe.Error()}
	case errors.Is(err, postgres.ErrPoolTimeout):
		return StatusFailed, &apiError{Code: CodeOverloaded, SQLState: "53300", Message: "no warehouse connection became free in time"}
	case errors.Is(err, cache.ErrTooLarge), errors.Is(err, executor.ErrTooLarge):
		return StatusFailed, &apiError{Code: CodeResultTooLarge, SQLState: "54000", Message: "the answer is larger than a job may hold (the rule's max_entry_bytes, or MaxResultBytes for statements the rules do not cache)"}
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, postgres.ErrPoolClosed):
		return StatusFailed, &apiError{Code: CodeWarehouse, SQLState: "08006", Message: "warehouse connection lost or refused: " + err.Error()}
	}
	return StatusFailed, &apiError{Code: CodeInternal, SQLState: "XX000", Message: err.Error()}
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }
