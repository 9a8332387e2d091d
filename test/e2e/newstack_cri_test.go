package e2e

import (
	"context"
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

// installNode is a node tree for the real seccomp-install whose
// /etc/containerd is the private containerd's directory and whose prefix
// is a real directory, so that what install writes is what that containerd
// reads and runs: R/etc/containerd -> ctd.Dir, R/PREFIX -> PREFIX. bin
// holds the binaries to install. It returns the root and the prefix.
func installNode(t *testing.T, ctd *harness.Containerd) (root, prefix string) {
	t.Helper()
	root, prefix = t.TempDir(), t.TempDir()
	for link, target := range map[string]string{"/etc/containerd": ctd.Dir, prefix: prefix} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root, prefix
}

// installBins is a --bin directory: the built binaries, but seccomp-shim
// is a wrapper giving the shim the test's policy (containerd's runc shim
// passes no environment to its BinaryName).
func installBins(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	harness.ShimWrapper(t, filepath.Join(dir, "seccomp-shim"), bins.shim, cfg)
	built := filepath.Dir(bins.shim)
	for _, b := range []string{"seccomp-hook", "seccomp-agent", "seccomp-install"} {
		if err := os.Symlink(filepath.Join(built, b), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// editConfig applies replacements (old, new, ...) to the private
// containerd's config.toml, each of which must apply: an operator's edits.
func editConfig(t *testing.T, ctd *harness.Containerd, pairs ...string) {
	t.Helper()
	b, err := os.ReadFile(ctd.Config)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s has no %q", ctd.Config, pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(ctd.Config, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// confDImports makes the private config.toml import conf.d/*.toml, relative
// to itself: on a node that is /etc/containerd/conf.d/*.toml, which covers
// install's drop-in, so install writes the drop-in and leaves config.toml
// alone (an imports entry install added would name the host's
// /etc/containerd, which no test may use).
const confDImports = "version = 3\nimports = [\"conf.d/*.toml\"]\n"

// TestNewstackWrapperCRI: the runtime handler seccomp-shim on containerd
// 2.4 with runc 1.3, registered by seccomp-install's version = 3 drop-in
// (the real binary, writing into the private containerd's directory), then
// driven through CRI as the kubelet (the Go client) and an operator
// (crictl) do: the policy's profile for a pod without one, Unconfined
// overridden, RuntimeDefault kept, an annotation refused with the rule and
// the reason, and a denial audited by the agent with the pod's names.
func TestNewstackWrapperCRI(t *testing.T) {
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{Newstack: true})
	// writeConfig names the runc on PATH as the shim's runtime: runc 1.3.
	t.Setenv("PATH", filepath.Dir(ctd.Runc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	agentSock := filepath.Join(t.TempDir(), "run", "agent.sock")
	cfg, profiles := writeConfig(t, fmt.Sprintf(`
[audit]
mode = "always"
socket = %q
unreachable = "refuse"

[[rule]]
name = "pause"
match.annotations = { "io.kubernetes.cri.container-type" = "sandbox" }
profile = "default"
existing = "replace"

[[rule]]
name = "tenants"
match.namespaces = ["team-*"]
profile = "eacces"
existing = "replace"
allowed_profiles = ["enoent"]

[[rule]]
name = "others"
profile = "default"
existing = "keep"
`, agentSock))
	writeProfile(t, profiles, "eacces", eaccesProfile)
	writeProfile(t, profiles, "enoent", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}`)
	_, auditLog := startAgentAt(t, agentSock, cfg)

	editConfig(t, ctd, "version = 3\n", confDImports)
	before, _ := os.ReadFile(ctd.Config)
	root, prefix := installNode(t, ctd)
	out := seccompInstall(t, "--root", root, "--prefix", prefix, "--bin", installBins(t, cfg), "--engines", "containerd", "--systemd=false", "install", "--nri=off")
	t.Logf("seccomp-install:\n%s", out)
	drop, err := os.ReadFile(filepath.Join(ctd.Dir, "conf.d", "seccomp-shim.toml"))
	if err != nil {
		t.Fatalf("no drop-in in the private containerd's conf.d: %v", err)
	}
	if after, _ := os.ReadFile(ctd.Config); string(after) != string(before) {
		t.Errorf("install edited config.toml although its imports cover the drop-in")
	}
	if !strings.Contains(string(drop), "\nversion = 3\n") || !strings.Contains(string(drop), `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.seccomp-shim.options]`) {
		t.Fatalf("drop-in:\n%s", drop)
	}
	ctd.Restart(t) // what install's "next:" says
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if ok, err := kube.HandlerLoaded(ctx, ctd.Socket, "seccomp-shim"); err != nil || !ok {
		t.Fatalf("containerd 2.4 did not load the handler from the drop-in: %v, %v\n%s", ok, err, drop)
	}

	k := ctd.CRI(t)
	pod := func(name, ns string, ann map[string]string) *harness.Pod {
		t.Helper()
		p, err := k.RunPod(ctx, harness.PodConfig(name, ns, t.TempDir(), ann), "seccomp-shim")
		if err != nil {
			t.Fatalf("RunPodSandbox %s/%s: %v", ns, name, err)
		}
		return p
	}
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	pay, web := pod("pay", "team-a", nil), pod("web", "other", nil)
	ids := map[string]string{}
	for _, c := range []struct {
		p       *harness.Pod
		name    string
		sp      *cri.SecurityProfile
		errno   string
		action  string
		profile string
	}{
		{pay, "none", nil, "EACCES 13", "injected", "eacces"},
		{pay, "unconfined", unconfined, "EACCES 13", "injected", "eacces"},
		{web, "unconfined", unconfined, "EPERM 1", "injected", "default"},
		{web, "runtime-default", &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, "EPERM 1", "kept", "engine profile (kept)"},
	} {
		id, log, err := k.Run(ctx, c.p, harness.ContainerConfig(c.name, harness.PauseImage, c.sp, probeCmd...))
		if err != nil {
			t.Fatalf("%s/%s: %v\n%s", c.p.Config.Metadata.Name, c.name, err, log)
		}
		want(t, log, "Seccomp:\t2", "keyctl errno "+c.errno, "getpid ok")
		ids[id] = c.p.Config.Metadata.Namespace + "/" + c.name
		if d := shimDecisions(t, cfg)[id]; d == nil || d["action"] != c.action || d["profile"] != c.profile {
			t.Errorf("%s/%s: decision %v, want %s %s", c.p.Config.Metadata.Name, c.name, d, c.action, c.profile)
		}
	}

	// crictl, as an operator runs it (`crictl runp --runtime seccomp-shim`,
	// create, start): an allowed annotation applies, one the rule doesn't
	// allow fails with the rule and the reason.
	runp := func(cfg *cri.PodSandboxConfig) string {
		t.Helper()
		id, err := ctd.CrictlOut("runp", "--runtime", "seccomp-shim", harness.CrictlFile(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		// Removed while the installed shim is still there to stop it (the
		// harness's own `rmp --all` comes after the test's directories
		// are gone, and would leave the pause process running).
		t.Cleanup(func() {
			if out, err := ctd.Crictl("rmp", "--force", id).CombinedOutput(); err != nil {
				t.Errorf("crictl rmp %s: %v\n%s", id, err, out)
			}
		})
		return id
	}
	ann := harness.PodConfig("pay-ann", "team-a", t.TempDir(), map[string]string{"seccomp-shim.io/profile": "enoent"})
	_, _, log, err := ctd.CrictlRun(t, runp(ann), ann, harness.ContainerConfig("probe", harness.PauseImage, unconfined, probeCmd...))
	if err != nil {
		t.Fatalf("crictl, allowed annotation: %v\n%s", err, log)
	}
	want(t, log, "Seccomp:\t2", "keyctl errno ENOENT 2")
	bad := harness.PodConfig("pay-bad", "team-a", t.TempDir(), map[string]string{"seccomp-shim.io/profile": "strict"})
	_, _, _, err = ctd.CrictlRun(t, runp(bad), bad, harness.ContainerConfig("probe", harness.PauseImage, nil, probeCmd...))
	// crictl logs the CRI error quoted (klog): \" for ".
	if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), `\"`, `"`), `annotation seccomp-shim.io/profile="strict": rule "tenants" allows only ["eacces" "enoent"]: not allowed by policy`) {
		t.Errorf("crictl with an annotation the rule doesn't allow: %v", err)
	} else {
		t.Logf("crictl says: %v", err)
	}

	// The agent audited each denied keyctl with the pod's names.
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := map[string]bool{}
		for _, r := range readAudit(t, auditLog) {
			if r["syscall"] == "keyctl" && ids[fmt.Sprint(r["container"])] != "" {
				found[fmt.Sprint(r["namespace"], "/", r["pod"], "/", r["name"])] = true
			}
		}
		if found["team-a/pay/none"] && found["team-a/pay/unconfined"] && found["other/web/unconfined"] && found["other/web/runtime-default"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records (namespace/pod/container) %v, want the four keyctl denials", found)
		}
		time.Sleep(200 * time.Millisecond)
	}

}

// startAgentAt runs seccomp-agent on socket with config, as startAgent does
// on a socket of its own.
func startAgentAt(t *testing.T, socket, config string) (string, string) {
	t.Helper()
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	daemon(t, "agent", "--socket", socket, "--audit-log", auditLog, "--metrics", "", "--config", config)
	waitSocket(t, socket)
	return socket, auditLog
}
