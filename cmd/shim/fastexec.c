// The pass-through fast path of seccomp-shim; see internal/passthrough. It only ever
// execs the runtime the Go side recorded for this exact config and PATH, or
// returns and lets Go decide.
//
// It runs at the ELF entry point, before glibc starts (see fastexec.go): a
// static glibc's start-up asks the CPU for its cache sizes with dozens of
// cpuid instructions, and in a virtual machine each one traps to the
// hypervisor (8 us each on the VM of docs/benchmarks.md, 0.5 ms in all).
// Nothing of libc is ready there, so this file uses no libc at all: raw
// system calls, its own string functions, no stack protector (fastexec.go's
// CFLAGS), and nothing the compiler could turn into a call to memcpy or
// memset, which static glibc resolves only later. Nor is anything relocated
// yet in a static PIE, so the Makefile's static build must stay non-PIE (a
// dynamic build, PIE or not, is relocated by ld.so before the entry point).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define CACHE_PATH "/run/seccomp-shim/runtime.cache"
#define DEFAULT_CONFIG "/etc/seccomp-shim/config.toml"

#if defined(__x86_64__)
static long sys(long n, long a, long b, long c) {
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
static long xopen(const char *p) { return sys(SYS_open, (long)p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0); }
static long xstat(const char *p, struct stat *st) { return sys(SYS_stat, (long)p, (long)st, 0); }
static long xfstat(long fd, struct stat *st) { return sys(SYS_fstat, fd, (long)st, 0); }
static long xread(long fd, char *b, unsigned long n) { return sys(SYS_read, fd, (long)b, n); }
static void xclose(long fd) { sys(SYS_close, fd, 0, 0); }
static long xgeteuid(void) { return sys(SYS_geteuid, 0, 0, 0); }
static void xexecve(const char *p, char **argv, char **envp) { sys(SYS_execve, (long)p, (long)argv, (long)envp); }
#else
// Elsewhere the same code runs as a constructor, after glibc's start-up.
#include <unistd.h>
static long xopen(const char *p) { return open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); }
static long xstat(const char *p, struct stat *st) { return stat(p, st); }
static long xfstat(long fd, struct stat *st) { return fstat(fd, st); }
static long xread(long fd, char *b, unsigned long n) { return read(fd, b, n); }
static void xclose(long fd) { close(fd); }
static long xgeteuid(void) { return geteuid(); }
static void xexecve(const char *p, char **argv, char **envp) { execve(p, argv, envp); }
#endif

static int eq(const char *a, const char *b) {
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static const char *getenv_in(char **envp, const char *key) {
	for (; envp && *envp; envp++) {
		const char *e = *envp, *k = key;
		while (*k && *e == *k)
			e++, k++;
		if (!*k && *e == '=')
			return e + 1;
	}
	return 0;
}

static int in(const char *s, const char *const *list) {
	for (; *list; list++)
		if (eq(s, *list))
			return 1;
	return 0;
}

// Commands that never read config.json: they go straight through.
static const char *const passthrough[] = {
	"start", "state", "kill", "delete", "exec", "pause", "resume", "ps", "events",
	"update", "list", "checkpoint", "features", "spec", 0,
};
// Global flags that take a separate value (runc's and crun's).
static const char *const valueflags[] = {
	"root", "log", "log-format", "criu", "rootless", "cgroup-manager", "log-level", 0,
};
static const char *const boolflags[] = {
	"debug", "systemd-cgroup", "help", "h", "version", "v", 0,
};

// passes says whether argv is a command the shim doesn't touch. Anything
// else, an unknown flag or "--" included, is Go's: its parser is the
// authority, and only Go applies the policy.
static int passes(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			return in(a, passthrough);
		if (eq(a, "--") || eq(a, "-"))
			return 0;
		char name[32];
		const char *n = a + (a[1] == '-' ? 2 : 1);
		unsigned long l = 0;
		while (n[l] && n[l] != '=' && l < sizeof(name) - 1) {
			name[l] = n[l];
			l++;
		}
		if (l == 0 || (n[l] && n[l] != '='))
			return 0;
		name[l] = 0;
		if (in(name, valueflags)) {
			if (n[l] != '=')
				i++; // its value
		} else if (!in(name, boolflags)) {
			return 0;
		}
	}
	return 1; // flags only, e.g. --version
}

