//go:build !race

package nbio

import "testing"

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
