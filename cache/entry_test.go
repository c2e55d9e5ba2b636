package cache

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEntry() *Entry {
	return &Entry{
		Payload: []byte("T\x00\x00\x00\x1b\x00\x01id\x00D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x0142C\x00\x00\x00\x0dSELECT 1\x00"),
		Rows:    1,
		Cost:    1234567 * time.Microsecond,
		Key:     keyOf("q"),
		Created: time.Unix(1740830400, 123456789),
		Tables:  []string{"public.orders", "public.items"},
		Labels:  []Label{{"dashboard", "sales"}, {"chart", "7"}},
		gens:    []uint64{3, 0, 1 << 40, 7, 9},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	t.Parallel()
	want := sampleEntry()
	b := want.Encode(nil)
	if len(b) != want.Size() {
		t.Errorf("Size = %d, encoding is %d bytes", want.Size(), len(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want.size = len(b)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Encode(e)) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeRejectsUnknownVersionAndCorruption(t *testing.T) {
	t.Parallel()
	b := sampleEntry().Encode(nil)
	other := append([]byte{3}, b[1:]...)
	if _, err := Decode(other); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("version 3: %v, want ErrUnknownVersion", err)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(b[:len(b):len(b)], 0), b[:20]} {
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%d bytes) = %v, want ErrCorrupt", len(bad), err)
		}
	}
}

// An entry written by a process of the previous version (no cost) is
// still read.
func TestDecodeVersion1(t *testing.T) {
	t.Parallel()
	e := sampleEntry()
	v2 := e.Encode(nil)
	// Version 1 is version 2 without the cost varint after rows.
	pre := 1 + len(e.Key) + varintLen(e.Created.UnixNano()) + varintLen(e.Rows)
	v1 := append([]byte{1}, v2[1:pre]...)
	v1 = append(v1, v2[pre+uvarintLen(uint64(e.Cost)):]...)
	got, err := Decode(v1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cost != 0 || got.Rows != e.Rows || string(got.Payload) != string(e.Payload) || !reflect.DeepEqual(got.Tables, e.Tables) {
		t.Errorf("version 1 decoded as %+v", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleEntry().Encode(nil))
	f.Add((&Entry{}).Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(e.Encode(nil))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		again.size = e.size
		if !reflect.DeepEqual(again, e) {
			t.Errorf("round trip differs:\n%+v\n%+v", again, e)
		}
	})
}
