package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/policy"
)

func TestMain(m *testing.M) {
	// The test binary runs as the command itself for tests that need a
	// process of their own (signals).
	if os.Getenv("SQLCACHED_TEST_AS_COMMAND") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	testenv.Main(m)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sqlcached.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadConfigurationExitsTwoNamingTheKey(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"max_conns":   {"backends:\n  - name: w\n    dsn: postgres://127.0.0.1/x\n    max_conns: 0\n", "backends[0].max_conns"},
		"unknown key": {"backends:\n  - name: w\n    dsn: postgres://127.0.0.1/x\nlisten:\n  postgress: 1\n", "listen.postgress"},
		"unset env":   {"backends:\n  - name: w\n    dsn: ${SQLCACHED_TEST_UNSET_VARIABLE}\n", "SQLCACHED_TEST_UNSET_VARIABLE"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"serve", "--config", writeConfig(t, tc.body)}, &out, &errb)
			if code != 2 {
				t.Fatalf("exit status %d, want 2 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("stderr %q does not name %q", errb.String(), tc.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve"}, &out, &errb); code != 2 {
		t.Fatalf("serve without --config: exit %d, want 2", code)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeRelaysAndStopsOnSignal(t *testing.T) {
	pg := testenv.SharedPostgreSQL(t)
	db := pg.NewDatabase(t)
	pgAddr, httpAddr := freeAddr(t), freeAddr(t)
	path := writeConfig(t, fmt.Sprintf(`
listen: {postgres: %q, http: %q}
auth:
  method: scram-sha-256
  users: [{name: postgres, password: "${SQLCACHED_TEST_PW}"}]
backends:
  - {name: warehouse, dsn: "postgres://127.0.0.1:1/nowhere", max_conns: 4}
shutdown: {timeout: 5s}
`, pgAddr, httpAddr))
	t.Setenv("SQLCACHED_TEST_PW", testenv.SuperPassword)
	rules, cfg, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The flag overrides the DSN in the file.
	if err := applyFlags(cfg, serveFlags{dsn: pg.DSN(db)}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, cfg, rules, nil, nil, slog.New(slog.DiscardHandler)) }()
	dsn := fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", testenv.SuperPassword, pgAddr, db)
	var c *pgx.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err = pgx.Connect(context.Background(), dsn); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(context.Background(), "select 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("query through serve: %v %d", err, n)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + httpAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", p, resp.StatusCode)
		}
	}
	stop() // as SIGTERM does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runServer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := c.Exec(context.Background(), "select 1"); err == nil {
		t.Fatal("the idle session survived shutdown")
	}
	if _, err := net.DialTimeout("tcp", pgAddr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
