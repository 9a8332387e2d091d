package e2e

import (
	"testing"
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
