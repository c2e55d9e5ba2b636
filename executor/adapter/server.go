package adapter

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
)

// Config configures a Server.
type Config struct {
	// Warehouse runs the statements.
	Warehouse executor.Warehouse
	// Name names the warehouse in messages ("DuckDB").
	Name string
	// ServerVersion is the server_version reported to clients; it must
	// start with a PostgreSQL version, which decides the catalog queries
	// clients send. Defaults to "15.0".
	ServerVersion string
	// Analyzer splits and classifies statements; nil uses fingerprint's
	// built-in analysis.
	Analyzer *fingerprint.Analyzer
	// MaxAnswerBytes bounds one answer held for a session (a statement's,
	// a portal's or a cursor's); a larger one fails with SQLSTATE 54000.
	// Defaults to 1GiB.
	MaxAnswerBytes int
	// MaxMessageBytes bounds one message from a client. Defaults to 64MiB.
	MaxMessageBytes int
	// MaxSessions bounds the sessions open at once; one more is refused
	// with SQLSTATE 53300. Defaults to 1000.
	MaxSessions int
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// Server serves a warehouse to PostgreSQL clients.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends every running statement on Close
	cancel context.CancelFunc

	mu        sync.Mutex // protects the fields below
	listeners map[net.Listener]struct{}
	sessions  map[uint32]*session
	conns     map[net.Conn]struct{}
	closed    bool

	wg sync.WaitGroup
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("adapter: server closed")

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Warehouse == nil {
		return nil, errors.New("adapter: Config.Warehouse is required")
	}
	cfg.Name = cmp.Or(cfg.Name, "warehouse")
	cfg.ServerVersion = cmp.Or(cfg.ServerVersion, "15.0")
	if cfg.MaxAnswerBytes <= 0 {
		cfg.MaxAnswerBytes = 1 << 30
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 64 << 20
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, sessions: map[uint32]*session{}, conns: map[net.Conn]struct{}{},
	}, nil
}

// Port is the port number in the name of the socket Listen opens.
const Port = 5432

// Listen opens the Unix socket of a server in dir, which it creates
// readable by its owner only, and returns it with the DSN that connects
// to it (no user or database: each connection names its own).
func Listen(dir string) (net.Listener, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", Port))
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", err
	}
	return ln, fmt.Sprintf("host=%s port=%d sslmode=disable", dir, Port), nil
}

// Serve accepts sessions on ln until Close; it returns ErrClosed then.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrClosed
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.serveConn(nc)
		}()
	}
}

// Close stops listening, cancels every running statement, closes every
// session and waits for them to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// register gives a session its process ID and cancel key.
func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		return false
	}
	var b [8]byte
	for {
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x3fffffff
		if _, taken := s.sessions[pid]; pid == 0 || taken {
			continue
		}
		ss.pid, ss.key = pid, binary.BigEndian.Uint32(b[4:])
		s.sessions[pid] = ss
		return true
	}
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.pid] == ss {
		delete(s.sessions, ss.pid)
	}
	s.mu.Unlock()
}

// session returns the session of pid, nil if none.
func (s *Server) session(pid uint32) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[pid]
}

// Sessions reports how many sessions are open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
