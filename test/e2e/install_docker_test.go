package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// seccompInstall runs the seccomp-install that TestMain built.
func seccompInstall(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(filepath.Dir(bins.shim), "seccomp-install"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("seccomp-install %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestDockerUninstallReload: after `seccomp-install uninstall` and the step
// it prints (reload, which is SIGHUP), a live dockerd no longer lists the
// runtime. dockerd 20.10 replaces its runtimes on reload only when
// daemon.json has a "runtimes" key, so uninstall must not take away a key
// it added.
func TestDockerUninstallReload(t *testing.T) {
	harness.RequireRoot(t)
	d := harness.NewDocker(t, bins.shim, nil)
	live := filepath.Join(d.Dir, "daemon.json") // the file this dockerd reads
	root := t.TempDir()
	node := filepath.Join(root, "etc/docker/daemon.json")
	if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
		t.Fatal(err)
	}
	// An operator's daemon.json without runtimes.
	if err := os.WriteFile(node, []byte("{\n  \"storage-driver\": \"vfs\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload := func() {
		t.Helper()
		data, err := os.ReadFile(node)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(live, data, 0o644); err != nil {
			t.Fatal(err)
		}
		pid, err := os.ReadFile(filepath.Join(d.Dir, "dockerd.pid"))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
		before := strings.Count(d.Log(), "Reloaded configuration")
		if err := syscall.Kill(n, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); strings.Count(d.Log(), "Reloaded configuration") == before; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("dockerd did not reload %s:\n%s\n%s", live, data, d.Log())
			}
		}
	}
	runtimes := func() string {
		t.Helper()
		out, stderr, err := d.Run("info", "--format", "{{json .Runtimes}}")
		if err != nil {
			t.Fatalf("docker info: %v\n%s", err, stderr)
		}
		return out
	}
	reload()
	seccompInstall(t, "--root", root, "--engines", "docker", "--systemd=false", "install")
	reload()
	if rt := runtimes(); !strings.Contains(rt, `"seccomp-shim"`) {
		t.Fatalf("after install and reload, docker info lists no seccomp-shim: %s", rt)
	}
	out := seccompInstall(t, "--root", root, "uninstall")
	if !strings.Contains(out, "systemctl reload docker") {
		t.Errorf("uninstall does not say to reload docker:\n%s", out)
	}
	reload()
	if rt := runtimes(); strings.Contains(rt, `"seccomp-shim"`) {
		doc, _ := os.ReadFile(node)
		t.Errorf("after uninstall and reload, docker info still lists seccomp-shim: %s\ndaemon.json:\n%s", rt, doc)
	}
}

// TestMakeInstall: `make install` and `make uninstall` are seccomp-install,
// not a second installer: the tree they leave is what seccomp-install's
// status accepts, and uninstall takes it all away again (the policy stays).
func TestMakeInstall(t *testing.T) {
	harness.RequireRoot(t)
	root := t.TempDir()
	make := func(target string) string {
		t.Helper()
		cmd := exec.Command("make", "--no-print-directory", "-C", "../..", target, "DESTDIR="+root, "BIN="+filepath.Dir(bins.shim), "INSTALL_FLAGS=--engines=podman --systemd=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	make("install")
	self := filepath.Join(root, "usr/local/bin/seccomp-install")
	out, err := exec.Command(self, "--root", root, "--systemd=false", "status").CombinedOutput()
	if err != nil {
		t.Fatalf("status after make install: %v\n%s", err, out)
	}
	for _, p := range []string{"/usr/local/bin/seccomp-shim", "/usr/local/bin/seccomp-install", "/etc/seccomp-shim/install-state.json", "/etc/containers/containers.conf.d/seccomp-shim.conf"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	make("uninstall")
	for _, p := range []string{"/usr/local/bin/seccomp-shim", "/usr/local/bin/seccomp-install", "/etc/seccomp-shim/install-state.json", "/etc/containers/containers.conf.d/seccomp-shim.conf"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("make uninstall left %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/seccomp-shim/config.toml")); err != nil {
		t.Errorf("make uninstall: the policy should stay: %v", err)
	}
}
