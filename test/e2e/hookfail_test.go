package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPodmanHookBrokenConfig: a typo in config.toml fails every container
// podman starts through the precreate hook. podman 4.3 drops a precreate
// hook's stderr and prints only the hook's argv and exit status, so the hook
// writes the reason to --error-log (default /var/log/seccomp-shim/hook.log)
// whatever the config says; the argv podman prints names that file. Newer
// containers/common copies the hook's stderr to the file the annotation
// run.oci.hooks.stderr names; podman 4.3 does not.
func TestPodmanHookBrokenConfig(t *testing.T) {
	pm, image := podman(t)
	cfg, _ := writeConfig(t, "[[rule]]\nprofle = \"strict\"\n")
	hooks := hooksDir(t, cfg, "precreate")
	errLog := filepath.Join(hooks, "hook.log")
	stderrFile := filepath.Join(t.TempDir(), "stderr")
	out, err := pm.Run("--hooks-dir", hooks, "--annotation", "run.oci.hooks.stderr="+stderrFile, image, "/bin/probe", "status")
	if err == nil {
		t.Fatalf("podman ran a container with a broken config:\n%s", out)
	}
	// What docs/podman.md quotes.
	if !strings.Contains(out, "Error: setting up OCI Hooks: executing [seccomp-hook --config "+cfg+" --error-log "+errLog+" precreate]: exit status 1") {
		t.Errorf("podman printed:\n%s", out)
	}
	reason := "config " + cfg + ": invalid config: unknown keys rule.profle"
	if log, _ := os.ReadFile(errLog); !strings.Contains(string(log), `"msg":"seccomp-hook precreate: `+reason+`"`) {
		t.Errorf("%s lacks the reason:\n%s", errLog, log)
	}
	if stderr, _ := os.ReadFile(stderrFile); len(stderr) > 0 && !strings.Contains(string(stderr), reason) {
		t.Errorf("the engine kept the hook's stderr, without the reason: %q", stderr)
	}
}
