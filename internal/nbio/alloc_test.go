//go:build !race

package nbio

import (
	"io"
	"testing"
)

// TestReadWriteAllocateNothing: a relayed answer (and a cache hit) is a
// copy of bytes; the wrapper adds no allocation to a Read or a Write.
func TestReadWriteAllocateNothing(t *testing.T) {
	c, peer := pair(t, "tcp")
	msg := []byte("0123456789")
	buf := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a Write and a Read, want 0", allocs)
	}
}

// TestWriteBeforeReadAllocatesNothing: a request queued for the read of
// its answer costs no allocation once the queue has its size.
func TestWriteBeforeReadAllocatesNothing(t *testing.T) {
	w, peer := pair(t, "tcp")
	c := w.(*Conn)
	go func() { // echoes until the test closes the connection
		b := make([]byte, 64)
		for {
			n, err := peer.Read(b)
			if err != nil {
				return
			}
			if _, err := peer.Write(b[:n]); err != nil {
				return
			}
		}
	}()
	msg := []byte("0123456789")
	buf := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if err := c.WriteBeforeRead(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a request and its answer, want 0", allocs)
	}
}
