package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Errors returned by the package.
var (
	// ErrTooLarge means the answer is larger than the Group stores: each
	// caller streams it itself. A Filler returns it (possibly wrapped) as
	// soon as it knows, and the Group then answers it for the key without a
	// fill for Config.TooLargeTTL.
	ErrTooLarge = errors.New("cache: answer too large to cache")
	// ErrNotCacheable is returned by Get for a Request with no TTL.
	ErrNotCacheable = errors.New("cache: request not cacheable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("cache: group closed")
	// ErrInvalidationPending is returned, wrapping Redis's error, by an
	// invalidation that applied in this process but could not reach Redis:
	// the Group retries it until Redis takes it, and logs the outage once
	// (see Config.Logger), so that callers need not log it at all.
	ErrInvalidationPending = errors.New("cache: invalidation not yet shared through Redis, retrying")

	// ErrUnknownVersion and ErrCorrupt are returned by Decode. The Group
	// reads both as a miss.
	ErrUnknownVersion = errors.New("cache: unknown entry version")
	ErrCorrupt        = errors.New("cache: corrupt entry")
)

// Request is what Get needs to know of a query besides how to fill it.
type Request struct {
	Key Key

	// TTL is how long an entry stays fresh for this request. It must be
	// positive. Freshness is judged by the requesting rule, not stored: one
	// entry may be fresh for a dashboard and stale for a report.
	TTL time.Duration
	// StaleTTL extends TTL: an entry younger than TTL+StaleTTL is served at
	// once while one background fill refreshes it.
	StaleTTL time.Duration
	// StaleIfError is the age under which an entry is served when the fill
	// fails, with the error in Result.FillErr.
	StaleIfError time.Duration

	// Tables and Labels are what the answer read and who asked, by which
	// InvalidateTables and InvalidateLabel find it. Names are compared as
	// they are: the caller normalises them.
	Tables []string
	Labels []Label

	// RefreshAhead starts one background refresh of an entry asked for
	// within this long before its TTL ends, so that a query asked often
	// never meets a miss. 0: off.
	RefreshAhead time.Duration

	// CancelAbandoned cancels a fill when every Get waiting for it has
	// given up; otherwise the fill finishes and its answer is stored.
	CancelAbandoned bool

	// Keep, when longer than this request's own window, is how long an
	// entry it stores is kept in L1 and Redis: the longest any request
	// for the same key may find it useful (requests for one key with
	// different TTLs, as two dashboards sending one query under rules of
	// 1s and 1h, share the entry).
	Keep time.Duration
}

// window is how long an entry stored for r is kept in L1 and Redis: the
// longest it is of any use to r, or r.Keep.
func (r Request) window() time.Duration {
	return max(r.TTL, r.TTL+r.StaleTTL, r.StaleIfError, r.Keep)
}

// Status says where an answer came from.
type Status uint8

const (
	Miss         Status = iota // this Get ran the fill
	HitL1                      // fresh, from this process
	HitL2                      // fresh, from Redis
	Stale                      // past its TTL, within StaleTTL; a refresh runs
	StaleIfError               // the fill failed; Result.FillErr says why
	Shared                     // another Get's fill, collapsed onto
)

var statusNames = [...]string{"miss", "hit-l1", "hit-l2", "stale", "stale-if-error", "shared"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", s)
}

// Result is Get's answer.
type Result struct {
	// Entry is shared and immutable; see Entry.
	Entry  *Entry
	Status Status
	// Age is the entry's age when Get returned it.
	Age time.Duration
	// FillErr is the fill's error when Status is StaleIfError, so that the
	// caller can tell its user the answer is old.
	FillErr error
}

// A Filler produces the answer for a Request that the cache cannot give.
//
// Fill runs detached from the caller's cancellation (the caller adds its own
// timeout inside), once for all the Gets of a key that wait at the same time.
// It returns a new Entry with Payload and Rows set; the Group owns it from
// then on. It returns ErrTooLarge when the answer is too large to cache.
type Filler interface {
	Fill(ctx context.Context) (*Entry, error)
}

// FillFunc adapts a function to Filler.
type FillFunc func(ctx context.Context) (*Entry, error)

// Fill calls f(ctx).
func (f FillFunc) Fill(ctx context.Context) (*Entry, error) { return f(ctx) }

var _ Filler = FillFunc(nil)

// Group is a two-tier cache with one read path, Get. It is safe for
// concurrent use.
type Group struct {
	cfg    Config
	now    func() time.Time
	l1     *l1
	l2     *l2 // nil: L1 only
	flight singleflight.Group
	stats  counters
	origin [8]byte // names this Group in invalidation messages

	tooLarge tooLarge
	pending  pending

	// closeMu guards the ristretto cache against Close: ristretto panics if
	// used while it closes. Readers hold it around every use of l1.c.
	closeMu sync.RWMutex
	closed  bool // under closeMu

	// subMu guards the invalidation subscription, replaced when the
	// Sentinel master switches, against Close.
	subMu      sync.Mutex
	sub        *redis.PubSub // invalidations from other processes; nil: L1 only
	subStopped bool          // by Close

	refreshMu  sync.Mutex // protects refreshing
	refreshing map[Key]struct{}

	waitMu  sync.Mutex // protects waiting
	waiting map[Key]*waiters

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // writers, refreshes, the watchers
}

// New returns a Group configured by cfg, with defaults filled in. A Redis
// that cannot be reached is not an error: the Group starts on L1 and uses
// Redis when it answers.
func New(cfg Config) (*Group, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l1, err := newL1(cfg.L1MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	g := &Group{
		cfg:        cfg,
		now:        cfg.Now,
		l1:         l1,
		tooLarge:   tooLarge{max: cfg.TooLargeKeys, ttl: cfg.TooLargeTTL, m: make(map[Key]time.Time)},
		refreshing: make(map[Key]struct{}),
		waiting:    make(map[Key]*waiters),
	}
	_, _ = rand.Read(g.origin[:])
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if cfg.L2 != nil {
		if g.l2, err = newL2(cfg.L2, cfg.MaxEntryBytes, g.now, &g.stats, cfg.Logger, cfg.OnL2Call); err != nil {
			l1.close()
			return nil, err
		}
		g.startL2()
	}
	return g, nil
}

// Close stops the Group's goroutines (Redis writers, background refreshes,
// the invalidation watcher) and waits for them; writes still queued are
// dropped. Gets after Close return ErrClosed. Close is idempotent.
func (g *Group) Close() {
	g.closeMu.Lock()
	if g.closed {
		g.closeMu.Unlock()
		return
	}
	g.closed = true
	g.closeMu.Unlock()

	g.refreshMu.Lock() // no refresh starts after this
	g.cancel()
	g.refreshMu.Unlock()
	g.stopL2()
	g.wg.Wait()
	if g.l2 != nil {
		g.l2.close()
	}
	g.l1.close()
}

// Get returns the answer for req: from L1, from Redis, or from fill, run
// once for every Get of the key waiting at the same time.
//
// A Get whose ctx ends while it waits for a fill returns ctx.Err() at once;
// the fill carries on and its answer is stored. An entry past req.TTL but
// within req.StaleTTL is served at once while one background fill refreshes
// it. When the fill fails and an entry younger than req.StaleIfError exists,
// Get returns it with Status StaleIfError and the fill's error in FillErr;
// otherwise it returns the fill's error.
func (g *Group) Get(ctx context.Context, req Request, fill Filler) (Result, error) {
	if req.TTL <= 0 {
		return Result{}, ErrNotCacheable
	}
	now := g.now()
	res, e, err := g.peek(req, now)
	if err != nil || res.Entry != nil {
		if res.Entry != nil && g.dueAhead(req, res.Age) {
			g.refresh(ctx, req, fill)
		}
		return res, err
	}
	return g.getSlow(ctx, req, fill, e, now)
}

// dueAhead reports whether a fresh entry of age is in req's refresh-ahead
// window.
func (g *Group) dueAhead(req Request, age time.Duration) bool {
	return req.RefreshAhead > 0 && age >= req.TTL-req.RefreshAhead
}

// Peek returns a fresh answer from this process's tier, or false: it never
// waits, fills or calls Redis. Callers that must prepare for waiting (a
// fill, a timer) try it first, so that a hit costs none of that.
func (g *Group) Peek(req Request) (Result, bool) {
	if req.TTL <= 0 {
		return Result{}, false
	}
	res, _, _ := g.peek(req, g.now())
	if res.Entry != nil && g.dueAhead(req, res.Age) {
		return Result{}, false // Get serves it and starts the refresh
	}
	return res, res.Entry != nil
}

// peek looks in L1: a fresh entry is the answer; a stale one is returned
// as e for the slow path.
func (g *Group) peek(req Request, now time.Time) (res Result, e *Entry, err error) {
	g.closeMu.RLock()
	if g.closed {
		g.closeMu.RUnlock()
		return Result{}, nil, ErrClosed
	}
	e = g.l1.get(req.Key)
	g.closeMu.RUnlock()
	if e != nil {
		if age := now.Sub(e.Created); age < req.TTL {
			g.stats.l1Hits.Add(1)
			return Result{Entry: e, Status: HitL1, Age: age}, e, nil
		}
	}
	return Result{}, e, nil
}

// getSlow continues Get when L1 had no fresh entry; e is L1's stale one.
func (g *Group) getSlow(ctx context.Context, req Request, fill Filler, e *Entry, now time.Time) (Result, error) {
	var rgens []uint64
	if g.l2 != nil && g.pending.any() {
		g.l2.incident.Count(readsWithoutRedis)
	} else if g.l2 != nil {
		var e2 *Entry
		e2, rgens = g.lookupL2(ctx, req)
		if e2 != nil {
			age := now.Sub(e2.Created)
			if age < req.TTL {
				g.stats.l2Hits.Add(1)
				return Result{Entry: e2, Status: HitL2, Age: age}, nil
			}
			if e == nil || e2.Created.After(e.Created) {
				e = e2
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if e != nil {
		if age := now.Sub(e.Created); age < req.TTL+req.StaleTTL {
			g.refresh(ctx, req, fill)
			g.stats.stale.Add(1)
			return Result{Entry: e, Status: Stale, Age: age}, nil
		}
	}
	if g.tooLarge.has(req.Key, now) {
		g.stats.tooLarge.Add(1)
		return Result{}, ErrTooLarge
	}
	return g.load(ctx, req, fill, e, rgens)
}

// lookupL2 returns the entry Redis holds for req, or nil when it has none,
// none still valid or cannot say, and the current Redis generations of
// req's names (nil when Redis did not answer). An entry Redis gives is put
// in L1 before it is returned.
func (g *Group) lookupL2(ctx context.Context, req Request) (*Entry, []uint64) {
	names := genNames(req.Tables, req.Labels)
	snap := g.l1.snapshot(names)
	rnames := withAll(names)
	raw, gens, ok := g.l2.get(ctx, req.Key, rnames)
	if !ok {
		return nil, nil
	}
	if raw == nil {
		return nil, gens
	}
	e := g.l2.decode(req.Key, raw)
	if e == nil || !g.stillValid(ctx, e, rnames, gens) {
		return nil, gens
	}
	e.window = req.window()
	g.storeL1(e, genNames(e.Tables, e.Labels), snap)
	return e, gens
}

// stillValid reports whether no invalidation has moved the generations e
// was filled under. gens are the current ones of rnames; an entry stored by
// a request with other labels needs its own read.
func (g *Group) stillValid(ctx context.Context, e *Entry, rnames []string, gens []uint64) bool {
	enames := remoteNames(e.Tables, e.Labels)
	if !slices.Equal(enames, rnames) {
		var ok bool
		if gens, ok = g.l2.gens(ctx, enames, readsWithoutRedis); !ok {
			return false
		}
	}
	return equalGens(gens, e.gens)
}

// flight is what a fill gives every Get that waited for it.
type flight struct {
	entry  *Entry
	err    error
	leader *byte // the token of the Get that ran it
	cached bool  // found fresh in L1 inside the flight, not filled
}

// load runs or joins the flight for req's key and waits for it or for ctx.
// fallback is the best entry Get found, for stale-if-error.
func (g *Group) load(ctx context.Context, req Request, fill Filler, fallback *Entry, rgens []uint64) (Result, error) {
	me := new(byte)
	detached := context.WithoutCancel(ctx)
	if req.CancelAbandoned {
		var leave func()
		detached, leave = g.join(req.Key, detached)
		defer leave()
	}
	ch := g.flight.DoChan(string(req.Key[:]), func() (any, error) {
		return g.run(detached, req, fill, me, rgens), nil
	})
	select {
	case r := <-ch:
		return g.finish(req, r.Val.(*flight), me, fallback)
	case <-ctx.Done():
		g.stats.cancelled.Add(1)
		return Result{}, ctx.Err()
	}
}

// waiters counts the Gets waiting for a fill that is cancelled when the
// last of them leaves.
type waiters struct {
	n      int
	ctx    context.Context
	cancel context.CancelFunc
}

// join counts a Get waiting for req's fill and returns the context the
// fill runs under, which ends when the last Get counted leaves, and the
// function that says this one leaves.
func (g *Group) join(key Key, base context.Context) (context.Context, func()) {
	g.waitMu.Lock()
	w := g.waiting[key]
	if w == nil {
		w = &waiters{}
		w.ctx, w.cancel = context.WithCancel(base)
		g.waiting[key] = w
	}
	w.n++
	g.waitMu.Unlock()
	return w.ctx, func() {
		g.waitMu.Lock()
		defer g.waitMu.Unlock()
		if w.n--; w.n == 0 {
			if g.waiting[key] == w {
				delete(g.waiting, key)
			}
			w.cancel()
		}
	}
}

// run is the body of a flight: look again, fill, store. rgens are the Redis
// generations of req's names read before the fill; without them the entry
// stays out of Redis.
func (g *Group) run(ctx context.Context, req Request, fill Filler, leader *byte, rgens []uint64) *flight {
	start := g.now()
	if e := g.getL1(req.Key); e != nil && start.Sub(e.Created) < req.TTL && !g.dueAhead(req, start.Sub(e.Created)) {
		return &flight{entry: e, leader: leader, cached: true}
	}
	names := genNames(req.Tables, req.Labels)
	snap := g.l1.snapshot(names)
	g.stats.fills.Add(1)
	e, err := fill.Fill(ctx)
	switch {
	case errors.Is(err, ErrTooLarge):
		g.tooLarge.add(req.Key, start)
		return &flight{err: ErrTooLarge, leader: leader}
	case err != nil:
		g.stats.fillErrors.Add(1)
		return &flight{err: err, leader: leader}
	case e == nil:
		g.stats.fillErrors.Add(1)
		return &flight{err: errors.New("cache: fill returned neither an entry nor an error"), leader: leader}
	}
	g.keep(req, e, start, names, snap, rgens)
	return &flight{entry: e, leader: leader}
}

// keep stores e, the answer to req produced from start on, in L1 unless
// an invalidation of names overtook snap, and in Redis when rgens, the
// Redis generations read before start, are known. It reports whether e
// was stored.
func (g *Group) keep(req Request, e *Entry, start time.Time, names []string, snap localGen, rgens []uint64) bool {
	e.Key = req.Key
	if e.Created.IsZero() || e.Created.After(start) {
		e.Created = start
	}
	e.Tables, e.Labels = slices.Clone(req.Tables), slices.Clone(req.Labels)
	if !e.derived {
		e.gens = rgens
	} else if len(e.gens) != len(rgens) {
		e.gens = nil // not the source's names: keep it out of Redis
	}
	e.window = req.window()
	e.size = e.encodedLen()
	if e.size > g.cfg.MaxEntryBytes {
		g.tooLarge.add(req.Key, start)
		return false
	}
	if !g.storeL1(e, names, snap) {
		return false
	}
	if e.gens != nil {
		g.l2.enqueue(e)
	}
	return true
}

// A Reservation is what Lookup read before a miss whose answer the caller
// produces itself rather than through a Filler: a statement run on a
// warehouse connection the caller holds, inside its own transaction.
// Store keeps that answer unless an invalidation of what it read came in
// between. A Reservation is for one Store.
type Reservation struct {
	req   Request
	start time.Time
	names []string
	snap  localGen
	rgens []uint64
}

// Lookup returns a fresh answer to req from L1 or Redis, without filling,
// collapsing or serving stale entries. On a miss it returns a Reservation
// for Store, or nil when the answer is known to be too large to keep or
// the Group is closed. A Redis that fails or is slow is a miss.
func (g *Group) Lookup(ctx context.Context, req Request) (Result, *Reservation) {
	if req.TTL <= 0 {
		return Result{}, nil
	}
	now := g.now()
	res, _, err := g.peek(req, now)
	if err != nil || res.Entry != nil {
		return res, nil
	}
	var rgens []uint64
	if g.l2 != nil && !g.pending.any() {
		var e *Entry
		if e, rgens = g.lookupL2(ctx, req); e != nil {
			if age := now.Sub(e.Created); age < req.TTL {
				g.stats.l2Hits.Add(1)
				return Result{Entry: e, Status: HitL2, Age: age}, nil
			}
		}
	}
	if g.tooLarge.has(req.Key, now) {
		g.stats.tooLarge.Add(1)
		return Result{}, nil
	}
	names := genNames(req.Tables, req.Labels)
	return Result{}, &Reservation{req: req, start: g.now(), names: names, snap: g.l1.snapshot(names), rgens: rgens}
}

// Store keeps e, the answer to r's request, as a fill's answer would be
// kept. e must have Payload and Rows set; the Group owns it from then on.
// It reports whether e was stored: false when an invalidation of what it
// read came after Lookup, when it is larger than MaxEntryBytes, or after
// Close.
func (g *Group) Store(r *Reservation, e *Entry) bool {
	if r == nil || e == nil {
		return false
	}
	g.stats.misses.Add(1)
	return g.keep(r.req, e, r.start, r.names, r.snap, r.rgens)
}

// finish turns a flight into one Get's answer.
func (g *Group) finish(req Request, f *flight, me *byte, fallback *Entry) (Result, error) {
	now := g.now()
	if f.err == nil {
		st := Miss
		switch {
		case f.leader != me:
			st = Shared
			g.stats.collapsed.Add(1)
		case f.cached:
			st = HitL1
			g.stats.l1Hits.Add(1)
		default:
			g.stats.misses.Add(1)
		}
		return Result{Entry: f.entry, Status: st, Age: now.Sub(f.entry.Created)}, nil
	}
	if errors.Is(f.err, ErrTooLarge) {
		g.stats.tooLarge.Add(1)
		return Result{}, ErrTooLarge
	}
	if fallback == nil {
		fallback = g.getL1(req.Key)
	}
	if fallback != nil {
		if age := now.Sub(fallback.Created); age < req.StaleIfError {
			g.stats.staleIfError.Add(1)
			return Result{Entry: fallback, Status: StaleIfError, Age: age, FillErr: f.err}, nil
		}
	}
	return Result{}, f.err
}

type backgroundKey struct{}

// Background reports whether a Filler runs for a background refresh
// (stale-while-revalidate, refresh ahead) that no caller waits for, so
// that it may yield to work a client waits for.
func Background(ctx context.Context) bool {
	v, _ := ctx.Value(backgroundKey{}).(bool)
	return v
}

// refresh starts a background fill of req's key unless one runs already or
// MaxRefreshes do. It runs until done or Close.
func (g *Group) refresh(ctx context.Context, req Request, fill Filler) {
	g.refreshMu.Lock()
	_, running := g.refreshing[req.Key]
	if running || g.ctx.Err() != nil || len(g.refreshing) >= g.cfg.MaxRefreshes {
		g.refreshMu.Unlock()
		return
	}
	g.refreshing[req.Key] = struct{}{}
	g.wg.Add(1)
	g.refreshMu.Unlock()
	g.stats.refreshes.Add(1)

	rctx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), backgroundKey{}, true))
	stop := context.AfterFunc(g.ctx, cancel)
	go func() {
		defer g.wg.Done()
		defer func() {
			stop()
			cancel()
			g.refreshMu.Lock()
			delete(g.refreshing, req.Key)
			g.refreshMu.Unlock()
		}()
		var rgens []uint64
		if g.l2 != nil && !g.pending.any() {
			rgens, _ = g.l2.gens(rctx, remoteNames(req.Tables, req.Labels), writesDropped)
		}
		me := new(byte)
		ch := g.flight.DoChan(string(req.Key[:]), func() (any, error) {
			return g.run(rctx, req, fill, me, rgens), nil
		})
		select {
		case <-ch:
		case <-g.ctx.Done():
		}
	}()
}

// getL1 is l1.get for the paths that may run during Close.
func (g *Group) getL1(k Key) *Entry {
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if g.closed {
		return nil
	}
	return g.l1.get(k)
}

// storeL1 puts e in L1 unless an invalidation of names overtook snap, and
// waits until it is visible so that the next flight for its key finds it.
// It reports whether e may be stored at all (false: invalidated).
func (g *Group) storeL1(e *Entry, names []string, snap localGen) bool {
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if g.closed {
		return false
	}
	ttl := e.window - g.now().Sub(e.Created)
	if ttl <= 0 {
		return false
	}
	if !g.l1.store(e, names, snap, ttl) {
		g.stats.storeSkipped.Add(1)
		return false
	}
	g.l1.c.Wait()
	return true
}

// genNames names the generations an entry depends on besides allName:
// "t:<table>" and "l:<name>=<value>".
func genNames(tables []string, labels []Label) []string {
	names := make([]string, 0, len(tables)+len(labels))
	for _, t := range tables {
		names = append(names, "t:"+t)
	}
	for _, l := range labels {
		names = append(names, "l:"+l.Name+"="+l.Value)
	}
	return names
}

// remoteNames are the Redis generations an entry records: allName first,
// then genNames.
func remoteNames(tables []string, labels []Label) []string {
	return withAll(genNames(tables, labels))
}

func withAll(names []string) []string {
	return append([]string{allName}, names...)
}

// tooLarge remembers keys whose answers were too large, for a while.
type tooLarge struct {
	max int
	ttl time.Duration

	mu sync.Mutex        // protects m
	m  map[Key]time.Time // key -> until
}

func (t *tooLarge) has(k Key, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.m[k]
	if ok && !now.Before(until) {
		delete(t.m, k)
		return false
	}
	return ok
}

func (t *tooLarge) add(k Key, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		for k, until := range t.m {
			if !now.Before(until) {
				delete(t.m, k)
			}
		}
	}
	for k := range t.m {
		if len(t.m) < t.max {
			break
		}
		delete(t.m, k)
	}
	t.m[k] = now.Add(t.ttl)
}

// pending holds the invalidations that could not reach Redis. While any is
// pending, the Group neither reads nor writes Redis entries, which may be
// stale; the watcher retries them.
type pending struct {
	set atomic.Bool

	mu    sync.Mutex // protects names
	names map[string]struct{}
}

// maxPending bounds pending names; beyond it they become one allName.
const maxPending = 1024

func (p *pending) any() bool { return p.set.Load() }

func (p *pending) add(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names == nil {
		p.names = make(map[string]struct{})
	}
	for _, n := range names {
		p.names[n] = struct{}{}
	}
	if len(p.names) > maxPending {
		clear(p.names)
		p.names[allName] = struct{}{}
	}
	p.set.Store(true)
}

// list returns the pending names.
func (p *pending) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.names))
	for n := range p.names {
		names = append(names, n)
	}
	return names
}

// done removes names, sent to Redis.
func (p *pending) done(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		delete(p.names, n)
	}
	p.set.Store(len(p.names) > 0)
}
