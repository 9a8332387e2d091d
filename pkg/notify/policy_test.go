package notify

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// parseConfig goes through the real loader, so the TOML keys the docs show
// are the ones tested.
func parseConfig(t testing.TB, toml string) *policy.Config {
	t.Helper()
	c, err := policy.ParseConfig("test.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// req builds a notified syscall without a kernel. Fd -1 makes any look at
// the caller (/proc, IDValid) fail, as for a target that is gone.
func req(c *Container, arch uint32, nr int32, name string, args ...uint64) *Request {
	n := &unotify.Notif{ID: 1, Pid: 1, Data: unotify.Data{Nr: nr, Arch: arch}}
	copy(n.Data.Args[:], args)
	return &Request{Container: c, Notif: n, Syscall: name, Arch: n.Data.ArchName(), Fd: -1}
}

// x32Bit is __X32_SYSCALL_BIT: x32 tasks report AUDIT_ARCH_X86_64 with it
// set in the number.
const x32Bit = 0x40000000

func x64(c *Container, nr int32, name string, args ...uint64) *Request {
	return req(c, unix.AUDIT_ARCH_X86_64, nr, name, args...)
}

// dockerMeta is what policy.Audit writes for a Docker-like profile: EPERM
// by default, ENOSYS for clone3, nothing named above 334 on x86_64 nor above
// 400 on x86.
func dockerMeta() *policy.AuditMeta {
	return &policy.AuditMeta{
		V: 1, Profile: "docker-default", Errno: uint(unix.EPERM),
		Errnos:      map[string]uint{"clone3": uint(unix.ENOSYS), "keyctl": uint(unix.EACCES)},
		ENOSYSAbove: map[specs.Arch]int{"SCMP_ARCH_X86_64": 334, "SCMP_ARCH_X86": 400, "SCMP_ARCH_X32": x32Bit | 334},
	}
}

func TestDecideRules(t *testing.T) {
	cfg := parseConfig(t, `
[[notify.rule]]
name = "ci keyrings"
match.ids = ["ci-*"]
syscalls = ["keyctl", "add_key"]
action = "continue"

[[notify.rule]]
name = "shadowed by ci keyrings"
match.ids = ["ci-1"]
syscalls = ["keyctl"]
action = "errno"
errno = 22

[[notify.rule]]
name = "payments team"
match.annotations = { team = "pay*" }
syscalls = ["ptrace"]
action = "kill"

[[notify.rule]]
name = "shop namespace"
match.namespaces = ["shop"]
syscalls = ["mount"]
action = "errno"
errno = 13

[[notify.rule]]
name = "personality query"
syscalls = ["personality"]
args = [{ index = 0, op = "eq", value = 0xffffffff }]
action = "continue"

[[notify.rule]]
name = "two args"
syscalls = ["socket"]
args = [{ index = 0, op = "eq", value = 16 }, { index = 2, op = "mask", mask = 0xff, value = 9 }]
action = "errno"
errno = 97

[[notify.rule]]
name = "any syscall of quarantine"
match.ids = ["quarantine"]
action = "errno"
errno = 38

[[notify.rule]]
name = "identity never known without a kernel"
comm = ["*"]
action = "errno"
errno = 13
`)
	p := NewPolicy(cfg)
	ci := &Container{ID: "ci-1", Meta: dockerMeta()}
	other := &Container{ID: "web-1", Meta: dockerMeta()}
	pay := &Container{ID: "p1", Annotations: map[string]string{"team": "payments"}, Meta: dockerMeta()}
	shop := &Container{ID: "s1", Annotations: map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-namespace": "shop"}, Meta: dockerMeta()}
	crio := &Container{ID: "s2", Annotations: map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.pod.namespace": "shop"}, Meta: dockerMeta()}
	quarantine := &Container{ID: "quarantine", Meta: dockerMeta()}

	for _, tc := range []struct {
		name string
		r    *Request
		want Decision
	}{
		{"first match wins", x64(ci, 250, "keyctl"), Decision{Continue: true, Rule: "ci keyrings"}},
		{"any listed syscall", x64(ci, 248, "add_key"), Decision{Continue: true, Rule: "ci keyrings"}},
		{"other id falls to the profile", x64(other, 250, "keyctl"), Decision{Errno: uint(unix.EACCES), Rule: "profile docker-default"}},
		{"annotation glob", x64(pay, 101, "ptrace"), Decision{Kill: true, Errno: uint(unix.EPERM), Rule: "payments team"}},
		{"annotation on another syscall", x64(pay, 165, "mount"), Decision{Errno: uint(unix.EPERM), Rule: "profile docker-default"}},
		{"annotation missing", x64(other, 101, "ptrace"), Decision{Errno: uint(unix.EPERM), Rule: "profile docker-default"}},
		{"namespace from containerd's annotation", x64(shop, 165, "mount"), Decision{Errno: 13, Rule: "shop namespace"}},
		{"namespace from CRI-O's annotation", x64(crio, 165, "mount"), Decision{Errno: 13, Rule: "shop namespace"}},
		{"arg eq holds", x64(other, 135, "personality", 0xffffffff), Decision{Continue: true, Rule: "personality query"}},
		{"arg eq fails", x64(other, 135, "personality", 8), Decision{Errno: uint(unix.EPERM), Rule: "profile docker-default"}},
		{"all args hold", x64(other, 41, "socket", 16, 3, 0x109), Decision{Errno: 97, Rule: "two args"}},
		{"one arg fails", x64(other, 41, "socket", 16, 3, 0x10a), Decision{Errno: uint(unix.EPERM), Rule: "profile docker-default"}},
		{"no syscalls means any", x64(quarantine, 250, "keyctl"), Decision{Errno: 38, Rule: "any syscall of quarantine"}},
		// comm can't be read for this request, so the rule that needs it
		// does not match: an unknown identity never lets a call through.
		{"identity unknown", x64(other, 300, "fanotify_init"), Decision{Errno: uint(unix.EPERM), Rule: "profile docker-default"}},
	} {
		if got := p.Decide(tc.r); got != tc.want {
			t.Errorf("%s: Decide(%s in %s) = %+v, want %+v", tc.name, tc.r.Syscall, tc.r.Container.ID, got, tc.want)
		}
	}
}

func TestDecideArgOps(t *testing.T) {
	c := &Container{ID: "c", Meta: dockerMeta()}
	for _, tc := range []struct {
		op          string
		value, mask uint64
		arg         uint64
		want        bool
	}{
		{"eq", 5, 0, 5, true}, {"eq", 5, 0, 6, false},
		{"ne", 5, 0, 6, true}, {"ne", 5, 0, 5, false},
		{"lt", 5, 0, 4, true}, {"lt", 5, 0, 5, false},
		{"le", 5, 0, 5, true}, {"le", 5, 0, 6, false},
		{"gt", 5, 0, 6, true}, {"gt", 5, 0, 5, false},
		{"ge", 5, 0, 5, true}, {"ge", 5, 0, 4, false},
		// Arguments are unsigned 64-bit: -1 is the largest.
		{"gt", 5, 0, ^uint64(0), true}, {"lt", 5, 0, ^uint64(0), false},
		{"mask", 0x10, 0xf0, 0x1f, true}, {"mask", 0x10, 0xf0, 0x2f, false},
		{"mask", 0, 0x3, 0x4, true},
	} {
		// Index 3 so that a rule reading the wrong argument fails.
		cfg := &policy.Config{Notify: policy.NotifyConfig{Rules: []policy.NotifyRule{{
			Name: tc.op, Syscalls: []string{"ioctl"}, Action: policy.NotifyContinue,
			Args: []policy.ArgCond{{Index: 3, Op: tc.op, Value: tc.value, Mask: tc.mask}},
		}}}}
		d := NewPolicy(cfg).Decide(x64(c, 16, "ioctl", 7, 7, 7, tc.arg, 7, 7))
		if d.Continue != tc.want {
			t.Errorf("%s value=%#x mask=%#x on arg %#x: matched %v, want %v", tc.op, tc.value, tc.mask, tc.arg, d.Continue, tc.want)
		}
	}
}

func TestReplay(t *testing.T) {
	meta := dockerMeta()
	c := &Container{ID: "c", Meta: meta}
	prof := "profile docker-default"
	newer := "profile docker-default (newer than the profile)"
	for _, tc := range []struct {
		name string
		r    *Request
		want Decision
	}{
		{"profile's own errno", x64(c, 250, "keyctl"), Decision{Errno: uint(unix.EACCES), Rule: prof}},
		{"named ENOSYS", x64(c, 435, "clone3"), Decision{Errno: uint(unix.ENOSYS), Rule: prof}},
		{"default errno", x64(c, 165, "mount"), Decision{Errno: uint(unix.EPERM), Rule: prof}},
		{"at the threshold", x64(c, 334, "rseq"), Decision{Errno: uint(unix.EPERM), Rule: prof}},
		{"above the threshold", x64(c, 335, "syscall_335"), Decision{Errno: uint(unix.ENOSYS), Rule: newer}},
		// 350 is above x86_64's threshold but not x86's: the arch decides.
		{"x86 below its own threshold", req(c, unix.AUDIT_ARCH_I386, 350, "syscall_350"), Decision{Errno: uint(unix.EPERM), Rule: prof}},
		{"x86 above its own threshold", req(c, unix.AUDIT_ARCH_I386, 401, "syscall_401"), Decision{Errno: uint(unix.ENOSYS), Rule: newer}},
		// x32 numbers carry the x32 bit, in the kernel and in libseccomp's
		// table that policy.Audit takes the threshold from.
		{"x32 below its threshold", x64(c, x32Bit|250, "keyctl"), Decision{Errno: uint(unix.EACCES), Rule: prof}},
		{"x32 above its threshold", x64(c, x32Bit|335, "syscall_335"), Decision{Errno: uint(unix.ENOSYS), Rule: newer}},
		{"arch without a threshold", req(c, unix.AUDIT_ARCH_AARCH64, 999, "syscall_999"), Decision{Errno: uint(unix.EPERM), Rule: prof}},
		{"no metadata fails closed", x64(&Container{ID: "c"}, 250, "keyctl"), Decision{Errno: uint(unix.EPERM), Rule: "no policy metadata: deny"}},
	} {
		if got := Replay.Decide(tc.r); got != tc.want {
			t.Errorf("%s: Replay(%s/%d) = %+v, want %+v", tc.name, tc.r.Arch, tc.r.Notif.Data.Nr, got, tc.want)
		}
		// A policy with no rules answers exactly what Replay answers.
		if got := NewPolicy(&policy.Config{}).Decide(tc.r); got != tc.want {
			t.Errorf("%s: empty Policy = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPolicyStore(t *testing.T) {
	c := &Container{ID: "web", Meta: dockerMeta()}
	r := x64(c, 250, "keyctl")
	p := NewPolicy(&policy.Config{})
	if d := p.Decide(r); d.Continue || d.Errno != uint(unix.EACCES) {
		t.Fatalf("before Store: %+v", d)
	}
	allow := parseConfig(t, `
[[notify.rule]]
name = "allow keyctl"
syscalls = ["keyctl"]
action = "continue"
`)
	p.Store(allow)
	if d := p.Decide(r); !d.Continue || d.Rule != "allow keyctl" {
		t.Errorf("after Store: %+v, want the new rule's continue", d)
	}
	p.Store(&policy.Config{})
	if d := p.Decide(r); d.Continue || d.Errno != uint(unix.EACCES) {
		t.Errorf("after storing no rules: %+v, want the profile's EACCES", d)
	}
}

// TestReplayNamesKeptProfile: under the engine's own kept profile, the
// audit's rule says so, not "profile <the rule's profile>".
func TestReplayNamesKeptProfile(t *testing.T) {
	c := &Container{ID: "c", Meta: &policy.AuditMeta{V: 1, Profile: policy.ProfileEngineKept, Errno: uint(unix.EPERM)}}
	if d := Replay.Decide(x64(c, 250, "keyctl")); d.Rule != policy.ProfileEngineKept {
		t.Errorf("rule %q, want %q", d.Rule, policy.ProfileEngineKept)
	}
	c = &Container{ID: "d", Meta: &policy.AuditMeta{V: 1, Profile: "default", Errno: uint(unix.EPERM)}}
	if d := Replay.Decide(x64(c, 250, "keyctl")); d.Rule != "profile default" {
		t.Errorf("rule %q, want profile default", d.Rule)
	}
}

// TestDecideArgHighBits: the kernel reads an int argument's low 32 bits
// (socket's family, say), so a call can carry high bits the kernel ignores.
// A rule's condition must not be dodged that way: a continue rule holds
// only where it holds of the value both as 64 and as 32 bits, an errno or
// kill rule where it holds of either.
func TestDecideArgHighBits(t *testing.T) {
	c := &Container{ID: "c", Meta: dockerMeta()}
	vsock := uint64(1)<<32 | unix.AF_VSOCK // the kernel sees AF_VSOCK
	for _, tc := range []struct {
		name, rules string
		arg         uint64
		continues   bool
	}{
		{"continue unless vsock", `
[[notify.rule]]
name = "no vsock"
syscalls = ["socket"]
args = [{ index = 0, op = "ne", value = 40 }]
action = "continue"
`, vsock, false},
		{"continue unless vsock, a real family", `
[[notify.rule]]
name = "no vsock"
syscalls = ["socket"]
args = [{ index = 0, op = "ne", value = 40 }]
action = "continue"
`, unix.AF_INET, true},
		{"deny vsock, then continue", `
[[notify.rule]]
name = "vsock"
syscalls = ["socket"]
args = [{ index = 0, op = "eq", value = 40 }]
action = "errno"
errno = 1

[[notify.rule]]
name = "the rest"
syscalls = ["socket"]
action = "continue"
`, vsock, false},
		{"deny vsock, then continue, a real family", `
[[notify.rule]]
name = "vsock"
syscalls = ["socket"]
args = [{ index = 0, op = "eq", value = 40 }]
action = "errno"
errno = 1

[[notify.rule]]
name = "the rest"
syscalls = ["socket"]
action = "continue"
`, unix.AF_INET, true},
	} {
		d := NewPolicy(parseConfig(t, tc.rules)).Decide(x64(c, 41, "socket", tc.arg, 1, 0))
		if d.Continue != tc.continues {
			t.Errorf("%s: socket(%#x): %+v, want continue %v", tc.name, tc.arg, d, tc.continues)
		}
	}
}
