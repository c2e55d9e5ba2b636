package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// The large answer: a million rows of about 1 KB each, 1 GB in all, far
// past the 16 MiB entry bound the proxy below is configured with.
const (
	largeRows    = 1_000_000
	largeRepeats = 31 // a 32-character md5 repeated: 992 bytes per row
	largeSQL     = "select g, repeat(md5(g::text), 31) from generate_series(1, 1000000) g"
	largeLike    = "%repeat(md5(g::text)%generate_series%"
	// maxPeakRSS is what the proxy may hold at its peak while relaying
	// the answer: a small fraction of it, so that it cannot have been
	// held whole (or cached) on the way.
	maxPeakRSS = 200 << 20
)

// A 1 GB answer through the built sqlcached binary, with a cache that
// takes everything up to 16 MiB: each run gets every row, in order, each
// value right, the right command tag; the second run is answered by the
// warehouse again, as an answer too large to cache must be; the proxy's
// peak resident memory stays a small fraction of the answer; and it still
// answers (and caches) afterwards.
func TestOneGigabyteAnswerStreamsWithBoundedRSS(t *testing.T) {
	start := time.Now()
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	bin := buildSqlcached(t)
	pgAddr := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf(`
listen: {postgres: %q, http: %q}
auth:
  method: scram-sha-256
  users: [{name: postgres, password: %q}]
backends:
  - {name: warehouse, dsn: %q, max_conns: 4}
cache:
  l1: {max_bytes: 256MiB}
  max_entry_bytes: 16MiB
policies:
  - {name: everything, ttl: 10m, timeout: 5m}
shutdown: {timeout: 10s}
`, pgAddr, freeAddr(t), testenv.SuperPassword, pg.DSN(db)))
	p := startSqlcached(t, bin, path)
	dsn := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.SuperUser, testenv.SuperPassword, pgAddr, db)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn := connectRetrying(ctx, t, dsn, p)
	defer conn.Close(context.Background())
	t.Logf("proxy up after %v, VmRSS %d MiB", time.Since(start).Round(time.Millisecond), procStatusKiB(t, p.pid(), "VmRSS")>>10)

	var calls int64
	for run := 1; run <= 2; run++ {
		runStart := time.Now()
		tag, err := readLargeAnswer(conn.Exec(ctx, largeSQL))
		if err != nil {
			t.Fatalf("run %d: %v\n--- sqlcached stderr ---\n%s", run, err, p.stderr())
		}
		if want := "SELECT " + strconv.Itoa(largeRows); tag != want {
			t.Fatalf("run %d: command tag %q, want %q", run, tag, want)
		}
		got := pg.Calls(t, db, largeLike)
		if got <= calls {
			t.Fatalf("run %d: warehouse executions of the large statement went from %d to %d: the answer came from the cache", run, calls, got)
		}
		calls = got
		t.Logf("run %d: %d rows in %v; warehouse executions so far %d", run, largeRows, time.Since(runStart).Round(time.Millisecond), calls)
	}

	peak := procStatusKiB(t, p.pid(), "VmHWM") << 10
	t.Logf("proxy peak RSS (VmHWM) after two 1 GB answers: %.1f MiB", float64(peak)/(1<<20))
	if peak > maxPeakRSS {
		t.Errorf("proxy peak RSS %d MiB, want at most %d MiB: the answer was not streamed", peak>>20, maxPeakRSS>>20)
	}

	// The same proxy still answers, and still caches what fits.
	const small = "select g, md5(g::text) from generate_series(1, 100) g"
	for i := 0; i < 2; i++ {
		rs, err := conn.Exec(ctx, small).ReadAll()
		if err != nil {
			t.Fatalf("small query after the large answers: %v\n--- sqlcached stderr ---\n%s", err, p.stderr())
		}
		if len(rs) != 1 {
			t.Fatalf("small query: %d results, want 1", len(rs))
		}
		if tag := rs[0].CommandTag.String(); len(rs[0].Rows) != 100 || tag != "SELECT 100" {
			t.Fatalf("small query: %d rows, tag %q; want 100 rows, SELECT 100", len(rs[0].Rows), tag)
		}
		for j, row := range rs[0].Rows {
			if want := hexMD5(j + 1); string(row[0]) != strconv.Itoa(j+1) || string(row[1]) != string(want[:]) {
				t.Fatalf("small query row %d: %q %q", j, row[0], row[1])
			}
		}
	}
	if n := pg.Calls(t, db, "%md5(g::text) from generate_series%"); n != 1 {
		t.Errorf("small query ran %d times on the warehouse for two runs, want 1 (the second from the cache)", n)
	}

	conn.Close(ctx)
	p.stop(t)
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

