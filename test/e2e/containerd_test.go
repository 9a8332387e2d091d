package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/seccomp-shim/seccomp-shim/internal/install/kube"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// ctdImage is the test rootfs as an image; its Cmd sleeps, so it also
// serves as the CRI sandbox (pause) image.
const ctdImage = "docker.io/library/seccomp-shim-e2e:latest"

const eaccesProfile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`

// shimWrapper writes an executable that runs the shim with config cfg:
// containerd's runc shim passes no environment and no extra argv to its
// BinaryName.
func shimWrapper(t *testing.T, cfg string) string {
	t.Helper()
	return harness.ShimWrapper(t, filepath.Join(t.TempDir(), "seccomp-shim"), bins.shim, cfg)
}

// shimDecisions reads the shim's decision log (next to the config) by
// container id.
func shimDecisions(t *testing.T, cfg string) map[string]map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(filepath.Dir(cfg), "shim.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]map[string]any{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["id"] != nil && rec["profile"] != nil {
			m[fmt.Sprint(rec["id"])] = rec
		}
	}
	return m
}

// TestContainerdCtr: `ctr run --runc-binary WRAPPER` runs the shim with no
// CRI at all. ctr sets no seccomp profile without --seccomp, so the default
// rule injects Docker's default; a rule on the container id picks another.
func TestContainerdCtr(t *testing.T) {
	harness.RequireRoot(t)
	cfg, profiles := writeConfig(t, `
[[rule]]
match.ids = ["eacces-*"]
profile = "eacces"
existing = "replace"
`)
	writeProfile(t, profiles, "eacces", eaccesProfile)
	wrapper := shimWrapper(t, cfg)
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{})
	ctd.Import(t, "", harness.Rootfs(t), ctdImage, []string{"/bin/sleep", "100000"})

	for _, c := range []struct {
		id, errno   string
		seccompFlag bool
	}{
		{"plain-1", "keyctl errno EPERM 1", false},
		{"eacces-1", "keyctl errno EACCES 13", false},
		{"seccomp-1", "keyctl errno EPERM 1", true}, // ctr's --seccomp: containerd's default, kept
	} {
		args := []string{"run", "--rm", "--runc-binary", wrapper, "--runc-root", ctd.RuncRoot()}
		if c.seccompFlag {
			args = append(args, "--seccomp")
		}
		args = append(args, ctdImage, c.id, "/bin/probe", "status", "call", "keyctl", "call", "getpid")
		out, err := ctd.Ctr("", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ctr run: %v\n%s", c.id, err, out)
		}
		want(t, string(out), "Seccomp:\t2", c.errno, "getpid ok")
	}
	d := shimDecisions(t, cfg)
	for id, action := range map[string]string{"plain-1": "injected", "eacces-1": "injected", "seccomp-1": "kept"} {
		if d[id] == nil || d[id]["action"] != action {
			t.Errorf("%s: decision %v, want action %q", id, d[id], action)
		}
	}
}

// TestContainerdCRI drives containerd's CRI plugin as the kubelet does, with
// a RuntimeClass handler "seccomp-shim" whose BinaryName is the shim.
func TestContainerdCRI(t *testing.T) {
	harness.RequireRoot(t)
	cfg, profiles := writeConfig(t, `
[[rule]]
name = "pause"
match.annotations = { "io.kubernetes.cri.container-type" = "sandbox" }
profile = "default"
existing = "replace"

[[rule]]
name = "named"
match.containers = ["special-*"]
profile = "enoent"
existing = "replace"

[[rule]]
name = "strict"
match.namespaces = ["strict-*"]
allowed_profiles = ["strict"]
existing = "replace"

[[rule]]
name = "tenants"
match.namespaces = ["team-*"]
profile = "eacces"
existing = "replace"
allowed_profiles = ["enoent"]
`)
	writeProfile(t, profiles, "eacces", eaccesProfile)
	writeProfile(t, profiles, "enoent", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}`)
	wrapper := shimWrapper(t, cfg)
	// A Localhost profile is a file on the node, read by containerd.
	localhost := filepath.Join(t.TempDir(), "localhost-eacces.json")
	if err := os.WriteFile(localhost, []byte(eaccesProfile), 0o644); err != nil {
		t.Fatal(err)
	}

	criConf := fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.seccomp-shim]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["seccomp-shim.io/*"]

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.seccomp-shim.options]
  BinaryName = %q
  Root = "{{DIR}}/runc"
