package postgres

import (
	"syscall"
	"unsafe"
)

// peek looks at what fd holds without taking it and without waiting, by a
// raw system call: one the runtime watches would wake its monitor from
// its idle sleep, and this one never blocks.
func peek(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
