package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/proxy"
)

// dsnFor is a client URL for the proxy with the given credentials and
// query parameters.
func (e *env) dsnFor(user, password, database string, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: e.Addr, Path: "/" + database, RawQuery: query}
	return u.String()
}

// connectAs connects pgx to the proxy; the caller closes a connection it
// gets.
func (e *env) connectAs(t *testing.T, user, password, database, query string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsnFor(user, password, database, query))
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

// pgError returns err's PostgreSQL error, failing the test without one.
func pgError(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want an error from the server", err)
	}
	return pe
}

// psqlResult is what a psql run printed and how it ended.
type psqlResult struct {
	out    string
	failed bool
}

// runPsql runs psql against conninfo with no psqlrc and no PG*
// variables from the environment but the given ones.
func runPsql(t *testing.T, conninfo string, sql string, extraEnv ...string) psqlResult {
	t.Helper()
	path, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is required by this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql)
	env := []string{"HOME=" + t.TempDir(), "LC_ALL=C.UTF-8", "PGCONNECT_TIMEOUT=30", "PATH=" + os.Getenv("PATH")}
	cmd.Env = append(env, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("psql timed out: %s", out.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return psqlResult{out: strings.TrimSpace(out.String()), failed: err != nil}
}

func (e *env) conninfo(user, password, database, sslmode string) string {
	q := func(s string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=%s", e.Port, q(user), q(password), q(database), sslmode)
}

// failedFor is the error a wrong password and an unknown user both get.
func failedFor(user string) string {
	return fmt.Sprintf("password authentication failed for user %q", user)
}

func TestTrustLetsAnyPasswordIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, err := e.connectAs(t, testenv.SuperUser, "not the password", e.Database, "sslmode=disable")
	if err != nil {
		t.Fatalf("trust refused a client: %v", err)
	}
	var user string
	if err := c.QueryRow(ctxT(t), `select current_user`).Scan(&user); err != nil || user != testenv.SuperUser {
		t.Fatalf("current_user %q %v, want %q", user, err, testenv.SuperUser)
	}
	if r := runPsql(t, e.conninfo(testenv.SuperUser, "", e.Database, "disable"), "select 40 + 2"); r.failed || r.out != "42" {
		t.Fatalf("psql under trust: %q", r.out)
	}
}

func TestPasswordMethods(t *testing.T) {
	methods := []struct {
		name   string
		mutate func(*proxy.Config)
	}{
		{"password", func(c *proxy.Config) { c.AuthMethod = proxy.AuthPassword; c.AllowCleartextWithoutTLS = true }},
		{"password passed through", func(c *proxy.Config) {
			c.AuthMethod = proxy.AuthPassword
			c.AllowCleartextWithoutTLS = true
			c.Users = nil
		}},
		{"md5", func(c *proxy.Config) { c.AuthMethod = proxy.AuthMD5 }},
		{"scram-sha-256", func(c *proxy.Config) { c.AuthMethod = proxy.AuthSCRAM }},
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, envOptions{mutate: m.mutate})
			ctx := ctxT(t)

			c, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=disable")
			if err != nil {
				t.Fatalf("pgx with the right password: %v", err)
			}
			var n int
			if err := c.QueryRow(ctx, `select 42`).Scan(&n); err != nil || n != 42 {
				t.Fatalf("pgx after authenticating: %d %v", n, err)
			}
			if r := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "disable"), "select 42"); r.failed || r.out != "42" {
				t.Fatalf("psql with the right password: %s", r.out)
			}

			_, err = e.connectAs(t, testenv.SuperUser, "wrong", e.Database, "sslmode=disable")
			wrong := pgError(t, err)
			if wrong.Code != "28P01" || wrong.Severity != "FATAL" || wrong.Message != failedFor(testenv.SuperUser) {
				t.Errorf("wrong password: got %s %s %q, want FATAL 28P01 %q", wrong.Severity, wrong.Code, wrong.Message, failedFor(testenv.SuperUser))
			}
			_, err = e.connectAs(t, "nobody", "wrong", e.Database, "sslmode=disable")
			unknown := pgError(t, err)
			if unknown.Code != wrong.Code || unknown.Severity != wrong.Severity || unknown.Message != failedFor("nobody") ||
				unknown.Detail != wrong.Detail || unknown.Hint != wrong.Hint {
				t.Errorf("unknown user: got %s %s %q %q %q, want exactly a wrong password's answer %s %s %q %q %q",
					unknown.Severity, unknown.Code, unknown.Message, unknown.Detail, unknown.Hint,
					wrong.Severity, wrong.Code, failedFor("nobody"), wrong.Detail, wrong.Hint)
			}

			wrongPsql := runPsql(t, e.conninfo(testenv.SuperUser, "wrong", e.Database, "disable"), "select 1")
			if !wrongPsql.failed || !strings.Contains(wrongPsql.out, failedFor(testenv.SuperUser)) {
				t.Errorf("psql with a wrong password: %q, want %q", wrongPsql.out, failedFor(testenv.SuperUser))
			}
			unknownPsql := runPsql(t, e.conninfo("nobody", "wrong", e.Database, "disable"), "select 1")
			if want := strings.ReplaceAll(wrongPsql.out, `"`+testenv.SuperUser+`"`, `"nobody"`); unknownPsql.out != want {
				t.Errorf("psql as an unknown user: %q, want what a wrong password gets: %q", unknownPsql.out, want)
			}

			_, err = e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, "nosuchdb", "sslmode=disable")
			if pe := pgError(t, err); pe.Code != "3D000" {
				t.Errorf("unknown database: got %s %q, want 3D000", pe.Code, pe.Message)
			}

			r := dialRaw(t, e.Addr)
			r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": e.Database}})
			got := r.untilEnd()
			if code := errorCode(got); code != "28000" {
				t.Errorf("startup without a user: got %s, want 28000", describe(got))
			}
		})
	}
}

