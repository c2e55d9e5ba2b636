package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dirPrefix names every directory testenv creates under os.TempDir, so that
// directories left by killed test binaries can be found and removed.
const dirPrefix = "sqlcached-testenv-"

// staleAfter is how old a testenv directory must be before another test
// binary removes it. It is longer than any test timeout.
const staleAfter = 6 * time.Hour

// process is a server started by testenv and not yet reaped.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, valid after done is closed
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process; a process that has already exited is not an error.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// wait waits up to d for the process to exit, then kills it.
func (p *process) wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not exit within %v; killed", filepath.Base(p.cmd.Path), d)
}

// spawnRequest asks the spawner to start cmd.
type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

// spawn starts cmd with Pdeathsig set, so that the server dies with the test
// binary. The kernel sends Pdeathsig when the thread that forked the child
// exits, not the process, so every child is forked from one goroutine locked
// to a thread that lives as long as the process.
func spawn(cmd *exec.Cmd) (*process, error) {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must outlive every child
			for req := range spawnCh {
				req.reply <- req.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true // keep terminal signals (^C) from reaching the server directly
	reply := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// freePort returns a loopback TCP port that was free a moment ago. Callers
// retry with another port when a server fails to bind it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// owner is the user servers run as: the current user, or "postgres" when
// the current user is root (PostgreSQL refuses to run as root).
type owner struct {
	uid, gid int
	cred     *syscall.Credential // nil: run as the current user
}

// serverOwner returns the user PostgreSQL runs as.
func serverOwner() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return owner{}, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return owner{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return owner{}, err
	}
	return owner{uid: uid, gid: gid, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}}, nil
}

// chownAll gives dir and everything under it to o.
func (o owner) chownAll(dir string) error {
	if o.cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.uid, o.gid)
	})
}

// makeDir creates a fresh testenv directory for kind ("pg", "redis"),
// owned by o, after removing stale ones.
func makeDir(kind string, o owner) (string, error) {
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix+kind+"-")
	if err != nil {
		return "", err
	}
	if err := o.chownAll(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

var staleOnce sync.Once

// removeStaleDirs removes testenv directories older than staleAfter, left by
// test binaries that were killed before they could clean up. Once per process.
func removeStaleDirs() {
	staleOnce.Do(func() {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
		for _, m := range matches {
			if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > staleAfter {
				os.RemoveAll(m)
			}
		}
	})
}

// logTail returns the last lines of a server's log file, for failure messages.
func logTail(path string) string {
	const max = 4096
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// lookBinary finds a server binary: $envVar, then the candidates in order,
// then $PATH.
func lookBinary(envVar string, name string, candidates ...string) (string, error) {
	if v := os.Getenv(envVar); v != "" {
		return v, nil
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (set $%s or install it; scripts/test.sh does): %w", name, envVar, err)
	}
	return p, nil
}
