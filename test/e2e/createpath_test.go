package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateIsTheShims: with an agent running, a create is still done by
// the shim's own Go code, in its own process: nothing hands it to the agent,
// whose view of bundle paths may not be the host's (a pod). The container
// gets the profile and the audit, and the decision is logged.
func TestCreateIsTheShims(t *testing.T) {
	rt, cfg, _ := agentShim(t, "")
	rt.Env = append(rt.Env, "GODEBUG=inittrace=1")
	b := probe(t, "status", "call", "keyctl")
	res, err := rt.Run(t, "create-1", b)
	if err != nil {
		t.Fatal(err)
	}
	want(t, res.Stdout, "Seccomp:\t2", "keyctl errno EPERM 1")
	if !strings.Contains(res.Stderr, "init github.com/seccomp-shim/seccomp-shim/pkg/policy") {
		t.Errorf("the create did not run the shim's Go code:\n%s", res.Stderr)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "shim.log"))
	if !strings.Contains(string(log), `"id":"create-1"`) || !strings.Contains(string(log), `"audit":"audited"`) {
		t.Errorf("the decision log lacks the create:\n%s", log)
	}
}
