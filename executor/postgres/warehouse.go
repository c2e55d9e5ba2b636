package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

var _ executor.Warehouse = (*Pool)(nil)

// Execute runs one statement on a pooled connection and returns its
// answer in wire form. When ctx ends first, the statement is cancelled on
// the warehouse and ctx's error is returned.
func (p *Pool) Execute(ctx context.Context, req *executor.Request) (*executor.Result, error) {
	if p.cfg.LabelSetting != "" && req.Dashboard != "" {
		labelled := *req
		labelled.Settings = maps.Clone(req.Settings)
		if labelled.Settings == nil {
			labelled.Settings = map[string]string{}
		}
		labelled.Settings[p.cfg.LabelSetting] = "SET " + QuoteName(p.cfg.LabelSetting) + " = '" + strings.ReplaceAll(req.Dashboard, "'", "''") + "'"
		req = &labelled
	}
	c, err := p.Acquire(ctx, Login(req.Login))
	if err != nil {
		return nil, err
	}
	cancelDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelDone)
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Cancel(cctx)
	})
	res, err := c.run(req)
	cancelled := !stop()
	if cancelled {
		// The cancel must land before the connection can pass on.
		<-cancelDone
	}
	if err != nil && c.Broken {
		p.Destroy(c)
	} else {
		p.Release(c)
	}
	if cancelled && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, err
}

func (c *Conn) run(req *executor.Request) (*executor.Result, error) {
	res, err := c.runOnce(req)
	var pe *pgconn.PgError
	if req.Statement != "" && c.Prepared[req.Statement] && errors.As(err, &pe) && pe.Code == "0A000" && pe.Message == "cached plan must not change result type" && c.TxStatus == 'I' && !c.Broken {
		// "cached plan must not change result type": DDL changed what
		// the prepared statement returns. Forget it; run it anew.
		if err := c.closeStatement(req.Statement); err != nil {
			return nil, err
		}
		again := *req
		again.Statement = ""
		return c.runOnce(&again)
	}
	return res, err
}

// closeStatement closes the prepared statement name on the warehouse.
func (c *Conn) closeStatement(name string) error {
	delete(c.Prepared, name)
	var b pgwire.Builder
	b.Begin('C')
	b.Byte('S')
	b.String(name)
	b.Finish()
	b.Begin('S')
	b.Finish()
	if _, err := c.W.Write(b.B); err != nil {
		c.Broken = true
		return err
	}
	if err := c.W.Flush(); err != nil {
		c.Broken = true
		return err
	}
	return c.readUntilReady(nil)
}

