package specfile

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// runcSpec is laid out exactly as `runc spec` writes it, so a patch must
// reproduce every untouched byte, including numbers and escapes that a
// decode/encode round trip through Go values would rewrite.
const runcSpec = `{
	"ociVersion": "1.2.0",
	"process": {
		"terminal": true,
		"args": [
			"sh"
		],
		"futureProcessField": {
			"z": 1e400,
			"a": "\u00e9<>&\/"
		}
	},
	"hostname": "runc",
	"xFuture": [
		1.50,
		-0,
		{},
		[]
	],
	"linux": {
		"namespaces": [
			{
				"type": "pid"
			}
		],
		"seccomp": {
			"defaultAction": "SCMP_ACT_ALLOW"
		},
		"xLinuxFuture": true
	},
	"\u007a": null
}
`

const (
	oldSeccomp = `"seccomp": {
			"defaultAction": "SCMP_ACT_ALLOW"
		},`
	newSeccomp = `"seccomp": {
			"defaultAction": "SCMP_ACT_ERRNO",
			"syscalls": []
		},`
	profile = `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ ]}`
)

// lookup follows path through nested objects.
func lookup(doc []byte, path ...string) (json.RawMessage, bool) {
	for _, k := range path {
		_, _, spans, err := Scan(doc)
		if err != nil {
			return nil, false
		}
		i := slices.IndexFunc(spans, func(m Span) bool { return m.Key == k })
		if i < 0 {
			return nil, false
		}
		doc = doc[spans[i].ValueStart:spans[i].ValueEnd]
	}
	return doc, true
}

func TestPatchPreservesLayout(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"tabs":     {runcSpec, strings.Replace(runcSpec, oldSeccomp, newSeccomp, 1)},
		"2 spaces": {strings.ReplaceAll(runcSpec, "\t", "  "), strings.ReplaceAll(strings.Replace(runcSpec, oldSeccomp, newSeccomp, 1), "\t", "  ")},
		"4 spaces, no final newline": {
			strings.TrimSuffix(strings.ReplaceAll(runcSpec, "\t", "    "), "\n"),
			strings.TrimSuffix(strings.ReplaceAll(strings.Replace(runcSpec, oldSeccomp, newSeccomp, 1), "\t", "    "), "\n"),
		},
		"compact": {
			`{"b":1,"a":{"z":1e400,"y":"\u00e9"},"ociVersion":"1"}` + "\n",
			`{"b":1,"a":{"z":1e400,"y":"\u00e9"},"ociVersion":"1","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}}}` + "\n",
		},
		// Only the new member's bytes are new; everything else, odd
		// spacing included, is kept byte for byte.
		"opening brace not alone on its line": {
			`{"b": 1,` + "\n" + ` "a": 2}`,
			`{"b": 1,` + "\n" + ` "a": 2,` + "\n" + ` "linux": {"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}}}`,
		},
		"odd indentation": {
			"{\n   \"ociVersion\" :\"1\" ,\n\t\"linux\":   {\n      \"x\": [1,2],  \"seccomp\": {\"a\": 1}\n}\n  }\n",
			"{\n   \"ociVersion\" :\"1\" ,\n\t\"linux\":   {\n      \"x\": [1,2],  \"seccomp\": {\n         \"defaultAction\": \"SCMP_ACT_ERRNO\",\n         \"syscalls\": []\n      }\n}\n  }\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			patched, err := SetPath([]byte(tc.in), json.RawMessage(profile), "linux", "seccomp")
			if err != nil {
				t.Fatal(err)
			}
			got := patched
			if string(got) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			again, err := SetPath(got, json.RawMessage(profile), "linux", "seccomp")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, got) {
				t.Fatalf("second patch changed the document:\n%s", again)
			}
		})
	}
}

