//go:build race || !linux

package nbio

import "syscall"

// Under the race detector, reads and writes go through package syscall's
// Read and Write, which tell the detector what the buffers hold and order
// a write before the read that receives it; raw system calls do neither.
// Systems other than Linux use them too.

// sysRead reads from fd into b (not empty).
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return n, errno(err)
}

// sysWrite writes b (not empty) to fd.
func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return n, errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
