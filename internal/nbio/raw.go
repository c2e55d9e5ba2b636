//go:build linux && !race

package nbio

import (
	"syscall"
	"unsafe"
)

// Sockets are read and written with recvfrom and sendto rather than read
// and write: the socket calls go to the socket layer directly, where read
// and write first pass through the file layer's position lock, access
// checks and change notifications (about 5 % of the kernel's time in a
// relay, on top of the same socket code). sendto also says
// MSG_NOSIGNAL: a write to a peer that has gone fails with EPIPE without
// raising SIGPIPE first.

// sysRead reads from fd into b (not empty) by a raw system call.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	return int(r), e
}

// sysWrite writes b (not empty) to fd by a raw system call.
func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(r), e
}
