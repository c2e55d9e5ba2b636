package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sqlcached/sqlcached/internal/admin"
	"github.com/sqlcached/sqlcached/proxy"
)

// adminCommands runs the admin console's commands against the console's
// parts, read at each command: the server is added to the console after
// the proxy that serves the commands is made.
type adminCommands struct {
	con     *console
	started time.Time
}

var _ proxy.Admin = (*adminCommands)(nil)

// newAdmin returns what serves the admin console (database "sqlcached")
// for the proxy.
func newAdmin(con *console) *adminCommands {
	return &adminCommands{con: con, started: time.Now()}
}

// IsAdmin reports whether user is in auth.admin_users.
func (a *adminCommands) IsAdmin(user string) bool { return a.con.cfg.IsAdmin(user) }

// Exec runs one console command for user.
func (a *adminCommands) Exec(ctx context.Context, user, sql string) (*proxy.AdminAnswer, error) {
	c, err := admin.Parse(sql)
	if err != nil {
		return nil, clientError(err)
	}
	res, err := a.run(ctx, user, c)
	if err != nil {
		return nil, clientError(err)
	}
	ans := &proxy.AdminAnswer{Rows: res.Text(), Tag: res.Tag, Notice: res.Notice}
	for _, col := range res.Columns {
		ans.Columns = append(ans.Columns, proxy.AdminColumn{Name: col.Name, TypeOID: col.Type.OID(), Size: col.Type.Size()})
	}
	return ans, nil
}

// run runs c, logging what changes the server.
func (a *adminCommands) run(ctx context.Context, user string, c admin.Command) (*admin.Result, error) {
	res, err := admin.Run(ctx, a.deps(), c)
	switch c.Op {
	case admin.InvalidateTable, admin.InvalidateDashboard, admin.InvalidateAll, admin.Reload:
		if err != nil {
			a.con.log.Warn("admin command failed", "user", user, "op", opName(c), "arg", c.Arg, "err", err)
		} else {
			a.con.log.Info("admin command", "user", user, "op", opName(c), "arg", c.Arg)
		}
	}
	return res, err
}

func opName(c admin.Command) string {
	switch c.Op {
	case admin.InvalidateTable:
		return "invalidate table"
	case admin.InvalidateDashboard:
		return "invalidate dashboard"
	case admin.InvalidateAll:
		return "invalidate all"
	}
	return "reload"
}

// clientError turns a command's failure into what a PostgreSQL client is
// told.
func clientError(err error) error {
	var e *admin.Error
	if errors.As(err, &e) {
		return &proxy.Error{Severity: "ERROR", Code: e.Code, Message: e.Message, Hint: e.Hint}
	}
	return err
}

// deps are the console's parts as they are now.
func (a *adminCommands) deps() *admin.Deps {
	con := a.con
	d := &admin.Deps{
		Observer: con.obs, Cache: con.cache, L2: con.cfg.Cache.L2 != nil, Queues: con.queues,
		Pools: map[string]admin.Pool{}, Reload: con.reload, Started: a.started,
	}
	for name, p := range con.bs.pools {
		d.Pools[name] = p
	}
	if con.reads != nil {
		d.Policy = con.reads.Policy()
	}
	if srv := con.srv; srv != nil {
		d.Clients = func() []admin.Client {
			ss := srv.Sessions()
			out := make([]admin.Client, len(ss))
			for i, s := range ss {
				out[i] = admin.Client{PID: s.PID, User: s.User, Database: s.Database, ApplicationName: s.ApplicationName,
					Addr: s.ClientAddr, State: s.State, Since: s.Since}
			}
			return out
		}
	}
	return d
}

