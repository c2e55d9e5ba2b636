package main

import (
	"context"
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