func (c *Conn) runOnce(req *executor.Request) (*executor.Result, error) {
	var b pgwire.Builder
	if sql := c.SettingsSQL(req.Settings); sql != "" {
		b.Begin('Q')
		b.String(sql)
		b.Finish()
	}
	replay := len(b.B) > 0
	if replay || !req.Extended() {
		c.Unnamed = "" // a simple Query drops the unnamed statement
	}
	// A named statement is parsed once per connection, while the
	// connection keeps fewer than MaxPrepared; it counts as prepared once
	// the warehouse has said ParseComplete.
	name, parse := "", true
	if req.Extended() {
		switch {
		case req.Statement != "" && c.Prepared[req.Statement]:
			name, parse = req.Statement, false
		case req.Statement != "" && len(c.Prepared) < MaxPrepared:
			name = req.Statement
		default:
			c.Unnamed = ""
		}
		appendExtended(&b, req, name, parse)
	} else {
		b.Begin('Q')
		b.String(req.SQL)
		b.Finish()
	}
	if _, err := c.W.Write(b.B); err != nil {
		c.Broken = true
		return nil, err
	}
	if err := c.W.Flush(); err != nil {
		c.Broken = true
		return nil, err
	}
	if replay {
		if err := c.readUntilReady(nil); err != nil {
			// The statement's own answers are still on their way, and
			// the connection's settings are not what Settings says:
			// it cannot serve anyone else.
			c.Broken = true
			return nil, err
		}
	}
	res := &executor.Result{}
	err := c.readUntilReady(func(typ byte, msg []byte) error {
		switch typ {
		case '1':
			if name != "" {
				c.Prepared[name] = true
			}
		case 'T', 'n', 'D', 'C':
			if req.MaxBytes > 0 && len(res.Wire)+len(msg) > req.MaxBytes {
				// The rest would be read only to be dropped: stop the
				// statement, and read what was sent up to ReadyForQuery.
				res.Wire = nil
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.Cancel(ctx)
				cancel()
				return executor.ErrTooLarge
			}
			res.Wire = append(res.Wire, msg...)
			if typ == 'D' {
				res.Rows++
			}
			if typ == 'C' {
				res.Tag = string(bytes.TrimRight(pgwire.Body(msg), "\x00"))
			}
		case 'G', 'H', 'W':
			return errors.New("executor: COPY is not run for the cache")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// MaxPrepared bounds the statements kept prepared on one connection.
const MaxPrepared = 512

// appendExtended appends the messages that run req as the statement name
// ("" for the unnamed one), parsing it first if parse is set.
func appendExtended(b *pgwire.Builder, req *executor.Request, name string, parse bool) {
	if parse {
		b.Begin('P')
		b.String(name)
		b.String(req.SQL)
		b.Int16(int16(len(req.ParamOIDs)))
		for _, o := range req.ParamOIDs {
			b.Int32(int32(o))
		}
		b.Finish()
	}
	b.Begin('B')
	b.String("")
	b.String(name)
	b.Int16(int16(len(req.ParamFormats)))
	for _, f := range req.ParamFormats {
		b.Int16(f)
	}
	b.Int16(int16(len(req.Params)))
	for _, v := range req.Params {
		if v == nil {
			b.Int32(-1)
			continue
		}
		b.Int32(int32(len(v)))
		b.Bytes(v)
	}
	b.Int16(int16(len(req.ResultFormats)))
	for _, f := range req.ResultFormats {
		b.Int16(f)
	}
	b.Finish()
	b.Begin('D')
	b.Byte('P')
	b.String("")
	b.Finish()
	b.Begin('E')
	b.String("")
	b.Int32(0)
	b.Finish()
	b.Begin('S')
	b.Finish()
}

// readUntilReady reads answers up to ReadyForQuery, handing each to f
// (nil: drop them). The first error the warehouse reports, or the first
// f returns, is returned once ReadyForQuery arrives.
func (c *Conn) readUntilReady(f func(typ byte, msg []byte) error) error {
	var first error
	for {
		typ, msg, err := c.R.Next()
		if err != nil {
			c.Broken = true
			return err
		}
		switch typ {
		case 'Z':
			if body := pgwire.Body(msg); len(body) > 0 {
				c.TxStatus = body[0]
			}
			return first
		case 'E':
			if first == nil {
				first = pgError(pgwire.Body(msg))
			}
		case 'S':
			s := pgwire.NewScanner(pgwire.Body(msg))
			if k, v := s.CString(), s.CString(); s.Err == nil {
				c.Params[string(k)] = string(v)
			}
		default:
			if f != nil && first == nil {
				first = f(typ, msg)
			}
		}
	}
}

// pgError decodes an ErrorResponse body.
func pgError(body []byte) *pgconn.PgError {
	e := &pgconn.PgError{}
	for len(body) > 1 {
		t := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		v := string(body[1 : 1+end])
		switch t {
		case 'S':
			e.Severity = v
		case 'V':
			e.SeverityUnlocalized = v
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'D':
			e.Detail = v
		case 'H':
			e.Hint = v
		case 'P':
			e.Position = atoi32(v)
		case 'p':
			e.InternalPosition = atoi32(v)
		case 'q':
			e.InternalQuery = v
		case 'W':
			e.Where = v
		case 's':
			e.SchemaName = v
		case 't':
			e.TableName = v
		case 'c':
			e.ColumnName = v
		case 'd':
			e.DataTypeName = v
		case 'n':
			e.ConstraintName = v
		case 'F':
			e.File = v
		case 'L':
			e.Line = atoi32(v)
		case 'R':
			e.Routine = v
		}
		body = body[2+end:]
	}
	return e
}

func atoi32(s string) int32 {
	n, _ := strconv.ParseInt(s, 10, 32)
	return int32(n)
}

// SettingsSQL returns the statements that bring the connection's settings
// to want (SET for each that differs, RESET for each want lacks), and
// records want as applied. "" means nothing to send.
func (c *Conn) SettingsSQL(want map[string]string) string {
	c.SettingsOwner = nil
	if len(want) == 0 && len(c.Settings) == 0 {
		return ""
	}
	var q strings.Builder
	for name, sql := range want {
		if c.Settings[name] != sql {
			// A newline first: a SET ending in a -- comment must not
			// swallow the statements after it.
			q.WriteString(sql)
			q.WriteString("\n;\n")
		}
	}
	for name := range c.Settings {
		if _, ok := want[name]; !ok {
			q.WriteString(resetSQL(name))
		}
	}
	clear(c.Settings)
	for k, v := range want {
		c.Settings[k] = v
	}
	return q.String()
}

// resetSQL returns the SQL that undoes a setting the proxy follows under
// name.
func resetSQL(name string) string {
	return "RESET " + QuoteName(name) + ";\n"
}

// QuoteName quotes a setting name when it needs it.
func QuoteName(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// volatilitySQL reads every function's volatility, the most volatile of
// its overloads.
const volatilitySQL = `select n.nspname, p.proname, max(p.provolatile::text)
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
group by 1, 2`

// Volatility reads function volatility from the warehouse catalog
// (pg_proc.provolatile: 'i', 's' or 'v'), keyed "schema.name" and, for
// calls that name no schema, "name" with the most volatile of all schemas.
func (p *Pool) Volatility(ctx context.Context, login executor.Login) (map[string]byte, error) {
	res, err := p.Execute(ctx, &executor.Request{Login: login, SQL: volatilitySQL})
	if err != nil {
		return nil, err
	}
	out := make(map[string]byte, 2*res.Rows)
	for wire := res.Wire; len(wire) > 5; {
		n := 1 + int(binary.BigEndian.Uint32(wire[1:5]))
		if wire[0] == 'D' {
			s := pgwire.NewScanner(wire[5:n])
			if s.Int16() == 3 {
				schema := s.Next(int(s.Int32()))
				name := s.Next(int(s.Int32()))
				v := s.Next(int(s.Int32()))
				if s.Err == nil && len(v) == 1 {
					out[string(schema)+"."+string(name)] = v[0]
					if v[0] > out[string(name)] {
						out[string(name)] = v[0]
					}
				}
			}
		}
		wire = wire[n:]
	}
	return out, nil
}
