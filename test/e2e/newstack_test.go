package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestNewstackRunc13: the core cases, with runc 1.3 (scripts/newstack.sh)
// as the shim's runtime instead of Debian's runc. runc 1.3 comes first on
// PATH, so every helper that looks up "runc" (writeConfig's runtime path,
// the unconfined comparison) gets it and the tests themselves run unchanged.
func TestNewstackRunc13(t *testing.T) {
	runc := harness.NewstackBinary(t, "runc", "v1.3.*", "runc")
	t.Setenv("PATH", filepath.Dir(runc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if got := harness.RequireBinary(t, "runc"); got != runc {
		t.Fatalf("runc on PATH is %s, want %s", got, runc)
	}
	t.Run("Features", func(t *testing.T) { runc13Features(t, runc) })
	t.Run("DefaultProfile", TestDefaultProfile)
	t.Run("ProfileErrno", TestProfileErrno)
	t.Run("UnconfinedOverridden", TestUnconfinedOverridden)
	t.Run("BadInput", TestBadInput)
	t.Run("AuditDenied", TestAuditDenied)
}

// runc13Features: the build has what the shim relies on: seccomp (the
// build tag and libseccomp) and the notify action the agent's audit needs.
func runc13Features(t *testing.T, runc string) {
	out, err := exec.Command(runc, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "runc version 1.3.") {
		t.Fatalf("%s --version: %v\n%s", runc, err, out)
	}
	out, err = exec.Command(runc, "features").Output()
	if err != nil {
		t.Fatalf("%s features: %v", runc, err)
	}
	var f struct {
		Linux struct {
			Seccomp struct {
				Enabled bool
				Actions []string
			}
		}
	}
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("%s features: %v\n%s", runc, err, out)
	}
	if !f.Linux.Seccomp.Enabled || !slices.Contains(f.Linux.Seccomp.Actions, "SCMP_ACT_NOTIFY") {
		t.Fatalf("%s lacks seccomp or SCMP_ACT_NOTIFY (built without -tags seccomp?):\n%s", runc, out)
	}
}
