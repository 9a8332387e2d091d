package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI drives a containerd's CRI plugin with the Go client, as the kubelet
// does. Pods it runs are stopped and removed when the test ends.
type CRI struct {
	Runtime cri.RuntimeServiceClient
	Image   cri.ImageServiceClient
	pods    []string
}

// Pod is a pod sandbox RunPod started.
type Pod struct {
	ID     string
	Config *cri.PodSandboxConfig
}

// NewCRI connects to socket's CRI service.
func NewCRI(t testing.TB, socket string) *CRI {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	k := &CRI{Runtime: cri.NewRuntimeServiceClient(conn), Image: cri.NewImageServiceClient(conn)}
	t.Cleanup(func() {
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range k.pods {
			if _, err := k.Runtime.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("StopPodSandbox %s: %v", id, err)
			}
			if _, err := k.Runtime.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("RemovePodSandbox %s: %v", id, err)
			}
		}
	})
	return k
}

// CRI is NewCRI on c's socket.
func (c *Containerd) CRI(t testing.TB) *CRI { t.Helper(); return NewCRI(t, c.Socket) }

// PodConfig is a host-network pod (no CNI needed) logging under logDir.
// It sets no hostname: a host-network pod has no UTS namespace, and runc
// refuses to set one (the kubelet leaves it empty too).
func PodConfig(name, namespace, logDir string, annotations map[string]string) *cri.PodSandboxConfig {
	return &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: namespace + "-" + name + "-uid"},
		LogDirectory: logDir,
		Annotations:  annotations,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
		}},
	}
}

// ContainerConfig runs command from image, logging to name.log in the
// pod's log directory, with the CRI seccomp profile sp (nil: none asked).
func ContainerConfig(name, image string, sp *cri.SecurityProfile, command ...string) *cri.ContainerConfig {
	return &cri.ContainerConfig{
		Metadata: &cri.ContainerMetadata{Name: name},
		Image:    &cri.ImageSpec{Image: image},
		Command:  command,
		LogPath:  name + ".log",
		Linux:    &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{Seccomp: sp}},
	}
}

// RunPod runs the sandbox cfg under runtime handler ("" for the default).
func (k *CRI) RunPod(ctx context.Context, cfg *cri.PodSandboxConfig, handler string) (*Pod, error) {
	resp, err := k.Runtime.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return nil, err
	}
	k.pods = append(k.pods, resp.PodSandboxId)
	return &Pod{ID: resp.PodSandboxId, Config: cfg}, nil
}

// Start creates and starts cc in p, returning the container's id.
func (k *CRI) Start(ctx context.Context, p *Pod, cc *cri.ContainerConfig) (string, error) {
	cr, err := k.Runtime.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: p.ID, Config: cc, SandboxConfig: p.Config})
	if err != nil {
		return "", err
	}
	_, err = k.Runtime.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: cr.ContainerId})
	return cr.ContainerId, err
}

// Wait waits for container id to exit and returns its status.
func (k *CRI) Wait(ctx context.Context, id string) (*cri.ContainerStatus, error) {
	for {
		st, err := k.Runtime.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return nil, err
		}
		if st.Status.State == cri.ContainerState_CONTAINER_EXITED {
			return st.Status, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("container %s still %v: %w", id, st.Status.State, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Run starts cc in p, waits for it to exit and returns its id and output
// (stdout and stderr, in order). An exit code other than 0 is an error.
func (k *CRI) Run(ctx context.Context, p *Pod, cc *cri.ContainerConfig) (id, log string, err error) {
	if id, err = k.Start(ctx, p, cc); err != nil {
		return id, "", err
	}
	st, err := k.Wait(ctx, id)
	if err != nil {
		return id, "", err
	}
	log, err = ContainerLog(filepath.Join(p.Config.LogDirectory, cc.LogPath))
	if err == nil && st.ExitCode != 0 {
		err = fmt.Errorf("container %s exited %d: %s", cc.Metadata.Name, st.ExitCode, st.Message)
	}
	return id, log, err
}

// WaitImage waits until CRI sees image: it learns of imported images from
// events.
func (k *CRI) WaitImage(ctx context.Context, image string) error {
	for {
		st, err := k.Image.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: image}})
		if err == nil && st.Image != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRI does not see %s: %v: %w", image, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Containerd) waitImage(t testing.TB, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CRI(t).WaitImage(ctx, image); err != nil {
		t.Fatalf("%v\n%s", err, c.Log())
	}
}

// ContainerLog returns the text of a CRI container log, whose lines are
// "TIME STREAM TAG text".
func ContainerLog(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.SplitN(line, " ", 4); len(f) == 4 {
			sb.WriteString(f[3] + "\n")
		}
	}
	return sb.String(), nil
}

// Crictl returns `crictl --config C args...`, C pointing runtime and image
// endpoints at this containerd (never the host's /etc/crictl.yaml). Only on
// the new stack.
func (c *Containerd) Crictl(args ...string) *exec.Cmd {
	return exec.Command(c.CrictlBin, append([]string{"--config", filepath.Join(c.Dir, "crictl.yaml")}, args...)...)
}

// CrictlOut runs Crictl(args...) and returns its trimmed stdout, or an
// error holding its stderr, which is where crictl prints the CRI error.
func (c *Containerd) CrictlOut(args ...string) (string, error) {
	cmd := c.Crictl(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// CrictlFile writes v (a CRI config: crictl reads the API's JSON names) to
// a file for crictl's runp and create.
func CrictlFile(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "crictl.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// CrictlRun does what an operator does by hand: `crictl runp pod.json`
// (unless podID is given), `crictl create POD container.json pod.json`,
// `crictl start`, then waits for the container to exit (`crictl inspect`)
// and returns the pod's and container's ids and `crictl logs`. The first
// failing step's error holds crictl's stderr.
func (c *Containerd) CrictlRun(t testing.TB, podID string, pod *cri.PodSandboxConfig, cc *cri.ContainerConfig) (string, string, string, error) {
	t.Helper()
	podFile, ccFile := CrictlFile(t, pod), CrictlFile(t, cc)
	var err error
	if podID == "" {
		if podID, err = c.CrictlOut("runp", podFile); err != nil {
			return "", "", "", err
		}
	}
	id, err := c.CrictlOut("create", podID, ccFile, podFile)
	if err != nil {
		return podID, "", "", err
	}
	if _, err := c.CrictlOut("start", id); err != nil {
		return podID, id, "", err
	}
	for i := 0; ; i++ {
		state, err := c.CrictlOut("inspect", "-o", "go-template", "--template", "{{.status.state}}", id)
		if err != nil {
			return podID, id, "", err
		}
		if state == "CONTAINER_EXITED" {
			break
		}
		if i > 600 {
			return podID, id, "", fmt.Errorf("crictl: container %s still %s", id, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := c.Crictl("logs", id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return podID, id, "", fmt.Errorf("crictl logs %s: %w: %s", id, err, out)
	}
	return podID, id, string(out), nil
}
