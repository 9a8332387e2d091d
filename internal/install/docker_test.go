package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testShim = "/usr/local/bin/seccomp-shim"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in:\n%s", err, b)
	}
	return m
}

// Each daemon.json fixture: the runtime is added, everything else decodes
// as before, a second add changes nothing, and removing gives back the
// original bytes, plus an empty "runtimes" where there was none (dockerd
// clears its runtimes on reload only if the key is there).
func TestDockerRoundTrip(t *testing.T) {
	for _, name := range []string{"full.json", "compact.json", "tabs-no-runtimes.json", "empty-runtimes.json", "taken.json"} {
		t.Run(name, func(t *testing.T) {
			orig := readFixture(t, "docker/"+name)
			out, st, err := addDockerRuntime(orig, true, testShim)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", out)
			got := decodeJSON(t, out)
			want := decodeJSON(t, orig)
			rts, _ := want["runtimes"].(map[string]any)
			if rts == nil {
				rts = map[string]any{}
				want["runtimes"] = rts
			}
			rts["seccomp-shim"] = map[string]any{"path": testShim}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded %v, want %v", got, want)
			}
			again, st2, err := addDockerRuntime(out, true, testShim)
			if err != nil || string(again) != string(out) {
				t.Errorf("second add changed the file (err %v):\n%s", err, again)
			}
			if st2 != (DockerState{}) {
				t.Errorf("second add recorded %+v", st2)
			}
			back, err := removeDockerRuntime(out, st)
			if err != nil {
				t.Fatalf("remove: %v", err)
			}
			if name == "tabs-no-runtimes.json" {
				orig = []byte("{\n\t\"features\": {\n\t\t\"buildkit\": true\n\t},\n\t\"live-restore\": true,\n\t\"runtimes\": {}\n}\n")
			}
			if string(back) != string(orig) {
				t.Errorf("remove gave\n%q\nwant\n%q", back, orig)
			}
		})
	}
}

func TestDockerLayout(t *testing.T) {
	out, _, err := addDockerRuntime(readFixture(t, "docker/full.json"), true, testShim)
	if err != nil {
		t.Fatal(err)
	}
	// Inserted like a person would have typed it, after the last runtime.
	want := `    "crun": {
      "path": "/usr/bin/crun"
    },
    "seccomp-shim": {
      "path": "/usr/local/bin/seccomp-shim"
    }
  },`
	if !strings.Contains(string(out), want) {
		t.Errorf("got\n%s\nwant it to contain\n%s", out, want)
	}
	out, _, _ = addDockerRuntime(readFixture(t, "docker/compact.json"), true, testShim)
	if want := `{"log-driver":"journald","runtimes":{"crun":{"path":"/usr/bin/crun"}, "seccomp-shim": {"path": "/usr/local/bin/seccomp-shim"}}}`; string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	out, _, _ = addDockerRuntime(readFixture(t, "docker/tabs-no-runtimes.json"), true, testShim)
	if want := "{\n\t\"features\": {\n\t\t\"buildkit\": true\n\t},\n\t\"live-restore\": true,\n\t\"runtimes\": {\n\t\t\"seccomp-shim\": {\n\t\t\t\"path\": \"/usr/local/bin/seccomp-shim\"\n\t\t}\n\t}\n}\n"; string(out) != want {
		t.Errorf("got\n%q\nwant\n%q", out, want)
	}
}

func TestDockerNoFile(t *testing.T) {
	out, st, err := addDockerRuntime(nil, false, testShim)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"runtimes\": {\n    \"seccomp-shim\": {\n      \"path\": \"/usr/local/bin/seccomp-shim\"\n    }\n  }\n}\n"; string(out) != want {
		t.Errorf("got\n%s", out)
	}
	// The file stays, with "runtimes", so that a reload clears them.
	if back, err := removeDockerRuntime(out, st); err != nil || string(back) != "{\n  \"runtimes\": {}\n}\n" {
		t.Errorf("remove: %q %v", back, err)
	}
	// Something added since stays too.
	edited := []byte(strings.Replace(string(out), "{\n", "{\n  \"debug\": true,\n", 1))
	back, err := removeDockerRuntime(edited, st)
	if err != nil || string(back) != "{\n  \"debug\": true,\n  \"runtimes\": {}\n}\n" {
		t.Errorf("remove after an edit: %q %v", back, err)
	}
}

func TestDockerEmptyFile(t *testing.T) {
	orig := []byte("\n")
	out, st, err := addDockerRuntime(orig, true, testShim)
	if err != nil {
		t.Fatal(err)
	}
	back, err := removeDockerRuntime(out, st)
	if err != nil || string(back) != "{\n  \"runtimes\": {}\n}\n" {
		t.Errorf("got %q %v", back, err)
	}
}

func TestDockerTakenEntryRestored(t *testing.T) {
	orig := readFixture(t, "docker/taken.json")
	_, st, err := addDockerRuntime(orig, true, testShim)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Previous, "/opt/old/seccomp-shim") {
		t.Errorf("previous entry not recorded: %+v", st)
	}
}

func TestDockerRefusesBadJSON(t *testing.T) {
	for name, want := range map[string]string{"invalid.json": "invalid character '}'", "duplicate.json": `duplicate key "runtimes"`} {
		_, _, err := addDockerRuntime(readFixture(t, "docker/"+name), true, testShim)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
	for _, doc := range []string{`[]`, `{"runtimes": []}`, `{"runtimes": null}`, `{} {}`} {
		if _, _, err := addDockerRuntime([]byte(doc), true, testShim); err == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
}

func TestDockerKeysWithEscapes(t *testing.T) {
	orig := []byte(`{"a\"b": "x\u00e9", "runtimes": {"r\\1": {"path": "/p"}}}`)
	out, st, err := addDockerRuntime(orig, true, testShim)
	if err != nil {
		t.Fatal(err)
	}
	back, err := removeDockerRuntime(out, st)
	if err != nil || string(back) != string(orig) {
		t.Errorf("got %s, %v", back, err)
	}
}
