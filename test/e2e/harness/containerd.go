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

// Containerd is a private containerd: its own config.toml, root, state,
// gRPC and ttrpc sockets, opt directory, empty CNI directories and (on the
// new stack) NRI socket, all under Dir, so tests touch nothing of the host's
// containerd.
type Containerd struct {
	Dir       string // the temp dir everything lives in
	Config    string // config.toml
	Socket    string // the gRPC address, which is also CRI's
	CtrBin    string
	NRISocket string // on the new stack: where NRI plugins connect
	Runc      string // on the new stack: runc 1.3, the CRI runtime "runc"
	CrictlBin string // on the new stack: crictl, see Crictl
	bin       string
	env       []string // nil: ours
	logFile   string
	cmd       *exec.Cmd
	done      chan struct{}
}

// ContainerdOptions tunes the generated config.
type ContainerdOptions struct {
	// CRI is extra TOML appended to the config, after the base settings
	// (runtimes, sandbox image...). Paths may use {{DIR}}.
	CRI string
	// SandboxImage is the CRI plugin's sandbox (pause) image. On the new
	// stack the harness imports the test rootfs under this name (default
	// PauseImage) and pins it.
	SandboxImage string
	// Newstack runs today's stack from scripts/newstack.sh: containerd 2.4
	// with a version = 3 config, CRI's default runtime "runc" being runc 1.3
	// with its --root under Dir, and NRI enabled on the private NRISocket.
	// Without the stack the test skips (see NewstackBinary).
	Newstack bool
	// RequiredPlugins, on the new stack, turns NRI's default validator on
	// with these required_plugins: containers are not created until
	// plugins of those names are registered.
	RequiredPlugins []string
	// TolerateMissing, with RequiredPlugins, is the validator's
	// tolerate_missing_plugins_annotation: a pod annotated with it "true"
	// starts without them (the plugin's own pod, static pods).
	TolerateMissing string
}

// PauseImage is the new stack's default sandbox image: the test rootfs,
// sleeping.
const PauseImage = "registry.k8s.io/seccomp-shim-e2e-pause:1"

func init() {
	aptPackage["containerd"], aptPackage["ctr"], aptPackage["containerd-shim-runc-v2"] = "containerd", "containerd", "containerd"
}

