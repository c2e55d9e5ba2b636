package fingerprint

import (
	"encoding/binary"
	"encoding/hex"
	"sort"
	"sync"

	"github.com/zeebo/xxh3"
)

// Key identifies a cached answer: a 128-bit hash of everything that can
// change the bytes of the answer.
type Key [16]byte

// String returns the key as 32 hexadecimal digits.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Setting is one session setting's value, as it enters a key.
type Setting struct {
	Name  string // case-insensitive: "TimeZone" and "timezone" are one setting
	Value string
}

// KeyInput is everything a key depends on. It is a plain value: build one
// per request.
type KeyInput struct {
	Backend  string // the warehouse, as the configuration names it
	Database string
	User     string // ignored when Shared
	Shared   bool   // the policy shares this answer across users

	// Normalized is Analysis.Normalized (or Statement.Normalized).
	Normalized string

	// ParamOIDs are the parameter type OIDs from Parse (0 = unspecified).
	ParamOIDs []uint32
	// ParamFormats are the parameter format codes from Bind: none (all
	// text), one (for all), or one per parameter.
	ParamFormats []int16
	// Params are the parameter values from Bind; nil is NULL, distinct
	// from an empty value.
	Params [][]byte
	// ResultFormats are the result format codes from Bind: none (all
	// text), one (for all), or one per column.
	ResultFormats []int16

	// Settings are the session settings that change answers (see
	// IsKeySetting), ideally sorted by name; Key sorts a copy otherwise.
	Settings []Setting
}

// keyVersion changes whenever the encoding below changes, so that keys
// written by an older sqlcached to a shared cache are never read as ours.
const keyVersion = 1

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Key returns the cache key of in. Every field is length-prefixed, so no
// two different inputs meet by concatenation; parameter formats are
// expanded to one per parameter, and no result formats means text, as
// the protocol defines them.
func (in KeyInput) Key() Key {
	bp := keyBufs.Get().(*[]byte)
	b := in.appendTo((*bp)[:0])
	sum := xxh3.Hash128(b)
	if cap(b) <= 64<<10 {
		*bp = b
		keyBufs.Put(bp)
	}
	var k Key
	binary.BigEndian.PutUint64(k[:8], sum.Hi)
	binary.BigEndian.PutUint64(k[8:], sum.Lo)
	return k
}

// KeyOf returns in.Key().
func KeyOf(in KeyInput) Key { return in.Key() }

func (in *KeyInput) appendTo(b []byte) []byte {
	b = append(b, keyVersion)
	b = appendString(b, in.Backend)
	b = appendString(b, in.Database)
	if in.Shared {
		b = append(b, 1)
	} else {
		b = append(b, 0)
		b = appendString(b, in.User)
	}
	b = appendString(b, in.Normalized)

	n := max(len(in.Params), len(in.ParamOIDs))
	b = binary.AppendUvarint(b, uint64(n))
	for i := 0; i < n; i++ {
		var oid uint32
		if i < len(in.ParamOIDs) {
			oid = in.ParamOIDs[i]
		}
		b = binary.BigEndian.AppendUint32(b, oid)
		b = binary.BigEndian.AppendUint16(b, uint16(paramFormat(in.ParamFormats, i)))
		switch {
		case i >= len(in.Params):
			b = append(b, 2) // no value given
		case in.Params[i] == nil:
			b = append(b, 0)
		default:
			b = append(b, 1)
			b = appendBytes(b, in.Params[i])
		}
	}
	if len(in.ParamFormats) > 1 && len(in.ParamFormats) != n {
		// Malformed for the protocol; keep them all so nothing is lost.
		b = appendFormats(b, in.ParamFormats)
	} else {
		b = append(b, 0)
	}

	rf := in.ResultFormats
	if len(rf) == 0 {
		rf = textFormat
	}
	b = appendFormats(b, rf)

	settings := in.Settings
	if !settingsSorted(settings) {
		settings = append([]Setting(nil), settings...)
		sort.SliceStable(settings, func(i, j int) bool { return lowerLess(settings[i].Name, settings[j].Name) })
	}
	b = binary.AppendUvarint(b, uint64(len(settings)))
	for _, s := range settings {
		b = binary.AppendUvarint(b, uint64(len(s.Name)))
		b = appendLowerASCII(b, s.Name)
		b = appendString(b, s.Value)
	}
	return b
}

var textFormat = []int16{0}

func paramFormat(f []int16, i int) int16 {
	switch {
	case len(f) == 0:
		return 0
	case len(f) == 1:
		return f[0]
	case i < len(f):
		return f[i]
	}
	return 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendFormats(b []byte, f []int16) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	for _, c := range f {
		b = binary.BigEndian.AppendUint16(b, uint16(c))
	}
	return b
}

func settingsSorted(s []Setting) bool {
	for i := 1; i < len(s); i++ {
		if lowerLess(s[i].Name, s[i-1].Name) {
			return false
		}
	}
	return true
}

// lowerLess compares ASCII case-insensitively without allocating.
func lowerLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lowerByte(a[i]), lowerByte(b[i])
		if ca != cb {
			return ca < cb
		}
	}
	return len(a) < len(b)
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
