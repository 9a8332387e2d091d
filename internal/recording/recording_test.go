package recording

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

const threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID

func args(a0, a1 uint64) [6]uint64 { return [6]uint64{a0, a1} }

func TestAddKeepsWhatDockerLooksAt(t *testing.T) {
	r := New("web")
	x86 := specs.ArchX86_64
	r.Add(x86, "clone", args(threadFlags, 0))
	r.Add(x86, "clone", args(uint64(unix.SIGCHLD)|unix.CLONE_CHILD_SETTID|unix.CLONE_CHILD_CLEARTID, 0))
	r.Add(x86, "clone", args(unix.CLONE_NEWNET|unix.CLONE_NEWNS|uint64(unix.SIGCHLD), 0))
	r.Add(x86, "socket", args(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC))
	r.Add(x86, "socket", args(unix.AF_INET, unix.SOCK_DGRAM))
	r.Add(x86, "socket", args(unix.AF_INET6, unix.SOCK_DGRAM))
	r.Add(x86, "personality", args(0xffffffff, 0))
	r.Add(x86, "getpid", args(0, 0))
	r.Add(x86, "getpid", args(0, 0))
	r.Add(x86, "syscall_1000", args(0, 0)) // a number libseccomp can't name
	r.Add(specs.ArchS390X, "clone", args(0, unix.CLONE_NEWUSER))
	a := r.Architectures[x86]
	if want := []string{"clone", "getpid", "personality", "socket"}; !slices.Equal(a.Syscalls, want) {
		t.Errorf("syscalls %v, want %v", a.Syscalls, want)
	}
	for name, want := range map[string][]uint64{
		"clone":       {0, unix.CLONE_NEWNS | unix.CLONE_NEWNET}, // the namespace bits only
		"socket":      {unix.AF_INET, unix.AF_INET6},             // the family only
		"personality": {0xffffffff},
	} {
		if !slices.Equal(a.Args[name], want) {
			t.Errorf("args[%s] = %#x, want %#x", name, a.Args[name], want)
		}
	}
	if got := r.Architectures[specs.ArchS390X].Args["clone"]; !slices.Equal(got, []uint64{unix.CLONE_NEWUSER}) {
		t.Errorf("s390x clone (flags second) = %#x", got)
	}
}

func TestAddIsBounded(t *testing.T) {
	r := New("x")
	for i := range MaxValues + 10 {
		r.Add(specs.ArchX86_64, "socket", args(uint64(i), 0))
	}
	if n := len(r.Architectures[specs.ArchX86_64].Args["socket"]); n != MaxValues {
		t.Errorf("%d socket values kept, want at most %d", n, MaxValues)
	}
}

func TestMerge(t *testing.T) {
	a := New("web")
	a.Containers, a.First, a.Last = 1, "2026-11-30T01:00:00Z", "2026-11-30T01:00:00Z"
	a.Add(specs.ArchX86_64, "bind", args(0, 0))
	a.Add(specs.ArchX86_64, "socket", args(unix.AF_INET, 0))
	b := New("web")
	b.Containers, b.First, b.Last = 2, "2026-11-30T00:00:00Z", "2026-11-30T02:00:00Z"
	b.Add(specs.ArchX86_64, "listen", args(0, 0))
	b.Add(specs.ArchX86_64, "socket", args(unix.AF_UNIX, 0))
	b.Add(specs.ArchX86, "socketcall", args(0, 0))
	a.Merge(b)
	a.Merge(b) // merging again changes nothing but the count
	want := &Recording{Version: 1, Name: "web", Containers: 5, First: "2026-11-30T00:00:00Z", Last: "2026-11-30T02:00:00Z",
		Architectures: map[specs.Arch]*Arch{
			specs.ArchX86_64: {Syscalls: []string{"bind", "listen", "socket"}, Args: map[string][]uint64{"socket": {unix.AF_UNIX, unix.AF_INET}}},
			specs.ArchX86:    {Syscalls: []string{"socketcall"}},
		}}
	if g, w := mustMarshal(t, a), mustMarshal(t, want); g != w {
		t.Errorf("merged:\n%s\nwant:\n%s", g, w)
	}
	// What is marshalled parses back to the same.
	back, err := Parse("test", []byte(mustMarshal(t, a)))
	if err != nil {
		t.Fatal(err)
	}
	if g := mustMarshal(t, back); g != mustMarshal(t, a) {
		t.Errorf("round trip:\n%s", g)
	}
}

