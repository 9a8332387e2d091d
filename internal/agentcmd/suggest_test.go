package agentcmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/recording"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

func TestSuggest(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[profiles]\ndir = \""+t.TempDir()+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	valid := func(t *testing.T, out string) *policy.Profile {
		t.Helper()
		p, err := policy.ParseProfile("suggested", "stdout", []byte(out))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := p.Resolve(nil)
		if err == nil {
			_, err = policy.Validate(p, sc)
		}
		if err != nil {
			t.Fatalf("the suggestion does not validate: %v\n%s", err, out)
		}
		return p
	}
	for _, tc := range []struct {
		sel  []string
		want []string // in the output
		not  []string
	}{
		{[]string{"--container", "web-1"}, []string{`"keyctl"`, `"value": 40`}, []string{`"value": 4194304`, `"mount"`}},
		{[]string{"--pod", "shop/web-7f9c"}, []string{`"keyctl"`, `"value": 40`, `"value": 4194304`}, []string{`"mount"`}},
		{[]string{"--image", "example.com/web:1.2"}, []string{`"value": 4194304`}, nil},
		{[]string{"--container", "kept", "--profile", "default"}, []string{`"keyctl"`}, nil},
	} {
		code, out, errOut := runMain(append(append([]string{"suggest", "--config", cfg}, tc.sel...), "testdata/complain.log")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.sel, code, errOut)
		}
		valid(t, out)
		// What was added comes last, after the base profile's rules.
		_, added, _ := strings.Cut(out, `"comment": "suggested`)
		added = out[strings.LastIndex(out[:len(out)-len(added)], "{"):]
		for _, w := range tc.want {
			if !strings.Contains(added, w) {
				t.Errorf("%v: no %s in\n%s", tc.sel, w, added)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(added, w) {
				t.Errorf("%v: %s in\n%s", tc.sel, w, added)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"suggest", "testdata/complain.log"}, 2, "name exactly one of --container, --pod, --image"},
		{[]string{"suggest", "--pod", "web", "testdata/complain.log"}, 2, `--pod "web": want NAMESPACE/POD`},
		{[]string{"suggest", "--pod", "shop/", "testdata/complain.log"}, 2, `--pod "shop/": want NAMESPACE/POD`},
		{[]string{"suggest", "--pod", "shop/web/1", "testdata/complain.log"}, 2, `--pod "shop/web/1": want NAMESPACE/POD`},
		{[]string{"suggest", "testdata/complain.log", "--pod", "shop/web-7f9c"}, 2, "flag --pod after the AUDIT-LOG: flags go before it"},
		{[]string{"suggest", "--container", "web-1", "testdata/complain.log", "--profile=default"}, 2, "flag --profile=default after the AUDIT-LOG"},
		{[]string{"suggest", "--container", "none", "--config", cfg, "testdata/complain.log"}, 1, "no would-be denials"},
		{[]string{"suggest", "--container", "kept", "--config", cfg, "testdata/complain.log"}, 1, "name it with --profile"},
		{[]string{"suggest", "--bogus"}, 2, "bogus"},
	} {
		code, _, errOut := runMain(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
}

// TestSuggestAfterRecording: a pod recorded into "web", then run in
// complain mode under web-v1, the recording's profile. The recording's
// records (rule "recording:web") are no would-be denials of web-v1: the
// suggestion is web-v1 plus the complain run's denials only, with or
// without --profile, even where the recording's records hold a call
// web-v1 lacks (a replica recorded after the install).
func TestSuggestAfterRecording(t *testing.T) {
	tmp := t.TempDir()
	profiles := filepath.Join(tmp, "profiles")
	r := recording.New("web")
	made := []policy.Call{{Syscall: "connect"}, {Syscall: "dup2"}, {Syscall: "mkdir"}, {Syscall: "clone", Args: [6]uint64{18874385}}}
	for _, c := range made {
		r.Add(specs.ArchX86_64, c.Syscall, c.Args)
	}
	data, _, err := recording.ProfileJSON(r, "web-v1")
	if err == nil {
		err = os.MkdirAll(profiles, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(profiles, "web-v1.json"), data, 0o644)
	}
	cfg := filepath.Join(tmp, "config.toml")
	if err == nil {
		err = os.WriteFile(cfg, []byte("[profiles]\ndir = \""+profiles+"\"\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	rec := func(container, rule string, c policy.Call) {
		b, _ := json.Marshal(notify.Record{Container: container, Pod: "web-1", Namespace: "shop", Arch: "x86_64",
			Syscall: c.Syscall, Args: c.Args, Action: notify.ActionComplain, Errno: 1, Rule: rule, Would: "errno"})
		log.Write(append(b, '\n'))
	}
	for _, c := range append(made, policy.Call{Syscall: "chroot"}) {
		rec("recorded", policy.RecordingProfile("web"), c)
	}
	rec("complain", "profile web-v1", policy.Call{Syscall: "keyctl"})
	path := filepath.Join(tmp, "audit.log")
	if err := os.WriteFile(path, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sel := range [][]string{{"--pod", "shop/web-1"}, {"--pod", "shop/web-1", "--profile", "web-v1"}} {
		code, out, errOut := runMain(append(append([]string{"suggest", "--config", cfg}, sel...), path)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", sel, code, errOut)
		}
		_, added, _ := strings.Cut(out, `"comment": "suggested`)
		added = out[strings.LastIndex(out[:len(out)-len(added)], "{"):]
		if !strings.Contains(added, `"keyctl"`) {
			t.Errorf("%v: no keyctl in\n%s", sel, added)
		}
		for _, n := range []string{"connect", "dup2", "mkdir", "clone", "chroot"} {
			if strings.Contains(added, `"`+n+`"`) {
				t.Errorf("%v: %s suggested: the recording's records are no would-be denials of web-v1\n%s", sel, n, added)
			}
		}
	}
	code, _, errOut := runMain("suggest", "--config", cfg, "--container", "recorded", path)
	if code != 1 || !strings.Contains(errOut, "record install") {
		t.Errorf("a recorded container alone: exit %d, %q; want 1 and a pointer to record install", code, errOut)
	}
}
