package policy

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

func TestAuditDefault(t *testing.T) {
	p, _ := LoadProfile("", ProfileDefault)
	sc, _ := p.Resolve(nil)
	out, err := Audit(sc, "/run/x.sock", AuditMeta{Rule: "r", Profile: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if out.ListenerPath != "/run/x.sock" || out.DefaultAction != specs.ActErrno {
		t.Fatalf("%+v", out)
	}
	notify := out.Syscalls[len(out.Syscalls)-1]
	if notify.Action != specs.ActNotify {
		t.Fatalf("last rule %+v", notify)
	}
	for _, n := range []string{"keyctl", "add_key", "mount", "reboot", "clone3"} {
		if !slices.Contains(notify.Names, n) {
			t.Errorf("%s not routed", n)
		}
	}
	for _, n := range []string{"write", "read", "getpid", "personality", "socket"} {
		if slices.Contains(notify.Names, n) {
			t.Errorf("%s routed", n)
		}
	}
	m, err := ParseAuditMeta(out.ListenerMetadata)
	if err != nil {
		t.Fatal(err)
	}
	// clone3 gets ENOSYS without CAP_SYS_ADMIN in Docker's profile.
	if m.Errno != 1 || m.Errnos["clone3"] != 38 || m.Rule != "r" || m.ENOSYSAbove[specs.ArchX86_64] < 400 {
		t.Fatalf("%+v", m)
	}
	if _, err := Validate(&Profile{Name: "audited", Source: "test"}, out); err != nil {
		t.Fatalf("the audited profile must validate: %v", err)
	}
	// Every syscall is denied with the same verdict as before, or notified.
	before, after := treatments(sc), treatments(out)
	for n := range unotify.SyscallNames() {
		b, a := before[n], after[n]
		if a.Uncond != nil && a.Uncond.Action == specs.ActNotify {
			if b.Uncond != nil && b.Uncond.Action != specs.ActErrno {
				t.Errorf("%s: was %v, now notified", n, b.Uncond)
			}
			continue
		}
		if !equalJSON(a, b) {
			t.Errorf("%s: %+v became %+v", n, b, a)
		}
	}
}

func TestAuditStrictENOSYS(t *testing.T) {
	p, _ := LoadProfile("", ProfileStrict)
	sc, _ := p.Resolve(nil)
	out, err := Audit(sc, "/s", AuditMeta{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseAuditMeta(out.ListenerMetadata)
	// strict's highest syscall on x86_64 is rseq (334): runc answers ENOSYS above.
	if m.ENOSYSAbove[specs.ArchX86_64] != 334 {
		t.Fatalf("%+v", m.ENOSYSAbove)
	}
}

func TestAuditNothingToRoute(t *testing.T) {
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActKillProcess}}}
	out, _ := Audit(sc, "/s", AuditMeta{})
	if out != sc {
		t.Fatal("a profile that denies nothing with an errno must stay as it is")
	}
}

func FuzzParseAuditMeta(f *testing.F) {
	p, _ := LoadProfile("", ProfileDefault)
	sc, _ := p.Resolve(nil)
	out, _ := Audit(sc, "/s", AuditMeta{Rule: "r"})
	f.Add(out.ListenerMetadata)
	f.Add(`{"v":1,"errno":1,"errnos":{"keyctl":13},"enosysAbove":{"SCMP_ARCH_X86_64":334}}`)
	f.Add(`{"v":2}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseAuditMeta(s)
		if err == nil && m.V != 1 {
			t.Fatalf("accepted version %d", m.V)
		}
	})
}
