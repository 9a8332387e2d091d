package harness

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// DockerImage is the name NewDocker imports the test rootfs as.
const DockerImage = "seccomp-shim-e2e:latest"

// Docker runs Debian's dockerd (package docker.io) with everything private
// under a temp dir: data-root, exec-root (which also holds the state and
// socket of the containerd that dockerd starts itself), pidfile, API socket
// and the CLI's config dir. It has no network: containers need
// `--network none`, which Run adds.
type Docker struct {
	Bin, Dir, Socket string
	cmd              *exec.Cmd
	logFile          string
}

// NewDocker starts dockerd with one runtime per entry of configs: the runtime
// name maps to a seccomp-shim config file. Each runtime is a ShimWrapper,
// because Docker passes no environment to a runtime. It imports Rootfs as DockerImage, and stops
// dockerd when the test ends.
func NewDocker(t testing.TB, shim string, configs map[string]string) *Docker {
	t.Helper()
	RequireRoot(t)
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatalf("e2e: dockerd not found in PATH: apt-get install docker.io")
	}
	// Debian's CLI, matching its daemon, when it is there.
	cli := "/usr/bin/docker"
	if _, err := os.Stat(cli); err != nil {
		if cli, err = exec.LookPath("docker"); err != nil {
			t.Fatalf("e2e: docker not found in PATH: apt-get install docker.io")
		}
	}
	// containerd-shim-runc-v2 puts its sockets in /run/containerd/s,
	// whatever containerd's state dir; tidy it up if it wasn't there.
	_, runErr := os.Stat("/run/containerd")
	d := &Docker{Bin: cli, Dir: t.TempDir()}
	d.Socket = filepath.Join(d.Dir, "docker.sock")
	d.logFile = filepath.Join(d.Dir, "dockerd.log")

	runtimes := map[string]any{}
	for name, cfg := range configs {
		runtimes[name] = map[string]any{"path": ShimWrapper(t, filepath.Join(d.Dir, "runtime-"+name), shim, cfg)}
	}
	daemonJSON, _ := json.MarshalIndent(map[string]any{
		"runtimes":       runtimes,
		"storage-driver": "vfs",
	}, "", "  ")
	cfgPath := filepath.Join(d.Dir, "daemon.json")
	if err := os.WriteFile(cfgPath, daemonJSON, 0o644); err != nil {
		t.Fatal(err)
	}

	log, err := os.Create(d.logFile)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dockerd,
		"--data-root", filepath.Join(d.Dir, "data"),
		// dockerd puts its managed containerd's state dir and socket in
		// <exec-root>/containerd, its root in <data-root>/containerd.
		"--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", filepath.Join(d.Dir, "dockerd.pid"),
		"-H", "unix://"+d.Socket,
		"--iptables=false", "--bridge=none",
		"--config-file", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	// Its own process group, so a ^C of the test does not reach it first.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = d.cmd.Wait(); log.Close(); close(exited) }()
	// Registered after TempDir, so it runs before TempDir's removal.
	t.Cleanup(func() {
		if ids, err := d.Command("ps", "-aq").Output(); err == nil && len(strings.TrimSpace(string(ids))) > 0 {
			_ = d.Command(append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(d.logFile)
			t.Logf("dockerd log (last 8 KiB):\n%s", tail(b, 8<<10))
		}
		unmountUnder(d.Dir)
		if runErr != nil {
			_ = os.Remove("/run/containerd/s") // only if empty
			_ = os.Remove("/run/containerd")
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.Command("version").Run(); err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(d.logFile)
			t.Fatalf("dockerd exited during start:\n%s", tail(b, 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.logFile)
			t.Fatalf("dockerd did not answer on %s within 30s:\n%s", d.Socket, tail(b, 8<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}

	tarball := filepath.Join(d.Dir, "rootfs.tar")
	if err := tarDir(Rootfs(t), tarball); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Command("import", tarball, DockerImage).CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	return d
}

// Command returns the docker CLI talking to this daemon, with a private
// CLI config dir.
func (d *Docker) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(d.Bin, append([]string{"-H", "unix://" + d.Socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	return cmd
}

// Run runs `docker args...` and returns stdout and stderr apart; Docker's own
// errors go to stderr.
func (d *Docker) Run(args ...string) (stdout, stderr string, err error) {
	var o, e strings.Builder
	cmd := d.Command(args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// RunContainer runs `docker run --network none` with args (flags, image,
// command).
func (d *Docker) RunContainer(args ...string) (stdout, stderr string, err error) {
	return d.Run(append([]string{"run", "--network", "none"}, args...)...)
}

// Log returns what dockerd has logged so far.
func (d *Docker) Log() string {
	b, _ := os.ReadFile(d.logFile)
	return string(b)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// ShimWrapper writes an executable script at path that runs shim with the
// config cfg and this test process's SECCOMP_SHIM_RUN_DIR: engines pass no
// environment to a runtime, so on a node the shim would read
// /etc/seccomp-shim/config.toml and fill /run/seccomp-shim.
func ShimWrapper(t testing.TB, path, shim, cfg string) string {
	t.Helper()
	body := "#!/bin/sh\n" + policy.ConfigEnv + "=" + shellQuote(cfg) + "\nexport " + policy.ConfigEnv + "\n"
	if d := os.Getenv(policy.RunDirEnv); d != "" {
		body += policy.RunDirEnv + "=" + shellQuote(d) + "\nexport " + policy.RunDirEnv + "\n"
	}
	body += "exec " + shellQuote(shim) + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
