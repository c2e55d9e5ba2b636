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
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc}
	w.r.fn = w.r.read
	w.w.fn = w.w.write
	return w
}

// SyscallConn returns the wrapped connection's raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Read reads what the socket holds, waiting in the network poller (and
// for the read deadline) while it holds nothing.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	o := &c.r
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b, o.n, o.errno = b, 0, 0
	err := c.rc.Read(o.fn)
	n, errno := o.n, o.errno
	o.b = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is the raw connection's callback of a Read: false asks it to wait
// until the socket is readable.
func (o *op) read(fd uintptr) bool {
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

// Write writes all of b, waiting in the network poller (and for the
// write deadline) while the socket's buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	o := &c.w
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b, o.n, o.errno = b, 0, 0
	err := c.rc.Write(o.fn)
	n, errno := o.n, o.errno
	o.b = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
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