func TestSetPath(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		v         json.RawMessage // nil deletes
		path      []string
		want      string // or, on error, a substring of it
		wantErr   bool
	}{
		{"create linux", `{"a":1}`, json.RawMessage(`{}`), []string{"linux", "seccomp"}, `{"a":1,"linux":{"seccomp":{}}}`, false},
		{"null linux is absent", `{"linux":null,"b":2}`, json.RawMessage(`1`), []string{"linux", "seccomp"}, `{"linux":{"seccomp":1},"b":2}`, false},
		{"replace in place", `{"linux":{"x":[1 ,2],"seccomp":{"a":1},"y":2}}`, json.RawMessage(`3`), []string{"linux", "seccomp"}, `{"linux":{"x":[1 ,2],"seccomp":3,"y":2}}`, false},
		{"set null", `{"linux":{"seccomp":{}}}`, json.RawMessage(`null`), []string{"linux", "seccomp"}, `{"linux":{"seccomp":null}}`, false},
		{"delete", `{"linux":{"seccomp":{"x":1},"y":2}}`, nil, []string{"linux", "seccomp"}, `{"linux":{"y":2}}`, false},
		{"delete absent", `{"a":1}`, nil, []string{"linux", "seccomp"}, `{"a":1}`, false},
		{"delete under null", `{"linux":null}`, nil, []string{"linux", "seccomp"}, `{"linux":null}`, false},
		{"annotation key with dots", `{"annotations":{"a.b":"1"}}`, json.RawMessage(`"2"`), []string{"annotations", "io.x/y"}, `{"annotations":{"a.b":"1","io.x/y":"2"}}`, false},
		{"escaped key matched and kept", `{"\u006cinux":{}}`, json.RawMessage(`1`), []string{"linux", "seccomp"}, `{"\u006cinux":{"seccomp":1}}`, false},
		{"not an object", `{"linux":5}`, json.RawMessage(`1`), []string{"linux", "seccomp"}, `"linux": not a JSON object`, true},
		{"nested duplicate", `{"linux":{"seccomp":1,"seccomp":2}}`, json.RawMessage(`1`), []string{"linux", "seccomp"}, `"linux": duplicate key "seccomp"`, true},
		{"top-level duplicate", `{"a":1,"a":2}`, json.RawMessage(`1`), []string{"linux"}, `top level: duplicate key "a"`, true},
		{"case-insensitive twin", `{"Linux":{}}`, json.RawMessage(`1`), []string{"linux", "seccomp"}, `"Linux" would also be decoded as "linux"`, true},
		{"case-insensitive twin on delete", `{"linux":{"SecComp":1}}`, nil, []string{"linux", "seccomp"}, `"SecComp"`, true},
		{"invalid value", `{}`, json.RawMessage(`{`), []string{"linux"}, `not valid JSON`, true},
		{"empty value", `{}`, json.RawMessage{}, []string{"linux"}, `not valid JSON`, true},
		{"empty path", `{}`, json.RawMessage(`1`), nil, `empty path`, true},
		{"invalid UTF-8 key", `{}`, json.RawMessage(`1`), []string{"\xff"}, `UTF-8`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetPath([]byte(tc.doc), tc.v, tc.path...)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %s, %v; want error containing %s", got, err, tc.want)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestScanErrors(t *testing.T) {
	for doc, want := range map[string]string{
		``:                   "unexpected EOF",
		`   `:                "unexpected EOF",
		`{"a":1`:             "unexpected EOF",
		`{"a":`:              "unexpected EOF",
		`["a"]`:              "not a JSON object",
		`"{}"`:               "not a JSON object",
		`null`:               "not a JSON object",
		`{"a":1,"a":2}`:      `duplicate key "a"`,
		`{"a":1,"\u0061":2}`: `duplicate key "a"`,
		`{"a":1} x`:          "trailing data",
		`{"a":1}{}`:          "trailing data",
		`{"a":1,}`:           "invalid character",
		`{"a" 1}`:            "colon",
		`{1:1}`:              "invalid character",
	} {
		if _, _, _, err := Scan([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Scan(%q) = %v, want error containing %q", doc, err, want)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{runcSpec, `{}`, `{"a":1,"a":2}`, `{"\u0061":1, "b" : [1 , {"c":null}] }`, `{"a":1} x`, `[1]`, `{"a":1e400,"b":"\ud800"}`, `{"a\"":"\\","c":[{"d":"}]"}], "e" :-1.5e3 ,"f":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		open, close, spans, err := Scan(data)
		if err != nil {
			trimmed := bytes.TrimLeft(data, " \t\r\n")
			if json.Valid(data) && len(trimmed) > 0 && trimmed[0] == '{' && !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("rejected a valid object: %v", err)
			}
			return
		}
		if !json.Valid(data) || data[open] != '{' || data[close] != '}' {
			t.Fatalf("accepted %q as an object at %d..%d", data, open, close)
		}
		for _, m := range spans {
			var key string
			if json.Unmarshal(data[m.KeyStart:m.KeyEnd], &key) != nil || key != m.Key || !json.Valid(data[m.ValueStart:m.ValueEnd]) {
				t.Fatalf("span %+v of %q", m, data)
			}
		}
		// What json.Decoder finds, byte for byte.
		if o, c, s, err := decoderScan(data); err != nil || o != open || c != close || !slices.Equal(s, spans) {
			t.Fatalf("Scan(%q) = %d, %d, %+v; the decoder finds %d, %d, %+v, %v", data, open, close, spans, o, c, s, err)
		}
	})
}

func FuzzSetPath(f *testing.F) {
	f.Add([]byte(runcSpec), []byte(profile), "linux", "seccomp", false)
	f.Add([]byte(runcSpec), []byte(nil), "linux", "seccomp", true)
	f.Add([]byte(`{"linux":null}`), []byte(`1`), "linux", "", false)
	f.Add([]byte("{\n  \"a\": {}\n}"), []byte(`"x"`), "a", "b.c", false)
	f.Add([]byte(`{"Linux":{}}`), []byte(`{}`), "linux", "seccomp", false)
	f.Fuzz(func(t *testing.T, doc, val []byte, k1, k2 string, del bool) {
		var v json.RawMessage
		if !del {
			v = val
		}
		path := []string{k1}
		if k2 != "" {
			path = append(path, k2)
		}
		out, err := SetPath(doc, v, path...)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		got, ok := lookup(out, path...)
		var cg, cv bytes.Buffer
		if v == nil && ok || v != nil && (!ok || json.Compact(&cg, got) != nil || json.Compact(&cv, v) != nil || !bytes.Equal(cg.Bytes(), cv.Bytes())) {
			t.Fatalf("member at %q is %q, %v; want %q", path, got, ok, v)
		}
		once := out
		twice, err := SetPath(once, v, path...)
		if err != nil {
			t.Fatalf("second SetPath: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent:\n%q\n%q", once, twice)
		}
	})
}