// NewContainerd starts containerd with a private config and waits until it
// answers (on the new stack, until CRI sees the sandbox image). It is
// stopped when the test ends: tasks killed, SIGTERM, then leftover
// containerd-shim-runc-v2 processes of this containerd are killed and every
// mount under Dir is detached.
func NewContainerd(t testing.TB, opt ContainerdOptions) *Containerd {
	t.Helper()
	RequireRoot(t)
	// Short: unix socket paths are limited to 108 bytes, and the shims'
	// sockets are derived from the address.
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Config: filepath.Join(dir, "config.toml"), Socket: filepath.Join(dir, "c.sock"),
		logFile: filepath.Join(dir, "containerd.log")}
	if opt.Newstack {
		c.bin = NewstackBinary(t, "containerd", "v2.4.*", "containerd")
		c.CtrBin = NewstackBinary(t, "containerd", "v2.4.*", "ctr")
		NewstackBinary(t, "containerd", "v2.4.*", "containerd-shim-runc-v2")
		c.Runc = NewstackBinary(t, "runc", "v1.3.*", "runc")
		c.CrictlBin = NewstackBinary(t, "crictl", "v1.37.*", "crictl")
		c.NRISocket = filepath.Join(dir, "nri.sock")
		// containerd finds its runc shim on PATH: the one built with it.
		c.env = append(os.Environ(), "PATH="+filepath.Dir(c.bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		if opt.SandboxImage == "" {
			opt.SandboxImage = PauseImage
		}
	} else {
		c.bin = RequireBinary(t, "containerd")
		c.CtrBin = RequireBinary(t, "ctr")
		RequireBinary(t, "containerd-shim-runc-v2")
	}
	for _, d := range []string{"root", "state", "opt", "cni-bin", "cni-conf", "nri-plugins", "nri-conf"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := c.configV2(opt)
	if opt.Newstack {
		conf = c.configV3(opt)
	}
	conf = c.configBase(opt.Newstack) + conf
	if err := os.WriteFile(c.Config, []byte(conf+strings.ReplaceAll(opt.CRI, "{{DIR}}", c.Dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if opt.Newstack {
		crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", c.Socket, c.Socket)
		if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte(crictl), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.stop(t) })
	c.start(t)
	if opt.Newstack {
		c.Import(t, "k8s.io", Rootfs(t), opt.SandboxImage, []string{"/bin/sleep", "1000000"})
		c.waitImage(t, opt.SandboxImage)
	}
	return c
}

// start runs containerd and waits until its services answer.
func (c *Containerd) start(t testing.TB) {
	t.Helper()
	out, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.done = make(chan struct{})
	c.cmd = exec.Command(c.bin, "--config", c.Config, "--log-level", "debug")
	c.cmd.Stdout, c.cmd.Stderr, c.cmd.Env = out, out, c.env
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		out.Close()
		t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); out.Close(); close(done) }(c.cmd, c.done)
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
}

// Restart stops containerd (SIGTERM) and starts it again with the same
// config, as systemd's restart does: containers and their shims keep
// running, and NRI plugins lose their connection.
func (c *Containerd) Restart(t testing.TB) {
	t.Helper()
	c.terminate()
	c.start(t)
}

// configBase is what both config versions say alike: the private paths.
func (c *Containerd) configBase(v3 bool) string {
	p := func(s string) string { return strconv.Quote(filepath.Join(c.Dir, s)) }
	version := 2
	if v3 {
		version = 3
	}
	return fmt.Sprintf(`version = %d
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
`, version, p("root"), p("state"), p("c.sock"), p("t.sock"), p("opt"))
}

// configV2 is containerd 1.6's CRI, all in grpc.v1.cri: it goes on with
// the table configBase ends in.
func (c *Containerd) configV2(opt ContainerdOptions) string {
	p := func(s string) string { return strconv.Quote(filepath.Join(c.Dir, s)) }
	return fmt.Sprintf(`  disable_apparmor = true
  restrict_oom_score_adj = true
  sandbox_image = %q

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = %s
  conf_dir = %s
`, opt.SandboxImage, p("cni-bin"), p("cni-conf"))
}

// configV3 is containerd 2.x's: CRI is split into cri.v1.images and
// cri.v1.runtime, and NRI, on by default, gets private paths so that no
// host plugin joins and no host socket is made.
func (c *Containerd) configV3(opt ContainerdOptions) string {
	p := func(s string) string { return strconv.Quote(filepath.Join(c.Dir, s)) }
	var b strings.Builder
	fmt.Fprintf(&b, `
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %q

[plugins."io.containerd.cri.v1.runtime"]
  disable_apparmor = true
  restrict_oom_score_adj = true

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [%s]
  conf_dir = %s

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = %q
  Root = %s

[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = %q
  plugin_path = %s
  plugin_config_path = %s
`, opt.SandboxImage, p("cni-bin"), p("cni-conf"),
		c.Runc, p("runc"), c.NRISocket, p("nri-plugins"), p("nri-conf"))
	if len(opt.RequiredPlugins) > 0 {
		q := make([]string, len(opt.RequiredPlugins))
		for i, r := range opt.RequiredPlugins {
			q[i] = strconv.Quote(r)
		}
		fmt.Fprintf(&b, `
[plugins."io.containerd.nri.v1.nri".default_validator]
  enable = true
  required_plugins = [%s]
  tolerate_missing_plugins_annotation = %q
`, strings.Join(q, ", "), opt.TolerateMissing)
	}
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
	if c.cmd != nil {
		if c.CrictlBin != "" {
			// Pods crictl made; NewCRI's are gone by now.
			_ = c.Crictl("rmp", "--force", "--all").Run()
		}
		c.killTasks()
		c.terminate()
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

// terminate stops containerd: SIGTERM, SIGKILL after 15s.
func (c *Containerd) terminate() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
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
