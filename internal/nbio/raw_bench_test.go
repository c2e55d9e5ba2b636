//go:build !race

package nbio

import (
	"net"
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkSocketCalls compares the system calls a relay could move its
// bytes with: a 40-byte message sent on one end of a loopback TCP
// connection and received on the other, by write and read (through the
// file layer) and by sendto and recvfrom (the socket layer alone, which
// sysWrite and sysRead use). Run both in one go and compare the medians:
//
//	go test ./internal/nbio -run '^$' -bench SocketCalls -count 6
func BenchmarkSocketCalls(b *testing.B) {
	type calls struct{ send, recv uintptr }
	for _, bc := range []struct {
		name string
		c    calls
	}{
		{"write-read", calls{syscall.SYS_WRITE, syscall.SYS_READ}},
		{"sendto-recvfrom", calls{syscall.SYS_SENDTO, syscall.SYS_RECVFROM}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, peer := pair(b, "tcp")
			from, to := rawFD(b, c), rawFD(b, peer)
			msg, buf := make([]byte, 40), make([]byte, 4096)
			b.ResetTimer()
			for b.Loop() {
				if _, _, e := syscall.RawSyscall6(bc.c.send, from, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)), 0, 0, 0); e != 0 {
					b.Fatal(e)
				}
				for {
					r, _, e := syscall.RawSyscall6(bc.c.recv, to, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
					if e == syscall.EAGAIN {
						continue // on its way through loopback
					}
					if e != 0 || r != uintptr(len(msg)) {
						b.Fatalf("received %d, %v", r, e)
					}
					break
				}
			}
		})
	}
}

// rawFD returns c's descriptor; c stays open, and owns it, until the
// benchmark ends.
func rawFD(b *testing.B, c net.Conn) uintptr {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var fd uintptr
	if err := rc.Control(func(f uintptr) { fd = f }); err != nil {
		b.Fatal(err)
	}
	return fd
}
