package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestNewstackContainerd: the new stack's containerd runs a pod through the
// real crictl and through the Go CRI client, with runc 1.3 and NRI on its
// private socket.
func TestNewstackContainerd(t *testing.T) {
	c := NewContainerd(t, ContainerdOptions{Newstack: true})
	if _, err := os.Stat(c.NRISocket); err != nil {
		t.Errorf("NRI socket: %v", err)
	}
	pod := PodConfig("hello", "harness", t.TempDir(), nil)
	podID, _, log, err := c.CrictlRun(t, "", pod, ContainerConfig("echo", PauseImage, nil, "/bin/echo", "hello", "crictl"))
	if err != nil || log != "hello crictl\n" {
		t.Fatalf("crictl: %q, %v\n%s", log, err, c.Log())
	}
	// runc 1.3 ran it, under the private --root (the shim adds the
	// namespace).
	if out, err := exec.Command(c.Runc, "--root", filepath.Join(c.Dir, "runc", "k8s.io"), "state", podID).CombinedOutput(); err != nil {
		t.Errorf("pod %s: not run by %s: %v\n%s", podID, c.Runc, err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := c.CRI(t)
	p, err := k.RunPod(ctx, PodConfig("hello-go", "harness", t.TempDir(), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	_, log, err = k.Run(ctx, p, ContainerConfig("echo", PauseImage, &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, "/bin/grep", "Seccomp:", "/proc/self/status"))
	if err != nil || log != "Seccomp:\t2\n" {
		t.Errorf("Go CRI client, RuntimeDefault: %q, %v", log, err)
	}
}

// TestNewstackRequiredPlugin: with a required NRI plugin absent, crictl
// shows the validator's refusal (logrus-quoted, as crictl prints it).
func TestNewstackRequiredPlugin(t *testing.T) {
	c := NewContainerd(t, ContainerdOptions{Newstack: true, RequiredPlugins: []string{"nobody"}})
	_, _, _, err := c.CrictlRun(t, "", PodConfig("req", "harness", t.TempDir(), nil), ContainerConfig("echo", PauseImage, nil, "/bin/echo"))
	if err == nil || !strings.Contains(err.Error(), `required plugin \"nobody\" not present`) {
		t.Errorf("crictl without the required plugin: %v", err)
	}
}
