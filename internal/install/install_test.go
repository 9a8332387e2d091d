package install

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshot is every file, directory and link under root, with content and
// mode, keyed by host path.
func snapshot(t *testing.T, root string) map[string]string { return snap(t, root, false) }

// snapshotTimes adds files' mtimes: an idempotent run doesn't even rewrite
// equal bytes.
func snapshotTimes(t *testing.T, root string) map[string]string { return snap(t, root, true) }

func snap(t *testing.T, root string, times bool) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m["/"+rel] = "link " + target
		case d.IsDir():
			m["/"+rel] = "dir " + fi.Mode().String()
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m["/"+rel] = fi.Mode().String() + "\n" + string(data)
			if times {
				m["/"+rel] = fi.ModTime().String() + " " + m["/"+rel]
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffSnapshots(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s is gone", what, p)
		} else if g != w {
			t.Errorf("%s: %s changed:\n%s\nwas:\n%s", what, p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s is new", what, p)
		}
	}
}

// nodeRoot is a node with all four engines and realistic configs.
func nodeRoot(t *testing.T, containerdFixture string) string {
	t.Helper()
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, dockerConfig), readFixture(t, "docker/full.json"))
	if err := os.Chmod(filepath.Join(root, dockerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(root, containerdConfig), readFixture(t, "containerd/"+containerdFixture))
	writeTestFile(t, filepath.Join(root, "/etc/containers/containers.conf"), readFixture(t, "podman/containers.conf"))
	writeTestFile(t, filepath.Join(root, "/usr/bin/podman"), []byte("podman"))
	writeTestFile(t, filepath.Join(root, "/etc/crio/crio.conf"), []byte("[crio.runtime]\ndefault_runtime = \"runc\"\n"))
	writeTestFile(t, filepath.Join(root, "/etc/systemd/system/multi-user.target.wants/ssh.service"), []byte("[Unit]\n"))
	// Old enough that a rewrite, even of the same bytes, shows in the mtime.
	old := time.Now().Add(-time.Hour)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		os.Chtimes(p, old, old)
		return nil
	})
	return root
}

func testBins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range binaries {
		writeTestFile(t, filepath.Join(dir, b), []byte("#!/bin/sh\necho "+b+"\n"))
	}
	return dir
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return out.String() + errb.String(), code
}

// install, install again, uninstall: the second install changes no byte and
// no mtime, and uninstall leaves the node as it was, but for the policy it
// keeps.
func TestInstallIdempotentAndReversible(t *testing.T) {
	for _, fixture := range []string{"v2-default.toml", "v3-default.toml", "v2-imports.toml"} {
		t.Run(fixture, func(t *testing.T) {
			root := nodeRoot(t, fixture)
			bins := testBins(t)
			before := snapshot(t, root)
			out, code := run(t, "--root", root, "--bin", bins, "install")
			if code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			t.Logf("install:\n%s", out)
			for _, want := range []string{"docker", "containerd", "podman", "crio"} {
				if !strings.Contains(snapshot(t, root)[statePath], `"`+want+`"`) {
					t.Errorf("engine %s not detected", want)
				}
			}
			first := snapshotTimes(t, root)
			if got := snapshot(t, root)[dockerConfig]; !strings.HasPrefix(got, "-rw-------") {
				t.Errorf("daemon.json lost its mode: %.20s", got)
			}
			out, code = run(t, "--root", root, "--bin", bins, "install")
			if code != 0 {
				t.Fatalf("second install: %d\n%s", code, out)
			}
			if strings.Contains(out, "created") || strings.Contains(out, "updated") {
				t.Errorf("second install changed something:\n%s", out)
			}
			diffSnapshots(t, "second install", snapshotTimes(t, root), first)

			out, code = run(t, "--root", root, "--bin", bins, "status")
			if code != 0 {
				t.Errorf("status after install: %d\n%s", code, out)
			}
			t.Logf("status:\n%s", out)

			// Enabled units leave links that uninstall must not leave dangling.
			wants := filepath.Join(root, unitDir, "multi-user.target.wants")
			if err := os.Symlink("/etc/systemd/system/seccomp-agent.service", filepath.Join(wants, "seccomp-agent.service")); err != nil {
				t.Fatal(err)
			}
			out, code = run(t, "--root", root, "uninstall")
			if code != 0 {
				t.Fatalf("uninstall: %d\n%s", code, out)
			}
			t.Logf("uninstall:\n%s", out)
			after := snapshot(t, root)
			for p := range after {
				if p == confDir || strings.HasPrefix(p, confDir+"/") {
					if p != confDir && p != configPath && p != profilesDir {
						t.Errorf("left behind: %s", p)
					}
					delete(after, p)
				}
			}
			diffSnapshots(t, "uninstall", after, before)
			if out, code := run(t, "--root", root, "status"); code == 0 {
				t.Errorf("status after uninstall says all is well:\n%s", out)
			}
		})
	}
}

