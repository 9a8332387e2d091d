package unotify

//go:generate go run ./internal/gensyscalls syscalls_gen.go

import (
	"cmp"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32SyscallBit is __X32_SYSCALL_BIT from arch/x86/include/uapi/asm/unistd.h.
// x32 tasks report AUDIT_ARCH_X86_64 and set this bit in the syscall number;
// there is no separate audit arch for them.
const x32SyscallBit = 0x40000000

// Arch is one architecture under each name the stack gives it. Arches
// is the one table of them: the shim's policy, the agent and its fast path
// all derive theirs from it.
type Arch struct {
	Audit uint32 // seccomp_data.arch (AUDIT_ARCH_*); x32 shares x86_64's
	Name  string // the kernel's (uname -m style), as in audit logs
	// Spec is the OCI runtime-spec's name (SCMP_ARCH_*), set only where
	// runc can filter the architecture (its libcontainer/seccomp archs).
	Spec specs.Arch
	// Scmp is libseccomp's name (ScmpArch.String), which keys its tables
	// in syscalls_gen.go.
	Scmp   string
	GOARCH string // the Go port that runs on it natively, if any
}

// arches lists every audit arch libseccomp has a table for, then x32, which
// has no audit arch of its own (see isX32).
var arches = [...]Arch{
	{unix.AUDIT_ARCH_X86_64, "x86_64", specs.ArchX86_64, "amd64", "amd64"},
	{unix.AUDIT_ARCH_I386, "x86", specs.ArchX86, "x86", "386"},
	{unix.AUDIT_ARCH_AARCH64, "aarch64", specs.ArchAARCH64, "arm64", "arm64"},
	{unix.AUDIT_ARCH_ARM, "arm", specs.ArchARM, "arm", "arm"},
	{unix.AUDIT_ARCH_RISCV64, "riscv64", specs.ArchRISCV64, "riscv64", "riscv64"},
	{unix.AUDIT_ARCH_PPC64LE, "ppc64le", specs.ArchPPC64LE, "ppc64le", "ppc64le"},
	{unix.AUDIT_ARCH_PPC64, "ppc64", specs.ArchPPC64, "ppc64", "ppc64"},
	{unix.AUDIT_ARCH_PPC, "ppc", specs.ArchPPC, "ppc", ""},
	{unix.AUDIT_ARCH_S390X, "s390x", specs.ArchS390X, "s390x", "s390x"},
	{unix.AUDIT_ARCH_S390, "s390", specs.ArchS390, "s390", ""},
	{unix.AUDIT_ARCH_MIPS, "mips", specs.ArchMIPS, "mips", "mips"},
	{unix.AUDIT_ARCH_MIPSEL, "mipsel", specs.ArchMIPSEL, "mipsel", "mipsle"},
	{unix.AUDIT_ARCH_MIPS64, "mips64", specs.ArchMIPS64, "mips64", "mips64"},
	{unix.AUDIT_ARCH_MIPSEL64, "mipsel64", specs.ArchMIPSEL64, "mipsel64", "mips64le"},
	{unix.AUDIT_ARCH_MIPS64N32, "mips64n32", specs.ArchMIPS64N32, "mips64n32", ""},
	{unix.AUDIT_ARCH_MIPSEL64N32, "mipsel64n32", specs.ArchMIPSEL64N32, "mipsel64n32", ""},
	{unix.AUDIT_ARCH_PARISC, "parisc", specs.ArchPARISC, "parisc", ""},
	{unix.AUDIT_ARCH_PARISC64, "parisc64", specs.ArchPARISC64, "parisc64", ""},
	{unix.AUDIT_ARCH_LOONGARCH64, "loongarch64", specs.ArchLOONGARCH64, "loong64", "loong64"},
	{unix.AUDIT_ARCH_M68K, "m68k", "", "m68k", ""},
	// libseccomp calls little-endian SuperH "sh" and big-endian "sheb".
	{unix.AUDIT_ARCH_SHEL, "sh", "", "sh", ""},
	{unix.AUDIT_ARCH_SH, "sheb", "", "sheb", ""},
	x32Info,
}

var x32Info = Arch{unix.AUDIT_ARCH_X86_64, "x32", specs.ArchX32, "x32", ""}

// Arches lists every architecture this package knows.
func Arches() []Arch { return slices.Clone(arches[:]) }

// LookupArch finds the architecture whose field f returns v: for example
// LookupArch(func(a Arch) specs.Arch { return a.Spec }, specs.ArchX86).
// x32 is found by every name but its audit arch, which is x86_64's.
func LookupArch[T comparable](f func(Arch) T, v T) (Arch, bool) {
	var zero T
	if v == zero {
		return Arch{}, false
	}
	for _, a := range arches {
		if f(a) == v {
			return a, true
		}
	}
	return Arch{}, false
}

// NativeArch is the architecture this binary was built for, which is the
// host's: runc and the shim run natively.
func NativeArch() (Arch, bool) {
	return LookupArch(func(a Arch) string { return a.GOARCH }, runtime.GOARCH)
}

func lookupArch(arch uint32) *Arch {
	for i := range arches {
		if arches[i].Audit == arch {
			return &arches[i]
		}
	}
	return nil
}

// ArchName names an audit arch (seccomp_data.arch): "x86_64", "x86",
// "aarch64", "arm", ... and "arch_0x<hex>" for one it does not know. It cannot
// tell x32 from x86_64, which share AUDIT_ARCH_X86_64; Data.ArchName can.
func ArchName(arch uint32) string {
	if a := lookupArch(arch); a != nil {
		return a.Name
	}
	return fmt.Sprintf("arch_%#x", arch)
}

// ArchName names the ABI of the syscall: like the function ArchName, but
// "x32" for x32 syscalls (AUDIT_ARCH_X86_64 with __X32_SYSCALL_BIT in Nr).
func (d *Data) ArchName() string {
	if isX32(d.Arch, d.Nr) {
		return x32Info.Name
	}
	return ArchName(d.Arch)
}

// ABI is the architecture of the syscall, telling x32 from x86_64 as
// ArchName does; false for an audit arch the table lacks.
func (d *Data) ABI() (Arch, bool) {
	if isX32(d.Arch, d.Nr) {
		return x32Info, true
	}
	if a := lookupArch(d.Arch); a != nil {
		return *a, true
	}
	return Arch{}, false
}

// Bits32 reports whether libseccomp filters the syscall's ABI as a 32-bit
// one, comparing the low 32 bits of each argument alone: an audit arch
// without __AUDIT_ARCH_64BIT, x32, and MIPS n32.
func (d *Data) Bits32() bool {
	const audit64 = 0x80000000 // __AUDIT_ARCH_64BIT
	return d.Arch&audit64 == 0 || isX32(d.Arch, d.Nr) ||
		d.Arch == unix.AUDIT_ARCH_MIPS64N32 || d.Arch == unix.AUDIT_ARCH_MIPSEL64N32
}

func isX32(arch uint32, nr int32) bool {
	return arch == unix.AUDIT_ARCH_X86_64 && nr >= 0 && nr&x32SyscallBit != 0
}

// nameEntry is one cached (arch, nr) -> name result.
type nameEntry struct {
	arch uint32
	nr   int32
	name string
}

// nameCache is a direct-mapped cache: fixed memory however many distinct
// numbers a container throws at us (they are under its control), no lock,
// no allocation on a hit. A collision only costs another search.
var nameCache [1 << 12]atomic.Pointer[nameEntry]

func cacheSlot(arch uint32, nr int32) *atomic.Pointer[nameEntry] {
	h := (uint64(arch)<<32 | uint64(uint32(nr))) * 0x9e3779b97f4a7c15
	return &nameCache[h>>(64-12)]
}

// SyscallName names syscall nr of audit arch arch, as libseccomp does
// ("getpid"), decoding by the arch the target used rather than the agent's
// own: 20 is getpid for AUDIT_ARCH_I386 but writev for AUDIT_ARCH_X86_64, and
// x86_64 numbers with __X32_SYSCALL_BIT set are x32 syscalls. Numbers
// libseccomp does not know (and negative ones, which libseccomp would map to
// its internal pseudo-syscalls) come back as "syscall_<nr>".
//
// Results are cached, so repeated calls neither allocate nor search.
func SyscallName(arch uint32, nr int32) string {
	slot := cacheSlot(arch, nr)
	if e := slot.Load(); e != nil && e.arch == arch && e.nr == nr {
		return e.name
	}
	name := resolveName(arch, nr)
	slot.Store(&nameEntry{arch: arch, nr: nr, name: name})
	return name
}

func resolveName(arch uint32, nr int32) string {
	a := lookupArch(arch)
	if isX32(arch, nr) {
		a = &x32Info
	}
	if a != nil && nr >= 0 {
		// archAliases: numbers such as x86's direct socket(2), which a
		// filter's "socket" rule matches although the name resolves to
		// socketcall's pseudo-syscall.
		for _, table := range [][]Syscall{archSyscalls(a.Scmp), archAliases(a.Scmp)} {
			if i, ok := slices.BinarySearchFunc(table, nr, func(s Syscall, nr int32) int { return cmp.Compare(s.Nr, nr) }); ok {
				return table[i].Name
			}
		}
	}
	return "syscall_" + strconv.FormatInt(int64(nr), 10)
}

// Syscall is one syscall of an architecture: its number (with the
// architecture's base, as seccomp_data.nr carries it) and libseccomp's name.
type Syscall struct {
	Nr   int32
	Name string
}

// Syscalls lists the syscalls that have a number on a, by number, as the
// libseccomp of syscalls_gen.go (LibseccompVersion) numbers them; none for
// an architecture that libseccomp has no table for.
func (a Arch) Syscalls() iter.Seq[Syscall] { return slices.Values(archSyscalls(a.Scmp)) }

// SyscallNames lists every syscall name libseccomp knows, on any
// architecture, sorted. libseccomp (and so runc) resolves each of them on
// every architecture: where one lacks the call, a filter's rule for it
// matches nothing there.
func SyscallNames() iter.Seq[string] { return slices.Values(syscallNames[:]) }

// KnownSyscall reports whether name is in SyscallNames.
func KnownSyscall(name string) bool {
	_, ok := slices.BinarySearch(syscallNames[:], name)
	return ok
}
