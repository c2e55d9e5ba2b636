//go:build !cgo

package main

import (
	"fmt"
	"io"
)

func demo(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "sqlcached demo: this build has no DuckDB; build with cgo (CGO_ENABLED=1 and a C compiler)")
	return exitFail
}
