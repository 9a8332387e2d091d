package unotify

import (
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// TestArches checks the one table of architectures against libseccomp's own
// names for them, and that each name finds its row.
func TestArches(t *testing.T) {
	for _, a := range Arches() {
		if got, err := libseccomp.GetArchFromString(a.Scmp); err != nil || got.String() != a.Scmp {
			t.Errorf("%s: libseccomp arch %v does not round-trip: %v, %v", a.Name, a.Scmp, got, err)
		}
		if b, ok := LookupArch(func(a Arch) string { return a.Name }, a.Name); !ok || b != a {
			t.Errorf("%s: LookupArch by name = %+v, %v", a.Name, b, ok)
		}
		if a.Spec != "" {
			if b, ok := LookupArch(func(a Arch) specs.Arch { return a.Spec }, a.Spec); !ok || b != a {
				t.Errorf("%s: LookupArch by spec = %+v, %v", a.Name, b, ok)
			}
		}
		if a.Name != "x32" && ArchName(a.Audit) != a.Name {
			t.Errorf("ArchName(%#x) = %q, want %q", a.Audit, ArchName(a.Audit), a.Name)
		}
	}
	if _, ok := LookupArch(func(a Arch) specs.Arch { return a.Spec }, ""); ok {
		t.Error("the empty spec name found an architecture")
	}
	if _, ok := LookupArch(func(a Arch) specs.Arch { return a.Spec }, specs.ArchM68K); ok {
		t.Error("m68k has a spec name, but runc can't filter it")
	}
	n, ok := NativeArch()
	native, err := libseccomp.GetNativeArch()
	if !ok || err != nil || n.Scmp != native.String() || n.GOARCH != runtime.GOARCH {
		t.Errorf("NativeArch = %+v, %v; libseccomp's native arch %v, %v", n, ok, native, err)
	}
}

func TestBits32(t *testing.T) {
	for _, tc := range []struct {
		d    Data
		want bool
	}{
		{Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 39}, false},
		{Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 0x40000000 | 39}, true}, // x32
		{Data{Arch: unix.AUDIT_ARCH_I386, Nr: 20}, true},
		{Data{Arch: unix.AUDIT_ARCH_AARCH64, Nr: 172}, false},
		{Data{Arch: unix.AUDIT_ARCH_ARM, Nr: 20}, true},
		{Data{Arch: unix.AUDIT_ARCH_MIPS64N32, Nr: 6038}, true},
		{Data{Arch: unix.AUDIT_ARCH_MIPS64, Nr: 5038}, false},
	} {
		if got := tc.d.Bits32(); got != tc.want {
			t.Errorf("arch %#x nr %#x: Bits32 %v, want %v", tc.d.Arch, tc.d.Nr, got, tc.want)
		}
	}
}

// TestSyscallNameDirectSocket: x86's direct socket(2), which a filter's
// "socket" rule matches, is named so; the complain-mode agent looks up the
// profile's answer by that name.
func TestSyscallNameDirectSocket(t *testing.T) {
	for _, c := range []struct {
		arch uint32
		nr   int32
		want string
	}{{unix.AUDIT_ARCH_I386, 359, "socket"}, {unix.AUDIT_ARCH_I386, 102, "socketcall"}, {unix.AUDIT_ARCH_I386, 393, "semget"}} {
		if got := SyscallName(c.arch, c.nr); got != c.want {
			t.Errorf("SyscallName(%#x, %d) = %q, want %q", c.arch, c.nr, got, c.want)
		}
	}
}
