package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/sqlcached/sqlcached/cache"
)

// Job records and results in the cache Group. Each status a job reaches
// is an entry of its own (the Group keeps an entry until it expires; it
// does not overwrite one), and a reader takes the latest it finds: the
// answer, then the final record, then running, then queued.
//
// Keys are a hash of a prefix no query key is made from, the kind and the
// job id. The answer entry holds the final record too, so that a process
// that finds it has both at once, whatever order Redis got them in.

// Kinds of entry kept for a job.
const (
	kindQueued  = 'q'
	kindRunning = 'r'
	kindFinal   = 'f'
	kindAnswer  = 'a' // the final record and the answer's wire bytes
)

// storeTimeout bounds the cache calls of a store or a lookup; Redis calls
// have the Group's own, shorter bound.
const storeTimeout = 5 * time.Second

func jobKey(kind byte, id string) cache.Key {
	h := sha256.Sum256([]byte("sqlcached/httpapi/v1\x00" + string(kind) + "\x00" + id))
	return cache.Key(h[:16])
}

// recordTTL is how long a record is kept: its result's time and the
// tombstone's after it.
func (s *Server) recordTTL() time.Duration { return s.cfg.ResultTTL + s.cfg.ExpiredTTL }

// put stores payload under k for ttl, unless the Group has it already.
func (s *Server) put(k cache.Key, ttl time.Duration, payload []byte, rows int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	res, resv := s.cfg.Cache.Lookup(ctx, cache.Request{Key: k, TTL: ttl})
	if res.Entry != nil || resv == nil {
		return false
	}
	return s.cfg.Cache.Store(resv, &cache.Entry{Payload: payload, Rows: rows})
}

// get returns the payload stored under k, if fresh within ttl.
func (s *Server) get(ctx context.Context, k cache.Key, ttl time.Duration) []byte {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	res, _ := s.cfg.Cache.Lookup(ctx, cache.Request{Key: k, TTL: ttl})
	if res.Entry == nil {
		return nil
	}
	return res.Entry.Payload
}

// putRecord stores rec as the job's record of kind.
func (s *Server) putRecord(kind byte, rec record) {
	b, err := json.Marshal(rec)
	if err != nil {
		panic("httpapi: encoding a record: " + err.Error()) // only plain fields
	}
	if !s.put(jobKey(kind, rec.ID), s.recordTTL(), b, 0) {
		s.cfg.Logger.Debug("http query record not stored", "id", rec.ID, "status", rec.Status)
	}
}

// putResult stores the answer of rec's job, with rec, for ResultTTL.
func (s *Server) putResult(rec record, wire []byte, rows int64) bool {
	rec.Status, rec.Rows = StatusDone, rows
	head, err := json.Marshal(rec)
	if err != nil {
		panic("httpapi: encoding a record: " + err.Error())
	}
	b := make([]byte, 0, binary.MaxVarintLen64+len(head)+len(wire))
	b = binary.AppendUvarint(b, uint64(len(head)))
	b = append(b, head...)
	b = append(b, wire...)
	return s.put(jobKey(kindAnswer, rec.ID), s.cfg.ResultTTL, b, rows)
}

// splitResult returns the record and the wire bytes of an answer entry.
func splitResult(b []byte) (record, []byte, bool) {
	var rec record
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return rec, nil, false
	}
	if json.Unmarshal(b[w:w+int(n)], &rec) != nil {
		return rec, nil, false
	}
	return rec, b[w+int(n):], true
}

// lookup returns the latest record the cache holds for job id and, when
// the job is done and its result kept, the answer's wire bytes.
func (s *Server) lookup(ctx context.Context, id string) (rec record, wire []byte, ok bool) {
	if b := s.get(ctx, jobKey(kindAnswer, id), s.cfg.ResultTTL); b != nil {
		if rec, wire, ok := splitResult(b); ok {
			return rec, wire, true
		}
	}
	for _, kind := range []byte{kindFinal, kindRunning, kindQueued} {
		if b := s.get(ctx, jobKey(kind, id), s.recordTTL()); b != nil && json.Unmarshal(b, &rec) == nil {
			return rec, nil, true
		}
	}
	return record{}, nil, false
}

// find returns job id for user: the job itself when this process runs
// it (j non-nil), else the cache's record. A job of another user is not
// found, as an unknown one.
func (s *Server) find(ctx context.Context, id, user string) (j *job, rec record, wire []byte, ok bool) {
	if !validID(id) {
		return nil, record{}, nil, false
	}
	s.mu.Lock()
	j = s.jobs[id]
	s.mu.Unlock()
	if j != nil {
		if j.owner != user {
			return nil, record{}, nil, false
		}
		rec, _ = j.current()
		return j, rec, nil, true
	}
	rec, wire, ok = s.lookup(ctx, id)
	if !ok || rec.Owner != user || rec.ID != id {
		return nil, record{}, nil, false
	}
	return nil, rec, wire, true
}
