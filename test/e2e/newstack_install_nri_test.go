package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestNewstackInstallNRI: seccomp-install against a live containerd 2.4
// whose config.toml turned NRI off. It finds containerd 2.4 by running it
// (--nri auto), registers the agent's NRI plugin in its unit, and writes a
// version = 3 drop-in turning NRI on and requiring the plugin. After the
// restart install asks for, containerd creates no container while the
// plugin is away, and creates it under the policy once the agent, started
// as the unit says, has registered. uninstall takes the drop-in back.
func TestNewstackInstallNRI(t *testing.T) {
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{Newstack: true})
	agentSock := filepath.Join(t.TempDir(), "run", "agent.sock")
	cfg, profiles := writeConfig(t, fmt.Sprintf(`
[audit]
mode = "auto"
socket = %q

[[rule]]
name = "tenants"
match.namespaces = ["team-*"]
profile = "eacces"
existing = "replace"
`, agentSock))
	writeProfile(t, profiles, "eacces", eaccesProfile)

	root, prefix := installNode(t, ctd)
	// The node's containerd binary, which install runs for its version.
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(harness.NewstackBinary(t, "containerd", "v2.4.*", "containerd"), filepath.Join(root, "usr/local/bin/containerd")); err != nil {
		t.Fatal(err)
	}
	bin := installBins(t, cfg)
	// With NRI on, as containerd 2.x has it by default: nothing of
	// containerd's to change.
	out := seccompInstall(t, "--root", root, "--prefix", prefix, "--bin", bin, "--engines", "containerd", "--dry-run", "install")
	if strings.Contains(out, "/etc/containerd") || !strings.Contains(out, "containerd has NRI on ("+ctd.NRISocket+")") {
		t.Errorf("install on a containerd 2.4 with NRI on:\n%s", out)
	}

	// The operator's config: NRI off, its socket where the harness puts it.
	editConfig(t, ctd, "version = 3\n", confDImports, "  disable = false\n", "  disable = true\n")
	before, _ := os.ReadFile(ctd.Config)
	out = seccompInstall(t, "--root", root, "--prefix", prefix, "--bin", bin, "--engines", "containerd", "install", "--nri-required")
	t.Logf("seccomp-install:\n%s", out)
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/seccomp-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ --nri-socket (\S+) `).FindSubmatch(unit)
	if m == nil || string(m[1]) != ctd.NRISocket {
		t.Fatalf("the agent's unit does not connect to containerd's NRI socket %s:\n%s", ctd.NRISocket, unit)
	}
	drop, err := os.ReadFile(filepath.Join(ctd.Dir, "conf.d", "seccomp-shim.toml"))
	if err != nil {
		t.Fatalf("no drop-in: %v", err)
	}
	t.Logf("drop-in:\n%s", drop)
	if after, _ := os.ReadFile(ctd.Config); string(after) != string(before) {
		t.Errorf("install edited config.toml although its imports cover the drop-in")
	}
	ctd.Restart(t)

	k := ctd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod, err := k.RunPod(ctx, harness.PodConfig("pay", "team-a", t.TempDir(), nil), "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	_, _, err = k.Run(ctx, pod, harness.ContainerConfig("early", harness.PauseImage, unconfined, probeCmd...))
	if err == nil || !strings.Contains(err.Error(), `required plugin "seccomp-shim" not present`) {
		t.Fatalf("a container created before the plugin registered: %v (NRI on, seccomp-shim required?)", err)
	}
	t.Logf("before the agent: %v", err)

	// The agent as its unit starts it, but on the test's own paths.
	startAgentNRI(t, agentSock, cfg, string(m[1]))
	var log string
	for {
		_, log, err = k.Run(ctx, pod, harness.ContainerConfig(fmt.Sprintf("probe-%d", time.Now().UnixNano()), harness.PauseImage, unconfined, probeCmd...))
		if err == nil || !strings.Contains(err.Error(), "not present") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the plugin never registered: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("with the plugin: %v\n%s", err, log)
	}
	want(t, log, "Seccomp:\t2", "keyctl errno EACCES 13", "getpid ok")

	seccompInstall(t, "--root", root, "uninstall")
	if fileExists(filepath.Join(ctd.Dir, "conf.d", "seccomp-shim.toml")) {
		t.Errorf("drop-in left after uninstall")
	}
	if after, _ := os.ReadFile(ctd.Config); string(after) != string(before) {
		t.Errorf("config.toml after uninstall differs")
	}
}

// startAgentNRI runs seccomp-agent with its NRI plugin on nriSocket.
func startAgentNRI(t *testing.T, socket, config, nriSocket string) (auditLog string) {
	t.Helper()
	auditLog = filepath.Join(t.TempDir(), "audit.log")
	daemon(t, "agent", "--socket", socket, "--audit-log", auditLog, "--metrics", "", "--config", config, "--nri-socket", nriSocket)
	waitSocket(t, socket)
	return auditLog
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
