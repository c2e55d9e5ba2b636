package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// errPause stands for a read deadline: a temporary failure after which
// reading goes on.
var errPause = errors.New("paused")

// pausingReader returns errPause before every other read unless off, and
// at most n bytes per read.
type pausingReader struct {
	r     io.Reader
	n     int
	off   bool
	calls int
}

func (p *pausingReader) Read(b []byte) (int, error) {
	p.calls++
	if !p.off && p.calls%2 == 1 {
		return 0, errPause
	}
	if len(b) > p.n {
		b = b[:p.n]
	}
	return p.r.Read(b)
}

func message(typ byte, body string) []byte {
	var b Builder
	b.Begin(typ)
	b.Bytes([]byte(body))
	b.Finish()
	return b.B
}

// readAll reads typed messages until an error other than errPause and
// returns copies of them.
func readAll(r *Reader) ([][]byte, error) {
	var out [][]byte
	for {
		_, msg, err := r.Next()
		if errors.Is(err, errPause) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(msg))
	}
}

func TestNextReadsSmallAndLargeMessages(t *testing.T) {
	var stream []byte
	want := [][]byte{
		message('Q', "select 1\x00"),
		message('S', ""),
		message('P', strings.Repeat("x", 100)),
		message('d', strings.Repeat("y", 5000)),
		message('Q', "select 2\x00"),
	}
	for _, m := range want {
		stream = append(stream, m...)
	}
	for _, chunk := range []int{1, 3, 64, 1 << 20} {
		for _, pausing := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(stream)
			if pausing {
				src = &pausingReader{r: src, n: chunk}
			}
			r := NewReader(src, 16, 1<<20)
			got, err := readAll(r)
			if err != io.EOF {
				t.Errorf("chunk %d pausing %v: ended with %v, want io.EOF", chunk, pausing, err)
			}
			if len(got) != len(want) {
				t.Fatalf("chunk %d pausing %v: got %d messages, want %d", chunk, pausing, len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("chunk %d pausing %v: message %d is %q, want %q", chunk, pausing, i, got[i][:min(len(got[i]), 20)], want[i][:min(len(want[i]), 20)])
				}
			}
		}
	}
}

func TestNextRefusesDeclaredLengthOverMax(t *testing.T) {
	for _, n := range []uint32{0x80000000, 0xffffffff, 0x7fffffff, 1001} {
		hdr := binary.BigEndian.AppendUint32([]byte{'Q'}, n)
		r := NewReader(bytes.NewReader(hdr), 16, 1000)
		_, _, err := r.Next()
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("declared %#x: got %v, want ErrTooLarge", n, err)
		}
		if cap(r.buf) > 1000 {
			t.Errorf("declared %#x: the reader holds %d bytes", n, cap(r.buf))
		}
	}
	for _, n := range []uint32{0, 1, 3} {
		r := NewReader(bytes.NewReader(binary.BigEndian.AppendUint32([]byte{'Q'}, n)), 16, 1000)
		if _, _, err := r.Next(); !errors.Is(err, ErrBadLength) {
			t.Errorf("declared %d: got %v, want ErrBadLength", n, err)
		}
	}
}

