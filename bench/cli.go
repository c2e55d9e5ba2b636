package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// CommandLine is the command that ran this process, for a report: prog
// and the arguments, shell-quoted where needed.
func CommandLine(prog string) string {
	args := make([]string, 0, len(os.Args))
	args = append(args, prog)
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// DescribeSource names the commit sqlcached was built from (rev, or the
// working tree of src when rev is empty).
func DescribeSource(src, rev string) string {
	what := rev
	if what == "" {
		what = "HEAD"
	}
	out, err := exec.Command("git", "-C", src, "rev-parse", "--short", what).Output()
	if err != nil {
		return src
	}
	id := strings.TrimSpace(string(out))
	if rev == "" {
		if st, err := exec.Command("git", "-C", src, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			return "the working tree of " + id + " (with uncommitted changes)"
		}
		return "the working tree of " + id
	}
	return "commit " + id
}

// SplitList splits a comma-separated flag value, dropping empty fields.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// PositiveInts parses a comma-separated list of positive numbers.
func PositiveInts(s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// SqlcachedBinary returns binary if it is set; otherwise it builds
// ./cmd/sqlcached of src (its working tree, or revision rev) into work/bin
// and returns that, with the source it was built from.
func SqlcachedBinary(ctx context.Context, binary, src, rev, work string) (path, builtFrom string, err error) {
	if binary != "" {
		return binary, "", nil
	}
	path = filepath.Join(work, "bin", "sqlcached")
	what := "working tree"
	if rev != "" {
		what = "revision " + rev
	}
	fmt.Fprintf(os.Stderr, "building sqlcached (%s of %s)\n", what, src)
	if err := BuildSqlcached(ctx, src, rev, work, path); err != nil {
		return "", "", err
	}
	return path, DescribeSource(src, rev), nil
}
