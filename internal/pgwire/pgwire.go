// Package pgwire reads and builds PostgreSQL protocol 3.0 messages as raw
// bytes. The proxy relays most messages without decoding them: a message is
// read whole into a buffer, looked at by its type byte, and copied to the
// other side as it is. Only the few messages whose contents matter to the
// proxy are decoded, with pgproto3 or the small helpers here.
package pgwire

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors returned by Reader.
var (
	// ErrTooLarge is returned for a message whose declared length exceeds
	// the reader's bound. The stream cannot be resynchronised after it.
	ErrTooLarge = errors.New("pgwire: message too large")
	// ErrBadLength is returned for a declared length below the minimum.
	ErrBadLength = errors.New("pgwire: invalid message length")
)

// Protocol codes sent in place of a protocol version in the startup phase.
const (
	ProtocolVersion3  = 3 << 16
	CancelRequestCode = 80877102
	SSLRequestCode    = 80877103
	GSSENCRequestCode = 80877104
	// MaxStartupBytes is PostgreSQL's own bound on a startup packet.
	MaxStartupBytes = 10000
)

// Reader reads whole messages from a buffered stream.
type Reader struct {
	r    *bufio.Reader
	max  int
	buf  []byte
	have int // bytes of a large message read into buf so far
	want int // the large message's length
}

// NewReader returns a Reader over r with a read buffer of size bytes that
// refuses messages longer than max bytes (type byte and length included).
func NewReader(r io.Reader, size, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, size), max: max}
}

// Buffered is the number of bytes already read from the stream and not yet
// returned: when it is zero, the next Next may block.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// SetMax changes the bound on message length.
func (r *Reader) SetMax(max int) { r.max = max }

// Next reads one typed message. msg holds the whole message (type byte,
// length and body); it is only valid until the next call to Next.
func (r *Reader) Next() (typ byte, msg []byte, err error) {
	if r.have > 0 {
		return r.readLarge(r.want)
	}
	hdr, err := r.r.Peek(5)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ = hdr[0]
	n := int(binary.BigEndian.Uint32(hdr[1:5]))
	if n < 4 {
		return 0, nil, ErrBadLength
	}
	if n+1 > r.max {
		return 0, nil, fmt.Errorf("%w: %d bytes declared for message %q, at most %d allowed", ErrTooLarge, n+1, typ, r.max)
	}
	total := n + 1
	if total <= r.r.Size() {
		// Fits in the read buffer: peek, then discard, without copying.
		b, err := r.r.Peek(total)
		if err != nil {
			return 0, nil, unexpected(err)
		}
		// Peek's slice stays valid until the next read: r.r.Discard does
		// not move the buffer.
		_, _ = r.r.Discard(total)
		return typ, b, nil
	}
	return r.readLarge(total)
}

// readLarge reads a message longer than the read buffer into r.buf. A
// read error (a deadline) leaves what was read in place, so the next call
// to Next resumes the same message. The buffer grows with what arrives,
// not with the length declared: a peer that declares a large message and
// sends little of it costs little.
func (r *Reader) readLarge(total int) (byte, []byte, error) {
	if r.have == 0 {
		r.want = total
		r.buf = r.buf[:0]
	}
	for r.have < total {
		if r.have == len(r.buf) {
			r.grow(total)
		}
		n, err := r.r.Read(r.buf[r.have:])
		r.have += n
		if err != nil && r.have < total {
			return 0, nil, unexpected(err)
		}
	}
	r.have = 0
	return r.buf[0], r.buf, nil
}

// grow makes room in r.buf for more of a message of total bytes, at
// least doubling what is there.
func (r *Reader) grow(total int) {
	n := min(total, max(2*len(r.buf), 2*r.r.Size()))
	if n <= cap(r.buf) {
		r.buf = r.buf[:n]
		return
	}
	b := make([]byte, n)
	copy(b, r.buf[:r.have])
	r.buf = b
}

// Probe reports the first error a read would meet now, without
// consuming anything: with a deadline in the past it tells a closed peer
// (io.EOF) from one that is only quiet (a timeout).
func (r *Reader) Probe() error {
	_, err := r.PeekType()
	return err
}

