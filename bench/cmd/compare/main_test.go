package main

import (
	"context"
	"os"
	"testing"
)

// TestBadArgumentsExitTwo: an unknown comparison, an unknown flag and a
// bad value end the command at once with exit code 2, before anything is
// built or started.
func TestBadArgumentsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"passthrough", "-nope"},
		{"passthrough", "-T", "0"},
		{"passthrough", "-clients", "8,x"},
		{"passthrough", "extra"},
		{"passthrough", "-pprof", "cpu.prof", "-pprof-cell", "select1/8"},
		{"cachehits", "-rows", "10"},
		{"cachehits", "-clients", "64", "-pgpool-children", "40"},
		{"passthrough", "-modes", ""},
		{"passthrough", "-workloads", ","},
		{"passthrough", "-contenders", ""},
		{"cachehits", "-clients", ""},
		{"dashboards", "-targets", "direct,mysql"},
		{"dashboards", "-targets", ""},
	} {
		if code := run(context.Background(), args); code != 2 {
			t.Errorf("compare %q: exit code %d, want 2", args, code)
		}
	}
}

// TestCommandLineOfTheReport: the report's command line is the one that
// ran, the comparison named once.
func TestCommandLineOfTheReport(t *testing.T) {
	saved := os.Args
	defer func() { os.Args = saved }()
	os.Args = []string{"/tmp/go-build/compare", "passthrough", "-T", "8", "-contenders", "pgbouncer,sqlcached"}
	c := &common{name: "passthrough"}
	want := "go run ./bench/cmd/compare passthrough -T 8 -contenders pgbouncer,sqlcached"
	if got := c.commandLine(); got != want {
		t.Errorf("command line %q, want %q", got, want)
	}
}
