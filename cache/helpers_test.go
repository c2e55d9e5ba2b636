package cache

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func keyOf(s string) Key {
	sum := sha256.Sum256([]byte(s))
	return Key(sum[:16])
}

// filler counts its fills and answers payload, or err.
type filler struct {
	n       atomic.Int64
	payload atomic.Value  // string
	err     atomic.Value  // error wrapper
	gate    chan struct{} // if set, each fill waits for it to close or yield
	started chan struct{} // if set, each fill sends on it when it starts
}

type errBox struct{ err error }

func newFiller(payload string) *filler {
	f := &filler{}
	f.payload.Store(payload)
	f.err.Store(errBox{})
	return f
}

func (f *filler) Fill(ctx context.Context) (*Entry, error) {
	f.n.Add(1)
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := f.err.Load().(errBox).err; err != nil {
		return nil, err
	}
	p := f.payload.Load().(string)
	return &Entry{Payload: []byte(p), Rows: 1}, nil
}

func (f *filler) fills() int64 { return f.n.Load() }

func (f *filler) setErr(err error) { f.err.Store(errBox{err}) }

func (f *filler) setPayload(p string) { f.payload.Store(p) }

// newGroup returns a Group closed when the test ends.
func newGroup(t testing.TB, cfg Config) *Group {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(g.Close)
	return g
}

var namespaces atomic.Int64

// l2Config returns an L2 configuration on r in a namespace of its own, so
// that tests sharing a server (and runs with -count) never meet. Its
// timeout is generous: a loaded test machine must not turn a test about
// something else into one about timeouts.
func l2Config(t testing.TB, r *testenv.Redis) *L2Config {
	ns := fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), namespaces.Add(1))
	return &L2Config{URL: r.URL(0), Namespace: ns, Timeout: time.Second}
}

func request(name string, ttl time.Duration) Request {
	return Request{Key: keyOf(name), TTL: ttl}
}

func mustGet(t testing.TB, g *Group, req Request, f Filler) Result {
	t.Helper()
	r, err := g.Get(context.Background(), req, f)
	if err != nil {
		t.Fatalf("Get(%v): %v", req.Key, err)
	}
	return r
}

func wantStatus(t testing.TB, r Result, want Status, payload string) {
	t.Helper()
	if r.Status != want {
		t.Errorf("status = %v, want %v", r.Status, want)
	}
	if r.Entry == nil || string(r.Entry.Payload) != payload {
		t.Errorf("entry = %+v, want payload %q", r.Entry, payload)
	}
}

// eventually polls cond until it holds or a few seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
