package proxy

import (
	"bytes"
	"strconv"
	"time"

	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/readpath"
)

// What the proxy tells Config.Observe: one event per statement a client
// sent, answered from the cache (observeRead) or relayed to the warehouse
// (observeRelay), errors included. Statements the proxy answers for the
// session itself (a kept SET, a lazy BEGIN) are not counted.

// event returns an event of this session's that ran from start to end.
func (c *conn) event(start, end time.Time, out observe.Outcome) observe.Event {
	ev := observe.Event{
		Start: start, Duration: end.Sub(start), Outcome: out,
		User: c.user, Client: c.clientAddr, Database: c.database,
	}
	if c.backend != nil {
		ev.Backend = c.backend.Name
	}
	return ev
}

// observeRead records a statement the read path answered, or failed with
// err.
func (c *conn) observeRead(start time.Time, pl *readpath.Plan, res cache.Result, err error) {
	o := c.srv.cfg.Observe
	if o == nil {
		return
	}
	out := observe.Error
	if err == nil {
		out = observe.FromCache(res.Status)
	}
	ev := c.event(start, time.Now(), out)
	ev.Dashboard = pl.Labels.Dashboard
	if r := pl.Decision.Rule; r != nil {
		ev.Rule = r.Name
	}
	if a := pl.Analysis; a != nil {
		ev.Shape, ev.SQL = a.ShapeID, statementText(a, 0)
	}
	if e := res.Entry; e != nil {
		ev.Rows, ev.Bytes = e.Rows, int64(len(e.Payload))
		if out.Hit() {
			ev.Saved = e.Cost
		}
	}
	if err != nil {
		e := toError(err)
		ev.SQLState, ev.Message = e.Code, e.Message
	}
	o.Record(&ev)
}

// observeRelay records a relayed statement that completed (msg is its
// CommandComplete) or failed (msg is the ErrorResponse the client got).
// The next statement of a Query starts now.
func (c *conn) observeRelay(it *expect, msg []byte) {
	o := c.srv.cfg.Observe
	if o == nil || it.start.IsZero() {
		return
	}
	out := observe.Bypass
	if it.cap != nil {
		out = observe.Miss // a miss of a session holding its connection: stored
	}
	var code, text string
	if msg[0] == 'E' {
		out = observe.Error
		code, text = parseErrorFields(pgwire.Body(msg))
	}
	end := time.Now()
	ev := c.event(it.start, end, out)
	ev.SQLState, ev.Message, ev.Bytes = code, text, it.bytes
	if msg[0] == 'C' {
		ev.Rows = tagRows(pgwire.Body(msg))
	}
	if a := it.a; a != nil {
		if len(a.Statements) == 1 {
			ev.Shape, ev.SQL = a.ShapeID, statementText(a, 0)
		} else if it.kind == exQuery {
			ev.SQL = statementText(a, max(it.n-1, 0))
		}
		ev.Dashboard = a.Labels.Dashboard
		if r := c.relayRule(a, a.Normalized); r != nil {
			ev.Rule = r.Name
		}
	} else if r := c.relayRule(nil, ""); r != nil {
		ev.Rule = r.Name
	}
	if ev.Dashboard == "" {
		ev.Dashboard = c.sessionLabels().SetDashboard
	}
	if code == CodeQueryCanceled && c.timedOutRule() != "" {
		o.Timeout(c.timedOutRule(), ev.Backend)
	}
	o.Record(&ev)
	it.start, it.bytes = end, 0
}

// statementText is the text of statement i of a as the client sent it,
// "" if there is none.
func statementText(a *fingerprint.Analysis, i int) string {
	if i < len(a.Statements) {
		return a.Statements[i].Text
	}
	return ""
}

// timedOutRule names the rule whose timeout cancelled the statement
// running, "" if none.
func (c *conn) timedOutRule() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timedOut == nil {
		return ""
	}
	return c.timedOut.Name
}

// tagRows reads the row count at the end of a command tag (SELECT 5,
// INSERT 0 5, UPDATE 5); 0 when it has none.
func tagRows(body []byte) int64 {
	body = bytes.TrimRight(body, "\x00")
	i := bytes.LastIndexByte(body, ' ')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(body[i+1:]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// observing reports whether relayed statements are timed.
func (c *conn) observing() bool { return c.srv.cfg.Observe != nil }