func mustMarshal(t *testing.T, r *Recording) string {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRefuses(t *testing.T) {
	good := `{"version":1,"name":"web","containers":1,"architectures":{"SCMP_ARCH_X86_64":{"syscalls":["bind","socket"],"args":{"socket":[2,10]}}}}`
	if _, err := Parse("good.json", []byte(good)); err != nil {
		t.Fatalf("good: %v", err)
	}
	for in, want := range map[string]string{
		`{"version":2,"name":"web","architectures":{}}`:                                                                   "version 2",
		`{"version":1,"name":"../etc","architectures":{}}`:                                                                `name "../etc"`,
		`{"version":1,"name":"web","architectures":{},"extra":1}`:                                                         `unknown field "extra"`,
		`{"version":1,"name":"web","name":"x","architectures":{}}`:                                                        "name",
		`{"version":1,"name":"web","containers":-1,"architectures":{}}`:                                                   "containers -1",
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_VAX":{"syscalls":[]}}}`:                                    "architectures.SCMP_ARCH_VAX: not an architecture",
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":null}}`:                                            "architectures.SCMP_ARCH_X86_64: null",
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["Opne"]}}}`:                           `architectures.SCMP_ARCH_X86_64.syscalls[0] "Opne": not a syscall name`,
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["read","bind"]}}}`:                    `syscalls[1] "bind": not sorted`,
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["bind"],"args":{"bind":[1]}}}}`:       `args.bind: "bind" has no argument condition`,
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["bind"],"args":{"socket":[1]}}}}`:     `args.socket: "socket" is not in architectures.SCMP_ARCH_X86_64.syscalls`,
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["socket"],"args":{"socket":[2,1]}}}}`: "args.socket[1] 1: not sorted",
		`{"version":1,"name":"web","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["clone"],"args":{"clone":[17]}}}}`:    "args.clone[0] 0x11: has bits outside the mask",
		good + `{}`: "trailing data",
	} {
		_, err := Parse("bad.json", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "recording bad.json") || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s:\n  error %v\n  want one naming bad.json and %q", in, err, want)
		}
	}
}

// rule finds the profile's rules for name.
func rules(sc *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, s := range sc.Syscalls {
		if slices.Contains(s.Names, name) {
			out = append(out, s)
		}
	}
	return out
}