// With nothing there, install creates what it needs, and uninstall removes
// all of it, directories included.
func TestInstallBareNode(t *testing.T) {
	root := t.TempDir()
	bins := testBins(t)
	out, code := run(t, "--root", root, "--bin", bins, "--engines", "docker,containerd,podman,crio", "install")
	if code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	for _, p := range []string{dockerConfig, containerdConfig, containerdDropIn, podmanDropIn, podmanHook, crioDropIn, "/usr/local/bin/seccomp-agent", "/etc/systemd/system/seccomp-agent.service", logDir} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s not created", p)
		}
	}
	out, code = run(t, "--root", root, "uninstall")
	if code != 0 {
		t.Fatalf("uninstall: %d\n%s", code, out)
	}
	// daemon.json stays with an empty "runtimes": dockerd clears its
	// runtimes on reload only if the key is there.
	if doc, _ := os.ReadFile(filepath.Join(root, dockerConfig)); string(doc) != "{\n  \"runtimes\": {}\n}\n" {
		t.Errorf("daemon.json after uninstall: %q", doc)
	}
	left := snapshot(t, root)
	for _, keep := range []string{"/", "/etc", confDir, configPath, profilesDir, "/etc/docker", dockerConfig} {
		delete(left, filepath.Clean(keep))
	}
	delete(left, "/.")
	if len(left) > 0 {
		t.Errorf("left behind: %v\n%s", left, out)
	}
}

func TestInstallPrefixAndNoSystemd(t *testing.T) {
	root := t.TempDir()
	out, code := run(t, "--root", root, "--bin", testBins(t), "--prefix", "/opt/seccomp", "--engines", "podman,docker", "--systemd=false", "install")
	if code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	hook, _ := os.ReadFile(filepath.Join(root, podmanHook))
	if !strings.Contains(string(hook), `"path": "/opt/seccomp/bin/seccomp-hook"`) || strings.Contains(string(hook), "/usr/local") {
		t.Errorf("hook:\n%s", hook)
	}
	if exists(filepath.Join(root, unitDir)) {
		t.Errorf("units installed with --systemd=false")
	}
	if doc, _ := os.ReadFile(filepath.Join(root, dockerConfig)); !strings.Contains(string(doc), `"/opt/seccomp/bin/seccomp-shim"`) {
		t.Errorf("daemon.json:\n%s", doc)
	}
	// Moving the prefix needs an uninstall first.
	out, code = run(t, "--root", root, "--bin", testBins(t), "--engines", "podman", "install")
	if code != 1 || !strings.Contains(out, "--prefix /opt/seccomp") {
		t.Errorf("install with another prefix: %d\n%s", code, out)
	}
}

func TestUnitsWithPrefix(t *testing.T) {
	got := string(withPrefix(agentUnit, "/opt/x"))
	if !strings.Contains(got, "ExecStart=/opt/x/bin/seccomp-agent ") || strings.Contains(got, "/usr/local/bin") {
		t.Errorf("unit:\n%s", got)
	}
	if string(withPrefix(agentUnit, "/usr/local")) != string(agentUnit) {
		t.Errorf("default prefix changed the unit")
	}
}