func TestCleartextPasswordNeedsTLS(t *testing.T) {
	cert := newTestCert(t)
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) {
		c.AuthMethod = proxy.AuthPassword
		c.TLS = cert.config
	}})
	_, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=disable")
	if pe := pgError(t, err); pe.Code != "28000" || pe.Severity != "FATAL" {
		t.Errorf("cleartext password on a plain connection: got %s %s %q, want FATAL 28000", pe.Severity, pe.Code, pe.Message)
	}
	c, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=require")
	if err != nil {
		t.Fatalf("cleartext password over TLS: %v", err)
	}
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Errorf("the connection is %T, want TLS", c.PgConn().Conn())
	}
	_, err = e.connectAs(t, testenv.SuperUser, "wrong", e.Database, "sslmode=require")
	if pe := pgError(t, err); pe.Code != "28P01" {
		t.Errorf("wrong password over TLS: got %s %q, want 28P01", pe.Code, pe.Message)
	}
	if r := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "require"), "select 42"); r.failed || r.out != "42" {
		t.Errorf("psql with a password over TLS: %s", r.out)
	}
}

// testCert is a self-signed certificate for 127.0.0.1.
type testCert struct {
	config *tls.Config
	caFile string // the certificate in PEM, for sslrootcert
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sqlcached test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCert{
		config: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		caFile: caFile,
	}
}

func TestTLS(t *testing.T) {
	cert := newTestCert(t)
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) { c.TLS = cert.config }})
	ctx := ctxT(t)
	for _, query := range []string{"sslmode=require", "sslmode=verify-full&sslrootcert=" + url.QueryEscape(cert.caFile)} {
		c, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, query)
		if err != nil {
			t.Fatalf("pgx with %s: %v", query, err)
		}
		if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
			t.Errorf("pgx with %s: the connection is %T, want TLS", query, c.PgConn().Conn())
		}
		var n int
		if err := c.QueryRow(ctx, `select 42`).Scan(&n); err != nil || n != 42 {
			t.Fatalf("pgx over TLS: %d %v", n, err)
		}
	}
	r := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "require"), `\conninfo`)
	if r.failed || !strings.Contains(r.out, "SSL connection") {
		t.Errorf("psql with sslmode=require: %q, want an SSL connection", r.out)
	}
	r = runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "verify-full")+" sslrootcert="+cert.caFile, `select 42`)
	if r.failed || r.out != "42" {
		t.Errorf("psql with sslmode=verify-full: %q", r.out)
	}
	// A plain client is still served when TLS is not required.
	c, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=disable")
	if err != nil {
		t.Fatalf("plain client: %v", err)
	}
	if _, ok := c.PgConn().Conn().(*tls.Conn); ok {
		t.Error("sslmode=disable gave a TLS connection")
	}
}

