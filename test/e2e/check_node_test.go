package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestCheckBrokenConfig: a config that doesn't load fails the check, and
// the other checks still run and report.
func TestCheckBrokenConfig(t *testing.T) {
	harness.RequireRoot(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\npath = [\"runc\"]\n[[rule]]\nprofile = \"default\"\nexisting = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.shim, "check")
	cmd.Env = append(os.Environ(), "SECCOMP_SHIM_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want 1", err)
	}
	for _, want := range []string{"FAIL config", cfg, "existing", "kernel", "runtime", "agent"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
}
