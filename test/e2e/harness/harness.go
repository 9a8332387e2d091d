// Package harness runs containers for the end-to-end tests the way
// containerd 1.6's runc shim does: a bundle made by `runc spec`, a private
// --root, a JSON --log file in the bundle, create then start, the container's
// init reaped as a child subreaper, and delete --force.
//
// Containers need root. RequireRoot skips without it; RequireBinary fails when
// root lacks a tool, so CI (which runs as root) can't silently skip.
package harness

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root to run containers; CI runs as root")
	}
}

var aptPackage = map[string]string{"runc": "runc", "busybox": "busybox-static", "podman": "podman", "conmon": "conmon"}

// RequireBinary returns the path of name. Without root it skips; as root a
// missing binary is a broken machine, so it fails.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	RequireRoot(t)
	p, err := exec.LookPath(name)
	if err != nil {
		pkg := aptPackage[name]
		if pkg == "" {
			pkg = "the package that provides it"
		}
		t.Fatalf("e2e: %s not found in PATH: apt-get install %s", name, pkg)
	}
	return p
}

var links = []string{"sh", "true", "echo", "cat", "sleep", "ls", "id", "grep", "head", "mkdir"}

// BuildRootfs fills dir with a minimal rootfs: a static busybox with a few
// applet links, /bin/probe (amd64) and /bin/probe32 (386) built from
// ./test/e2e/probe, empty mount points, and root in /etc/passwd and /etc/group.
func BuildRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// Non-root container users must be able to reach / and write /tmp.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := copyStaticBusybox(filepath.Join(dir, "bin", "busybox")); err != nil {
		return err
	}
	for _, l := range links {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", l)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for arch, out := range map[string]string{"amd64": "probe", "386": "probe32"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "bin", out), "./test/e2e/probe")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building probe for %s: %v\n%s", arch, err, b)
		}
	}
	return nil
}

// copyStaticBusybox refuses Debian's dynamic busybox: it would not run in a
// rootfs without a libc.
func copyStaticBusybox(dst string) error {
	const src = "/bin/busybox"
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("%v (apt-get install busybox-static)", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: apt-get install busybox-static", src)
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

var shared struct {
	once sync.Once
	dir  string
	err  error
}

// Rootfs returns a rootfs built once per test process. Containers get it
// read-only (see NewBundle), so tests can share it. TestMain should call
// Cleanup after m.Run to remove it.
func Rootfs(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "seccomp-shim-e2e-rootfs-")
		if shared.err == nil {
			shared.err = BuildRootfs(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatalf("e2e: building rootfs: %v", shared.err)
	}
	return shared.dir
}

// Cleanup removes the rootfs made by Rootfs, if any.
func Cleanup() {
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// NewBundle makes a bundle whose config.json is `runc spec`'s, running args
// on a read-only rootfs without a terminal and without seccomp.
func NewBundle(t testing.TB, rootfs string, args ...string) string {
	t.Helper()
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if b, err := exec.Command(RequireBinary(t, "runc"), "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, b)
	}
	EditConfig(t, bundle, func(m map[string]any) {
		m["root"] = map[string]any{"path": abs, "readonly": true}
		p := m["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = args
		delete(m["linux"].(map[string]any), "seccomp")
	})
	return bundle
}

// ReadConfig decodes the bundle's config.json into generic maps, so fields no
// Go type knows survive a round trip. Numbers are json.Number, exact.
func ReadConfig(t testing.TB, bundle string) map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := json.NewDecoder(f)
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	return m
}

// EditConfig rewrites the bundle's config.json through edit.
func EditConfig(t testing.TB, bundle string, edit func(m map[string]any)) {
	t.Helper()
	m := ReadConfig(t, bundle)
	edit(m)
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
