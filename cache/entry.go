package cache

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"
)

// Key identifies a cached answer: a 128-bit hash of everything that can
// change its bytes, computed by the caller.
type Key [16]byte

// String returns the key in hexadecimal, as it appears in Redis.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Label is a name/value pair carried by a query (a dashboard, a chart), kept
// with its entry so that InvalidateLabel can find it.
type Label struct {
	Name  string
	Value string
}

// Entry is one cached answer and what the Group knows about it.
//
// An Entry returned by Get is shared by every caller that gets it and by the
// cache itself: it is immutable, and callers must not modify it, its Payload
// or its slices. Payload is valid for as long as the caller holds the Entry.
type Entry struct {
	// Payload is the answer exactly as the wire carries it; the cache never
	// looks inside.
	Payload []byte
	// Rows is the number of rows in the answer, for statistics.
	Rows int64
	// Cost is how long the warehouse took to produce the answer (its
	// execution, not the wait for a worker): what each hit on the entry
	// saves the warehouse. Set by the Filler; 0 when unknown.
	Cost time.Duration

	// Key, Created, Tables and Labels are set by the Group from the Request
	// when a fill returns; a Filler leaves them alone, except that it may
	// set Created to a time before the fill when its answer is older (one
	// derived from another entry keeps that entry's age).
	Key     Key
	Created time.Time
	Tables  []string
	Labels  []Label

	// gens are the Redis generation numbers of the entry's genNames, read
	// before its fill started; nil when they could not be read, in which case
	// the entry is never written to Redis.
	gens []uint64
	// window is how long the entry stays useful to the request that stored
	// it: its TTL in L1 and Redis.
	window time.Duration
	size   int
	// derived is set by Derive: gens are the source's.
	derived bool
}

// Derive returns a new entry whose Payload is payload, an answer computed
// from e's (the same statement's answer in another result format), for a
// Filler to return. It keeps e's Created and the Redis generations e was
// filled under, so that it is never fresher than e, and never valid in
// Redis where e would not be.
func (e *Entry) Derive(payload []byte) *Entry {
	return &Entry{Payload: payload, Rows: e.Rows, Cost: e.Cost, Created: e.Created, gens: slices.Clone(e.gens), derived: true}
}

// Size returns the length of the entry's encoding, which is its cost in L1.
func (e *Entry) Size() int {
	if e.size != 0 {
		return e.size
	}
	return e.encodedLen()
}

// Age returns how old the entry is at now.
func (e *Entry) Age(now time.Time) time.Duration { return now.Sub(e.Created) }

// envelopeV2 is the current version of the encoding; envelopeV1, the
// same without the cost, is still read. Decode rejects any other, so a
// change of layout takes a new version byte and entries a process cannot
// read are misses to it.
const (
	envelopeV1 = 1
	envelopeV2 = 2
)

// Encode appends the entry's encoding to dst and returns the extended slice.
//
// Layout (integers are unsigned varints unless noted):
//
//	version byte (2)
//	key            16 bytes
//	created        Unix nanoseconds, signed varint
//	rows           signed varint
//	cost           nanoseconds (absent in version 1)
//	tables         count, then each as length + bytes
//	labels         count, then name and value as length + bytes
//	gens           count (0 or 1+len(tables)+len(labels)), then each
//	payload        length + bytes, last so that it can be aliased
func (e *Entry) Encode(dst []byte) []byte {
	dst = append(dst, envelopeV2)
	dst = append(dst, e.Key[:]...)
	dst = binary.AppendVarint(dst, e.Created.UnixNano())
	dst = binary.AppendVarint(dst, e.Rows)
	dst = binary.AppendUvarint(dst, uint64(max(e.Cost, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(e.Tables)))
	for _, t := range e.Tables {
		dst = appendString(dst, t)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Labels)))
	for _, l := range e.Labels {
		dst = appendString(dst, l.Name)
		dst = appendString(dst, l.Value)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.gens)))
	for _, g := range e.gens {
		dst = binary.AppendUvarint(dst, g)
	}
	return appendString(dst, string(e.Payload))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func (e *Entry) encodedLen() int {
	n := 1 + len(e.Key) + varintLen(e.Created.UnixNano()) + varintLen(e.Rows) + uvarintLen(uint64(max(e.Cost, 0)))
	n += uvarintLen(uint64(len(e.Tables)))
	for _, t := range e.Tables {
		n += stringLen(t)
	}
	n += uvarintLen(uint64(len(e.Labels)))
	for _, l := range e.Labels {
		n += stringLen(l.Name) + stringLen(l.Value)
	}
	n += uvarintLen(uint64(len(e.gens)))
	for _, g := range e.gens {
		n += uvarintLen(g)
	}
	return n + uvarintLen(uint64(len(e.Payload))) + len(e.Payload)
}

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// Decode decodes an entry encoded by Encode. The entry's Payload aliases b:
// the caller gives b up to the entry.
func Decode(b []byte) (*Entry, error) {
	if len(b) == 0 {
		return nil, ErrCorrupt
	}
	if b[0] != envelopeV1 && b[0] != envelopeV2 {
		return nil, ErrUnknownVersion
	}
	d := decoder{b: b[1:]}
	e := &Entry{size: len(b)}
	copy(e.Key[:], d.bytes(len(e.Key)))
	e.Created = time.Unix(0, d.varint())
	e.Rows = d.varint()
	if b[0] == envelopeV2 {
		e.Cost = time.Duration(d.uvarint())
	}
	if n := d.count(); n > 0 {
		e.Tables = make([]string, n)
		for i := range e.Tables {
			e.Tables[i] = d.string()
		}
	}
	if n := d.count(); n > 0 {
		e.Labels = make([]Label, n)
		for i := range e.Labels {
			e.Labels[i] = Label{Name: d.string(), Value: d.string()}
		}
	}
	if n := d.count(); n > 0 {
		e.gens = make([]uint64, n)
		for i := range e.gens {
			e.gens[i] = d.uvarint()
		}
	}
	e.Payload = d.bytes(int(d.uvarint()))
	if d.err || len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	if e.gens != nil && len(e.gens) != 1+len(e.Tables)+len(e.Labels) {
		return nil, ErrCorrupt
	}
	return e, nil
}

// decoder reads an envelope; err sticks at the first short or malformed
// field, and every read after it returns a zero value.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, refusing more than the bytes left could
// hold so that a corrupt count cannot make Decode allocate without bound.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.count())) }

func (d *decoder) fail() {
	d.err = true
	d.b = nil
}
