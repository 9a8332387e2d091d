package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateViaAgent: with an agent on the node, seccomp-shim's C fast path
// has the agent apply the policy for a create, so no Go starts in the shim,
// and the container gets the same profile and audit as through the Go path.
func TestCreateViaAgent(t *testing.T) {
	const createSocket = "/run/seccomp-shim/shim.sock" // internal/passthrough.CreateSocket
	if c, err := net.Dial("unix", createSocket); err == nil {
		c.Close()
		t.Skip("an agent of this node serves " + createSocket + "; not starting a second one")
	}
	socket := filepath.Join(t.TempDir(), "agent.sock")
	rt, _ := shim(t, "[audit]\nmode = \"always\"\nsocket = \""+socket+"\"\nunreachable = \"refuse\"\n")
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	daemon(t, "agent", "--socket", socket, "--audit-log", auditLog, "--config", cfg, "--metrics", "")
	waitSocket(t, socket)
	waitSocket(t, createSocket)

	rt.Env = append(rt.Env, "GODEBUG=inittrace=1")
	b := probe(t, "status", "call", "keyctl")
	res, err := rt.Run(t, "fastcreate-1", b)
	if err != nil {
		t.Fatal(err)
	}
	want(t, res.Stdout, "Seccomp:\t2", "keyctl errno EPERM 1")
	if strings.Contains(res.Stderr, "github.com/seccomp-shim") {
		t.Errorf("the create ran the shim's Go code, not the agent:\n%s", res.Stderr)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "shim.log"))
	if !strings.Contains(string(log), `"id":"fastcreate-1"`) || !strings.Contains(string(log), `"audit":"audited"`) {
		t.Errorf("the decision log lacks the create:\n%s", log)
	}
}
