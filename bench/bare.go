package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Bare is the contender that shows the floor of a cache hit on this
// machine: a minimal PostgreSQL-protocol server that answers each simple
// query by looking its text up in a map of answers PostgreSQL gave before
// the run and writing those bytes. No cache, no analysis, no policy: hash,
// look up, write. A hit through any proxy costs at least this much.
const Bare = "bare"

// BareServer is a running Bare contender.
type BareServer struct {
	Endpoint Endpoint
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// bareKey is how the bare server matches query texts: surrounding space
// and semicolons do not count.
func bareKey(sql string) string { return strings.Trim(sql, " \t\r\n;") }

// FetchAnswers asks PostgreSQL at dsn each of sqls with the simple
// protocol and returns, by text, the bytes it answered (RowDescription,
// DataRows, CommandComplete, ReadyForQuery).
func FetchAnswers(ctx context.Context, dsn string, sqls []string) (map[string][]byte, error) {
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	defer hc.Conn.Close()
	r := pgwire.NewReader(hc.Conn, 64<<10, 1<<30)
	out := map[string][]byte{}
	for _, sql := range sqls {
		var b pgwire.Builder
		b.Begin('Q')
		b.String(sql)
		b.Finish()
		if _, err := hc.Conn.Write(b.B); err != nil {
			return nil, err
		}
		var ans []byte
		for {
			typ, msg, err := r.Next()
			if err != nil {
				return nil, err
			}
			if typ == 'E' {
				return nil, fmt.Errorf("bare: PostgreSQL refused %q: %q", sql, msg)
			}
			if typ == 'N' || typ == 'S' {
				continue
			}
			ans = append(ans, msg...)
			if typ == 'Z' {
				break
			}
		}
		out[bareKey(sql)] = ans
	}
	return out, nil
}

// StartBare starts a bare server on a free port of 127.0.0.1 answering
// from answers (see FetchAnswers). Any user, database and password are
// let in; a query not in answers gets an error.
func StartBare(answers map[string][]byte) (*BareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &BareServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.Endpoint = Endpoint{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				_ = serveBare(c, answers)
			}()
		}
	}()
	return s, nil
}

// Stop closes the listener and every connection and waits for them.
func (s *BareServer) Stop() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func serveBare(c net.Conn, answers map[string][]byte) error {
	r := pgwire.NewReader(c, 64<<10, 1<<20)
	for {
		code, _, err := r.NextStartup()
		if err != nil {
			return err
		}
		if code == 80877103 || code == 80877104 { // SSLRequest, GSSENCRequest
			if _, err := c.Write([]byte{'N'}); err != nil {
				return err
			}
			continue
		}
		if code != 196608 {
			return fmt.Errorf("bare: startup code %d", code)
		}
		break
	}
	var b pgwire.Builder
	b.Begin('R')
	b.Int32(0)
	b.Finish()
	for _, kv := range [][2]string{
		{"server_version", "15"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"}, {"IntervalStyle", "postgres"}, {"is_superuser", "on"},
	} {
		b.Begin('S')
		b.String(kv[0])
		b.String(kv[1])
		b.Finish()
	}
	b.Begin('K')
	b.Int32(1)
	b.Int32(1)
	b.Finish()
	b.Begin('Z')
	b.Byte('I')
	b.Finish()
	w := bufio.NewWriterSize(c, 64<<10)
	if _, err := w.Write(b.B); err != nil {
		return err
	}
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		typ, msg, err := r.Next()
		if err != nil {
			return err
		}
		switch typ {
		case 'X':
			return w.Flush()
		case 'Q':
			body := pgwire.Body(msg)
			if n := len(body); n > 0 && body[n-1] == 0 {
				body = body[:n-1]
			}
			if ans, ok := answers[bareKey(string(body))]; ok {
				_, err = w.Write(ans)
			} else {
				_, err = w.Write(bareError("bare: no answer for this query"))
			}
		default:
			_, err = w.Write(bareError(fmt.Sprintf("bare: message %q not supported", typ)))
		}
		if err != nil {
			return err
		}
	}
}

func bareError(msg string) []byte {
	var b pgwire.Builder
	b.Begin('E')
	for _, f := range [][2]string{{"S", "ERROR"}, {"V", "ERROR"}, {"C", "0A000"}, {"M", msg}} {
		b.Byte(f[0][0])
		b.String(f[1])
	}
	b.Byte(0)
	b.Finish()
	b.Begin('Z')
	b.Byte('I')
	b.Finish()
	return b.B
}
