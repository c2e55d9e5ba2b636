package postgres

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/internal/mono"
	"github.com/sqlcached/sqlcached/internal/nbio"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// TestFreshConnectionsAreNotProbed: a connection released a moment ago
// is handed out without the system call that asks whether the warehouse
// ended it; once freshFor has passed, that check runs and sees the end.
func TestFreshConnectionsAreNotProbed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	wrapped := nbio.Wrap(nc)
	defer wrapped.Close()
	c := &Conn{netConn: wrapped, R: pgwire.NewReader(wrapped, 1024, 1<<20), W: bufio.NewWriter(wrapped)}

	// Released "in a minute": fresh however long this goroutine waits
	// for a processor on a loaded machine.
	c.lastUsed = mono.Now() + time.Minute
	if !c.fresh() {
		t.Fatal("a connection released just now is not fresh")
	}
	if c.gone() {
		t.Fatal("a live idle connection is gone")
	}
	// The warehouse ends it: a FATAL and the end of the stream wait on
	// the socket.
	peer.Write([]byte{'E', 0, 0, 0, 4})
	peer.Close()
	time.Sleep(10 * time.Millisecond) // the FATAL and the end arrive
	c.lastUsed = mono.Now() - freshFor
	if c.fresh() {
		t.Fatalf("a connection released %v ago is still fresh", freshFor)
	}
	if !c.gone() {
		t.Fatal("the check does not see the connection ended while idle")
	}
}