func TestNoTLSConfigured(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := dialRaw(t, e.Addr)
	if err := r.write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 1)
	_ = r.nc.SetReadDeadline(time.Now().Add(readTimeout))
	if _, err := io.ReadFull(r.nc, answer); err != nil || answer[0] != 'N' {
		t.Fatalf("SSLRequest answered %q %v, want 'N'", answer, err)
	}
	r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": testenv.SuperUser, "database": e.Database}})
	if got := r.untilReady(); lastStatus(t, got) != 'I' {
		t.Fatalf("startup after a refused SSLRequest: %s", describe(got))
	}

	c, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=prefer")
	if err != nil {
		t.Fatalf("pgx with sslmode=prefer: %v", err)
	}
	if _, ok := c.PgConn().Conn().(*tls.Conn); ok {
		t.Error("sslmode=prefer got TLS from a proxy without it")
	}
	if _, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=require"); err == nil {
		t.Error("pgx with sslmode=require connected to a proxy without TLS")
	}
	if res := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "prefer"), "select 42"); res.failed || res.out != "42" {
		t.Errorf("psql with sslmode=prefer: %q", res.out)
	}
	if res := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "require"), "select 42"); !res.failed || !strings.Contains(res.out, "SSL") {
		t.Errorf("psql with sslmode=require: %q, want a refusal naming SSL", res.out)
	}
}

func TestRequireTLSRefusesPlainClients(t *testing.T) {
	cert := newTestCert(t)
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) { c.TLS = cert.config; c.RequireTLS = true }})
	_, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=disable")
	if pe := pgError(t, err); pe.Code != "28000" || pe.Severity != "FATAL" {
		t.Errorf("plain client: got %s %s %q, want FATAL 28000", pe.Severity, pe.Code, pe.Message)
	}
	if res := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "disable"), "select 1"); !res.failed {
		t.Errorf("psql on a plain connection: %q, want a refusal", res.out)
	}
	if _, err := e.connectAs(t, testenv.SuperUser, testenv.SuperPassword, e.Database, "sslmode=require"); err != nil {
		t.Errorf("TLS client: %v", err)
	}
	if res := runPsql(t, e.conninfo(testenv.SuperUser, testenv.SuperPassword, e.Database, "prefer"), "select 42"); res.failed || res.out != "42" {
		t.Errorf("psql with sslmode=prefer: %q", res.out)
	}
}

var gssencRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}

func TestGSSENCRequestIsDeclined(t *testing.T) {
	cert := newTestCert(t)
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			e := newEnv(t, envOptions{mutate: func(c *proxy.Config) {
				if withTLS {
					c.TLS = cert.config
				}
			}})
			r := dialRaw(t, e.Addr)
			if binary.BigEndian.Uint32(gssencRequest[4:]) != 80877104 {
				t.Fatal("bad GSSENCRequest code")
			}
			if err := r.write(gssencRequest); err != nil {
				t.Fatal(err)
			}
			answer := make([]byte, 1)
			_ = r.nc.SetReadDeadline(time.Now().Add(readTimeout))
			if _, err := io.ReadFull(r.nc, answer); err != nil || answer[0] != 'N' {
				t.Fatalf("GSSENCRequest answered %q %v, want 'N'", answer, err)
			}
			if withTLS {
				// libpq's order: GSSAPI encryption, then TLS.
				if err := r.write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(r.nc, answer); err != nil || answer[0] != 'S' {
					t.Fatalf("SSLRequest after GSSENCRequest answered %q %v, want 'S'", answer, err)
				}
				tc := tls.Client(r.nc, &tls.Config{InsecureSkipVerify: true})
				r.nc = tc
				r.fe = pgproto3.NewFrontend(tc, tc)
			}
			r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": testenv.SuperUser, "database": e.Database}})
			got := r.untilReady()
			if _, ok := got[0].(*pgproto3.AuthenticationOk); !ok || lastStatus(t, got) != 'I' {
				t.Fatalf("startup after GSSENCRequest: %s, want AuthenticationOk ... ReadyForQuery 'I'", describe(got))
			}
			ans := r.query("select 42")
			if row, ok := find[*pgproto3.DataRow](ans); !ok || string(row.Values[0]) != "42" {
				t.Fatalf("select after GSSENCRequest: %s", describe(ans))
			}
		})
	}
}

// TestBytesAfterSSLRequestAreRefused checks that the proxy does not take
// plaintext sent behind an SSLRequest as if it came over TLS.
func TestBytesAfterSSLRequestAreRefused(t *testing.T) {
	cert := newTestCert(t)
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) { c.TLS = cert.config }})
	r := dialRaw(t, e.Addr)
	startup, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": testenv.SuperUser, "database": e.Database}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.write(append([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, startup...)); err != nil {
		t.Fatal(err)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(readTimeout))
	all, err := io.ReadAll(r.nc)
	if isTimeoutErr(err) {
		t.Fatal("the connection stayed open")
	}
	if len(all) > 0 && all[0] == 'S' {
		t.Fatalf("the proxy started TLS with plaintext queued behind the SSLRequest: %q", all)
	}
	if !bytes.Contains(all, []byte("08P01")) {
		t.Errorf("got %q, want a protocol violation", all)
	}
}
