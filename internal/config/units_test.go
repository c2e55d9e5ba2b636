package config

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1024": 1024, "100B": 100, "64KiB": 64 << 10, "256MiB": 256 << 20, "16mib": 16 << 20,
		"1GiB": 1 << 30, "2TiB": 2 << 40, "1.5 GiB": 3 << 29, "1KB": 1000, "64MB": 64e6, "1GB": 1e9, " 8 KiB ": 8 << 10,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1XB", "-1", "1.2.3MiB", "99999999999TiB", "1 Mi B"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{0: "0B", 100: "100B", 1536: "1536B", 3 * KiB: "3KiB", 256 * MiB: "256MiB", GiB: "1GiB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestUnitsRoundTrip(t *testing.T) {
	in := struct {
		D Duration `yaml:"d"`
		B ByteSize `yaml:"b"`
	}{Duration(90 * time.Second), 16 * MiB}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "d: 1m30s\nb: 16MiB\n" {
		t.Errorf("marshalled %q", out)
	}
	back := in
	back.D, back.B = 0, 0
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
