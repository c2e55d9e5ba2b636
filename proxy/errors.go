package proxy

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Errors returned by Server.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("proxy: server closed")
)

// SQLSTATE codes the proxy answers with itself.
const (
	CodeProtocolViolation     = "08P01"
	CodeConnectionFailure     = "08006"
	CodeInvalidPassword       = "28P01"
	CodeInvalidAuthorization  = "28000"
	CodeUnknownDatabase       = "3D000"
	CodeInsufficientResources = "53000"
	CodeTooManyConnections    = "53300"
	CodeProgramLimitExceeded  = "54000"
	CodeQueryCanceled         = "57014"
	CodeAdminShutdown         = "57P01"
	CodeFeatureNotSupported   = "0A000"
	CodeInvalidSQLStatement   = "26000"
	CodeDuplicateStatement    = "42P05"
	CodeInFailedTransaction   = "25P02"
	CodeDuplicateCursor       = "42P03"
	CodeNoSavepoint           = "3B001"
	CodeInternal              = "XX000"
)

// Error is an error the proxy answers a client with: an ErrorResponse with
// a real SQLSTATE, as pgconn.PgError is for a warehouse's answer.
type Error struct {
	Severity string // ERROR or FATAL; default ERROR
	Code     string
	Message  string
	Detail   string
	Hint     string

	// pg is the warehouse's error this one relays: its other fields
	// (position, context, constraint, source location) go to the client
	// too.
	pg *pgconn.PgError
}

func (e *Error) Error() string { return e.Severity + ": " + e.Message + " (SQLSTATE " + e.Code + ")" }

func newError(code, msg string) *Error { return &Error{Severity: "ERROR", Code: code, Message: msg} }

func fatal(code, msg string) *Error { return &Error{Severity: "FATAL", Code: code, Message: msg} }

// toError turns any error into what a client is told.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		sev := pe.Severity
		if sev == "" {
			sev = "ERROR"
		}
		return &Error{Severity: sev, Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint, pg: pe}
	}
	var qe *executor.QueueError
	if errors.As(err, &qe) {
		return newError(CodeInsufficientResources, qe.Error())
	}
	var te *executor.TimeoutError
	if errors.As(err, &te) {
		return newError(CodeQueryCanceled, te.Error())
	}
	switch {
	case errors.Is(err, postgres.ErrPoolTimeout):
		return newError(CodeTooManyConnections, "no warehouse connection became free in time")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newError(CodeQueryCanceled, "canceling statement due to statement timeout")
	case errors.Is(err, pgwire.ErrTooLarge):
		return fatal(CodeProgramLimitExceeded, err.Error())
	case errors.Is(err, pgwire.ErrBadLength):
		return fatal(CodeProtocolViolation, "invalid message length")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isNetError(err), errors.Is(err, postgres.ErrPoolClosed):
		return newError(CodeConnectionFailure, "warehouse connection lost: "+err.Error())
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return newError(CodeConnectionFailure, "could not connect to the warehouse: "+err.Error())
	}
	return newError(CodeInternal, err.Error())
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// appendError appends an ErrorResponse for e; a relayed warehouse error
// keeps its other fields (position, context, constraint, source location).
func appendError(b *pgwire.Builder, e *Error) {
	var pe pgconn.PgError
	if e.pg != nil {
		pe = *e.pg
	}
	pe.Severity, pe.SeverityUnlocalized = cmp.Or(e.Severity, "ERROR"), ""
	pe.Code, pe.Message, pe.Detail, pe.Hint = e.Code, e.Message, e.Detail, e.Hint
	b.PgError(&pe)
}

// errorBytes returns a whole ErrorResponse message for err.
func errorBytes(err error) []byte {
	var b pgwire.Builder
	appendError(&b, toError(err))
	return b.B
}

// errorFields calls f with each field of an ErrorResponse or
// NoticeResponse body, in order, until f returns false.
func errorFields(body []byte, f func(t byte, v string) bool) {
	for len(body) > 1 {
		i := 1
		for i < len(body) && body[i] != 0 {
			i++
		}
		if !f(body[0], string(body[1:i])) || i >= len(body) {
			return
		}
		body = body[i+1:]
	}
}

// errorSeverity reads the severity of an ErrorResponse body, preferring
// the untranslated V field to S.
func errorSeverity(body []byte) string {
	var sev, v string
	errorFields(body, func(t byte, val string) bool {
		switch t {
		case 'V':
			v = val
			return false
		case 'S':
			sev = val
		}
		return true
	})
	if v != "" {
		return v
	}
	return sev
}

// connectFailed turns a failure to open a warehouse connection in the
// middle of a session into an error the session survives: the
// warehouse's FATAL (the database system is shutting down, too many
// connections) ends the connection attempt, not the client's session.
func connectFailed(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return newError(CodeConnectionFailure, "could not connect to the warehouse: "+err.Error())
	}
	return err
}

// parseErrorFields reads the SQLSTATE and message of an ErrorResponse body.
func parseErrorFields(body []byte) (code, msg string) {
	errorFields(body, func(t byte, v string) bool {
		switch t {
		case 'C':
			code = v
		case 'M':
			msg = v
		}
		return true
	})
	return code, msg
}

// relayedFatal ends a session with the warehouse's own FATAL
// ErrorResponse: the backend the session owned was terminated.
type relayedFatal struct{ msg []byte }

func (e *relayedFatal) Error() string {
	_, text := parseErrorFields(pgwire.Body(e.msg))
	return "FATAL: " + text
}

// shiftPosition returns an ErrorResponse or NoticeResponse whose cursor
// position (field P) is moved by shift characters: the answer to a tail of
// the client's Query text, sent alone, made to point into the whole text.
// Other messages, and messages without a position, come back as they are.
func shiftPosition(msg []byte, shift int) []byte {
	if shift == 0 || len(msg) < 5 || (msg[0] != 'E' && msg[0] != 'N') {
		return msg
	}
	var b pgwire.Builder
	b.Begin(msg[0])
	found := false
	errorFields(pgwire.Body(msg), func(t byte, v string) bool {
		if t == 'P' {
			if n, err := strconv.Atoi(v); err == nil {
				v, found = strconv.Itoa(n+shift), true
			}
		}
		b.Byte(t)
		b.String(v)
		return true
	})
	if !found {
		return msg
	}
	b.Byte(0)
	b.Finish()
	return b.B
}