func TestInstallKeepsPolicy(t *testing.T) {
	root := t.TempDir()
	mine := []byte("[runtime]\npath = \"crun\"\n")
	writeTestFile(t, filepath.Join(root, configPath), mine)
	out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "podman", "install")
	if code != 0 || !strings.Contains(out, "kept             /etc/seccomp-shim/config.toml") {
		t.Errorf("install: %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(root, configPath)); !bytes.Equal(got, mine) {
		t.Errorf("policy overwritten:\n%s", got)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	before := snapshotTimes(t, root)
	out, code := run(t, "--root", root, "--bin", testBins(t), "--dry-run", "install")
	if code != 0 || !strings.Contains(out, "would update     /etc/docker/daemon.json") || strings.Count(out, "would create     /usr/local/bin/\n") != 1 {
		t.Errorf("dry run: %d\n%s", code, out)
	}
	diffSnapshots(t, "dry run", snapshotTimes(t, root), before)
}

// A daemon.json dockerd can't read stops the install before anything is
// written, and the error names the file and the reason.
func TestInstallRefusesBrokenDaemonJSON(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	writeTestFile(t, filepath.Join(root, dockerConfig), readFixture(t, "docker/invalid.json"))
	before := snapshot(t, root)
	out, code := run(t, "--root", root, "--bin", testBins(t), "install")
	if code != 1 || !strings.Contains(out, "/etc/docker/daemon.json: invalid character '}'") {
		t.Errorf("install: %d\n%s", code, out)
	}
	diffSnapshots(t, "refused install", snapshot(t, root), before)
}

func TestUninstallRefusesDefaultRuntime(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	bins := testBins(t)
	if out, code := run(t, "--root", root, "--bin", bins, "--engines", "docker", "install"); code != 0 {
		t.Fatal(out)
	}
	p := filepath.Join(root, dockerConfig)
	doc, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(doc, []byte(`"default-runtime": "runc"`), []byte(`"default-runtime": "seccomp-shim"`), 1), 0o600)
	out, code := run(t, "--root", root, "uninstall")
	if code != 1 || !strings.Contains(out, "default-runtime is seccomp-shim") {
		t.Errorf("uninstall: %d\n%s", code, out)
	}
	if !exists(filepath.Join(root, "/usr/local/bin/seccomp-shim")) {
		t.Errorf("a refused uninstall removed the binary")
	}
}

// Unregistering one engine leaves the others and the binaries.
func TestUninstallOneEngine(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	bins := testBins(t)
	if out, code := run(t, "--root", root, "--bin", bins, "install"); code != 0 {
		t.Fatal(out)
	}
	out, code := run(t, "--root", root, "--engines", "podman", "uninstall")
	if code != 0 {
		t.Fatalf("%d\n%s", code, out)
	}
	if exists(filepath.Join(root, podmanDropIn)) || exists(filepath.Join(root, podmanHook)) {
		t.Errorf("podman files left")
	}
	for _, p := range []string{containerdDropIn, crioDropIn, "/usr/local/bin/seccomp-shim", statePath} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s removed", p)
		}
	}
	st, _, _ := loadState(root)
	if strings.Join(st.Engines, ",") != "docker,containerd,crio" {
		t.Errorf("state engines %v", st.Engines)
	}
}

func TestConfigCommand(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "config.toml")
	writeTestFile(t, src, []byte("[[rule]]\nprofle = \"strict\"\n"))
	out, code := run(t, "--root", root, "config", "--from", src)
	if code != 1 || !strings.Contains(out, "unknown keys rule.profle") || exists(filepath.Join(root, configPath)) {
		t.Errorf("bad config: %d\n%s", code, out)
	}
	writeTestFile(t, src, defaultConfig)
	out, code = run(t, "--root", root, "config", "--from", src)
	if code != 0 {
		t.Fatalf("%d\n%s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(root, configPath)); !bytes.Equal(got, defaultConfig) {
		t.Errorf("config not installed")
	}
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	if got := Detect(root); len(got) != 0 {
		t.Errorf("empty root: %v", got)
	}
	writeTestFile(t, filepath.Join(root, "/usr/sbin/dockerd"), nil)
	writeTestFile(t, filepath.Join(root, "/etc/containers/registries.conf"), nil)
	os.MkdirAll(filepath.Join(root, "/etc/crio"), 0o755)
	if got := strings.Join(Detect(root), ","); got != "docker,crio" {
		t.Errorf("got %s", got)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"--engines", "lxc", "install"}, {"install", "extra"}} {
		if out, code := run(t, args...); code != 2 {
			t.Errorf("%v: %d\n%s", args, code, out)
		}
	}
}

