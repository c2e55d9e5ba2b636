package policy

import (
	"os"
	"syscall"
	"time"
)

// changeTime returns when fi's file last changed in any way (its contents
// or its metadata, such as a modification time put back), or the zero
// time when the system does not say.
func changeTime(fi os.FileInfo) time.Time {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}
