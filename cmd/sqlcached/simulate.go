package main

import (
	"fmt"
	"io"
)

// benchSimulate is `sqlcached bench simulate`: not built yet.
func benchSimulate(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "sqlcached bench simulate: not built")
	return exitFail
}
