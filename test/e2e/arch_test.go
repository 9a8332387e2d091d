package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestArchitectures shows what the architecture choice does to a 32-bit
// binary. Docker's default lists x86_64, x86 and x32: a 32-bit program runs
// under the same rules. With architectures = "native" the filter only knows
// x86_64, and the kernel kills a 32-bit program at its first syscall
// (SIGSYS), before it can print anything.
func TestArchitectures(t *testing.T) {
	rt, _ := shim(t, `
[[rule]]
match.ids = ["native-*"]
architectures = "native"
`)
	b := func() string { return probe32(t, "status", "call", "getpid", "call", "keyctl") }
	want(t, run(t, rt, "all-1", b()), "Seccomp:\t2", "getpid ok", "keyctl errno EPERM 1")

	res, err := rt.Run(t, "native-1", b())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("32-bit under native: exit %d, stdout %q", res.ExitCode, res.Stdout)
	if res.ExitCode != 128+31 || res.Stdout != "" {
		t.Errorf("want death by SIGSYS (exit 159) and no output, got exit %d, stdout %q", res.ExitCode, res.Stdout)
	}
	// The 64-bit probe is unaffected.
	want(t, run(t, rt, "native-2", probe(t, "status", "call", "getpid", "call", "keyctl")), "Seccomp:\t2", "getpid ok", "keyctl errno EPERM 1")
}

// TestArchitecturesAuto: "auto" gives the container what this kernel can
// run. Where it runs 32-bit programs, the filter lists x86_64, x86 and x32
// and a 32-bit program runs under the same rules; where it can't, the filter
// is x86_64's alone. The kernel's answer is kept in the shim's run
// directory, which the tests point away from the node's.
func TestArchitecturesAuto(t *testing.T) {
	rt, _ := shim(t, "[[rule]]\narchitectures = \"auto\"\n")
	bundle := probe(t, "call", "getpid", "call", "keyctl")
	want(t, run(t, rt, "auto-1", bundle), "getpid ok", "keyctl errno EPERM 1")

	wantArches := []any{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}
	on := kernelfeat.IA32()
	if errors.Is(on, kernelfeat.ErrNotSupported) {
		wantArches = wantArches[:1]
	} else if on != nil {
		t.Fatal(on)
	}
	got := harness.ReadConfig(t, bundle)["linux"].(map[string]any)["seccomp"].(map[string]any)["architectures"]
	if !reflect.DeepEqual(got, wantArches) {
		t.Errorf("32-bit emulation %v: architectures %v, want %v", on, got, wantArches)
	}
	cache, err := os.ReadFile(filepath.Join(os.Getenv(policy.RunDirEnv), "ia32"))
	if err != nil || !strings.HasPrefix(string(cache), "seccomp-shim-ia32 v1 ") {
		t.Errorf("the kernel's answer was not kept in the test's run directory: %q, %v", cache, err)
	}
	if on == nil {
		want(t, run(t, rt, "auto-32", probe32(t, "call", "getpid", "call", "keyctl")), "getpid ok", "keyctl errno EPERM 1")
	}
}
