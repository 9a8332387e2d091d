package e2e

import (
	"os"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestComplainAgentRestart: what complain.md says of an agent that goes
// away under the holder. While the agent is down the holder enforces the
// profile: keyctl is denied, and personality(0), routed whole, too (fail
// closed); a restarted agent takes the container back in complain mode.
func TestComplainAgentRestart(t *testing.T) {
	rt, agent := heldShim(t, "[[rule]]\nexisting = \"replace\"\nenforce = false\n")
	stop := agent()

	bundle := harness.NewBundle(t, harness.Rootfs(t), "/bin/sh", "-c", "while true; do /bin/probe call keyctl call personality 0; sleep 0.1; done")
	if err := rt.Create("complain-restart", bundle); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Delete("complain-restart", bundle); _, _ = harness.Wait(bundle) }()
	if err := rt.Start("complain-restart", bundle); err != nil {
		t.Fatal(err)
	}
	waitFor := func(lines ...string) { t.Helper(); waitLastLine(t, bundle, lines...) }
	waitFor("keyctl errno EINVAL 22", "personality ok") // complain mode: keyctl runs
	stop(os.Kill)
	waitFor("keyctl errno EPERM 1", "personality errno EPERM 1") // the holder enforces
	stop = agent()
	waitFor("keyctl errno EINVAL 22", "personality ok") // complain mode again
	stop(os.Interrupt)
}