func resolved(t *testing.T, data []byte) *specs.LinuxSeccomp {
	t.Helper()
	p, err := policy.ParseProfile("web", "test", data)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := p.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestProfile(t *testing.T) {
	r := New("web")
	x86 := specs.ArchX86_64
	for _, n := range []string{"bind", "listen", "accept4", "read", "write", "clone3"} {
		r.Add(x86, n, args(0, 0))
	}
	r.Add(x86, "socket", args(unix.AF_INET, unix.SOCK_STREAM))
	r.Add(x86, "clone", args(threadFlags, 0))
	r.Add(x86, "personality", args(8, 0))
	r.Add(specs.ArchX86, "socketcall", args(0, 0))
	data, warnings, err := ProfileJSON(r, "web")
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ProfileJSON: %v %v", err, warnings)
	}
	sc := resolved(t, data)
	if sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != uint(unix.EPERM) {
		t.Errorf("default %s %v, want errno EPERM", sc.DefaultAction, sc.DefaultErrnoRet)
	}
	if want := []specs.Arch{specs.ArchX86, specs.ArchX86_64}; !slices.Equal(sc.Architectures, want) {
		t.Errorf("architectures %v, want the two seen %v", sc.Architectures, want)
	}
	allowed := func(name string) bool {
		for _, s := range rules(sc, name) {
			if s.Action == specs.ActAllow && len(s.Args) == 0 {
				return true
			}
		}
		return false
	}
	for _, n := range append([]string{"bind", "listen", "accept4", "socketcall"}, Baseline()...) {
		if !allowed(n) {
			t.Errorf("%s not allowed outright", n)
		}
	}
	for _, n := range []string{"keyctl", "mount", "connect", "socket", "clone", "personality", "clone3", "unshare"} {
		if allowed(n) {
			t.Errorf("%s allowed outright: never seen, or allowed only for values seen", n)
		}
	}
	// Only the values seen, compared as Docker's profile compares them.
	wantArgs := map[string][]specs.LinuxSeccompArg{
		"socket":      {{Index: 0, Value: unix.AF_INET, Op: specs.OpEqualTo}},
		"clone":       {{Index: 0, Value: NamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
		"personality": {{Index: 0, Value: 8, Op: specs.OpEqualTo}},
	}
	for n, want := range wantArgs {
		got := rules(sc, n)
		if len(got) != 1 || got[0].Action != specs.ActAllow || !slices.Equal(got[0].Args, want) {
			t.Errorf("%s: rules %+v, want one allowing %+v", n, got, want)
		}
	}
	c3 := rules(sc, "clone3")
	if len(c3) != 1 || c3[0].Action != specs.ActErrno || *c3[0].ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("clone3: %+v, want ENOSYS (libc then falls back to clone)", c3)
	}
	// Written twice, the same bytes: a diff of two recordings shows changes only.
	again, _, _ := ProfileJSON(r, "web")
	if string(again) != string(data) {
		t.Error("the profile is not deterministic")
	}
}

func TestProfileClone3Only(t *testing.T) {
	// A glibc program that made clone3 while recorded (it was let through)
	// gets ENOSYS under the profile and falls back to clone, which must
	// then be allowed without namespace flags.
	r := New("glibc")
	r.Add(specs.ArchX86_64, "clone3", args(0, 0))
	sc := resolved(t, mustProfile(t, r))
	got := rules(sc, "clone")
	if len(got) != 1 || !slices.Equal(got[0].Args, []specs.LinuxSeccompArg{{Index: 0, Value: NamespaceFlags, Op: specs.OpMaskedEqual}}) {
		t.Errorf("clone after clone3: %+v", got)
	}
}

func TestProfileEmpty(t *testing.T) {
	// Nothing recorded beyond the baseline: the native architecture only.
	sc := resolved(t, mustProfile(t, New("idle")))
	if len(sc.Architectures) != 0 || len(rules(sc, "write")) != 1 {
		t.Errorf("empty recording: %+v", sc)
	}
}

func mustProfile(t *testing.T, r *Recording) []byte {
	t.Helper()
	data, _, err := ProfileJSON(r, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The baseline never allows what Docker's default profile denies: every
// name is allowed there without conditions, for a container with no
// capabilities at all. It holds write, which runc refuses to notify, and
// none of the syscalls whose arguments are recorded.
func TestBaselineWithinDockerDefault(t *testing.T) {
	p, err := policy.LoadProfile("", policy.ProfileDefault)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := p.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Baseline() {
		ok := false
		for _, s := range rules(sc, n) {
			ok = ok || s.Action == specs.ActAllow && len(s.Args) == 0
		}
		if !ok {
			t.Errorf("baseline %s: not allowed outright by Docker's default", n)
		}
		if _, c := Conditioned[n]; c || n == "clone3" {
			t.Errorf("baseline %s: its arguments are recorded, it can't be in the baseline", n)
		}
	}
	if !slices.Contains(Baseline(), "write") {
		t.Error("write (runc refuses to notify it) is not in the baseline")
	}
}

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "recordings")}
	if _, err := s.Load("web"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of nothing: %v", err)
	}
	a := New("web")
	a.Containers = 1
	a.Add(specs.ArchX86_64, "bind", args(0, 0))
	if _, err := s.Add(a); err != nil {
		t.Fatal(err)
	}
	b := New("web")
	b.Containers = 1
	b.Add(specs.ArchX86_64, "listen", args(0, 0))
	got, err := s.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Containers != 2 || !slices.Equal(got.Architectures[specs.ArchX86_64].Syscalls, []string{"bind", "listen"}) {
		t.Errorf("merged in the store: %+v", got.Architectures[specs.ArchX86_64])
	}
	for path, want := range map[string]os.FileMode{s.Dir: 0o700 | os.ModeDir, s.Path("web"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v (root-only) (%v)", path, fi.Mode(), want, err)
		}
	}
	// List: a broken file is an error naming it; the rest is listed.
	os.WriteFile(filepath.Join(s.Dir, "broken.json"), []byte(`{"version":1}`), 0o600)
	os.WriteFile(filepath.Join(s.Dir, ".web.json.recording-123"), []byte(`x`), 0o600)
	recs, errs := s.List()
	if len(recs) != 1 || recs[0].Name != "web" || len(errs) != 1 || !strings.Contains(errs[0].Error(), "broken.json") {
		t.Errorf("List: %v %v", recs, errs)
	}
	// A file named for another recording is refused.
	os.WriteFile(s.Path("other"), []byte(mustMarshal(t, got)), 0o600)
	if _, err := s.Load("other"); err == nil || !strings.Contains(err.Error(), `named for "other"`) {
		t.Errorf("Load of a misnamed file: %v", err)
	}
	if _, err := s.Load("../x"); err == nil {
		t.Error("Load of a path")
	}
	// A directory others can write is refused.
	os.Chmod(s.Dir, 0o777)
	if _, err := s.Add(a); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("Add into a 0777 directory: %v", err)
	}
	// And read from: what is read there becomes a profile (record show,
	// install), so a directory others can write is no more trusted to
	// read from than to write to.
	if _, err := s.Load("web"); err == nil || !strings.Contains(err.Error(), "recordings directory "+s.Dir+": writable by others") {
		t.Errorf("Load from a 0777 directory: %v", err)
	}
	if recs, errs := s.List(); len(recs) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "writable by others") {
		t.Errorf("List of a 0777 directory: %v %v", recs, errs)
	}
	if _, err := (Store{Dir: "relative"}).Add(a); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative directory: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"name":"web","containers":2,"first":"2026-11-30T00:00:00Z","architectures":{"SCMP_ARCH_X86_64":{"syscalls":["bind","clone","socket"],"args":{"clone":[0],"socket":[2,10]}},"SCMP_ARCH_X86":{"syscalls":["socketcall"]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		// What parses marshals, parses back the same, and writes a profile.
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("fuzz", out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if again, _ := back.Marshal(); string(again) != string(out) {
			t.Fatalf("round trip differs:\n%s\n%s", out, again)
		}
		back.Merge(r)
		if _, err := json.Marshal(Profile(back)); err != nil {
			t.Fatal(err)
		}
	})
}
