package specfile

import (
	"bytes"
	"encoding/json"
	"reflect"
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
		o, err := ParseObject(doc)
		if err != nil {
			return nil, false
		}
		var ok bool
		if doc, ok = o.Get(k); !ok {
			return nil, false
		}
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
		"opening brace not alone on its line": {
			`{"b": 1,` + "\n" + ` "a": 2}`,
			`{"b":1,"a":2,"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}}}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			patched, err := SetPath([]byte(tc.in), json.RawMessage(profile), "linux", "seccomp")
			if err != nil {
				t.Fatal(err)
			}
			got := Format([]byte(tc.in), patched)
			if string(got) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			again, err := SetPath(got, json.RawMessage(profile), "linux", "seccomp")
			if err != nil {
				t.Fatal(err)
			}
			if again := Format(got, again); !bytes.Equal(again, got) {
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

func TestParseObjectErrors(t *testing.T) {
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
		if _, err := ParseObject([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseObject(%q) = %v, want error containing %q", doc, err, want)
		}
	}
}

func TestObject(t *testing.T) {
	o, err := ParseObject([]byte(` { "b" : [1, 2] , "a":{"x" : 1}, "c":"\u00e9" } `))
	if err != nil {
		t.Fatal(err)
	}
	o.Set("a", json.RawMessage(`2`))
	o.Delete("b")
	o.Delete("missing")
	o.Set("<new>", json.RawMessage(`true`))
	if v, ok := o.Get("c"); !ok || string(v) != `"\u00e9"` {
		t.Errorf(`Get("c") = %s, %v`, v, ok)
	}
	got, _ := o.MarshalJSON()
	if want := `{"a":2,"c":"\u00e9","\u003cnew\u003e":true}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, _ := json.Marshal(new(Object)); string(got) != `{}` {
		t.Errorf("zero Object marshals to %s", got)
	}
}

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{runcSpec, `{}`, `{"a":1,"a":2}`, `{"\u0061":1, "b" : [1 , {"c":null}] }`, `{"a":1} x`, `[1]`, `{"a":1e400,"b":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseObject(data)
		if err != nil {
			trimmed := bytes.TrimLeft(data, " \t\r\n")
			if json.Valid(data) && len(trimmed) > 0 && trimmed[0] == '{' && !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("rejected a valid object: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		out, err := o.MarshalJSON()
		if err != nil || !json.Valid(out) {
			t.Fatalf("MarshalJSON = %q, %v", out, err)
		}
		o2, err := ParseObject(out)
		if err != nil {
			t.Fatalf("re-parse %q: %v", out, err)
		}
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("round trip changed the object:\n%#v\n%#v", o, o2)
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
		if v == nil && ok || v != nil && (!ok || !bytes.Equal(got, bytes.TrimSpace(v))) {
			t.Fatalf("member at %q is %q, %v; want %q", path, got, ok, v)
		}
		once := Format(doc, out)
		again, err := SetPath(once, v, path...)
		if err != nil {
			t.Fatalf("second SetPath: %v", err)
		}
		if twice := Format(once, again); !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent:\n%q\n%q", once, twice)
		}
	})
}
