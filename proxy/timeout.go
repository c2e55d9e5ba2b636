package proxy

import (
	"context"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/mono"
	"github.com/sqlcached/sqlcached/internal/pgwire"
	"github.com/sqlcached/sqlcached/internal/readpath"
	"github.com/sqlcached/sqlcached/policy"
)

// Timeouts of relayed statements. A statement the cache does not answer
// runs on the session's warehouse connection under the timeout of the rule
// that covers it, as a miss does: when the timeout fires while the
// warehouse is still at work, the proxy sends it a CancelRequest, and the
// warehouse's "canceling statement due to user request" reaches the client
// as 57014 naming the rule and its limit.

// relayRule returns the rule whose timeout covers a relayed statement
// analysed as a (nil when the session relays it unanalysed), or nil.
func (c *conn) relayRule(a *fingerprint.Analysis, sql string) *policy.Rule {
	reads := c.srv.cfg.Reads
	if reads == nil {
		return nil
	}
	if a == nil {
		if c.rules == reads.Policy() && c.rulesVersion == c.settingsVersion {
			return c.sessionRule // nil when the statement would decide: it was not analysed
		}
		r, decided := reads.Policy().ForSession(c.user, c.database, c.applicationName())
		if !decided {
			return nil
		}
		return r
	}
	labels := c.sessionLabels()
	req := readpath.Request{
		Login: executor.Login(c.login), Database: c.database, ApplicationName: labels.ApplicationName,
		Session: labels, SQL: sql,
	}
	return reads.Rule(&req, a)
}

// armTimeout starts the timeout of rule r for what is about to be relayed;
// the returned function ends it. The session's one timer serves every
// statement, and is not stopped between them: a statement moves the
// deadline, and a timer that fires before it sleeps again for the rest
// (see timerFired). A busy session so touches its timer once a timeout,
// not twice a statement.
func (c *conn) armTimeout(r *policy.Rule) func() {
	if r == nil || r.Timeout <= 0 {
		return noStop
	}
	until := mono.Now() + r.Timeout
	c.mu.Lock()
	c.armed, c.armedUntil = r, until
	switch {
	case c.stmtTimer == nil:
		c.stmtTimer = time.AfterFunc(r.Timeout, c.timerFired)
		c.stopTimer = c.disarm
		c.timerAt = until
	case !c.timerOn || until < c.timerAt:
		// Stopped, or set for a longer timeout than this one: a timer
		// set for sooner fires first and sleeps again for the rest.
		c.stmtTimer.Reset(r.Timeout)
		c.timerAt = until
	}
	c.timerOn = true
	c.mu.Unlock()
	return c.stopTimer
}

func noStop() {}

// disarm ends the running statement's timeout; the timer runs on to its
// time and stops there if no statement is armed by then.
func (c *conn) disarm() {
	c.mu.Lock()
	c.armed, c.timedOut = nil, nil
	c.mu.Unlock()
}

// timerFired cancels the statement running on the attached connection
// when the armed rule's timeout passed. Before the deadline (a statement
// armed since the timer was set) it sets the timer again for the rest;
// with no statement armed it lets the timer stop.
func (c *conn) timerFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.armed
	if r == nil || c.sc == nil {
		c.timerOn = false
		return
	}
	if left := c.armedUntil - mono.Now(); left > 0 {
		c.stmtTimer.Reset(left)
		c.timerAt = c.armedUntil
		return
	}
	c.timerOn = false
	c.timedOut = r
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.sc.Cancel(ctx); err != nil {
		c.srv.lost.Fail(err, "cancel requests that did not reach the warehouse")
	}
}

// stopTimeouts stops the statement timer of a session that ends.
func (c *conn) stopTimeouts() {
	if c.stmtTimer != nil {
		c.stmtTimer.Stop()
	}
}

// timeoutError returns the error a client gets instead of the warehouse's
// 57014 when a rule's timeout cancelled the statement, or nil.
func (c *conn) timeoutError(code string) []byte {
	if code != CodeQueryCanceled {
		return nil
	}
	c.mu.Lock()
	r := c.timedOut
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	te := &executor.TimeoutError{Rule: r.Name, Limit: r.Timeout}
	return errorBytes(newError(CodeQueryCanceled, te.Error()))
}

// codeOf returns the SQLSTATE of an ErrorResponse message.
func codeOf(msg []byte) string {
	code, _ := parseErrorFields(pgwire.Body(msg))
	return code
}
