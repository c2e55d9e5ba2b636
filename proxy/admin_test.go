package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/testenv"
	"github.com/sqlcached/sqlcached/proxy"
)

// scriptedAdmin answers a few commands, so that the console's protocol is
// tested apart from what the commands do (internal/admin, and
// cmd/sqlcached's end-to-end test).
type scriptedAdmin struct {
	mu    sync.Mutex // protects users
	users []string   // who ran each command
}

func (a *scriptedAdmin) IsAdmin(user string) bool { return user == "ops" }

func (a *scriptedAdmin) Exec(ctx context.Context, user, sql string) (*proxy.AdminAnswer, error) {
	a.mu.Lock()
	a.users = append(a.users, user)
	a.mu.Unlock()
	one, half := "1", "0.5"
	switch strings.ToUpper(strings.TrimSuffix(sql, ";")) {
	case "SHOW THINGS":
		return &proxy.AdminAnswer{
			Columns: []proxy.AdminColumn{{Name: "name", TypeOID: 25, Size: -1}, {Name: "n", TypeOID: 20, Size: 8}, {Name: "ratio", TypeOID: 701, Size: 8}},
			Rows:    [][]*string{{&one, &one, &half}, {nil, nil, nil}},
			Tag:     "SHOW",
		}, nil
	case "DROP THINGS":
		return &proxy.AdminAnswer{Tag: "INVALIDATE", Notice: "only here"}, nil
	}
	return nil, &proxy.Error{Code: "42601", Message: fmt.Sprintf("unknown admin command %q", sql), Hint: "The commands are: SHOW THINGS, DROP THINGS."}
}

func consoleEnv(t *testing.T) (*env, *scriptedAdmin) {
	a := &scriptedAdmin{}
	e := newEnv(t, envOptions{mutate: func(c *proxy.Config) {
		c.AuthMethod = proxy.AuthSCRAM
		c.Users["ops"], c.Users["ana"] = "ops-pw", "ana-pw"
		c.Admin = a
	}})
	return e, a
}

func (e *env) consoleDSN(user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/sqlcached?sslmode=disable&application_name=ops-shell", user, password, e.Addr)
}

func TestAdminConsoleAnswersInTheSimpleProtocol(t *testing.T) {
	e, a := consoleEnv(t)
	ctx := ctxT(t)
	var notices []string
	cfg, err := pgconn.ParseConfig(e.consoleDSN("ops", "ops-pw"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if v := c.ParameterStatus("server_version"); !strings.Contains(v, "sqlcached") {
		t.Errorf("server_version %q", v)
	}

	res, err := c.Exec(ctx, "show things;").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if len(r.FieldDescriptions) != 3 || r.FieldDescriptions[1].Name != "n" || r.FieldDescriptions[1].DataTypeOID != 20 || r.FieldDescriptions[2].DataTypeOID != 701 {
		t.Errorf("RowDescription %+v", r.FieldDescriptions)
	}
	if len(r.Rows) != 2 || string(r.Rows[0][2]) != "0.5" || r.Rows[1][0] != nil || r.CommandTag.String() != "SHOW" {
		t.Errorf("rows %q, tag %q", r.Rows, r.CommandTag)
	}

	// A bad command is an error the session survives, as is the extended
	// protocol.
	_, err = c.Exec(ctx, "show everything").ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42601" || !strings.Contains(pe.Hint, "SHOW THINGS") {
		t.Errorf("a bad command: %v", err)
	}
	err = c.ExecParams(ctx, "show things", nil, nil, nil, nil).Read().Err
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "simple query protocol") {
		t.Errorf("the extended protocol: %v", err)
	}
	res, err = c.Exec(ctx, "drop things").ReadAll()
	if err != nil || res[0].CommandTag.String() != "INVALIDATE" || len(res[0].FieldDescriptions) != 0 {
		t.Fatalf("after the errors: %v, %+v", err, res)
	}
	if len(notices) != 1 || notices[0] != "only here" {
		t.Errorf("notices %q", notices)
	}
	if _, err := c.Exec(ctx, " ; ").ReadAll(); err != nil {
		t.Errorf("an empty query: %v", err)
	}
	a.mu.Lock()
	users := strings.Join(a.users, ",")
	a.mu.Unlock()
	if users != "ops,ops,ops" {
		t.Errorf("commands run as %q, want ops three times (the extended protocol runs none)", users)
	}

	// The console and a warehouse session are listed, each as it is.
	wh := e.connect(t)
	if _, err := wh.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	byUser := map[string]proxy.Session{}
	for _, s := range e.Server.Sessions() {
		byUser[s.User] = s
	}
	ops, pg := byUser["ops"], byUser[testenv.SuperUser]
	if len(byUser) != 2 || ops.Database != "sqlcached" || ops.State != "console" || ops.ApplicationName != "ops-shell" ||
		pg.Database != e.Database || pg.State != "idle" || pg.ClientAddr == "" || time.Since(ops.Since) > time.Minute || pg.Since.Before(ops.Since) {
		t.Errorf("sessions %+v", byUser)
	}
}

func TestAdminConsoleRefusesOthers(t *testing.T) {
	e, a := consoleEnv(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		user, password, code, msg string
	}{
		{"ana", "ana-pw", "28000", "not allowed"},
		{"ops", "wrong", "28P01", "password authentication failed"},
		{"nobody", "x", "28P01", "password authentication failed"},
	} {
		c, err := pgconn.Connect(ctx, e.consoleDSN(tc.user, tc.password))
		if err == nil {
			c.Close(ctx)
			t.Errorf("%s/%s got a console", tc.user, tc.password)
			continue
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s/%s: %v, want %s %q", tc.user, tc.password, err, tc.code, tc.msg)
		}
	}
	if len(a.users) != 0 {
		t.Errorf("commands ran: %v", a.users)
	}
	if n := len(e.Server.Sessions()); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

func TestAdminConsoleEndsAtShutdown(t *testing.T) {
	e, _ := consoleEnv(t)
	ctx := ctxT(t)
	c, err := pgconn.Connect(ctx, e.consoleDSN("ops", "ops-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.Server.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v; an idle console should end at once", err)
	}
}