// put appends s to buf[*n..size), keeping room for a NUL.
static int put(char *buf, unsigned long size, unsigned long *n, const char *s) {
	for (; *s; s++) {
		if (*n + 1 >= size)
			return -1;
		buf[(*n)++] = *s;
	}
	buf[*n] = 0;
	return 0;
}

static int putnum(char *buf, unsigned long size, unsigned long *n, unsigned long long v) {
	char d[24];
	int i = sizeof(d) - 1;
	d[i] = 0;
	do
		d[--i] = '0' + v % 10;
	while (v /= 10);
	return put(buf, size, n, d + i);
}

// trusted_read reads the cache if root owns it and nobody else can write it.
static long trusted_read(char *buf, unsigned long size) {
	long fd = xopen(CACHE_PATH);
	if (fd < 0)
		return -1;
	struct stat st;
	long n = -1;
	if (xfstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 022) == 0)
		n = xread(fd, buf, size - 1);
	xclose(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return n;
}

// The cache's lines, each compared whole: magic, config path, config
// identity, PATH, runtime.
static char cache[8192], want[8192];

static void seccomp_shim_fastexec(int argc, char **argv, char **envp) {
	if (argc < 2 || xgeteuid() != 0 || !passes(argc, argv))
		return;
	const char *config = getenv_in(envp, "SECCOMP_SHIM_CONFIG");
	if (!config || !*config)
		config = DEFAULT_CONFIG;
	const char *path = getenv_in(envp, "PATH");
	unsigned long n = 0;
	int bad = put(want, sizeof(want), &n, "seccomp-shim-runtime-cache v1\n") || put(want, sizeof(want), &n, config) ||
		  put(want, sizeof(want), &n, "\n");
	struct stat st;
	if (xstat(config, &st) == 0) {
		bad = bad || putnum(want, sizeof(want), &n, st.st_dev) || put(want, sizeof(want), &n, " ") ||
		      putnum(want, sizeof(want), &n, st.st_ino) || put(want, sizeof(want), &n, " ") ||
		      putnum(want, sizeof(want), &n, st.st_size) || put(want, sizeof(want), &n, " ") ||
		      putnum(want, sizeof(want), &n, st.st_mtim.tv_sec) || put(want, sizeof(want), &n, " ") ||
		      putnum(want, sizeof(want), &n, st.st_mtim.tv_nsec);
	} else {
		bad = bad || put(want, sizeof(want), &n, "absent");
	}
	bad = bad || put(want, sizeof(want), &n, "\nPATH=") || put(want, sizeof(want), &n, path ? path : "") ||
	      put(want, sizeof(want), &n, "\n");
	if (bad)
		return;
	long got = trusted_read(cache, sizeof(cache));
	// The cache is the expected lines, then the runtime's absolute path on
	// a line of its own, and nothing else.
	if (got < (long)n + 2 || got == sizeof(cache) - 1)
		return;
	for (unsigned long i = 0; i < n; i++)
		if (cache[i] != want[i])
			return;
	char *rt = cache + n, *end = rt;
	while (*end && *end != '\n')
		end++;
	if (rt[0] != '/' || end[0] != '\n' || end[1] != 0)
		return;
	*end = 0;
	char *old = argv[0];
	argv[0] = rt;
	xexecve(rt, argv, envp);
	argv[0] = old; // the runtime is gone: let Go find another and say why
}

#if defined(__x86_64__)
// seccompshimearly gets the initial stack: argc, argv, NULL, envp, NULL.
__attribute__((used)) void seccompshimearly(long *sp) {
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	seccomp_shim_fastexec(argc, argv, argv + argc + 1);
}

// seccompshimentry is the binary's entry point (fastexec.go's LDFLAGS): it
// calls the above on an aligned stack, then hands the untouched initial
// state (stack pointer, and rdx, the dynamic linker's exit hook, which a
// static binary gets as 0) to glibc's _start.
__asm__(".text\n"
	".globl seccompshimentry\n"
	".type seccompshimentry, @function\n"
	"seccompshimentry:\n"
	"	mov %rsp, %r12\n"
	"	mov %rdx, %r13\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call seccompshimearly\n"
	"	mov %r12, %rsp\n"
	"	mov %r13, %rdx\n"
	"	xor %ebp, %ebp\n"
	"	jmp _start\n");
#else
// glibc passes argc, argv and envp to constructors, dynamic or static.
__attribute__((constructor)) static void fastexec_init(int argc, char **argv, char **envp) {
	seccomp_shim_fastexec(argc, argv, envp);
}
#endif