// PeekType waits for the next message and returns its type without
// consuming anything.
func (r *Reader) PeekType() (byte, error) {
	if r.have > 0 {
		return 0, errors.New("pgwire: PeekType in the middle of a message")
	}
	b, err := r.r.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// NextStartup reads one untyped startup-phase message (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest), bounded by MaxStartupBytes.
// It returns the code (protocol version or request code) and the body after
// it, valid until the next call.
func (r *Reader) NextStartup() (code uint32, body []byte, err error) {
	hdr, err := r.r.Peek(4)
	if err != nil {
		return 0, nil, unexpected(err)
	}
	n := int(binary.BigEndian.Uint32(hdr))
	if n < 8 {
		return 0, nil, ErrBadLength
	}
	if n > MaxStartupBytes {
		return 0, nil, fmt.Errorf("%w: startup packet of %d bytes, at most %d allowed", ErrTooLarge, n, MaxStartupBytes)
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return 0, nil, unexpected(err)
	}
	return binary.BigEndian.Uint32(r.buf[4:8]), r.buf[8:], nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Body returns the body of a whole typed message.
func Body(msg []byte) []byte { return msg[5:] }

// Builder appends one typed message at a time to a byte slice, as
// pgproto3's Encode methods do.
type Builder struct {
	B     []byte
	start int
}

// Begin starts a message of type typ.
func (b *Builder) Begin(typ byte) {
	b.start = len(b.B)
	b.B = append(b.B, typ, 0, 0, 0, 0)
}

// Finish writes the length of the message begun last.
func (b *Builder) Finish() {
	binary.BigEndian.PutUint32(b.B[b.start+1:], uint32(len(b.B)-b.start-1))
}

// String appends a NUL-terminated string.
func (b *Builder) String(s string) {
	b.B = append(b.B, s...)
	b.B = append(b.B, 0)
}

// Bytes appends raw bytes.
func (b *Builder) Bytes(p []byte) { b.B = append(b.B, p...) }

// Int16 appends a big-endian 16-bit integer.
func (b *Builder) Int16(v int16) { b.B = binary.BigEndian.AppendUint16(b.B, uint16(v)) }

// Int32 appends a big-endian 32-bit integer.
func (b *Builder) Int32(v int32) { b.B = binary.BigEndian.AppendUint32(b.B, uint32(v)) }

// Byte appends one byte.
func (b *Builder) Byte(c byte) { b.B = append(b.B, c) }

// Scanner reads the fields of a message body in order. The first malformed
// field sets Err; later calls return zero values.
type Scanner struct {
	b   []byte
	Err error
}

// ErrMalformed is set on a Scanner that ran past the end of a body.
var ErrMalformed = errors.New("pgwire: malformed message")

// NewScanner scans body.
func NewScanner(body []byte) *Scanner { return &Scanner{b: body} }

// CString reads a NUL-terminated string; the result aliases the body.
func (s *Scanner) CString() []byte {
	if s.Err != nil {
		return nil
	}
	for i, c := range s.b {
		if c == 0 {
			v := s.b[:i]
			s.b = s.b[i+1:]
			return v
		}
	}
	s.Err = ErrMalformed
	return nil
}

// Int16 reads a 16-bit integer.
func (s *Scanner) Int16() int16 {
	if s.Err != nil || len(s.b) < 2 {
		s.Err = ErrMalformed
		return 0
	}
	v := int16(binary.BigEndian.Uint16(s.b))
	s.b = s.b[2:]
	return v
}

// Int32 reads a 32-bit integer.
func (s *Scanner) Int32() int32 {
	if s.Err != nil || len(s.b) < 4 {
		s.Err = ErrMalformed
		return 0
	}
	v := int32(binary.BigEndian.Uint32(s.b))
	s.b = s.b[4:]
	return v
}

// Byte reads one byte.
func (s *Scanner) Byte() byte {
	if s.Err != nil || len(s.b) < 1 {
		s.Err = ErrMalformed
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return v
}

// Next reads n raw bytes; the result aliases the body.
func (s *Scanner) Next(n int) []byte {
	if s.Err != nil || n < 0 || len(s.b) < n {
		s.Err = ErrMalformed
		return nil
	}
	v := s.b[:n]
	s.b = s.b[n:]
	return v
}

// Rest returns what has not been read.
func (s *Scanner) Rest() []byte { return s.b }

// PgError appends an ErrorResponse carrying every field of pe; an empty
// severity is sent as ERROR.
func (b *Builder) PgError(pe *pgconn.PgError) {
	field := func(t byte, v string) {
		if v != "" {
			b.Byte(t)
			b.String(v)
		}
	}
	num := func(t byte, v int32) {
		if v != 0 {
			field(t, strconv.Itoa(int(v)))
		}
	}
	sev := cmp.Or(pe.Severity, "ERROR")
	b.Begin('E')
	field('S', sev)
	field('V', cmp.Or(pe.SeverityUnlocalized, sev))
	field('C', pe.Code)
	b.Byte('M')
	b.String(pe.Message)
	field('D', pe.Detail)
	field('H', pe.Hint)
	num('P', pe.Position)
	num('p', pe.InternalPosition)
	field('q', pe.InternalQuery)
	field('W', pe.Where)
	field('s', pe.SchemaName)
	field('t', pe.TableName)
	field('c', pe.ColumnName)
	field('d', pe.DataTypeName)
	field('n', pe.ConstraintName)
	field('F', pe.File)
	num('L', pe.Line)
	field('R', pe.Routine)
	b.Byte(0)
	b.Finish()
}

// Field is a column of a RowDescription, for an answer whose table
// columns are not known (table OID and column number 0).
type Field struct {
	Name    string
	TypeOID uint32
	Size    int16 // the type's size; -1 for variable length
	TypeMod int32 // -1 when the type has none
	Format  int16 // 0 text, 1 binary
}

// RowDescription appends a RowDescription of fields.
func (b *Builder) RowDescription(fields []Field) {
	b.Begin('T')
	b.Int16(int16(len(fields)))
	for _, f := range fields {
		b.String(f.Name)
		b.Int32(0)
		b.Int16(0)
		b.Int32(int32(f.TypeOID))
		b.Int16(f.Size)
		b.Int32(f.TypeMod)
		b.Int16(f.Format)
	}
	b.Finish()
}
