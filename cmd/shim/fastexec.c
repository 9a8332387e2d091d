// The pass-through fast path of seccomp-shim; see internal/passthrough. It only ever
// execs the runtime the Go side recorded for this exact config and PATH, or
// returns and lets Go decide.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

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
// --help and --version are the shim's own first (Go: internal/shim).
static const char *const boolflags[] = {
	"debug", "systemd-cgroup", NULL,
};

static const char *const creates[] = {"create", "run", "restore", NULL};

enum { GO, PASS, CREATE };

// classify says whether argv is a command the shim doesn't touch (PASS), one
// whose bundle it rewrites (CREATE), or anything else (GO). An unknown flag
// or "--" gives GO: Go's parser is the authority.
static int classify(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			return in(a, passthrough) ? PASS : in(a, creates) ? CREATE : GO;
		if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0)
			return GO;
		char name[32];
		const char *n = a + (a[1] == '-' ? 2 : 1);
		size_t len = strcspn(n, "=");
		if (len == 0 || len >= sizeof(name))
			return GO;
		memcpy(name, n, len);
		name[len] = 0;
		if (in(name, valueflags)) {
			if (n[len] != '=')
				i++; // its value
		} else if (!in(name, boolflags)) {
			return GO;
		}
	}
	return PASS; // flags only, e.g. --version
}

#define CREATE_SOCKET "/run/seccomp-shim/shim.sock"

static int put(char *buf, size_t size, size_t *n, const char *s) {
	size_t l = strlen(s) + 1;
	if (*n + l > size)
		return -1;
	memcpy(buf + *n, s, l);
	*n += l;
	return 0;
}

// agent_create asks the agent to apply the policy for this create (see
// internal/passthrough ServeCreates) and returns the runtime to exec in rt, or -1
// to let Go do it all.
static int agent_create(int argc, char **argv, char **envp, char *rt, size_t rtsize) {
	struct stat st;
	if (stat("/run/seccomp-shim", &st) != 0 || st.st_uid != 0 || (st.st_mode & 022))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 3};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, CREATE_SOCKET);
	static char buf[65536];
	char cwd[4096], exe[4096], num[16];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || !getcwd(cwd, sizeof(cwd)) || el <= 0)
		goto fail;
	exe[el] = 0;
	size_t n = 0;
	const char *keys[] = {"SECCOMP_SHIM_CONFIG", "PATH"};
	const char *vals[2];
	int nenv = 0;
	for (int k = 0; k < 2; k++)
		if ((vals[k] = getenv_in(envp, keys[k])))
			nenv++;
	snprintf(num, sizeof(num), "%d", nenv);
	if (put(buf, sizeof(buf), &n, "seccomp-shim-create v1") || put(buf, sizeof(buf), &n, cwd) ||
	    put(buf, sizeof(buf), &n, exe) || put(buf, sizeof(buf), &n, num))
		goto fail;
	for (int k = 0; k < 2; k++) {
		char kv[8192];
		if (!vals[k])
			continue;
		if ((size_t)snprintf(kv, sizeof(kv), "%s=%s", keys[k], vals[k]) >= sizeof(kv) || put(buf, sizeof(buf), &n, kv))
			goto fail;
	}
	snprintf(num, sizeof(num), "%d", argc);
	if (put(buf, sizeof(buf), &n, num))
		goto fail;
	for (int i = 0; i < argc; i++)
		if (put(buf, sizeof(buf), &n, argv[i]))
			goto fail;
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, n - off);
		if (w <= 0)
			goto fail;
		off += w;
	}
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		got += r;
		if (got == sizeof(buf) - 1)
			goto fail;
	}
	buf[got] = 0;
	close(fd);
	// "ok\0/path/to/runc\0"
	if (got < 4 || memcmp(buf, "ok", 3) != 0 || buf[3] != '/' || strlen(buf + 3) >= rtsize)
		return -1;
	strcpy(rt, buf + 3);
	return 0;
fail:
	close(fd);
	return -1;
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

static void seccomp_shim_fastexec(int argc, char **argv, char **envp) {
	if (argc < 2 || geteuid() != 0)
		return;
	int kind = classify(argc, argv);
	if (kind == CREATE) {
		static char rt[4096];
		if (agent_create(argc, argv, envp, rt, sizeof(rt)) != 0)
			return;
		char *old = argv[0];
		argv[0] = rt;
		execve(rt, argv, envp);
		argv[0] = old;
		return;
	}
	if (kind != PASS)
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
	char *old = argv[0];
	argv[0] = line[4];
	execve(line[4], argv, envp);
	argv[0] = old; // the runtime is gone: let Go find another and say why
}

// glibc passes argc, argv and envp to constructors, dynamic or static.
__attribute__((constructor)) static void fastexec_init(int argc, char **argv, char **envp) {
	seccomp_shim_fastexec(argc, argv, envp);
}
