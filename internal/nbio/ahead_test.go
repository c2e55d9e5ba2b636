package nbio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// silent reports whether peer receives nothing within d.
func silent(t *testing.T, peer net.Conn, d time.Duration) bool {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(d))
	defer peer.SetReadDeadline(time.Time{})
	n, err := peer.Read(make([]byte, 1))
	if n > 0 {
		return false
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read: %v", err)
	}
	return true
}

// answer reads want bytes on peer and writes reply.
func answer(peer net.Conn, want int, reply []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		got := make([]byte, want)
		if _, err := io.ReadFull(peer, got); err != nil {
			done <- err
			return
		}
		_, err := peer.Write(reply)
		done <- err
	}()
	return done
}

// TestWriteBeforeReadSendsFromTheRead: the request goes out when the
// read for its answer begins, not before, and the answer is read.
func TestWriteBeforeReadSendsFromTheRead(t *testing.T) {
	w, peer := pair(t, "tcp")
	c := w.(*Conn)
	if err := c.WriteBeforeRead([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if !c.Queued() {
		t.Fatal("nothing queued after WriteBeforeRead")
	}
	if !silent(t, peer, 30*time.Millisecond) {
		t.Fatal("the request went out before the read")
	}
	done := answer(peer, len("request"), []byte("answer"))
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("Read = %q, %v; want the answer", buf[:n], err)
	}
	if err := <-done; err != nil {
		t.Fatalf("peer: %v", err)
	}
	if c.Queued() {
		t.Fatal("bytes still queued after the read")
	}
}

// TestWriteBeforeReadThenWrite: a Write before the read sends the queued
// bytes first, in order.
func TestWriteBeforeReadThenWrite(t *testing.T) {
	w, peer := pair(t, "unix")
	c := w.(*Conn)
	c.WriteBeforeRead([]byte("first "))
	if _, err := c.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("first second"))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "first second" {
		t.Fatalf("peer got %q, %v", got, err)
	}
	if c.Queued() {
		t.Fatal("bytes still queued after the Write")
	}
}

// TestWriteBeforeReadLarge: more than the bound goes out at once.
func TestWriteBeforeReadLarge(t *testing.T) {
	w, peer := pair(t, "tcp")
	c := w.(*Conn)
	big := bytes.Repeat([]byte("x"), maxAhead+1)
	if err := c.WriteBeforeRead(big); err != nil {
		t.Fatal(err)
	}
	if c.Queued() {
		t.Fatal("bytes over the bound were kept")
	}
	got := make([]byte, len(big))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("peer got %d bytes, %v", len(got), err)
	}
}

// TestWriteBeforeReadFullSocket: when the socket takes only part of the
// queued bytes, the read waits for room, sends the rest, then reads the
// answer; nothing is lost or reordered.
func TestWriteBeforeReadFullSocket(t *testing.T) {
	w, peer := pair(t, "unix")
	c := w.(*Conn)
	// Fill the socket's buffers so that the queued bytes cannot all go.
	filler := bytes.Repeat([]byte("f"), 1<<20)
	c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	sent, _ := c.Write(filler)
	c.SetWriteDeadline(time.Time{})
	req := bytes.Repeat([]byte("r"), maxAhead)
	c.WriteBeforeRead(req)
	done := answer(peer, sent+len(req), []byte("ok"))
	buf := make([]byte, 8)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("Read = %q, %v; want the answer", buf[:n], err)
	}
	if err := <-done; err != nil {
		t.Fatalf("peer: %v", err)
	}
}

// TestWriteBeforeReadToResetPeer: a queued write that fails ends the
// read with the write's error.
func TestWriteBeforeReadToResetPeer(t *testing.T) {
	w, peer := pair(t, "tcp")
	c := w.(*Conn)
	c.Write([]byte("unread"))
	time.Sleep(10 * time.Millisecond)
	peer.Close() // unread data: a reset
	time.Sleep(10 * time.Millisecond)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		c.WriteBeforeRead([]byte("request"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 8))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("reading after a queued write to a reset peer: %v, want a *net.OpError", err)
	}
	if c.Queued() {
		t.Fatal("bytes still queued after the failed write")
	}
}
