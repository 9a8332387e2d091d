package agentcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/recording"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// recordFixture is a recordings directory with "web" in it, and a config
// whose profiles.dir is another temporary directory: the commands never
// read the node's.
func recordFixture(t *testing.T) (dir, config, profiles string) {
	t.Helper()
	tmp := t.TempDir()
	dir, profiles = filepath.Join(tmp, "recordings"), filepath.Join(tmp, "profiles")
	r := recording.New("web")
	r.Containers = 1
	for _, n := range []string{"bind", "listen", "accept4"} {
		r.Add(specs.ArchX86_64, n, [6]uint64{})
	}
	r.Add(specs.ArchX86_64, "socket", [6]uint64{2})
	if _, err := (recording.Store{Dir: dir}).Add(r); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(tmp, "config.toml")
	if err := os.WriteFile(config, []byte("[profiles]\ndir = \""+profiles+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, config, profiles
}

func TestRecordCommands(t *testing.T) {
	dir, config, profiles := recordFixture(t)

	code, out, errOut := runMain("record", "list", "--dir", dir)
	if code != 0 || !strings.Contains(out, "NAME") || len(strings.Fields(strings.Split(out, "\n")[1])) != 6 || !strings.HasPrefix(strings.Split(out, "\n")[1], "web ") {
		t.Errorf("list: exit %d\n%s%s", code, out, errOut)
	}

	// show: the profile, which validates.
	code, out, errOut = runMain("record", "show", "--dir", dir, "web")
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errOut)
	}
	p, err := policy.ParseProfile("web", "show", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := p.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Validate(p, sc); err != nil {
		t.Errorf("show's profile: %v", err)
	}
	// show --recording, of a file: the recording itself.
	code, out, _ = runMain("record", "show", "--recording", filepath.Join(dir, "web.json"))
	if _, err := recording.Parse("show", []byte(out)); code != 0 || err != nil {
		t.Errorf("show --recording: exit %d, %v", code, err)
	}

	// merge: web and a file into web2; again into web2 adds up.
	for want := 2; want <= 4; want += 2 {
		code, out, errOut = runMain("record", "merge", "--dir", dir, "web2", "web", filepath.Join(dir, "web.json"))
		if code != 0 || !strings.Contains(out, filepath.Join(dir, "web2.json")) {
			t.Fatalf("merge: exit %d %s%s", code, out, errOut)
		}
		r, err := (recording.Store{Dir: dir}).Load("web2")
		if err != nil || r.Containers != want {
			t.Fatalf("merged: %+v %v, want %d containers", r, err, want)
		}
	}

	// diff against Docker's default, found by name through the config.
	code, out, errOut = runMain("record", "diff", "--dir", dir, "--config", config, "web", "default")
	if code != 0 {
		t.Fatalf("diff: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"connect", "syscalls treated differently"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff against default lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		// keyctl both deny, bind and write both allow.
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "keyctl" || f[0] == "bind" || f[0] == "write") {
			t.Errorf("diff lists %s, which both treat alike: %q", f[0], line)
		}
		if strings.HasPrefix(line, "socket ") && !strings.Contains(line, "allow if arg0==2; else errno 1") {
			t.Errorf("diff of socket: %q", line)
		}
	}

	// install: into profiles.dir, atomically; not over an existing one
	// without --force.
	code, out, errOut = runMain("record", "install", "--dir", dir, "--config", config, "web", "web-v1")
	installed := filepath.Join(profiles, "web-v1.json")
	if code != 0 || !strings.Contains(out, installed) {
		t.Fatalf("install: exit %d %s%s", code, out, errOut)
	}
	if _, err := policy.LoadProfile(profiles, "web-v1"); err != nil {
		t.Errorf("the installed profile: %v", err)
	}
	code, _, errOut = runMain("record", "install", "--dir", dir, "--config", config, "web", "web-v1")
	if code != 1 || !strings.Contains(errOut, installed+" exists: --force replaces it") {
		t.Errorf("install over a profile: exit %d: %s", code, errOut)
	}
	if code, _, errOut = runMain("record", "install", "--force", "--dir", dir, "--config", config, "web", "web-v1"); code != 0 {
		t.Errorf("install --force: exit %d: %s", code, errOut)
	}
	// diff against the installed profile: nothing differs.
	code, out, _ = runMain("record", "diff", "--dir", dir, "web", installed)
	if code != 0 || !strings.Contains(out, "\n0 syscalls treated differently") {
		t.Errorf("diff against its own profile: exit %d\n%s", code, out)
	}
}

func TestRecordErrors(t *testing.T) {
	dir, config, _ := recordFixture(t)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"version":1,"name":"broken","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["Opne"]}}}`), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"record"}, 2, "no command given"},
		{[]string{"record", "nope"}, 2, `unknown command "nope"`},
		{[]string{"record", "list", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"record", "show", "--dir", dir}, 2, "usage: seccomp-agent record show NAME|FILE"},
		{[]string{"record", "diff", "--dir", dir, "web"}, 2, "usage: seccomp-agent record diff NAME|FILE PROFILE"},
		{[]string{"record", "show", "--dir", dir, "absent"}, 1, `recording "absent": no ` + filepath.Join(dir, "absent.json") + `: the agent writes it when a container recorded under that name ends`},
		{[]string{"record", "show", "--dir", dir, "broken"}, 1, `recording ` + broken + `: invalid recording: architectures.SCMP_ARCH_X86_64.syscalls[0] "Opne": not a syscall name`},
		{[]string{"record", "list", "--dir", dir}, 1, broken},
		{[]string{"record", "merge", "--dir", dir, "../x", "web"}, 1, `recording name "../x"`},
		{[]string{"record", "diff", "--dir", dir, "--config", config, "web", "nosuch"}, 1, `profile "nosuch": not in`},
		{[]string{"record", "install", "--dir", dir, "--config", config, "web", "a/b"}, 1, `profile name "a/b"`},
		{[]string{"--socket", "/x", "record", "list"}, 2, "the flags before"},
		// A flag after the arguments is not taken as a name.
		{[]string{"record", "install", "--dir", dir, "--config", config, "web", "web-v1", "--force"}, 2, "flag --force after the arguments: put it before them (seccomp-agent record install --force NAME|FILE [PROFILE])"},
		{[]string{"record", "install", "--dir", dir, "--config", config, "web", "--force"}, 2, "flag --force after the arguments"},
		{[]string{"record", "show", "web", "--dir=" + dir}, 2, "flag --dir=" + dir + " after the arguments"},
	} {
		code, _, errOut := runMain(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.HasSuffix(errOut, ": \n") {
			t.Errorf("%q: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, errOut)
		}
	}
	// --help is not an error.
	if code, out, _ := runMain("record", "--help"); code != 0 || !strings.Contains(out, "seccomp-agent record list|show|merge|diff|install [command options]") {
		t.Errorf("record --help: exit %d, no command in its usage\n%s", code, out)
	}
	if code, out, _ := runMain("record", "merge", "--help"); code != 0 || !strings.Contains(out, "NAME SOURCE...") {
		t.Errorf("record merge --help: exit %d\n%s", code, out)
	}
}
