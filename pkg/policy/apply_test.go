package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mustConfig(t *testing.T, toml string) *Config {
	t.Helper()
	c, err := ParseConfig("test.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func engineProfile() *specs.LinuxSeccomp {
	eperm := uint(1)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno, ErrnoRet: &eperm}},
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nokeys.json"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["add_key","request_key"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustConfig(t, `
[profiles]
dir = "`+dir+`"
[[rule]]
name = "replace"
match.ids = ["r*"]
profile = "strict"
existing = "replace"
[[rule]]
name = "tighten"
match.ids = ["t*"]
profile = "nokeys"
existing = "tighten"
[[rule]]
name = "free"
match.ids = ["u*"]
profile = "unconfined"
allow_unconfined = true
existing = "replace"
[[rule]]
name = "native"
match.ids = ["n*"]
architectures = "native"
[[rule]]
name = "pick"
match.ids = ["p*"]
architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
`)
	for _, tc := range []struct {
		id       string
		existing *specs.LinuxSeccomp
		action   string
		check    func(*specs.LinuxSeccomp) bool
	}{
		{"x1", nil, ActionInjected, func(s *specs.LinuxSeccomp) bool {
			return s.DefaultAction == specs.ActErrno && len(s.Architectures) == 3
		}},
		{"x2", engineProfile(), ActionKept, func(s *specs.LinuxSeccomp) bool { return equalJSON(s, engineProfile()) }},
		{"r1", engineProfile(), ActionReplaced, func(s *specs.LinuxSeccomp) bool { return len(s.Syscalls) > 0 && len(s.Syscalls[0].Names) > 20 }},
		{"t1", engineProfile(), ActionTightened, func(s *specs.LinuxSeccomp) bool { return len(s.Syscalls) == 2 && s.DefaultAction == specs.ActAllow }},
		{"t2", nil, ActionInjected, func(s *specs.LinuxSeccomp) bool { return len(s.Syscalls) == 1 }},
		{"u1", engineProfile(), ActionUnconfined, func(s *specs.LinuxSeccomp) bool { return s == nil }},
		{"u2", nil, ActionUnconfined, func(s *specs.LinuxSeccomp) bool { return s == nil }},
		{"n1", nil, ActionInjected, func(s *specs.LinuxSeccomp) bool { return equalJSON(s.Architectures, []specs.Arch{specs.ArchX86_64}) }},
		{"p1", nil, ActionInjected, func(s *specs.LinuxSeccomp) bool { return len(s.Architectures) == 2 }},
	} {
		spec := &specs.Spec{Process: &specs.Process{Args: []string{"sh"}}}
		if tc.existing != nil {
			spec.Linux = &specs.Linux{Seccomp: tc.existing}
		}
		res, err := c.Apply(spec, tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		var got *specs.LinuxSeccomp
		if spec.Linux != nil {
			got = spec.Linux.Seccomp
		}
		if res.Action != tc.action || !tc.check(got) {
			t.Errorf("%s: action %s, profile %+v", tc.id, res.Action, got)
		}
		// Idempotent: a second pass over its own output changes nothing.
		before, _ := json.Marshal(spec)
		if _, err := c.Apply(spec, tc.id); err != nil {
			t.Fatal(err)
		}
		if after, _ := json.Marshal(spec); string(before) != string(after) {
			t.Errorf("%s: second Apply changed the spec", tc.id)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "typo.json"), []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["opne"],"action":"SCMP_ACT_ALLOW"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustConfig(t, `
[profiles]
dir = "`+dir+`"
[[rule]]
match.ids = ["typo"]
profile = "typo"
[[rule]]
match.ids = ["missing"]
profile = "missing"
`)
	for id, want := range map[string]error{"typo": ErrInvalidProfile, "missing": ErrUnknownProfile} {
		spec := &specs.Spec{}
		if _, err := c.Apply(spec, id); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", id, err, want)
		}
		if spec.Linux != nil {
			t.Errorf("%s: spec changed on error", id)
		}
	}
	spec := &specs.Spec{Annotations: map[string]string{AnnotationProfile: "strict"}}
	if _, err := DefaultConfig().Apply(spec, "x"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("annotation without allowed_profiles: %v", err)
	}
}

func TestCheckProfiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mine.json"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	ok := mustConfig(t, "[profiles]\ndir = \""+dir+"\"\n[[rule]]\nprofile = \"mine\"\nallowed_profiles = [\"strict\"]\n")
	if err := ok.CheckProfiles(); err != nil {
		t.Fatal(err)
	}
	bad := mustConfig(t, "[profiles]\ndir = \""+dir+"\"\n[[rule]]\nname = \"x\"\nexisting = \"keep\"\nallowed_profiles = [\"nope\"]\n")
	if err := bad.CheckProfiles(); !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), `rule[0] (x): profile "nope"`) {
		t.Fatalf("%v", err)
	}
}
