package policy

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Strict is seccomp mode 1 (read, write, exit, exit_group, rt_sigreturn) plus
// the least a container needs to get there. Each group below was found by
// running runc 1.1 under an errno-by-default profile with strace until
// busybox-static's echo ran (docs/profiles.md tells how to repeat it).
var (
	strictMode1 = []string{"read", "write", "exit", "exit_group", "rt_sigreturn"}
	// runc init loads the filter before it execs the workload; between the two
	// it opens and closes the exec fifo, walks /proc/self/fd and its Go
	// runtime may park, preempt or grow a thread. With a notify listener
	// (the agent's audit), runc 1.3's init hands the fd to its parent and
	// waits for the answer with recvfrom.
	strictRuncInit = []string{
		"execve", "openat", "close", "fstatfs", "getdents64", "getpid", "epoll_ctl", "recvfrom",
		"futex", "nanosleep", "sched_yield", "rt_sigprocmask", "sigaltstack",
		"tgkill", "gettid", "mmap", "munmap", "madvise",
	}
	// Without noNewPrivileges (CRI's, Docker's and podman's default) runc
	// init loads the filter earlier, before it sets up the process: marks
	// fds close-on-exec, stats /dev/null and stdio, sets groups, gid and
	// uid, checks and enters the cwd, sets capabilities, checks its parent
	// is still there, and checks the program is executable (faccessat2 is
	// left out: Go falls back to faccessat on EPERM, and naming it would
	// move runc's ENOSYS for newer syscalls such as clone3 to EPERM).
	strictRuncInitPrivileged = []string{
		"fcntl", "fstat", "newfstatat", "setgroups", "setgid", "setuid",
		"getcwd", "chdir", "capget", "capset", "getppid",
		"faccessat", "getuid", "geteuid", "getgid", "getegid",
	}
	// ... and prctl for these alone: keep capabilities across setuid, drop
	// from the bounding set, set the ambient set.
	strictRuncPrctl = []uint64{unix.PR_SET_KEEPCAPS, unix.PR_CAPBSET_DROP, unix.PR_CAP_AMBIENT}
	// A static binary's libc sets up TLS, the heap and RELRO before main.
	strictStaticStartup = []string{
		"brk", "arch_prctl", "mprotect", "set_tid_address", "set_robust_list",
		"rseq", "prlimit64", "getrandom", "readlink", "clock_gettime", "writev",
	}
)

func strictProfile() *specs.LinuxSeccomp {
	eperm := uint(1)
	var names []string
	for _, g := range [][]string{strictMode1, strictRuncInit, strictRuncInitPrivileged, strictStaticStartup} {
		names = append(names, g...)
	}
	syscalls := []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}
	for _, op := range strictRuncPrctl {
		syscalls = append(syscalls, specs.LinuxSyscall{Names: []string{"prctl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: op, Op: specs.OpEqualTo}}})
	}
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		// No architectures means the native one only: strict has no use for
		// 32-bit binaries, whose syscalls the kernel then refuses.
		Syscalls: syscalls,
	}
}

// builtin returns a built-in profile. "default" is Docker's default profile as
// moby/profiles ships it, so it tracks Docker's without copying it here.
func builtin(name string) (*Profile, bool) {
	p := &Profile{Name: name, Source: sourceBuiltin}
	switch name {
	case ProfileDefault:
		p.dockerDefault = true
	case ProfileStrict:
		data, err := json.Marshal(strictProfile())
		if err != nil {
			panic("policy: built-in strict profile does not marshal: " + err.Error())
		}
		p.JSON = data
	case ProfileUnconfined:
	default:
		return nil, false
	}
	return p, true
}

// BuiltinNames lists the built-in profiles.
func BuiltinNames() []string {
	return []string{ProfileDefault, ProfileStrict, ProfileUnconfined}
}
