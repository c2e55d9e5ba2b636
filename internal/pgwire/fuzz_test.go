package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzReader reads arbitrary bytes as a session would: startup-phase
// packets, then typed messages, through a reader that pauses as a read
// deadline would. It must not panic, must give the same messages with and
// without pauses, must refuse a declared length over its bound without
// allocating it, and must never hold more than its bound.
func FuzzReader(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f\x00\x00\x00\x16\x00\x03\x00\x00user\x00u\x00\x00Q\x00\x00\x00\x0dselect 1\x00"), uint16(1000), uint8(1))
	f.Add([]byte("Q\x80\x00\x00\x00"), uint16(1000), uint8(0))
	f.Add([]byte("Q\xff\xff\xff\xffselect"), uint16(64), uint8(0))
	f.Add([]byte("Q\x00\x00\x00\x03"), uint16(64), uint8(0))
	f.Add([]byte("d\x00\x00\x01\x00"+string(make([]byte, 300))+"S\x00\x00\x00\x04"), uint16(400), uint8(0))
	f.Add([]byte("\x00\x00\x27\x11\x00\x03\x00\x00"), uint16(100), uint8(1))
	f.Add([]byte("\x00\x00\x00\x04"), uint16(100), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, bound uint16, startups uint8) {
		limit := int(bound)
		plain := read(NewReader(bytes.NewReader(data), 16, limit), nil, int(startups%4))
		// Startup packets are read under one deadline that ends the
		// connection: only typed messages must survive pauses.
		pr := &pausingReader{r: bytes.NewReader(data), n: 7, off: true}
		paused := read(NewReader(pr, 16, limit), pr, int(startups%4))
		if len(plain.msgs) != len(paused.msgs) {
			t.Fatalf("%d messages without pauses, %d with", len(plain.msgs), len(paused.msgs))
		}
		for i := range plain.msgs {
			if !bytes.Equal(plain.msgs[i], paused.msgs[i]) {
				t.Fatalf("message %d differs with pauses: %q, want %q", i, paused.msgs[i], plain.msgs[i])
			}
		}
		if !sameError(plain.err, paused.err) {
			t.Fatalf("ended with %v without pauses, %v with", plain.err, paused.err)
		}
		for _, res := range []result{plain, paused} {
			if res.held > max(limit, MaxStartupBytes) {
				t.Fatalf("the reader held %d bytes, bound %d", res.held, limit)
			}
		}
		// Where the typed messages stopped, the next header explains why.
		rest := data[plain.consumed:]
		if plain.startupsDone && errors.Is(plain.err, ErrTooLarge) {
			n := int(binary.BigEndian.Uint32(rest[1:5]))
			if n+1 <= limit {
				t.Fatalf("ErrTooLarge for a declared length %d within the bound %d", n, limit)
			}
		}
	})
}

type result struct {
	msgs         [][]byte
	err          error
	held         int // the most the reader's buffer held
	consumed     int // bytes of the input taken by the messages returned
	startupsDone bool
}

// read reads up to startups startup-phase packets, then typed messages
// until an error other than a pause, turning pauses on after the startup
// phase.
func read(r *Reader, pr *pausingReader, startups int) result {
	var res result
	note := func(msg []byte) {
		res.msgs = append(res.msgs, bytes.Clone(msg))
		res.consumed += len(msg)
		res.held = max(res.held, cap(r.buf))
	}
	for i := 0; i < startups; i++ {
		for {
			code, body, err := r.NextStartup()
			res.held = max(res.held, cap(r.buf))
			if errors.Is(err, errPause) {
				continue
			}
			if err != nil {
				res.err = err
				return res
			}
			if len(body)+8 > MaxStartupBytes {
				panic("startup packet over MaxStartupBytes")
			}
			msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)+8))
			msg = binary.BigEndian.AppendUint32(msg, code)
			note(append(msg, body...))
			break
		}
	}
	res.startupsDone = true
	if pr != nil {
		pr.off = false
	}
	for {
		typ, msg, err := r.Next()
		res.held = max(res.held, cap(r.buf))
		if errors.Is(err, errPause) {
			continue
		}
		if err != nil {
			res.err = err
			return res
		}
		if len(msg) < 5 || msg[0] != typ || int(binary.BigEndian.Uint32(msg[1:5]))+1 != len(msg) || len(msg) > r.max {
			panic("Next returned a message that does not match its header")
		}
		note(msg)
	}
}

func sameError(a, b error) bool {
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, ErrTooLarge, ErrBadLength} {
		if errors.Is(a, target) != errors.Is(b, target) {
			return false
		}
	}
	return true
}