func TestNextEndsCleanlyOrUnexpectedly(t *testing.T) {
	cases := []struct {
		stream []byte
		want   error
	}{
		{nil, io.EOF},
		{[]byte{'Q'}, io.ErrUnexpectedEOF},
		{[]byte{'Q', 0, 0, 0, 9, 'a'}, io.ErrUnexpectedEOF},
		{append([]byte{'Q', 0, 0, 0, 100}, make([]byte, 50)...), io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		r := NewReader(bytes.NewReader(tc.stream), 16, 1000)
		if _, _, err := r.Next(); err != tc.want {
			t.Errorf("%q: got %v, want %v", tc.stream, err, tc.want)
		}
	}
}

// TestLargeMessageCostsWhatArrives checks that a peer declaring a large
// message and sending a few bytes of it does not make the reader allocate
// the declared size.
func TestLargeMessageCostsWhatArrives(t *testing.T) {
	const declared = 64 << 20
	hdr := binary.BigEndian.AppendUint32([]byte{'Q'}, declared-1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := NewReader(bytes.NewReader(append(hdr, "select"...)), 16<<10, declared)
	if _, _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading 11 bytes of a message declared %d bytes long allocated %d bytes", declared, got)
	}
}

func TestNextStartup(t *testing.T) {
	startup := func(code uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		b = binary.BigEndian.AppendUint32(b, code)
		return append(b, body...)
	}
	r := NewReader(bytes.NewReader(append(startup(SSLRequestCode, ""), startup(ProtocolVersion3, "user\x00u\x00\x00")...)), 16, 100)
	code, body, err := r.NextStartup()
	if err != nil || code != SSLRequestCode || len(body) != 0 {
		t.Fatalf("SSLRequest: %d %q %v", code, body, err)
	}
	code, body, err = r.NextStartup()
	if err != nil || code != ProtocolVersion3 || string(body) != "user\x00u\x00\x00" {
		t.Fatalf("StartupMessage: %d %q %v", code, body, err)
	}
	for _, tc := range []struct {
		stream []byte
		want   error
	}{
		{[]byte{0, 0, 0, 4, 0, 3, 0, 0}, ErrBadLength},
		{[]byte{0, 0, 0, 7, 0, 3, 0, 0}, ErrBadLength},
		{[]byte{0x80, 0, 0, 0, 0, 3, 0, 0}, ErrTooLarge},
		{binary.BigEndian.AppendUint32(nil, MaxStartupBytes+1), ErrTooLarge},
		{[]byte{0, 0}, io.ErrUnexpectedEOF},
		{nil, io.ErrUnexpectedEOF},
		{[]byte{0, 0, 0, 20, 0, 3, 0, 0}, io.ErrUnexpectedEOF},
	} {
		r := NewReader(bytes.NewReader(tc.stream), 16, 100)
		if _, _, err := r.NextStartup(); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.stream, err, tc.want)
		}
		if cap(r.buf) > MaxStartupBytes {
			t.Errorf("%q: the reader holds %d bytes", tc.stream, cap(r.buf))
		}
	}
}

func TestBuilderAndScannerRoundTrip(t *testing.T) {
	var b Builder
	b.Begin('B')
	b.String("portal")
	b.String("")
	b.Int16(-2)
	b.Int32(-70000)
	b.Byte('x')
	b.Bytes([]byte{1, 2, 3})
	b.Finish()
	b.Begin('S')
	b.Finish()
	if got := binary.BigEndian.Uint32(b.B[1:5]); int(got) != len(b.B)-5-1 {
		t.Fatalf("declared length %d, want %d", got, len(b.B)-6)
	}
	if !bytes.Equal(b.B[len(b.B)-5:], []byte{'S', 0, 0, 0, 4}) {
		t.Fatalf("second message %q", b.B[len(b.B)-5:])
	}
	s := NewScanner(Body(b.B[:len(b.B)-5]))
	if got := string(s.CString()); got != "portal" {
		t.Errorf("CString %q", got)
	}
	if got := string(s.CString()); got != "" {
		t.Errorf("CString %q", got)
	}
	if got := s.Int16(); got != -2 {
		t.Errorf("Int16 %d", got)
	}
	if got := s.Int32(); got != -70000 {
		t.Errorf("Int32 %d", got)
	}
	if got := s.Byte(); got != 'x' {
		t.Errorf("Byte %q", got)
	}
	if got := s.Next(3); !bytes.Equal(got, []byte{1, 2, 3}) || s.Err != nil {
		t.Errorf("Next %v %v", got, s.Err)
	}
	if len(s.Rest()) != 0 {
		t.Errorf("Rest %q", s.Rest())
	}
	if s.Byte(); s.Err != ErrMalformed {
		t.Errorf("reading past the end: %v, want ErrMalformed", s.Err)
	}
	// Once malformed, every read gives zero values.
	if s.CString() != nil || s.Int16() != 0 || s.Int32() != 0 || s.Next(0) != nil {
		t.Error("reads after an error returned values")
	}
}

func TestScannerRefusesBadFields(t *testing.T) {
	for _, tc := range []struct {
		body string
		read func(*Scanner)
	}{
		{"abc", func(s *Scanner) { s.CString() }},
		{"a", func(s *Scanner) { s.Int16() }},
		{"abc", func(s *Scanner) { s.Int32() }},
		{"", func(s *Scanner) { s.Byte() }},
		{"ab", func(s *Scanner) { s.Next(3) }},
		{"ab", func(s *Scanner) { s.Next(-1) }},
	} {
		s := NewScanner([]byte(tc.body))
		tc.read(s)
		if s.Err != ErrMalformed {
			t.Errorf("%q: got %v, want ErrMalformed", tc.body, s.Err)
		}
	}
}
