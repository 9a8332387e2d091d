// Package passthrough is the Go half of seccomp-shim's pass-through fast
// path: the cache that tells the C half (cmd/shim/passthrough.c) which runtime
// to exec. Only the shim's own Go code fills it, after resolving the runtime
// itself, in its own process, working directory and environment.
//
// Only create, run and restore need the shim's policy code; start, state,
// kill, delete and the rest must reach runc unchanged, and containerd calls
// them on every container start. Starting Go costs milliseconds on a small
// VM, so a C constructor in the seccomp-shim binary (the trick runc's nsexec
// uses) execs the runtime directly for those commands, provided this cache
// says which runtime this very config resolves to. Whenever anything is
// unsure (no cache, another config, a changed config file or PATH, an unknown
// flag, a failed exec) the constructor returns and the Go code does the work.
// Only the shim's own Go code writes the cache.
package passthrough

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/seccomp-shim/seccomp-shim/internal/atomicfile"
)

// CachePath is where the runtime choice is remembered. It is root's: only a
// root-owned cache is trusted by the constructor. SECCOMP_SHIM_RUN_DIR
// (policy.RunDirEnv) moves it, for both halves, to <dir>/CacheName.
const (
	CachePath = "/run/seccomp-shim/" + CacheName
	CacheName = "runtime.cache"
)

// Entry renders a cache entry: which config (by path and file identity) and
// PATH resolve to which runtime. The C side compares it byte for byte.
func Entry(configPath, pathEnv, runtime string) string {
	id := "absent"
	var st syscall.Stat_t
	if err := syscall.Stat(configPath, &st); err == nil {
		id = fmt.Sprintf("%d %d %d %d %d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	// PATH= keeps the line non-empty, which the C side's tokenizer needs.
	return fmt.Sprintf("seccomp-shim-runtime-cache v1\n%s\n%s\nPATH=%s\n%s\n", configPath, id, pathEnv, runtime)
}

// Remember records the runtime for the config and PATH, if it is not already
// recorded. It does nothing when not root: the C side would not trust
// the file anyway.
func Remember(path, configPath, pathEnv, runtime string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	entry := Entry(configPath, pathEnv, runtime)
	if old, err := os.ReadFile(path); err == nil && string(old) == entry {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Root's, 0600, since only a root-owned cache is trusted; not synced:
	// it lives on /run, and a lost cache only costs speed.
	_, err := atomicfile.Write(path, []byte(entry), atomicfile.Options{Mode: 0o600, NoSync: true, Tag: "seccomp-shim"})
	return err
}