// On containerd 1.x the drop-in copies config.toml's CRI section: a later
// change there makes it stale, status says so, and install refreshes it.
func TestContainerdStaleCopy(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	bins := testBins(t)
	if out, code := run(t, "--root", root, "--bin", bins, "--engines", "containerd", "install"); code != 0 {
		t.Fatal(out)
	}
	p := filepath.Join(root, containerdConfig)
	cfg, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(cfg, []byte(`sandbox_image = "registry.k8s.io/pause:3.6"`), []byte(`sandbox_image = "registry.k8s.io/pause:3.9"`), 1), 0o644)
	out, code := run(t, "--root", root, "--bin", bins, "--engines", "containerd", "status")
	if code != 1 || !strings.Contains(out, "stale    containerd") {
		t.Errorf("status: %d\n%s", code, out)
	}
	out, code = run(t, "--root", root, "--bin", bins, "--engines", "containerd", "install")
	if code != 0 || !strings.Contains(out, "updated          "+containerdDropIn) {
		t.Errorf("install: %d\n%s", code, out)
	}
	if cri, _ := lookup(effectiveConfig(t, root), criV2); cri["sandbox_image"] != "registry.k8s.io/pause:3.9" {
		t.Errorf("sandbox_image %v", cri["sandbox_image"])
	}
}

// A config install can't use stops it before anything is written.
func TestInstallRefusesV1Containerd(t *testing.T) {
	root := nodeRoot(t, "v1.toml")
	before := snapshot(t, root)
	out, code := run(t, "--root", root, "--bin", testBins(t), "install")
	if code != 1 || !strings.Contains(out, "version 1 config") {
		t.Errorf("install: %d\n%s", code, out)
	}
	diffSnapshots(t, "refused install", snapshot(t, root), before)
}

// What the owner adds to daemon.json after install stays on uninstall.
func TestUninstallKeepsLaterEdits(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	if out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "docker", "install"); code != 0 {
		t.Fatal(out)
	}
	p := filepath.Join(root, dockerConfig)
	doc, _ := os.ReadFile(p)
	doc = bytes.Replace(doc, []byte(`"storage-driver": "overlay2"`), []byte(`"storage-driver": "overlay2",`+"\n"+`  "debug": true`), 1)
	os.WriteFile(p, doc, 0o600)
	if out, code := run(t, "--root", root, "uninstall"); code != 0 {
		t.Fatal(out)
	}
	got, _ := os.ReadFile(p)
	want := bytes.Replace(readFixture(t, "docker/full.json"), []byte(`"storage-driver": "overlay2"`), []byte(`"storage-driver": "overlay2",`+"\n"+`  "debug": true`), 1)
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s", got)
	}
}

// install puts seccomp-install itself in PREFIX/bin, so status and uninstall
// work without the build tree; uninstall removes it last.
func TestInstallsItself(t *testing.T) {
	root := t.TempDir()
	out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "podman", "install")
	if code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	self := "/usr/local/bin/seccomp-install"
	if !exists(filepath.Join(root, self)) {
		t.Fatalf("%s not installed:\n%s", self, out)
	}
	// status from the installed copy: --bin is its own directory.
	if out, code := run(t, "--root", root, "--bin", filepath.Join(root, "/usr/local/bin"), "status"); code != 0 || !strings.Contains(out, "ok       binary      "+self) {
		t.Errorf("status: %d\n%s", code, out)
	}
	out, code = run(t, "--root", root, "uninstall")
	if code != 0 {
		t.Fatalf("uninstall: %d\n%s", code, out)
	}
	var files []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "removed" && !strings.HasSuffix(f[1], "/") && f[1] != statePath {
			files = append(files, f[1])
		}
	}
	if len(files) == 0 || files[len(files)-1] != self {
		t.Errorf("uninstall removed %v; want %s last", files, self)
	}
}

