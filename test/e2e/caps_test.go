package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// The capabilities deploy/kubernetes gives the agent instead of privileged
// (TestDaemonSetCapabilities keeps the manifest in step), as setpriv's
// bounding set.
const agentCaps = "-all,+sys_ptrace,+dac_read_search,+kill"

// TestAgentNamedCapabilities: an agent holding only those capabilities
// still reads a container process's memory and exe (a path rule, an exe
// match) and kills it (a kill rule), for a process of another uid, which is
// what makes them needed.
func TestAgentNamedCapabilities(t *testing.T) {
	harness.RequireRoot(t)
	setpriv := harness.RequireBinary(t, "setpriv")
	socket := filepath.Join(t.TempDir(), "agent.sock")
	rt, profiles := shim(t, fmt.Sprintf(`
[audit]
mode = "always"
socket = %q
unreachable = "refuse"

[[rule]]
name = "caps"
profile = "caps"
existing = "replace"

[[notify.rule]]
name = "acct, read from memory"
syscalls = ["acct"]
path = { arg = 0, glob = "*" }
exe = ["/bin/probe"]
action = "errno"
errno = 13

[[notify.rule]]
name = "keyctl kills"
syscalls = ["keyctl"]
match.ids = ["caps-kill"]
action = "kill"
`, socket))
	writeProfile(t, profiles, "caps", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["acct","keyctl"],"action":"SCMP_ACT_ERRNO"}]}`)
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")

	out, _ := os.Create(filepath.Join(t.TempDir(), "agent.out"))
	agent := exec.Command(setpriv, "--bounding-set", agentCaps, "--inh-caps", "-all", "--",
		bins.agent, "--socket", socket, "--audit-log", filepath.Join(t.TempDir(), "audit.log"), "--config", cfg, "--metrics", "")
	agent.Stdout, agent.Stderr = out, out
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Signal(os.Interrupt)
		agent.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("agent output:\n%s", b)
		}
	})
	waitSocket(t, socket)
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(agent.Process.Pid) + "/status")
	// CAP_KILL 5, CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19.
	if want := fmt.Sprintf("CapEff:\t%016x\n", 1<<5|1<<2|1<<19); !strings.Contains(string(status), want) {
		t.Fatalf("agent runs with other capabilities than the DaemonSet's, want %q:\n%s", want, status)
	}

	asUser := func(bundle string) string {
		harness.EditConfig(t, bundle, func(m map[string]any) {
			m["process"].(map[string]any)["user"] = map[string]any{"uid": 1000, "gid": 1000}
		})
		return bundle
	}
	want(t, run(t, rt, "caps-path", asUser(probe(t, "call", "acct"))), "acct errno EACCES 13")
	res, err := rt.Run(t, "caps-kill", asUser(probe(t, "call", "keyctl")))
	if err != nil || res.ExitCode != 128+9 {
		t.Errorf("keyctl under a kill rule: exit %d, %v, want 137 (SIGKILL)\n%s", res.ExitCode, err, res.Stderr)
	}
}

// installerCaps are the install init container's (deploy/kubernetes).
const installerCaps = "-all,+chown,+dac_override,+fowner"

// TestInstallerNamedCapabilities: seccomp-install with only the install
// container's capabilities edits a daemon.json another uid owns (mode 0600)
// and keeps its owner; without them it can't even read it. (Files root owns
// need no capability at all.)
func TestInstallerNamedCapabilities(t *testing.T) {
	harness.RequireRoot(t)
	setpriv := harness.RequireBinary(t, "setpriv")
	root := t.TempDir()
	daemonJSON := filepath.Join(root, "etc/docker/daemon.json")
	if err := os.MkdirAll(filepath.Dir(daemonJSON), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(daemonJSON, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(daemonJSON, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	install := func(caps string) ([]byte, error) {
		return exec.Command(setpriv, "--bounding-set", caps, "--inh-caps", "-all", "--",
			filepath.Join(filepath.Dir(bins.shim), "seccomp-install"), "--root", root, "--engines", "docker", "--systemd=false", "install").CombinedOutput()
	}
	if out, err := install("-all"); err == nil {
		t.Errorf("installed with no capability: the test shows nothing\n%s", out)
	}
	if out, err := install(installerCaps); err != nil {
		t.Fatalf("install with %s: %v\n%s", installerCaps, err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(daemonJSON, &st); err != nil || st.Uid != 1234 || st.Gid != 1234 || st.Mode&0o777 != 0o600 {
		t.Errorf("daemon.json now %d:%d %o (%v), want 1234:1234 600", st.Uid, st.Gid, st.Mode&0o777, err)
	}
	if b, _ := os.ReadFile(daemonJSON); !strings.Contains(string(b), `"seccomp-shim"`) {
		t.Errorf("daemon.json:\n%s", b)
	}
}
