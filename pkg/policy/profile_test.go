package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// outcome is what loading, resolving and validating a profile gives, as
// text for a golden file.
func outcome(dir, name string, spec *specs.Spec) string {
	p, err := LoadProfile(dir, name)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	sc, err := p.Resolve(spec)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	// Warnings depend on the local libseccomp's tables: TestNewerSyscallWarns.
	_, err = ValidateAll(p, sc)
	var b strings.Builder
	if err != nil {
		b.WriteString("error: " + err.Error() + "\n")
		if !errors.Is(err, ErrInvalidProfile) {
			b.WriteString("(not ErrInvalidProfile)\n")
		}
	} else {
		b.WriteString("ok: " + string(sc.DefaultAction) + " with " + itoa(len(sc.Syscalls)) + " rules\n")
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestProfilesGolden(t *testing.T) {
	dir := "testdata/profiles"
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatal("no profiles in testdata")
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			got := outcome(dir, name, spec)
			golden := filepath.Join(dir, name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if strings.HasPrefix(name, "ok-") != !strings.Contains(got, "error:") {
				t.Errorf("%s: a file named ok- must validate and bad- must not:\n%s", name, got)
			}
		})
	}
}

// TestBuiltinsValidate stands for the validation that creates skip for the
// built-in profiles (Config.Resolve): each one, with no capability, each
// capability its rules depend on alone, all of them, and every
// architecture choice, must validate with every check.
func TestBuiltinsValidate(t *testing.T) {
	var all []string
	for _, s := range mobyseccomp.DefaultProfile().Syscalls {
		if s.Includes != nil {
			all = append(all, s.Includes.Caps...)
		}
		if s.Excludes != nil {
			all = append(all, s.Excludes.Caps...)
		}
	}
	if len(all) == 0 {
		t.Fatal("Docker's profile names no capabilities: the test checks nothing")
	}
	capSets := [][]string{nil, all}
	for _, c := range all {
		capSets = append(capSets, []string{c})
	}
	for _, caps := range capSets {
		spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
		for _, name := range []string{ProfileDefault, ProfileStrict} {
			for _, arches := range []StringList{{ArchProfile}, {ArchNative}, {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}} {
				c := DefaultConfig()
				c.Profiles.Dir = ""
				d := Choice{Rule: "r", Profile: name, Architectures: arches}
				sc, warnings, err := c.Resolve(d, spec)
				if err != nil || len(warnings) > 0 {
					t.Fatalf("built-in %s with caps %v: %v %q", name, caps, err, warnings)
				}
				p, _ := LoadProfile("", name)
				if _, err := ValidateAll(p, sc); err != nil {
					t.Errorf("built-in %s with caps %v, architectures %v: %v", name, caps, arches, err)
				}
			}
		}
	}
}

func TestResolveWithoutProcess(t *testing.T) {
	// moby's resolver panics on a spec without process; ours must not.
	p, _ := LoadProfile("", ProfileDefault)
	for _, spec := range []*specs.Spec{nil, {}, {Process: &specs.Process{}}} {
		if _, err := p.Resolve(spec); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadProfileNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "default.json"), []byte(`{"defaultAction":"SCMP_ACT_LOG"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(dir, ProfileDefault)
	if err != nil || p.Source != filepath.Join(dir, "default.json") {
		t.Fatalf("a file must override the built-in of the same name: %v %+v", err, p)
	}
	for _, bad := range []string{"../etc/passwd", "/etc/passwd", "", ".hidden", "a/b", "nope"} {
		if _, err := LoadProfile(dir, bad); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("LoadProfile(%q) = %v, want ErrUnknownProfile", bad, err)
		}
	}
}

func TestStrictIsSmall(t *testing.T) {
	p, _ := LoadProfile("", ProfileStrict)
	sc, _ := p.Resolve(nil)
	if sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) == 0 || len(sc.Architectures) != 0 {
		t.Fatalf("strict: %+v", sc)
	}
	// Beyond the one list, only prctl, and only for runc init's options.
	for _, r := range sc.Syscalls[1:] {
		if len(r.Names) != 1 || r.Names[0] != "prctl" || len(r.Args) != 1 || r.Args[0].Index != 0 || r.Args[0].Op != specs.OpEqualTo {
			t.Errorf("strict rule %+v", r)
		}
	}
	for _, n := range []string{"socket", "open", "clone", "ptrace", "mount", "unshare", "prctl", "kill", "setns", "faccessat2"} {
		for _, have := range sc.Syscalls[0].Names {
			if n == have {
				t.Errorf("strict allows %s", n)
			}
		}
	}
}

func TestNewerSyscallWarns(t *testing.T) {
	var unknown string
	for n := range newerSyscalls() {
		if known, _ := resolves(n, unotify.Arches()); !known {
			unknown = n
			break
		}
	}
	if unknown == "" {
		t.Skip("this libseccomp knows every syscall of Docker's profile")
	}
	p, err := ParseProfile("t", "test", []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","`+unknown+`"],"action":"SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := p.Resolve(nil)
	warnings, err := Validate(p, sc)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], unknown) {
		t.Fatalf("%q: warnings %q, err %v", unknown, warnings, err)
	}
}
