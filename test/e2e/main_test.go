// Package e2e starts real containers through bin/seccomp-shim and
// seccomp-hook, with the real runc and podman, exactly as the engines call
// them. It needs root; without root every test skips.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// bins holds the binaries TestMain builds from this checkout, so the tests
// never run a stale bin/ or an installed copy.
var bins struct{ shim, hook, agent string }

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getuid() == 0 {
			dir, err := os.MkdirTemp("", "seccomp-shim-e2e-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			// The shim's per-boot files go here, not in the node's
			// /run/seccomp-shim: every runtime, wrapper and daemon the
			// tests start inherits this.
			if err := os.Setenv(policy.RunDirEnv, filepath.Join(dir, "run")); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			bins.shim, bins.hook, bins.agent = filepath.Join(dir, "seccomp-shim"), filepath.Join(dir, "seccomp-hook"), filepath.Join(dir, "seccomp-agent")
			// The Makefile's build, so the tests run what gets installed.
			if b, err := exec.Command("make", "--no-print-directory", "-C", "../..", "build", "BIN="+dir).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: make build: %v\n%s", err, b)
				return 1
			}
		}
		defer harness.Cleanup()
		return m.Run()
	}()
	os.Exit(code)
}

// writeConfig writes a shim config and returns its path. The runtime is
// Debian's runc; a test's profiles go in dir/profiles.
func writeConfig(t testing.TB, body string) (path, profiles string) {
	t.Helper()
	dir := t.TempDir()
	profiles = filepath.Join(dir, "profiles")
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "config.toml")
	// cache_dir: every test with a profile file goes through the cache,
	// kept in the test's own directory.
	full := fmt.Sprintf("[runtime]\npath = [%q]\n[profiles]\ndir = %q\ncache_dir = %q\n[log]\nfile = %q\nlevel = \"debug\"\n%s",
		harness.RequireBinary(t, "runc"), profiles, filepath.Join(dir, "cache"), filepath.Join(dir, "shim.log"), body)
	if !strings.Contains(body, "[audit]") {
		// Not the node's agent (audit.socket's default): one of the test's
		// own, where nobody listens unless the test starts an agent there.
		full += fmt.Sprintf("\n[audit]\nsocket = %q\n", filepath.Join(dir, "run", "agent.sock"))
	}
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, profiles
}

func writeProfile(t testing.TB, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shim returns a runtime that is seccomp-shim with the given policy.
func shim(t *testing.T, configBody string) (*harness.Runtime, string) {
	t.Helper()
	harness.RequireRoot(t)
	cfg, profiles := writeConfig(t, configBody)
	return &harness.Runtime{Bin: bins.shim, Root: t.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG=" + cfg}}, profiles
}

// run starts a container and returns its stdout; it fails the test if the
// container could not run.
func run(t *testing.T, rt *harness.Runtime, id, bundle string) string {
	t.Helper()
	res, err := rt.Run(t, id, bundle)
	if err != nil {
		t.Fatalf("container %s: %v\nstderr: %s", id, err, res.Stderr)
	}
	return res.Stdout
}

// want fails unless every line is in out.
func want(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("missing %q in output:\n%s", l, out)
		}
	}
}

// probe is a bundle running the probe tool with args.
func probe(t *testing.T, args ...string) string {
	return harness.NewBundle(t, harness.Rootfs(t), append([]string{"/bin/probe"}, args...)...)
}

// engineProfile is a profile an engine might set: allow all but keyctl,
// which fails with EACCES.
func engineProfile(m map[string]any) {
	m["linux"].(map[string]any)["seccomp"] = map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW",
		"architectures": []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		"syscalls":      []any{map[string]any{"names": []string{"keyctl"}, "action": "SCMP_ACT_ERRNO", "errnoRet": 13}},
	}
}

// probe32 is probe's 32-bit (GOARCH=386) build. A test that runs it skips
// where the kernel runs no 32-bit programs.
func probe32(t *testing.T, args ...string) string {
	childtest.RequireIA32(t)
	return harness.NewBundle(t, harness.Rootfs(t), append([]string{"/bin/probe32"}, args...)...)
}
