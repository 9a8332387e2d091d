package harness

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerd is a private containerd: its own config.toml (version 2), root,
// state, gRPC and ttrpc sockets, opt directory and empty CNI directories,
// all under Dir, so tests touch nothing of the host's containerd.
type Containerd struct {
	Dir     string // the temp dir everything lives in
	Config  string // config.toml
	Socket  string // the gRPC address
	CtrBin  string
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
}

// ContainerdOptions tunes the generated config.
type ContainerdOptions struct {
	// CRI is extra TOML appended inside the config, after the base CRI
	// settings (runtimes, sandbox_image...). Paths may use {{DIR}}.
	CRI string
	// SandboxImage is the CRI plugin's sandbox_image.
	SandboxImage string
}

func init() {
	aptPackage["containerd"], aptPackage["ctr"], aptPackage["containerd-shim-runc-v2"] = "containerd", "containerd", "containerd"
}

// NewContainerd starts containerd with a private config and waits for its
// socket. It is stopped when the test ends: SIGTERM, then leftover
// containerd-shim-runc-v2 processes of this containerd are killed and every
// mount under Dir is detached.
func NewContainerd(t testing.TB, opt ContainerdOptions) *Containerd {
	t.Helper()
	RequireRoot(t)
	bin := RequireBinary(t, "containerd")
	ctr := RequireBinary(t, "ctr")
	RequireBinary(t, "containerd-shim-runc-v2")
	// Short: unix socket paths are limited to 108 bytes, and the shims'
	// sockets are derived from the address.
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Config: filepath.Join(dir, "config.toml"), Socket: filepath.Join(dir, "c.sock"),
		CtrBin: ctr, logFile: filepath.Join(dir, "containerd.log"), done: make(chan struct{})}
	for _, d := range []string{"root", "state", "opt", "cni-bin", "cni-conf"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.Config, []byte(c.config(opt)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(c.logFile)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config", c.Config, "--log-level", "debug")
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); out.Close(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if conn, err := net.Dial("unix", c.Socket); err == nil {
			conn.Close()
			break
		}
		select {
		case <-c.done:
			t.Fatalf("containerd exited at start:\n%s", c.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not listen on %s:\n%s", c.Socket, c.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The socket comes before the plugins are all loaded; ctr version
	// answers once the services are up.
	for i := 0; ; i++ {
		if err := c.Ctr("", "version").Run(); err == nil {
			break
		} else if i > 100 {
			t.Fatalf("containerd not answering: %v\n%s", err, c.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Containerd) config(opt ContainerdOptions) string {
	p := func(s string) string { return strconv.Quote(filepath.Join(c.Dir, s)) }
	var b strings.Builder
	fmt.Fprintf(&b, `version = 2
root = %s
state = %s

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = %s

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  sandbox_image = %q

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = %s
  conf_dir = %s
`, p("root"), p("state"), p("c.sock"), p("t.sock"), p("opt"), opt.SandboxImage, p("cni-bin"), p("cni-conf"))
	b.WriteString(strings.ReplaceAll(opt.CRI, "{{DIR}}", c.Dir))
	return b.String()
}

// Ctr returns `ctr --address SOCKET [-n NAMESPACE] args...`.
func (c *Containerd) Ctr(namespace string, args ...string) *exec.Cmd {
	global := []string{"--address", c.Socket}
	if namespace != "" {
		global = append(global, "--namespace", namespace)
	}
	return exec.Command(c.CtrBin, append(global, args...)...)
}

// Log returns the end of containerd's output.
func (c *Containerd) Log() string {
	b, _ := os.ReadFile(c.logFile)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (c *Containerd) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("containerd config:\n%s", mustRead(c.Config))
		t.Logf("containerd log (end):\n%s", c.Log())
	}
	c.killTasks()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	// The runc shims outlive containerd by design; kill the ones started
	// for this containerd (their -address is ours), and what they run.
	for _, pid := range shimsOf(c.Socket) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(100 * time.Millisecond)
	unmountUnder(c.Dir)
	os.RemoveAll(c.Dir)
}

// killTasks kills and deletes the tasks a test left running in any
// namespace: killing their shims alone would leave the containers running.
func (c *Containerd) killTasks() {
	nss, err := c.Ctr("", "namespaces", "ls", "-q").Output()
	if err != nil {
		return
	}
	for _, ns := range strings.Fields(string(nss)) {
		ids, _ := c.Ctr(ns, "tasks", "ls", "-q").Output()
		for _, id := range strings.Fields(string(ids)) {
			_ = c.Ctr(ns, "tasks", "kill", "--all", "--signal", "SIGKILL", id).Run()
			_ = c.Ctr(ns, "tasks", "delete", "--force", id).Run()
		}
	}
}

// RuncRoot is a runc --root for `ctr run --runc-root`, under Dir, so
// containers' runc state stays out of the host's /run/containerd/runc.
func (c *Containerd) RuncRoot() string { return filepath.Join(c.Dir, "runc") }

func mustRead(path string) string { b, _ := os.ReadFile(path); return string(b) }

// shimsOf lists containerd-shim-runc-v2 processes whose -address is socket.
func shimsOf(socket string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i, a := range args {
			if (a == "-address" || a == "--address") && i+1 < len(args) && args[i+1] == socket {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Import makes image name (e.g. "docker.io/library/x:latest") in namespace
// from the rootfs directory, with cmd as the image's Cmd. The tar handed to
// `ctr images import` is docker-save's format: manifest.json, the config,
// and one layer.tar.
func (c *Containerd) Import(t testing.TB, namespace, rootfs, name string, cmd []string) {
	t.Helper()
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "image.tar")
	if err := DockerArchive(rootfs, name, cmd, archive); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Ctr(namespace, "images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
}

// DockerArchive writes what `docker save` would for a one-layer image of
// rootfs tagged name, running cmd.
func DockerArchive(rootfs, name string, cmd []string, out string) error {
	layer := out + ".layer"
	if err := tarDir(rootfs, layer); err != nil {
		return err
	}
	defer os.Remove(layer)
	lb, err := os.ReadFile(layer)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lb)
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}, "WorkingDir": "/"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history":      []any{map[string]any{"created": "2026-01-01T00:00:00Z", "created_by": "seccomp-shim e2e"}},
	})
	if err != nil {
		return err
	}
	csum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{name}, "Layers": []string{"layer/layer.tar"}}})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, r io.Reader, size int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "layer/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if err := add("layer/layer.tar", bytes.NewReader(lb), int64(len(lb))); err != nil {
		return err
	}
	if err := add(cfgName, bytes.NewReader(cfg), int64(len(cfg))); err != nil {
		return err
	}
	if err := add("manifest.json", bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		return err
	}
	return tw.Close()
}