// refresh rewrites only the drop-in's copy of config.toml's CRI section,
// and running it again changes nothing.
func TestRefresh(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	bins := testBins(t)
	if out, code := run(t, "--root", root, "refresh"); code != 1 || !strings.Contains(out, "seccomp-install install") {
		t.Errorf("refresh before install: %d\n%s", code, out)
	}
	if out, code := run(t, "--root", root, "--bin", bins, "--engines", "containerd,docker", "install"); code != 0 {
		t.Fatal(out)
	}
	p := filepath.Join(root, containerdConfig)
	cfg, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(cfg, []byte(`sandbox_image = "registry.k8s.io/pause:3.6"`), []byte(`sandbox_image = "registry.k8s.io/pause:3.9"`), 1), 0o644)
	before := snapshot(t, root)
	out, code := run(t, "--root", root, "refresh")
	if code != 0 || !strings.Contains(out, "updated          "+containerdDropIn) || !strings.Contains(out, "systemctl restart containerd") {
		t.Fatalf("refresh: %d\n%s", code, out)
	}
	after := snapshot(t, root)
	delete(after, containerdDropIn)
	delete(before, containerdDropIn)
	diffSnapshots(t, "refresh", after, before)
	if cri, _ := lookup(effectiveConfig(t, root), criV2); cri["sandbox_image"] != "registry.k8s.io/pause:3.9" {
		t.Errorf("sandbox_image %v", cri["sandbox_image"])
	}
	if out, code := run(t, "--root", root, "--bin", bins, "status"); code != 0 {
		t.Errorf("status after refresh: %d\n%s", code, out)
	}
	before = snapshotTimes(t, root)
	if out, code := run(t, "--root", root, "refresh"); code != 0 || strings.Contains(out, "updated") || strings.Contains(out, "next:") {
		t.Errorf("second refresh: %d\n%s", code, out)
	}
	diffSnapshots(t, "second refresh", snapshotTimes(t, root), before)
}

// --restart-containerd runs the host's systemctl (here a fake one in a
// chroot) when containerd's files changed, and only then; the step it did
// is no longer among those left to the operator.
func TestRestartContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no static busybox for the fake host's /bin/sh (apt-get install busybox-static)")
	}
	host := t.TempDir()
	sh, _ := os.ReadFile(busybox)
	writeTestFile(t, filepath.Join(host, "bin/sh"), sh)
	os.Chmod(filepath.Join(host, "bin/sh"), 0o755)
	writeTestFile(t, filepath.Join(host, "usr/bin/systemctl"), []byte("#!/bin/sh\necho \"$@ SYSTEMD_IGNORE_CHROOT=$SYSTEMD_IGNORE_CHROOT\" >> /systemctl.log\n"))
	os.Chmod(filepath.Join(host, "usr/bin/systemctl"), 0o755)

	root := nodeRoot(t, "v2-default.toml")
	install := func() string {
		t.Helper()
		var out bytes.Buffer
		in := &Installer{Root: root, Prefix: "/usr/local", BinDir: testBins(t), Engines: []string{"containerd"}, EnginesNamed: true, Out: &out, RestartContainerd: true, systemdRoot: host}
		if err := in.Install(); err != nil {
			t.Fatalf("install: %v\n%s", err, out.String())
		}
		return out.String()
	}
	out := install()
	log, _ := os.ReadFile(filepath.Join(host, "systemctl.log"))
	if string(log) != "restart containerd SYSTEMD_IGNORE_CHROOT=1\n" {
		t.Errorf("systemctl ran with %q", log)
	}
	if !strings.Contains(out, "restarted        containerd") || strings.Contains(out, nextContainerd) {
		t.Errorf("install:\n%s", out)
	}
	install() // nothing changed: no restart
	if log2, _ := os.ReadFile(filepath.Join(host, "systemctl.log")); string(log2) != string(log) {
		t.Errorf("restarted again with nothing changed: %q", log2)
	}
}
