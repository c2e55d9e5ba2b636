package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestJSONNumber(t *testing.T) {
	for v, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "1e+100": true, "1.5e-07": true, "-2E3": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "NaN": false,
		"Infinity": false, "-Infinity": false, "1 ": false, "+1": false,
	} {
		if got := jsonNumber([]byte(v)); got != want {
			t.Errorf("jsonNumber(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, v := range []string{"", "plain", "quote \" and \\", "tab\tnl\nnul\x00", "héllo ☃", "bad \xff utf-8", "\u2028\u2029"} {
		b := appendString(nil, []byte(v))
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("%q encodes as %s: %v", v, b, err)
			continue
		}
		want, _ := json.Marshal(v)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-trips as %q, want %q", v, back, wantBack)
		}
	}
}

func TestTypedValues(t *testing.T) {
	for _, c := range []struct {
		oid  uint32
		v    string
		null bool
		want string
	}{
		{oidInt4, "-42", false, "-42"},
		{oidInt8, "9007199254740992", false, "9007199254740992"},
		{oidInt8, "9007199254740993", false, `"9007199254740993"`},
		{oidInt8, "-9223372036854775808", false, `"-9223372036854775808"`},
		{oidFloat8, "-Infinity", false, `"-Infinity"`},
		{oidFloat4, "1.5e-07", false, "1.5e-07"},
		{oidNumeric, "12.30", false, `"12.30"`},
		{oidBool, "t", false, "true"},
		{oidJSON, "{ \"a\" :\n 1 }", false, `{"a":1}`},
		{oidJSON, "not json", false, `"not json"`},
		{25, "", false, `""`},
		{25, "", true, "null"},
	} {
		var v []byte
		if !c.null {
			v = []byte(c.v)
		}
		if got := string(appendValue([]byte("x"), &column{oid: c.oid}, v)); got != "x"+c.want {
			t.Errorf("oid %d %q: got %s, want x%s", c.oid, c.v, got, c.want)
		}
	}
}

func TestCSVField(t *testing.T) {
	for v, want := range map[string]string{
		"a": "a", "": `""`, "a,b": `"a,b"`, `say "hi"`: `"say ""hi"""`, "two\nlines": "\"two\nlines\"", " pad": `" pad"`,
	} {
		if got := string(appendCSV(nil, []byte(v))); got != want {
			t.Errorf("appendCSV(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestResultFormat(t *testing.T) {
	for _, c := range []struct {
		query, accept, want string
		ok                  bool
	}{
		{"", "", FormatJSON, true},
		{"", "text/csv", FormatCSV, true},
		{"", "application/x-ndjson", FormatNDJSON, true},
		{"", "text/html, text/csv;q=0.2, application/json;q=0.8", FormatJSON, true},
		{"", "application/json;q=0, text/csv", FormatCSV, true},
		{"format=CSV", "application/json", FormatCSV, true},
		{"format=ndjson", "", FormatNDJSON, true},
		{"format=xml", "", "", false},
	} {
		r := httptest.NewRequest("GET", "/v1/queries/x/result?"+c.query, nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		got, ok := resultFormat(r)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("?%s Accept %q: got %q %v, want %q %v", c.query, c.accept, got, ok, c.want, c.ok)
		}
	}
}
