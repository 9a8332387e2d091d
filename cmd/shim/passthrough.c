// The pass-through fast path of seccomp-shim; see internal/passthrough. It only ever
// execs the runtime the Go side recorded for this exact config and PATH, or
// returns and lets Go decide.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define CACHE_PATH "/run/seccomp-shim/runtime.cache"
#define DEFAULT_CONFIG "/etc/seccomp-shim/config.toml"

static const char *getenv_in(char **envp, const char *key) {
	size_t n = strlen(key);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, key, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static int in(const char *s, const char *const *list) {
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

// Commands that never read config.json: they go straight through.
static const char *const passthrough[] = {
	"start", "state", "kill", "delete", "exec", "pause", "resume", "ps", "events",
	"update", "list", "checkpoint", "features", "spec", NULL,
};
// Global flags that take a separate value (runc's and crun's).
static const char *const valueflags[] = {
	"root", "log", "log-format", "criu", "rootless", "cgroup-manager", "log-level", NULL,
};
// --help and --version go to Go, which adds the shim's own to the runtime's.
static const char *const boolflags[] = {
	"debug", "systemd-cgroup", NULL,
};

// passes says whether argv is a command the shim doesn't touch. Anything
// else, an unknown flag or "--" included, is Go's: its parser is the
// authority, and only Go applies the policy.
static int passes(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			return in(a, passthrough);
		if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0)
			return 0;
		char name[32];
		const char *n = a + (a[1] == '-' ? 2 : 1);
		size_t len = strcspn(n, "=");
		if (len == 0 || len >= sizeof(name))
			return 0;
		memcpy(name, n, len);
		name[len] = 0;
		if (in(name, valueflags)) {
			if (n[len] != '=')
				i++; // its value
		} else if (!in(name, boolflags)) {
			return 0;
		}
	}
	return 1; // flags only, e.g. --version
}

// trusted_read reads the cache if root owns it and nobody else can write it.
// SECCOMP_SHIM_RUN_DIR moves it, as it does for the Go side that writes it.
static int trusted_read(char **envp, char *buf, size_t size) {
	const char *dir = getenv_in(envp, "SECCOMP_SHIM_RUN_DIR");
	char path[4096] = CACHE_PATH;
	if (dir && *dir && (size_t)snprintf(path, sizeof(path), "%s/runtime.cache", dir) >= sizeof(path))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 022) == 0)
		n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static void seccomp_shim_passthrough(int argc, char **argv, char **envp) {
	if (argc < 2 || !passes(argc, argv))
		return;
	const char *config = getenv_in(envp, "SECCOMP_SHIM_CONFIG");
	if (!config || !*config)
		config = DEFAULT_CONFIG;
	const char *path = getenv_in(envp, "PATH");
	char pathline[4096];
	if ((size_t)snprintf(pathline, sizeof(pathline), "PATH=%s", path ? path : "") >= sizeof(pathline))
		return;
	char id[128] = "absent";
	struct stat st;
	if (stat(config, &st) == 0)
		snprintf(id, sizeof(id), "%llu %llu %lld %lld %ld", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino, (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);

	char cache[8192];
	if (trusted_read(envp, cache, sizeof(cache)) < 0)
		return;
	// Lines: magic, config path, config identity, PATH, runtime.
	char *line[5], *save = NULL, *p = cache;
	for (int i = 0; i < 5; i++, p = NULL) {
		line[i] = strtok_r(p, "\n", &save);
		if (!line[i])
			return;
	}
	if (strcmp(line[0], "seccomp-shim-runtime-cache v1") || strcmp(line[1], config) ||
	    strcmp(line[2], id) || strcmp(line[3], pathline) || line[4][0] != '/')
		return;
	// Never ourselves: a runtime path replaced by the shim since it was
	// recorded (installed as runc, say) would exec us again forever; Go's
	// lookup skips this binary.
	struct stat rt, self;
	if (stat(line[4], &rt) != 0 || stat("/proc/self/exe", &self) != 0 ||
	    (rt.st_dev == self.st_dev && rt.st_ino == self.st_ino))
		return;
	char *old = argv[0];
	argv[0] = line[4];
	execve(line[4], argv, envp);
	argv[0] = old; // the runtime is gone: let Go find another and say why
}

// read_args splits /proc/self/cmdline into argv: musl calls constructors
// without arguments (only glibc passes argc, argv and envp), and the
// kernel's copy of the arguments is there in both. 0 if they don't all fit
// (Go then does the work).
static int read_args(char *buf, size_t size, char **argv, int max) {
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t n = 0;
	ssize_t r;
	while (n < size && (r = read(fd, buf + n, size - n)) != 0) {
		if (r < 0) {
			close(fd);
			return 0;
		}
		n += r;
	}
	close(fd);
	if (n == 0 || n == size || buf[n - 1] != 0)
		return 0;
	int argc = 0;
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		if (argc == max - 1)
			return 0;
		argv[argc++] = buf + i;
	}
	argv[argc] = NULL;
	return argc;
}

// environ is set before constructors run, by glibc and musl alike.
__attribute__((constructor)) static void passthrough_init(void) {
	if (geteuid() != 0)
		return;
	char buf[8192], *argv[256];
	int argc = read_args(buf, sizeof(buf), argv, 256);
	seccomp_shim_passthrough(argc, argv, environ);
}
