package servers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command says how to start a long-running process.
type Command struct {
	// Name names the process in errors; default: the base name of Path.
	Name string
	Path string // the binary: a path, or a name looked up on $PATH
	Args []string
	Dir  string // the working directory; "": the current one
	// Account is the account the process runs as; nil: the current user.
	Account *Account
	// Log is the file stdout and stderr are appended to, created if need
	// be and given to Account, so that the process may open it too; "":
	// they are discarded. Its tail is quoted when the process fails to
	// become ready.
	Log string
}

// Proc is a process started by Start or Run. It leads a process group of
// its own, so that a terminal's ^C does not reach it directly and Stop can
// take its children with it, and it gets SIGKILL when this process dies.
type Proc struct {
	name string
	log  string // Command.Log
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, valid after done is closed

	killGroup sync.Once // the group is killed once, right after the leader exits
}

// Start starts the process c describes.
func Start(c Command) (*Proc, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	if c.Log != "" {
		f, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy
		if err := c.Account.Chown(c.Log); err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	name := c.Name
	if name == "" {
		name = filepath.Base(c.Path)
	}
	p, err := spawn(cmd, c.Account, name)
	if err != nil {
		return nil, err
	}
	p.log = c.Log
	return p, nil
}

// Run runs a short command to completion as acct (nil: the current user)
// in dir, and returns its combined output. If ctx ends first, the command's
// whole process group is killed. The error quotes the end of the output.
func Run(ctx context.Context, acct *Account, dir, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // for grandchildren that keep the output open
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := spawn(cmd, acct, filepath.Base(path))
	if err == nil {
		<-p.done
		err = p.err
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, lastLines([]byte(out.String())))
	}
	return out.String(), err
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Err returns how the process exited (exec.Cmd.Wait's error) once Exited
// is closed, and nil before.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Pid is the process id, which is also its process group's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process; a process that has already exited is
// not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Wait waits up to d for the process to exit, and kills it if it has not.
// Then it kills whatever is left of its process group (postgres backends,
// a runaway child) and returns once the process has exited. The error
// says whether it had to be killed.
func (p *Proc) Wait(d time.Duration) error {
	var err error
	select {
	case <-p.done:
	case <-time.After(d):
		err = fmt.Errorf("%s did not exit within %v; killed", p.name, d)
	}
	p.killGroup.Do(func() { _ = syscall.Kill(-p.Pid(), syscall.SIGKILL) })
	<-p.done
	return err
}

// Stop sends sig to the process and waits up to grace for it to exit, as
// Wait does. Stopping a process that has exited only reaps its group.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	if err := p.Signal(sig); err != nil {
		return err
	}
	return p.Wait(grace)
}

// WaitReady calls ready until it returns nil, the process exits, ctx ends
// or timeout passes. Each call of ready gets a few seconds. The error
// quotes the tail of the process's log.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(wctx, 5*time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v%s", p.name, p.err, p.logTail())
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("waiting for %s: %w", p.name, err)
			}
			return fmt.Errorf("%s not ready after %v: %v%s", p.name, timeout, last, p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the tail of the process's log for an error message, or
// "" if it has none.
func (p *Proc) logTail() string {
	if p.log == "" {
		return ""
	}
	return fmt.Sprintf("\n--- %s (tail) ---\n%s", p.log, LogTail(p.log))
}

// LogTail returns the last lines (a few kilobytes) of a server's log file,
// for failure messages.
func LogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return lastLines(b)
}

// lastLines returns the whole lines of b's last 4 kB.
func lastLines(b []byte) string {
	const max = 4096
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
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

// spawn starts cmd as acct in a process group of its own, with Pdeathsig
// set so that it dies with this process. The kernel sends Pdeathsig when
// the thread that forked the child exits, not the process, so every child
// is forked from one goroutine locked to a thread that lives as long as
// the process.
func spawn(cmd *exec.Cmd, acct *Account, name string) (*Proc, error) {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must outlive every child
			for req := range spawnCh {
				req.reply <- req.cmd.Start()
			}
		}()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: acct.credential(),
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	reply := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}
