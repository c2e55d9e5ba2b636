package nbio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pair returns two ends of a loopback connection of network ("tcp" or
// "unix"), the first wrapped.
func pair(t testing.TB, network string) (net.Conn, net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	w := Wrap(c)
	if _, ok := w.(*Conn); !ok {
		t.Fatalf("Wrap(%T) = %T, want *nbio.Conn", c, w)
	}
	t.Cleanup(func() { w.Close(); peer.Close() })
	return w, peer
}

func TestReadWriteBothWays(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c, peer := pair(t, network)
			// More than any socket buffer: the writer must wait for the
			// reader, in both directions, and nothing may be lost.
			payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			var wg sync.WaitGroup
			var got, echoed []byte
			var rerr, perr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				got, rerr = io.ReadAll(io.LimitReader(peer, int64(len(payload))))
				if rerr == nil {
					_, perr = peer.Write(got)
				}
			}()
			go func() {
				defer wg.Done()
				n, err := c.Write(payload)
				if err != nil || n != len(payload) {
					t.Errorf("Write = %d, %v; want %d, nil", n, err, len(payload))
				}
			}()
			echoed = make([]byte, len(payload))
			if _, err := io.ReadFull(c, echoed); err != nil {
				t.Fatalf("reading the echo: %v", err)
			}
			wg.Wait()
			if rerr != nil || perr != nil {
				t.Fatalf("peer: %v, %v", rerr, perr)
			}
			if !bytes.Equal(got, payload) || !bytes.Equal(echoed, payload) {
				t.Fatal("the bytes that arrived differ from those sent")
			}
		})
	}
}

func TestEndOfStream(t *testing.T) {
	c, peer := pair(t, "tcp")
	if _, err := peer.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil (io.EOF ends it)", b, err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, peer := pair(t, "tcp")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("Read returned after %v, before its deadline", d)
	}
	// A cleared deadline: the read waits for data again.
	c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		peer.Write([]byte("x"))
	}()
	b := make([]byte, 8)
	if n, err := c.Read(b); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("Read = %d, %v; want the byte sent", n, err)
	}
}

func TestCloseWakesReader(t *testing.T) {
	c, _ := pair(t, "tcp")
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read on a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the reader")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on a closed connection: %v, want net.ErrClosed", err)
	}
}

func TestWriteToResetPeerFails(t *testing.T) {
	c, peer := pair(t, "tcp")
	// Unread data at close makes the peer reset the connection.
	c.Write([]byte("unread"))
	time.Sleep(10 * time.Millisecond)
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("more"))
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("writing to a reset connection: %v, want a *net.OpError of write", err)
	}
}

func TestWrapLeavesOthersAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if w := Wrap(a); w != a {
		t.Fatalf("Wrap(net.Pipe end) = %T, want it unchanged", w)
	}
}
