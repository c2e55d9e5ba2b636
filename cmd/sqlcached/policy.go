package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// policyCommand runs `sqlcached policy check|explain`.
func policyCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitConfig
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "sqlcached policy: unknown command %q (check, explain)\n", args[0])
	return exitConfig
}

// policyCheck loads a configuration as serve would and lists its rules.
func policyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (required)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *file == "" {
		fmt.Fprintln(stderr, "sqlcached policy check: --config is required")
		return exitConfig
	}
	rules, cfg, err := policy.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: %d rules, valid\n", *file, len(rules.Rules()))
	for _, r := range rules.Rules() {
		what := "not cached"
		if r.Cache {
			what = fmt.Sprintf("ttl %v, queue %s", r.TTL, r.Queue)
		}
		fmt.Fprintf(stdout, "  %s: %s\n", r.Describe(), what)
	}
	return exitOK
}

// policyExplain says what sqlcached would do with one statement.
func policyExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (required)")
	user := fs.String("user", "", "the client's user name (required)")
	database := fs.String("database", "", "the database the client asks for (default: the user name, as psql)")
	dashboard := fs.String("dashboard", "", "a dashboard label, as SET sqlcached.dashboard gives it")
	app := fs.String("application-name", "", "the client's application_name")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *file == "" || *user == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: sqlcached policy explain --config FILE --user U [--database D] [--dashboard D] [--application-name A] SQL")
		return exitConfig
	}
	rules, cfg, err := policy.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	db := *database
	if db == "" {
		db = *user
	}
	req := &readpath.Request{
		Login:           executor.Login{User: *user, Database: db},
		Database:        db,
		ApplicationName: *app,
		Session:         policy.SessionLabels{SetDashboard: *dashboard, ApplicationName: *app},
		SQL:             fs.Arg(0),
	}
	if b := cfg.BackendFor(db); b != nil {
		req.Backend = b.Name
		if wh := warehouseDatabase(cfg, b, db); wh != "" {
			req.Login.Database = wh
		}
	} else {
		fmt.Fprintf(stderr, "note: no backend serves database %q (the proxy would answer 3D000)\n", db)
	}
	if *app != "" {
		req.Settings = map[string]string{"application_name": "SET application_name = '" + strings.ReplaceAll(*app, "'", "''") + "'"}
	}
	analyzer, err := fingerprint.New(fingerprint.Config{})
	if err != nil {
		fmt.Fprintln(stderr, "sqlcached:", err)
		return exitFail
	}
	e := readpath.Explain(rules, analyzer, req)
	if err := e.WriteText(stdout); err != nil {
		return exitFail
	}
	return exitOK
}
