package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestHolderRestart: the holder crashes (kill -9) and is started again; the
// agent notices its control connection end, says so, redials, and the
// containers started after are forwarded to it and audited again, instead
// of being answered by the new holder alone, unaudited.
func TestHolderRestart(t *testing.T) {
	harness.RequireRoot(t)
	dir := t.TempDir()
	sock, private, ctl, auditLog := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "agent.private.sock"), filepath.Join(dir, "holder.ctl"), filepath.Join(dir, "audit.log")
	rt, _ := shim(t, `
[audit]
mode = "always"
socket = "`+sock+`"
unreachable = "refuse"
`)
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	holder := func() func(os.Signal) {
		stop := daemon(t, "holder", "hold", "--socket", sock, "--agent", private, "--control", ctl)
		waitSocket(t, sock)
		waitSocket(t, ctl)
		return stop
	}
	stopHolder := holder()
	_, agentOut := daemonOut(t, "agent", "--socket", private, "--holder", ctl, "--config", cfg, "--metrics", "", "--audit-log", auditLog)
	waitSocket(t, private)
	waitOutput(t, agentOut, "connected to the holder", 1)

	audited := func(id string) {
		t.Helper()
		want(t, run(t, rt, id, probe(t, "call", "keyctl")), "keyctl errno EPERM 1")
		deadline := time.Now().Add(5 * time.Second)
		for {
			for _, r := range readAudit(t, auditLog) {
				if r["container"] == id && r["syscall"] == "keyctl" {
					return
				}
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(agentOut)
				t.Fatalf("no audit record for %s; agent output:\n%s", id, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	audited("holder-1")
	stopHolder(os.Kill)
	waitOutput(t, agentOut, "holder connection lost", 1)
	holder()
	waitOutput(t, agentOut, "connected to the holder", 2)
	audited("holder-2")
}
