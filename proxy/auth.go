package proxy

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/xdg-go/scram"
)

// Authentication methods, as pg_hba.conf names them.
const (
	AuthTrust    = "trust"
	AuthPassword = "password"
	AuthMD5      = "md5"
	AuthSCRAM    = "scram-sha-256"
)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// credentials holds the SCRAM keys derived from configured passwords, made
// once per user: deriving them costs thousands of HMACs.
type credentials struct {
	mu   sync.Mutex // protects keys
	keys map[string]scram.StoredCredentials
}

func (cr *credentials) get(user, password string) scram.StoredCredentials {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if k, ok := cr.keys[user]; ok {
		return k
	}
	if cr.keys == nil {
		cr.keys = map[string]scram.StoredCredentials{}
	}
	k := deriveSCRAM(user, password)
	cr.keys[user] = k
	return k
}

func deriveSCRAM(user, password string) scram.StoredCredentials {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	client, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		// A password SASLprep rejects: fall back to the raw bytes, as
		// PostgreSQL does.
		client, _ = scram.SHA256.NewClientUnprepped(user, password, "")
	}
	creds, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
	if err != nil {
		// Only invalid key factors fail, and these are fixed.
		panic("proxy: deriving SCRAM keys: " + err.Error())
	}
	return creds
}

// authFailed is the answer to a wrong password and to an unknown user
// alike, so that a client cannot tell which users exist.
func authFailed(user string) *Error {
	return fatal(CodeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", user))
}

// authenticate runs the configured method for user and returns the
// password to open warehouse connections with.
func (c *conn) authenticate(user string) (string, error) {
	cfg := &c.srv.cfg
	configured, known := cfg.Users[user]
	switch cfg.AuthMethod {
	case AuthTrust, "":
		return configured, nil
	case AuthPassword:
		if !c.tls && !cfg.AllowCleartextWithoutTLS {
			return "", fatal(CodeInvalidAuthorization, "password authentication needs an SSL connection")
		}
		pw, err := c.askPassword()
		if err != nil {
			return "", err
		}
		if len(cfg.Users) == 0 {
			// Passed through: the warehouse checks it on connecting.
			return pw, nil
		}
		if !known || subtle.ConstantTimeCompare([]byte(pw), []byte(configured)) != 1 {
			return "", authFailed(user)
		}
		return configured, nil
	case AuthMD5:
		return configured, c.authMD5(user, configured, known)
	case AuthSCRAM:
		return configured, c.authSCRAM(user, configured, known)
	}
	return "", fatal(CodeInvalidAuthorization, "unsupported authentication method "+cfg.AuthMethod)
}

func (c *conn) sendAuth(code int32, data []byte) error {
	var b pgwire.Builder
	b.Begin('R')
	b.Int32(code)
	b.Bytes(data)
	b.Finish()
	if _, err := c.w.Write(b.B); err != nil {
		return err
	}
	return c.w.Flush()
}

// readPassword reads one PasswordMessage (or SASL response) body.
func (c *conn) readPassword() ([]byte, error) {
	typ, msg, err := c.r.Next()
	if err != nil {
		return nil, err
	}
	if typ != 'p' {
		return nil, fatal(CodeProtocolViolation, fmt.Sprintf("expected password response, got message type %q", typ))
	}
	return pgwire.Body(msg), nil
}

func (c *conn) askPassword() (string, error) {
	if err := c.sendAuth(3, nil); err != nil {
		return "", err
	}
	body, err := c.readPassword()
	if err != nil {
		return "", err
	}
	s := pgwire.NewScanner(body)
	pw := s.CString()
	if s.Err != nil {
		return "", fatal(CodeProtocolViolation, "malformed password message")
	}
	return string(pw), nil
}

func md5Hex(parts ...string) string {
	h := md5.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *conn) authMD5(user, password string, known bool) error {
	salt := make([]byte, 4)
	_, _ = rand.Read(salt)
	if err := c.sendAuth(5, salt); err != nil {
		return err
	}
	body, err := c.readPassword()
	if err != nil {
		return err
	}
	s := pgwire.NewScanner(body)
	got := s.CString()
	if s.Err != nil {
		return fatal(CodeProtocolViolation, "malformed password message")
	}
	if !known {
		password = string(salt) + "\x00unknown"
	}
	want := "md5" + md5Hex(md5Hex(password, user), string(salt))
	if !known || subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return authFailed(user)
	}
	return nil
}

func (c *conn) authSCRAM(user, password string, known bool) error {
	var creds scram.StoredCredentials
	if known {
		creds = c.srv.creds.get(user, password)
	} else {
		// A made-up user with a random password: the exchange runs to
		// its end and fails there, as for a wrong password.
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		creds = deriveSCRAM(user, hex.EncodeToString(pw))
	}
	// PostgreSQL ignores the user name inside SCRAM (libpq sends none):
	// the startup packet's user is the one checked.
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return creds, nil })
	if err != nil {
		return err
	}
	conv := srv.NewConversation()
	if err := c.sendAuth(10, []byte("SCRAM-SHA-256\x00\x00")); err != nil {
		return err
	}
	body, err := c.readPassword()
	if err != nil {
		return err
	}
	s := pgwire.NewScanner(body)
	mech := s.CString()
	n := s.Int32()
	if s.Err != nil || string(mech) != "SCRAM-SHA-256" || n < 0 || int(n) != len(s.Rest()) {
		return fatal(CodeProtocolViolation, "malformed SASL initial response or unsupported mechanism")
	}
	first, err := conv.Step(string(s.Rest()))
	if err != nil {
		return authFailed(user)
	}
	if err := c.sendAuth(11, []byte(first)); err != nil {
		return err
	}
	body, err = c.readPassword()
	if err != nil {
		return err
	}
	final, err := conv.Step(string(body))
	if err != nil || !conv.Valid() || !known {
		return authFailed(user)
	}
	return c.sendAuth(12, []byte(final))
}
