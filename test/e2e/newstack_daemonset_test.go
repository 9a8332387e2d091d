package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestNRIDaemonSetCommands runs the NRI DaemonSet's holder and agent as
// deploy/kubernetes/nri/20-daemonset.yaml writes them, with the ConfigMap's
// policy, against containerd 2.4 + runc 1.3: only the node's paths are
// moved into the test's directory (the sockets, the log, the policy, the
// NRI socket) and the metrics port to a free one. The agent registers with
// NRI; a tenant's pod asking for Unconfined gets Docker's default, its
// denial reaches the agent through the holder and is audited, and the
// metrics the probes GET count it; a kube-system pod keeps Unconfined.
func TestNRIDaemonSetCommands(t *testing.T) {
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{Newstack: true})
	var ds appsv1.DaemonSet
	var cm corev1.ConfigMap
	for f, v := range map[string]any{"nri/20-daemonset.yaml": &ds, "10-configmap.yaml": &cm} {
		b, err := os.ReadFile(filepath.Join("../../deploy/kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := l.Addr().String()
	l.Close()
	node := strings.NewReplacer(
		"/var/run/nri/nri.sock", ctd.NRISocket,
		"/run/seccomp-shim", filepath.Join(dir, "run"),
		"/var/log/seccomp-shim", filepath.Join(dir, "log"),
		"/etc/seccomp-shim", filepath.Join(dir, "etc"),
		"--metrics=:9646", "--metrics="+metrics,
	)
	for _, d := range []string{"log", "etc/profiles"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// What the policy init container installs.
	if err := os.WriteFile(filepath.Join(dir, "etc", "config.toml"), []byte(node.Replace(cm.Data["config.toml"])), 0o644); err != nil {
		t.Fatal(err)
	}
	var agentOut string
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name != "holder" && c.Name != "agent" {
			continue
		}
		args := make([]string, len(c.Command)-1)
		for i, a := range c.Command[1:] {
			args[i] = node.Replace(a)
		}
		_, out := daemonOut(t, c.Name, args...)
		if c.Name == "holder" {
			waitSocket(t, filepath.Join(dir, "run", "agent.sock"))
		} else {
			agentOut = out
		}
	}
	waitOutput(t, agentOut, "registered with NRI", 1)

	k := ctd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	for _, c := range []struct {
		ns   string
		want []string
	}{
		{"team-a", []string{"Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok"}},
		{"kube-system", []string{"Seccomp:\t0", "getpid ok"}},
	} {
		pod, err := k.RunPod(ctx, harness.PodConfig("web", c.ns, t.TempDir(), nil), "")
		if err != nil {
			t.Fatalf("%s: RunPodSandbox: %v", c.ns, err)
		}
		_, log, err := k.Run(ctx, pod, harness.ContainerConfig("web", harness.PauseImage, unconfined, probeCmd...))
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.ns, err, log)
		}
		want(t, log, c.want...)
	}
	scrape(t, metrics) // the readiness and liveness probes' GET, counting the keyctl
	deadline := time.Now().Add(10 * time.Second)
	for {
		audited := false
		for _, r := range readAudit(t, filepath.Join(dir, "log", "audit.log")) {
			audited = audited || r["syscall"] == "keyctl" && r["namespace"] == "team-a" && r["pod"] == "web"
		}
		if audited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant's keyctl is not in the audit log")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