// adminAPI serves the admin console's commands as JSON under /admin/, to
// the users of auth.users (HTTP Basic authentication) listed in
// auth.admin_users:
//
//	GET  /admin/stats                 an object
//	GET  /admin/queries[?by=&limit=]  an array of objects, as SHOW QUERIES
//	GET  /admin/{caches,policies,queues,pools,clients,errors}
//	POST /admin/invalidate            {"table": "t"} | {"dashboard": "d"} | {"all": true}
//	POST /admin/reload
//
// Errors are {"error": message, "sqlstate": code, "hint": ...}.
func adminAPI(con *console) http.Handler {
	a := newAdmin(con)
	mux := http.NewServeMux()
	for path, op := range map[string]admin.Op{
		"queries": admin.ShowQueries, "caches": admin.ShowCaches, "policies": admin.ShowPolicies, "queues": admin.ShowQueues,
		"pools": admin.ShowPools, "clients": admin.ShowClients, "errors": admin.ShowErrors, "help": admin.ShowHelp,
	} {
		mux.HandleFunc("GET /admin/"+path, func(w http.ResponseWriter, r *http.Request) {
			c := admin.Command{Op: op, By: r.URL.Query().Get("by")}
			c.Limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
			a.serveJSON(w, r, c, func(res *admin.Result) any { return res.Objects() })
		})
	}
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) {
		a.serveJSON(w, r, admin.Command{Op: admin.ShowStats}, func(res *admin.Result) any { return res.Objects()[0] })
	})
	mux.HandleFunc("POST /admin/invalidate", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Table, Dashboard string
			All              bool
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeAdminError(w, http.StatusBadRequest, &admin.Error{Code: admin.CodeSyntaxError, Message: "the body is not JSON: " + err.Error()})
			return
		}
		var c admin.Command
		switch {
		case body.Table != "" && body.Dashboard == "" && !body.All:
			c = admin.Command{Op: admin.InvalidateTable, Arg: body.Table}
		case body.Dashboard != "" && body.Table == "" && !body.All:
			c = admin.Command{Op: admin.InvalidateDashboard, Arg: body.Dashboard}
		case body.All && body.Table == "" && body.Dashboard == "":
			c = admin.Command{Op: admin.InvalidateAll}
		default:
			writeAdminError(w, http.StatusBadRequest, &admin.Error{Code: admin.CodeSyntaxError, Message: `give one of {"table": "name"}, {"dashboard": "label"}, {"all": true}`})
			return
		}
		a.serveJSON(w, r, c, func(res *admin.Result) any { return done(res, body) })
	})
	mux.HandleFunc("POST /admin/reload", func(w http.ResponseWriter, r *http.Request) {
		a.serveJSON(w, r, admin.Command{Op: admin.Reload}, func(res *admin.Result) any { return done(res, nil) })
	})
	return a.authorize(mux)
}

// done is the answer to a command that changes the server.
func done(res *admin.Result, what any) any {
	return struct {
		Done   string `json:"done"`
		What   any    `json:"request,omitempty"`
		Notice string `json:"notice,omitempty"`
	}{res.Tag, what, res.Notice}
}

// authorize lets through the requests of admin users, checked with HTTP
// Basic authentication against auth.users: 401 without valid
// credentials, 403 for a user who is not an admin. A user without a
// password cannot log in here, whatever auth.method says.
func (a *adminCommands) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok || !a.checkPassword(user, pw) {
			w.Header().Set("WWW-Authenticate", `Basic realm="sqlcached admin", charset="UTF-8"`)
			writeAdminError(w, http.StatusUnauthorized, &admin.Error{Code: "28P01", Message: "authentication required: a user of auth.users, with its password"})
			return
		}
		if !a.IsAdmin(user) {
			writeAdminError(w, http.StatusForbidden, &admin.Error{Code: "28000", Message: "user " + strconv.Quote(user) + " is not allowed to use the admin console: not in auth.admin_users"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *adminCommands) checkPassword(user, pw string) bool {
	for _, u := range a.con.cfg.Auth.Users {
		if u.Name == user {
			return u.Password != "" && subtle.ConstantTimeCompare([]byte(pw), []byte(u.Password)) == 1
		}
	}
	return false
}

// serveJSON runs c for the request's user and writes body(result).
func (a *adminCommands) serveJSON(w http.ResponseWriter, r *http.Request, c admin.Command, body func(*admin.Result) any) {
	user, _, _ := r.BasicAuth()
	res, err := a.run(r.Context(), user, c)
	if err != nil {
		var e *admin.Error
		if !errors.As(err, &e) {
			e = &admin.Error{Code: "XX000", Message: err.Error()}
		}
		status := http.StatusInternalServerError
		switch e.Code {
		case admin.CodeSyntaxError:
			status = http.StatusBadRequest
		case admin.CodeNotInPrerequisite:
			status = http.StatusConflict
		case admin.CodeConfigFileError:
			status = http.StatusUnprocessableEntity
		}
		writeAdminError(w, status, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body(res))
}

func writeAdminError(w http.ResponseWriter, status int, e *admin.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error    string `json:"error"`
		SQLState string `json:"sqlstate"`
		Hint     string `json:"hint,omitempty"`
	}{e.Message, e.Code, e.Hint})
}
