package agentcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{[]string{"suggest", "--pod", "web", "testdata/complain.log"}, 2, `--pod "web": NAMESPACE/POD`},
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
