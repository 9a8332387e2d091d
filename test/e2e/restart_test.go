package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// daemon starts a long-running seccomp-agent command and returns a stop
// function; kill -9 shows a crash.
func daemon(t *testing.T, name string, args ...string) (stop func(sig os.Signal)) {
	t.Helper()
	stop, _ = daemonOut(t, name, args...)
	return stop
}

// daemonOut is daemon, and the file its output goes to.
func daemonOut(t testing.TB, name string, args ...string) (stop func(sig os.Signal), output string) {
	t.Helper()
	cmd := exec.Command(bins.agent, args...)
	out, _ := os.Create(filepath.Join(t.TempDir(), name+".out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	stop = func(sig os.Signal) {
		if done {
			return
		}
		done = true
		cmd.Process.Signal(sig)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output:\n%s", name, b)
		}
	}
	t.Cleanup(func() { stop(os.Interrupt) })
	return stop, out.Name()
}

// waitOutput waits until the file a daemon writes to holds s n times.
func waitOutput(t testing.TB, path, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), s) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times in %s:\n%s", s, n, path, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitSocket(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", path)
}

// TestAgentRestart: with the holder keeping the notify fds, a running
// container gets the agent's decisions, then while the agent is down its
// routed syscalls fail closed with the profile's own errno, then a new agent
// decides for it again. Without the holder the fd would die with the agent,
// and the container's routed syscalls would fail with ENOSYS for good.
func TestAgentRestart(t *testing.T) {
	rt, agent := heldShim(t, `
[[notify.rule]]
syscalls = ["keyctl"]
action = "continue"
`)
	stop := agent()

	bundle := harness.NewBundle(t, harness.Rootfs(t), "/bin/sh", "-c", "while true; do /bin/probe call keyctl; sleep 0.1; done")
	if err := rt.Create("restart-1", bundle); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Delete("restart-1", bundle); _, _ = harness.Wait(bundle) }()
	if err := rt.Start("restart-1", bundle); err != nil {
		t.Fatal(err)
	}
	waitFor := func(line string) { t.Helper(); waitLastLine(t, bundle, line) }
	waitFor("keyctl errno EINVAL 22") // the agent lets it through; the kernel rejects zero args
	stop(os.Kill)                     // a crash, not a clean stop
	waitFor("keyctl errno EPERM 1")   // the holder: the profile's own denial
	stop = agent()
	waitFor("keyctl errno EINVAL 22") // a new agent decides again
	stop(os.Interrupt)
	waitFor("keyctl errno EPERM 1")
	b, _ := os.ReadFile(filepath.Join(bundle, "stdout"))
	if strings.Contains(string(b), "ENOSYS") {
		t.Errorf("a routed syscall got ENOSYS: the notify fd was lost:\n%s", tail(string(b), 20))
	}
}

// heldShim is the shim with the policy body (after an [audit] section that
// requires the agent), whose agent socket a holder serves, and agent, which
// starts an agent behind the holder and returns its stop.
func heldShim(t *testing.T, body string) (rt *harness.Runtime, agent func() func(os.Signal)) {
	t.Helper()
	harness.RequireRoot(t)
	dir := t.TempDir()
	sock, private, ctl := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "agent.private.sock"), filepath.Join(dir, "holder.ctl")
	rt, _ = shim(t, "[audit]\nmode = \"always\"\nsocket = \""+sock+"\"\nunreachable = \"refuse\"\n"+body)
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	daemon(t, "holder", "hold", "--socket", sock, "--agent", private, "--control", ctl)
	waitSocket(t, sock)
	waitSocket(t, ctl)
	return rt, func() func(os.Signal) {
		stop := daemon(t, "agent", "--socket", private, "--holder", ctl, "--config", cfg, "--metrics", "", "--audit-log", filepath.Join(dir, "audit.log"))
		waitSocket(t, private)
		return stop
	}
}

// waitLastLine waits until the container's last lines of output are want.
func waitLastLine(t *testing.T, bundle string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(bundle, "stdout"))
		if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) >= len(want) && slices.Equal(lines[len(lines)-len(want):], want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "stdout"))
	t.Fatalf("the container never printed %q; last lines:\n%s", want, tail(string(b), 5))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
