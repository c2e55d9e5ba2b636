// Package nbio reads and writes sockets without the Go scheduler's
// system-call hand-off.
//
// A Read or Write of a net.Conn enters the runtime's system-call state:
// if the call takes longer than a tick of the runtime's monitor (20 µs),
// its processor is handed to another thread, which is woken for it, and
// the monitor keeps ticking at that rate. On a loopback relay sharing a
// small machine with its clients and its warehouse, a write that wakes the
// reader on the other end is often pre-empted in the kernel for just that
// long, so every relayed statement paid for thread wake-ups and a busy
// monitor: more than the system calls themselves. The sockets are
// non-blocking, so their reads and writes never wait in the kernel; Wrap
// makes them as raw system calls, which the scheduler does not watch, and
// waits for readiness in the runtime's network poller as net.Conn does.
// Deadlines, Close and every other method are the wrapped connection's.
// Under the race detector the calls go through package syscall instead,
// which tells the detector what the buffers hold.
package nbio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a net.Conn whose Read and Write are raw system calls.
type Conn struct {
	net.Conn
	rc syscall.RawConn
	r  op // the Read under way
	w  op // the Write under way

	// ahead holds bytes WriteBeforeRead queued, guarded by w.mu; kept
	// for reuse when empty.
	ahead []byte
	// stuck is set by a Read's callback when the socket took only part
	// of ahead: the Read writes the rest as a Write does. werr is the
	// error of a write of ahead by a Read's callback.
	stuck bool
	werr  error
}

// op is one Read or Write under way: its buffer, what it did, and the
// callback given to the raw connection, made once in Wrap so that a call
// allocates nothing. mu keeps a second concurrent Read (or Write) from
// sharing it.
type op struct {
	mu    sync.Mutex
	b     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// Wrap returns c with raw reads and writes when it is a socket (a
// *net.TCPConn or *net.UnixConn), and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc}
	w.r.fn = w.read
	w.w.fn = w.w.write
	return w
}

// SyscallConn returns the wrapped connection's raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// maxAhead bounds what WriteBeforeRead keeps: more is written at once.
const maxAhead = 16 << 10

// WriteBeforeRead sends b, a request whose answer is read next, from that
// Read, once it has begun to listen for the socket: the Read then waits
// for the answer without first trying a read that could only find
// nothing, one system call less a request. b must ask for an answer: the
// Read waits for news on the socket, and bytes that were there before,
// already reported to the poller, come with the answer. b is copied. A
// Write before that Read sends b first; so does WriteBeforeRead when more
// than 16 KiB would be kept. The error is that of such a write.
func (c *Conn) WriteBeforeRead(b []byte) error {
	c.w.mu.Lock()
	c.ahead = append(c.ahead, b...)
	over := len(c.ahead) > maxAhead
	c.w.mu.Unlock()
	if over {
		_, err := c.Write(nil)
		return err
	}
	return nil
}

// Queued reports whether bytes WriteBeforeRead queued are still to go.
func (c *Conn) Queued() bool {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return len(c.ahead) > 0
}

// Read reads what the socket holds, waiting in the network poller (and
// for the read deadline) while it holds nothing. Bytes WriteBeforeRead
// queued go out first.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	o := &c.r
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		o.b, o.n, o.errno = b, 0, 0
		err := c.rc.Read(o.fn)
		n, errno := o.n, o.errno
		o.b = nil
		switch {
		case err != nil:
			return 0, err
		case c.werr != nil:
			err, c.werr = c.werr, nil
			return 0, err
		case c.stuck:
			// The socket's buffer is full: the rest of ahead waits
			// for room as any write does, then the read starts over.
			c.stuck = false
			if _, err := c.Write(nil); err != nil {
				return 0, err
			}
			continue
		case errno != 0:
			return 0, c.opError("read", errno)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// read is the raw connection's callback of a Read: false asks it to wait
// until the socket is readable. The poller listens for the socket before
// the first call, so bytes queued ahead are written then and the call
// waits for their answer at once.
func (c *Conn) read(fd uintptr) bool {
	switch c.sendAhead(fd) {
	case aheadSent:
		return false
	case aheadStuck, aheadFailed:
		return true
	}
	o := &c.r
	for {
		r, e := sysRead(fd, o.b)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		o.n, o.errno = r, e
		return true
	}
}

const (
	aheadNone   = iota // nothing queued
	aheadSent          // all written
	aheadStuck         // the socket took part: c.stuck
	aheadFailed        // the write failed: c.werr
)

// sendAhead writes what WriteBeforeRead queued, if anything.
func (c *Conn) sendAhead(fd uintptr) int {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(c.ahead) == 0 {
		return aheadNone
	}
	w.b, w.n, w.errno = c.ahead, 0, 0
	done := w.write(fd)
	n, errno := w.n, w.errno
	w.b = nil
	c.dropSent(n, errno)
	switch {
	case errno != 0:
		c.werr = c.opError("write", errno)
		return aheadFailed
	case !done:
		c.stuck = true
		return aheadStuck
	}
	return aheadSent
}

// Write writes all of b, waiting in the network poller (and for the
// write deadline) while the socket's buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if len(c.ahead) > 0 {
		n, errno, err := c.writeAll(c.ahead)
		c.dropSent(n, errno)
		if err := c.writeErr(errno, err); err != nil {
			return 0, err
		}
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, errno, err := c.writeAll(b)
	return n, c.writeErr(errno, err)
}

// writeAll writes b through the raw connection, which waits for room;
// w.mu is held.
func (c *Conn) writeAll(b []byte) (int, syscall.Errno, error) {
	o := &c.w
	o.b, o.n, o.errno = b, 0, 0
	err := c.rc.Write(o.fn)
	n, errno := o.n, o.errno
	o.b = nil
	return n, errno, err
}

func (c *Conn) writeErr(errno syscall.Errno, err error) error {
	if err == nil && errno != 0 {
		return c.opError("write", errno)
	}
	return err
}

// dropSent takes from ahead the n bytes a write of it took, and the rest
// too when the socket failed; w.mu is held.
func (c *Conn) dropSent(n int, errno syscall.Errno) {
	if errno != 0 {
		c.ahead = c.ahead[:0]
		return
	}
	c.ahead = c.ahead[:copy(c.ahead, c.ahead[n:])]
}

// write is the raw connection's callback of a Write: false asks it to
// wait until the socket is writable.
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.b) {
		r, e := sysWrite(fd, o.b[o.n:])
		switch e {
		case 0:
			o.n += r
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}

func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
