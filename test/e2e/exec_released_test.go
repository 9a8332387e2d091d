package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestExecReleased: runc exec hands off a notify fd of its own for each
// exec'd process. When those end, the log must say which process's fd was
// released, not that the container (still running) was; and an agent
// restart in between changes nothing.
func TestExecReleased(t *testing.T) {
	harness.RequireRoot(t)
	dir := t.TempDir()
	sock, private, ctl := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "agent.private.sock"), filepath.Join(dir, "holder.ctl")
	rt, _ := shim(t, `
[audit]
mode = "always"
socket = "`+sock+`"
unreachable = "refuse"
`)
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	_, holderOut := daemonOut(t, "holder", "hold", "--socket", sock, "--agent", private, "--control", ctl)
	waitSocket(t, sock)
	agent := func() (func(os.Signal), string) {
		stop, out := daemonOut(t, "agent", "--socket", private, "--holder", ctl, "--config", cfg, "--metrics", "", "--audit-log", filepath.Join(dir, "audit.log"))
		waitSocket(t, private)
		waitOutput(t, out, "connected to the holder", 1)
		return stop, out
	}
	stop, _ := agent()
	bundle := harness.NewBundle(t, harness.Rootfs(t), "/bin/sh", "-c", "while true; do sleep 0.1; done")
	if err := rt.Create("exec-1", bundle); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Delete("exec-1", bundle); _, _ = harness.Wait(bundle) }()
	if err := rt.Start("exec-1", bundle); err != nil {
		t.Fatal(err)
	}
	stop(os.Interrupt)
	_, agentOut := agent()
	for range 3 {
		if out, err := rt.Command(bundle, "exec", "exec-1", "/bin/probe", "call", "keyctl").CombinedOutput(); err != nil || !strings.Contains(string(out), "keyctl errno EPERM 1") {
			t.Fatalf("exec: %v: %s", err, out)
		}
	}
	waitOutput(t, holderOut, "exec'd process ended", 3)
	waitOutput(t, agentOut, "exec'd process ended", 3)
	time.Sleep(1500 * time.Millisecond) // another reap
	for name, path := range map[string]string{"holder": holderOut, "agent": agentOut} {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "msg=released") {
			t.Errorf("the %s says the running container was released:\n%s", name, b)
		}
	}
	if err := rt.Delete("exec-1", bundle); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, holderOut, "msg=released container=exec-1", 1)
	time.Sleep(1500 * time.Millisecond)
	if b, _ := os.ReadFile(holderOut); strings.Count(string(b), "msg=released") != 1 {
		t.Errorf("the holder logs the container's release other than once:\n%s", b)
	}
}