// readLargeAnswer reads the answer to largeSQL row by row, checking each
// row against what the statement computes, and returns the command tag.
func readLargeAnswer(mrr *pgconn.MultiResultReader) (string, error) {
	defer mrr.Close()
	if !mrr.NextResult() {
		return "", fmt.Errorf("no result: %v", mrr.Close())
	}
	rr := mrr.ResultReader()
	n := 0
	for rr.NextRow() {
		n++
		v := rr.Values()
		if len(v) != 2 {
			return "", fmt.Errorf("row %d: %d columns, want 2", n, len(v))
		}
		if string(v[0]) != strconv.Itoa(n) {
			return "", fmt.Errorf("row %d: g = %q, want %d (rows lost or out of order)", n, v[0], n)
		}
		if err := checkRepeated(v[1], hexMD5(n)); err != nil {
			return "", fmt.Errorf("row %d: %w", n, err)
		}
	}
	tag, err := rr.Close()
	if err != nil {
		return "", fmt.Errorf("after %d rows: %w", n, err)
	}
	if n != largeRows {
		return "", fmt.Errorf("%d rows, want %d", n, largeRows)
	}
	if mrr.NextResult() {
		return "", fmt.Errorf("a second result after the rows")
	}
	return tag.String(), mrr.Close()
}

// checkRepeated checks that v is unit repeated largeRepeats times.
func checkRepeated(v []byte, unit [32]byte) error {
	if len(v) != largeRepeats*len(unit) {
		return fmt.Errorf("value of %d bytes, want %d", len(v), largeRepeats*len(unit))
	}
	for i := 0; i < len(v); i += len(unit) {
		if !bytes.Equal(v[i:i+len(unit)], unit[:]) {
			return fmt.Errorf("value %q... differs from repeat(md5) at byte %d", v[:min(len(v), 64)], i)
		}
	}
	return nil
}

// hexMD5 is md5(n::text) as PostgreSQL spells it.
func hexMD5(n int) [32]byte {
	var out [32]byte
	sum := md5.Sum(strconv.AppendInt(nil, int64(n), 10))
	hex.Encode(out[:], sum[:])
	return out
}

// buildSqlcached builds this command, without the race detector, into a
// temporary directory and returns the binary's path.
func buildSqlcached(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sqlcached")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built sqlcached in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// sqlcachedProcess is a running sqlcached.
type sqlcachedProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once cmd.Wait has returned
	err     error         // cmd.Wait's result, valid after done is closed
}

// startSqlcached runs `bin serve --config path`, its stderr going to a
// file, and stops it (SIGTERM, then SIGKILL) when the test ends if the
// test has not.
func startSqlcached(t *testing.T, bin, path string) *sqlcachedProcess {
	t.Helper()
	p := &sqlcachedProcess{logPath: filepath.Join(t.TempDir(), "sqlcached.log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	p.cmd = exec.Command(bin, "serve", "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// The proxy dies with the test binary. Pdeathsig follows the thread
	// that forked: that thread is held until the proxy has exited.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *sqlcachedProcess) pid() int { return p.cmd.Process.Pid }

// stderr returns what the proxy has logged.
func (p *sqlcachedProcess) stderr() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// stop sends SIGTERM and expects a clean exit within the shutdown timeout.
func (p *sqlcachedProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("sqlcached did not exit within 30s of SIGTERM\n%s", p.stderr())
	}
	if p.err != nil {
		t.Fatalf("sqlcached exited with %v after SIGTERM\n%s", p.err, p.stderr())
	}
}

// connectRetrying connects to the proxy, retrying while it starts.
func connectRetrying(ctx context.Context, t *testing.T, dsn string, p *sqlcachedProcess) *pgconn.PgConn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(cctx, dsn)
		cancel()
		if err == nil {
			return conn
		}
		select {
		case <-p.done:
			t.Fatalf("sqlcached exited: %v\n%s", p.err, p.stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("connecting through sqlcached: %v\n%s", err, p.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procStatusKiB returns a "kB" field of /proc/PID/status (VmRSS, VmHWM).
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %v", pid, field, err)
		}
		return kib
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}