`, wrapper)
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{SandboxImage: ctdImage, CRI: criConf})
	ctd.Import(t, "k8s.io", harness.Rootfs(t), ctdImage, []string{"/bin/sleep", "100000"})
	k := ctd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// What the DaemonSet's ready container asks before labelling the node.
	if ok, err := kube.HandlerLoaded(ctx, ctd.Socket, "seccomp-shim"); err != nil || !ok {
		t.Errorf("HandlerLoaded(seccomp-shim) = %v, %v; want true", ok, err)
	}
	if ok, err := kube.HandlerLoaded(ctx, ctd.Socket, "not-configured"); err != nil || ok {
		t.Errorf("HandlerLoaded(not-configured) = %v, %v; want false", ok, err)
	}

	// The CRI plugin learns of imported images from events: wait for it.
	if err := k.WaitImage(ctx, ctdImage); err != nil {
		t.Fatal(err)
	}

	// Pods are stopped and removed when the test ends (harness.CRI).
	var pods []*harness.Pod
	runPod := func(name, namespace string, annotations map[string]string) *harness.Pod {
		t.Helper()
		p, err := k.RunPod(ctx, harness.PodConfig(name, namespace, t.TempDir(), annotations), "seccomp-shim")
		if err != nil {
			t.Fatalf("RunPodSandbox %s/%s: %v", namespace, name, err)
		}
		pods = append(pods, p)
		return p
	}
	// runContainer runs command (by default the probe) in p and returns its
	// log; it must exit 0.
	runContainer := func(p *harness.Pod, name string, seccomp *cri.SecurityProfile, command ...string) (id, log string) {
		t.Helper()
		if len(command) == 0 {
			command = []string{"/bin/probe", "status", "call", "keyctl", "call", "getpid"}
		}
		id, log, err := k.Run(ctx, p, harness.ContainerConfig(name, ctdImage, seccomp, command...))
		if err != nil {
			t.Fatalf("container %s: %v\n%s", name, err, log)
		}
		return id, log
	}

	teamA := runPod("pay", "team-a", nil)
	teamAnn := runPod("pay-ann", "team-a", map[string]string{"seccomp-shim.io/profile": "enoent"})
	other := runPod("web", "other", nil)

	type check struct {
		name, id, errno, rule, profile, action string
	}
	var checks []check
	add := func(p *harness.Pod, name string, sp *cri.SecurityProfile, errno, rule, profile, action string) {
		id, log := runContainer(p, name, sp)
		want(t, log, "Seccomp:\t2", "keyctl errno "+errno, "getpid ok")
		checks = append(checks, check{p.Config.Metadata.Namespace + "/" + p.Config.Metadata.Name + "/" + name, id, errno, rule, profile, action})
	}
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	// By namespace, pod annotation and container name.
	add(teamA, "probe", unconfined, "EACCES 13", "tenants", "eacces", "injected")
	add(teamAnn, "probe", unconfined, "ENOENT 2", "tenants", "enoent", "injected")
	add(other, "special-1", unconfined, "ENOENT 2", "named", "enoent", "injected")
	// Kubernetes' seccompProfile types, under the default rule (keep).
	add(other, "runtime-default", &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, "EPERM 1", "", "engine profile (kept)", "kept")
	add(other, "unconfined", unconfined, "EPERM 1", "", "default", "injected")
	add(other, "localhost", &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Localhost, LocalhostRef: localhost}, "EACCES 13", "", "engine profile (kept)", "kept")

	// A profile the rule does not allow fails the start, and the shim's
	// error reaches the CRI client (through runc's --log JSON).
	bad := runPod("pay-bad", "team-a", map[string]string{"seccomp-shim.io/profile": "strict"})
	cr, err := k.Runtime.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: bad.ID, SandboxConfig: bad.Config, Config: &cri.ContainerConfig{
		Metadata: &cri.ContainerMetadata{Name: "probe"}, Image: &cri.ImageSpec{Image: ctdImage},
		Command: []string{"/bin/probe", "status"}, LogPath: "probe.log",
	}})
	if err != nil {
		t.Fatalf("CreateContainer pay-bad: %v", err)
	}
	_, err = k.Runtime.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: cr.ContainerId})
	if err == nil || !strings.Contains(err.Error(), `rule "tenants" allows only ["eacces" "enoent"]: not allowed by policy`) {
		t.Errorf("StartContainer with a profile not allowed: %v", err)
	} else {
		t.Logf("not allowed: %v", err)
	}

	// strict, offered by annotation, starts under CRI, where runc loads
	// the filter before it sets up the user, capabilities and cwd (the
	// container has no noNewPrivileges).
	strict := runPod("strict", "strict-a", map[string]string{"seccomp-shim.io/profile": "strict"})
	if id, log := runContainer(strict, "echo", unconfined, "/bin/echo", "strict", "works"); log != "strict works\n" {
		t.Errorf("strict under CRI: %q", log)
	} else {
		checks = append(checks, check{"strict-a/strict/echo", id, "", "strict", "strict", "injected"})
	}

	d := shimDecisions(t, cfg)
	for _, c := range checks {
		rec := d[c.id]
		if rec == nil {
			t.Errorf("%s: no shim decision for %s", c.name, c.id)
			continue
		}
		t.Logf("%s: rule %v, profile %v, %v", c.name, rec["rule"], rec["profile"], rec["action"])
		if c.rule != "" && rec["rule"] != c.rule || rec["profile"] != c.profile || rec["action"] != c.action {
			t.Errorf("%s: decision %v; want rule %q profile %q action %q", c.name, rec, c.rule, c.profile, c.action)
		}
	}
	// The pause containers went through the shim too, and got the default
	// (the annotated pod's pause ignores seccomp-shim.io/profile).
	for _, p := range pods {
		rec := d[p.ID]
		if rec == nil || rec["rule"] != "pause" || rec["profile"] != "default" {
			t.Errorf("sandbox %s/%s: decision %v, want rule pause, profile default", p.Config.Metadata.Namespace, p.Config.Metadata.Name, rec)
		}
		st, err := k.Runtime.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: p.ID})
		if err != nil || st.Status.State != cri.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox %s: %v %v", p.ID, st, err)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "shim.log"))
		t.Logf("shim log:\n%s", b)
	}
}
