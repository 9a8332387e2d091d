package unotify

import (
	"fmt"
	"strconv"
	"sync/atomic"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// x32SyscallBit is __X32_SYSCALL_BIT from arch/x86/include/uapi/asm/unistd.h.
// x32 tasks report AUDIT_ARCH_X86_64 and set this bit in the syscall number;
// there is no separate audit arch for them.
const x32SyscallBit = 0x40000000

// archInfo ties a kernel audit arch (seccomp_data.arch) to its name and to
// libseccomp's table for it.
type archInfo struct {
	audit uint32
	name  string
	scmp  libseccomp.ScmpArch
}

// arches lists every audit arch libseccomp has a table for. The names are
// the Linux ones (uname -m style), as found in audit logs.
var arches = [...]archInfo{
	{unix.AUDIT_ARCH_X86_64, "x86_64", libseccomp.ArchAMD64},
	{unix.AUDIT_ARCH_I386, "x86", libseccomp.ArchX86},
	{unix.AUDIT_ARCH_AARCH64, "aarch64", libseccomp.ArchARM64},
	{unix.AUDIT_ARCH_ARM, "arm", libseccomp.ArchARM},
	{unix.AUDIT_ARCH_RISCV64, "riscv64", libseccomp.ArchRISCV64},
	{unix.AUDIT_ARCH_PPC64LE, "ppc64le", libseccomp.ArchPPC64LE},
	{unix.AUDIT_ARCH_PPC64, "ppc64", libseccomp.ArchPPC64},
	{unix.AUDIT_ARCH_PPC, "ppc", libseccomp.ArchPPC},
	{unix.AUDIT_ARCH_S390X, "s390x", libseccomp.ArchS390X},
	{unix.AUDIT_ARCH_S390, "s390", libseccomp.ArchS390},
	{unix.AUDIT_ARCH_MIPS, "mips", libseccomp.ArchMIPS},
	{unix.AUDIT_ARCH_MIPSEL, "mipsel", libseccomp.ArchMIPSEL},
	{unix.AUDIT_ARCH_MIPS64, "mips64", libseccomp.ArchMIPS64},
	{unix.AUDIT_ARCH_MIPSEL64, "mipsel64", libseccomp.ArchMIPSEL64},
	{unix.AUDIT_ARCH_MIPS64N32, "mips64n32", libseccomp.ArchMIPS64N32},
	{unix.AUDIT_ARCH_MIPSEL64N32, "mipsel64n32", libseccomp.ArchMIPSEL64N32},
	{unix.AUDIT_ARCH_PARISC, "parisc", libseccomp.ArchPARISC},
	{unix.AUDIT_ARCH_PARISC64, "parisc64", libseccomp.ArchPARISC64},
	{unix.AUDIT_ARCH_LOONGARCH64, "loongarch64", libseccomp.ArchLOONGARCH64},
	{unix.AUDIT_ARCH_M68K, "m68k", libseccomp.ArchM68K},
	// libseccomp calls little-endian SuperH "sh" and big-endian "sheb".
	{unix.AUDIT_ARCH_SHEL, "sh", libseccomp.ArchSH},
	{unix.AUDIT_ARCH_SH, "sheb", libseccomp.ArchSHEB},
}

var x32Info = archInfo{unix.AUDIT_ARCH_X86_64, "x32", libseccomp.ArchX32}

func lookupArch(arch uint32) *archInfo {
	for i := range arches {
		if arches[i].audit == arch {
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
		return a.name
	}
	return fmt.Sprintf("arch_%#x", arch)
}

// ArchName names the ABI of the syscall: like the function ArchName, but
// "x32" for x32 syscalls (AUDIT_ARCH_X86_64 with __X32_SYSCALL_BIT in Nr).
func (d *Data) ArchName() string {
	if isX32(d.Arch, d.Nr) {
		return x32Info.name
	}
	return ArchName(d.Arch)
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
// no allocation on a hit. A collision only costs another libseccomp call.
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
// Results are cached, so repeated calls neither allocate nor enter cgo.
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
	if nr >= 0 {
		a, n := lookupArch(arch), nr
		if isX32(arch, nr) {
			a, n = &x32Info, nr&^x32SyscallBit
		}
		if a != nil {
			if name, err := libseccomp.ScmpSyscall(n).GetNameByArch(a.scmp); err == nil && name != "" {
				return name
			}
		}
	}
	return "syscall_" + strconv.FormatInt(int64(nr), 10)
}
