package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfig(t *testing.T) {
	c, err := LoadFile("../../examples/config.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) != 5 || c.Rules[2].Name != "tenants" || c.Rules[2].Existing != ExistingTighten ||
		c.Rules[2].Architectures[0] != ArchNative || c.Rules[0].Match.Annotations["io.kubernetes.cri.container-type"] != "sandbox" {
		t.Fatalf("decoded %+v", c.Rules)
	}
	if got := []string(c.Runtime.Path); len(got) != 2 || got[0] != "runc" {
		t.Fatalf("runtime.path %q", got)
	}
}

func TestLoadMissing(t *testing.T) {
	c, err := LoadFile(filepath.Join(t.TempDir(), "none.toml"), false)
	if err != nil || c.Source != "built-in defaults" || len(c.Rules) != 0 {
		t.Fatalf("missing default file: %v %+v", err, c)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "none.toml"), true); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing named file: %v", err)
	}
	env := map[string]string{ConfigEnv: filepath.Join(t.TempDir(), "x.toml")}
	if _, err := Load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "x.toml") {
		t.Fatalf("SECCOMP_SHIM_CONFIG naming a missing file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{`[runtime]` + "\n" + `pth = "runc"`, `unknown keys runtime.pth`},
		{`[[rule]]` + "\n" + `profle = "strict"`, `unknown keys rule.profle`},
		{`[runtime]` + "\n" + `path = "bin/runc"`, `runtime.path[0] "bin/runc": must be an absolute path`},
		{`[runtime]` + "\n" + `path = []`, `runtime.path: empty`},
		{`[runtime]` + "\n" + `path = 3`, `expected a string or an array`},
		{`[profiles]` + "\n" + `dir = "profiles"`, `profiles.dir "profiles": must be an absolute path`},
		{`[log]` + "\n" + `level = "loud"`, `log.level "loud"`},
		{`[[rule]]` + "\n" + `profile = "unconfined"`, `rule[0] (rule[0]): profile "unconfined" needs allow_unconfined = true`},
		{`[[rule]]` + "\n" + `name = "x"` + "\n" + `allowed_profiles = ["unconfined"]`, `rule[0] (x): profile "unconfined" needs allow_unconfined`},
		{`[[rule]]` + "\n" + `profile = "../etc/x"`, `profile name "../etc/x"`},
		{`[[rule]]` + "\n" + `existing = "merge"`, `existing "merge": must be keep, replace or tighten`},
		{`[[rule]]` + "\n" + `architectures = ["SCMP_ARCH_Z80"]`, `architectures: "SCMP_ARCH_Z80"`},
		{`[[rule]]` + "\n" + `architectures = ["native", "SCMP_ARCH_X86"]`, `architectures: "native"`},
		{`[[rule]]` + "\n" + `match.annotations = { "" = "x" }`, `match.annotations: empty key`},
		{`[[rule]` + "\n", `config t.toml: invalid config: toml:`},
	} {
		_, err := ParseConfig("t.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%q:\n got %v\nwant %q", tc.toml, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "config t.toml: ") {
			t.Errorf("error must name the file: %v", err)
		}
	}
}

func TestRuleDefaults(t *testing.T) {
	c, err := ParseConfig("t", []byte("[[rule]]\nmatch.ids = [\"a*\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rules[0]
	if r.Name != "rule[0]" || r.Profile != ProfileDefault || r.Existing != ExistingKeep || r.Architectures[0] != ArchProfile {
		t.Fatalf("%+v", r)
	}
}

func FuzzParseConfig(f *testing.F) {
	example, _ := os.ReadFile("../../examples/config.toml")
	f.Add(string(example))
	f.Add("[[rule]]\nprofile = \"strict\"\nmatch.annotations = { a = \"*\" }\n")
	f.Add("[runtime]\npath = \"/usr/bin/runc\"\n")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := ParseConfig("fuzz", []byte(data))
		if err != nil {
			return
		}
		// Whatever validates must decide without error for a container
		// that asks for nothing.
		if _, err := c.Choose(Container{ID: "x", Annotations: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("valid config, Decide: %v", err)
		}
	})
}

func FuzzParseProfile(f *testing.F) {
	files, _ := filepath.Glob("testdata/profiles/*.json")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile("fuzz", "fuzz", data)
		if err != nil {
			return
		}
		sc, err := p.Resolve(nil)
		if err != nil || sc == nil {
			return
		}
		_, _ = Validate(p, sc)
		if t2, err := Tighten(sc, sc); err == nil {
			if t3, _ := Tighten(t2, sc); !equalJSON(t2, t3) {
				t.Fatalf("Tighten not idempotent:\n%+v\n%+v", t2, t3)
			}
		}
	})
}

func TestNotifyRules(t *testing.T) {
	c, err := ParseConfig("t", []byte(`
[[notify.rule]]
name = "secrets"
syscalls = ["mount"]
path = { arg = 1, glob = "/etc/*" }
action = "errno"
errno = 13
[[notify.rule]]
name = "ci"
match.ids = ["ci-*"]
syscalls = ["keyctl"]
args = [{ index = 0, op = "eq", value = 0 }]
action = "continue"
`))
	if err != nil || len(c.Notify.Rules) != 2 || c.Notify.Rules[0].Path.Glob != "/etc/*" || !c.Notify.Rules[1].Args[0].Holds(0) {
		t.Fatalf("%v %+v", err, c)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[[notify.rule]]\naction = \"allow\"", `action "allow"`},
		{"[[notify.rule]]\naction = \"errno\"", `errno 0: must be 1-4094`},
		{"[[notify.rule]]\naction = \"continue\"\npath = { arg = 0, glob = \"/x\" }", `never continue`},
		{"[[notify.rule]]\naction = \"continue\"\ncomm = [\"nginx\"]", `comm, exe: set by the container itself`},
		{"[[notify.rule]]\naction = \"continue\"\nexe = [\"/usr/sbin/nginx\"]", `comm, exe: set by the container itself`},
		{"[[notify.rule]]\naction = \"kill\"\nargs = [{ index = 7, op = \"eq\" }]", `args[0]: index must be 0-5`},
		{"[[notify.rule]]\nname = \"p\"\naction = \"kill\"\npath = { arg = 0, glob = \"/x\" }\n[[notify.rule]]\nname = \"c\"\naction = \"continue\"", `notify.rule[1] (c): continue after the path rule notify.rule[0] (p)`},
	} {
		if _, err := ParseConfig("t", []byte(tc.toml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.toml, err, tc.want)
		}
	}
	for v, want := range map[uint64]bool{0: false, 5: true, 4: false} {
		if (ArgCond{Op: "mask", Mask: 1, Value: 1}).Holds(v) != want {
			t.Errorf("mask %d", v)
		}
	}
}

// The reference page shows the example config whole; keep them one text.
func TestDocsShowExample(t *testing.T) {
	example, _ := os.ReadFile("../../examples/config.toml")
	doc, _ := os.ReadFile("../../docs/config.md")
	if len(example) == 0 || !strings.Contains(string(doc), "```toml\n"+string(example)+"```") {
		t.Fatal("docs/config.md does not show examples/config.toml verbatim")
	}
}
