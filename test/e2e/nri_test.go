package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// nriRules: tenants' namespaces get eacces and may ask for enoent, debug may
// run unconfined, staging runs the default profile in complain mode; the
// rest gets the built-in default rule (Docker's default
// profile, the engine's kept).
const nriRules = `
[[rule]]
name = "tenants"
match.namespaces = ["team-*"]
profile = "eacces"
existing = "tighten"
allowed_profiles = ["enoent"]

[[rule]]
name = "debug"
match.namespaces = ["debug"]
profile = "unconfined"
allow_unconfined = true
existing = "keep"

[[rule]]
name = "staging"
match.namespaces = ["staging"]
existing = "replace"
enforce = false
`

// nriTolerate is the validator's tolerate_missing_plugins_annotation, as
// docs/nri.md gives it for the plugin's own pod: NRI's documented key, the
// one deploy/kubernetes/nri's DaemonSet carries.
const nriTolerate = "tolerate-missing-nri-plugins.noderesource.dev"

// nriNode is a node on the new stack: containerd 2.4 with runc 1.3 and NRI,
// its validator requiring the plugin, and the policy in cfg.
type nriNode struct {
	ctd       *harness.Containerd
	cfg       string // the policy file
	socket    string // the agent's (the policy's audit.socket)
	auditLog  string
	decisions string // the policy's log.file
}

func newNRINode(t *testing.T, rules string) *nriNode {
	t.Helper()
	cfg, profiles := writeConfig(t, rules)
	writeProfile(t, profiles, "eacces", eaccesProfile)
	writeProfile(t, profiles, "enoent", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}`)
	dir := filepath.Dir(cfg)
	n := &nriNode{cfg: cfg, socket: filepath.Join(dir, "run", "agent.sock"), auditLog: filepath.Join(dir, "audit.log"), decisions: filepath.Join(dir, "shim.log")}
	if strings.Contains(rules, "[audit]") {
		t.Fatal("newNRINode: the audit socket is writeConfig's")
	}
	n.ctd = harness.NewContainerd(t, harness.ContainerdOptions{Newstack: true, RequiredPlugins: []string{"seccomp-shim"}, TolerateMissing: nriTolerate})
	return n
}

// agent starts seccomp-agent serving the audit socket and the NRI plugin,
// with extra flags, and waits until the plugin is registered.
func (n *nriNode) agent(t *testing.T, extra ...string) (stop func(os.Signal), output string) {
	t.Helper()
	args := append([]string{"--socket", n.socket, "--audit-log", n.auditLog, "--metrics", "", "--config", n.cfg, "--nri-socket", n.ctd.NRISocket}, extra...)
	stop, output = daemonOut(t, "agent", args...)
	waitOutput(t, output, "registered with NRI", 1)
	return stop, output
}

// decisionsByID reads the plugin's decisions from log.file.
func (n *nriNode) decisionsByID(t *testing.T) map[string]map[string]any {
	t.Helper()
	return shimDecisions(t, n.cfg)
}

// probeCmd prints the container's seccomp mode and what keyctl and getpid
// return.
var probeCmd = []string{"/bin/probe", "status", "call", "keyctl", "call", "getpid"}

// TestNRI: the plugin inside seccomp-agent, on containerd 2.4 + runc 1.3,
// driven through CRI by crictl and by the Go client as the kubelet does.
func TestNRI(t *testing.T) {
	n := newNRINode(t, nriRules)
	ctd := n.ctd
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k := ctd.CRI(t)

	// The validator requires the plugin: while it is down, no container
	// is created, and crictl says why.
	waiting := harness.PodConfig("waiting", "web", t.TempDir(), nil)
	podID, _, _, err := ctd.CrictlRun(t, "", waiting, harness.ContainerConfig("probe", harness.PauseImage, nil, probeCmd...))
	if err == nil || !strings.Contains(err.Error(), `required plugin \"seccomp-shim\" not present`) {
		t.Fatalf("without the plugin: %v", err)
	}
	t.Logf("plugin down: %v", err)
	// The plugin's own pod (the DaemonSet's) tolerates its absence.
	own := harness.PodConfig("agent", "kube-system", t.TempDir(), map[string]string{nriTolerate: "true"})
	if _, _, log, err := ctd.CrictlRun(t, "", own, harness.ContainerConfig("agent", harness.PauseImage, nil, "/bin/echo", "up")); err != nil || log != "up\n" {
		t.Errorf("the plugin's own pod, tolerating: %q, %v", log, err)
	}
	metrics := freeAddr(t)
	_, agentOut := n.agent(t, "--metrics", metrics)
	// The same pod's container starts once the plugin is up.
	_, id, log, err := ctd.CrictlRun(t, podID, waiting, harness.ContainerConfig("probe", harness.PauseImage, nil, probeCmd...))
	if err != nil {
		t.Fatalf("with the plugin up: %v", err)
	}
	want(t, log, "Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok")

	type check struct {
		name, id, rule, profile, action, cri string
	}
	checks := []check{{"web/waiting/probe (crictl)", id, "built-in default", "default", "injected", "none"}}
	pods := map[string]*harness.Pod{}
	pod := func(namespace, name string, ann map[string]string) *harness.Pod {
		t.Helper()
		if p := pods[namespace+"/"+name]; p != nil {
			return p
		}
		p, err := k.RunPod(ctx, harness.PodConfig(name, namespace, t.TempDir(), ann), "")
		if err != nil {
			t.Fatalf("RunPodSandbox %s/%s: %v", namespace, name, err)
		}
		pods[namespace+"/"+name] = p
		return p
	}
	localhost := filepath.Join(t.TempDir(), "localhost.json")
	// Allows keyctl, denies mount: kept as it is in web, tightened by eacces
	// in team-a.
	if err := os.WriteFile(localhost, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	runtimeDefault := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}
	local := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Localhost, LocalhostRef: localhost}
	for _, c := range []struct {
		namespace, pod string
		ann            map[string]string
		name           string
		sp             *cri.SecurityProfile
		out            []string
		rule, profile  string
		action, cri    string
	}{
		{"web", "app", nil, "unconfined", unconfined, []string{"Seccomp:\t2", "keyctl errno EPERM 1"}, "built-in default", "default", "injected", "unconfined"},
		{"team-a", "pay", nil, "unconfined", unconfined, []string{"Seccomp:\t2", "keyctl errno EACCES 13"}, "tenants", "eacces", "injected", "unconfined"},
		{"team-a", "pay-ann", map[string]string{"seccomp-shim.io/profile": "enoent"}, "annotated", nil, []string{"Seccomp:\t2", "keyctl errno ENOENT 2"}, "tenants", "enoent", "injected", "none"},
		{"web", "app", nil, "runtime-default", runtimeDefault, []string{"Seccomp:\t2", "keyctl errno EPERM 1"}, "built-in default", "engine profile (kept)", "kept", "runtime_default"},
		{"team-a", "pay", nil, "runtime-default", runtimeDefault, []string{"Seccomp:\t2", "keyctl errno EPERM 1"}, "tenants", "", "tightened", "runtime_default"},
		{"web", "app", nil, "localhost", local, []string{"Seccomp:\t2", "keyctl errno EINVAL 22"}, "built-in default", "engine profile (kept)", "kept", "localhost " + localhost},
		{"team-a", "pay", nil, "localhost", local, []string{"Seccomp:\t2", "keyctl errno EACCES 13"}, "tenants", "", "tightened", "localhost " + localhost},
		{"debug", "shell", nil, "unconfined", unconfined, []string{"Seccomp:\t0", "keyctl errno EINVAL 22"}, "debug", "unconfined", "unconfined", "unconfined"},
		{"staging", "web", nil, "complain", nil, []string{"Seccomp:\t2", "keyctl errno EINVAL 22"}, "staging", "default", "injected", "none"},
	} {
		p := pod(c.namespace, c.pod, c.ann)
		id, log, err := k.Run(ctx, p, harness.ContainerConfig(c.name, harness.PauseImage, c.sp, probeCmd...))
		name := c.namespace + "/" + c.pod + "/" + c.name
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want(t, log, append(c.out, "getpid ok")...)
		checks = append(checks, check{name, id, c.rule, c.profile, c.action, c.cri})
	}

	// A profile the rule does not allow: the create fails, and crictl
	// shows the rule and the reason.
	bad := harness.PodConfig("pay-bad", "team-a", t.TempDir(), map[string]string{"seccomp-shim.io/profile": "strict"})
	badPod, _, _, err := ctd.CrictlRun(t, "", bad, harness.ContainerConfig("probe", harness.PauseImage, nil, probeCmd...))
	if err == nil || !strings.Contains(err.Error(), `annotation seccomp-shim.io/profile=\"strict\": rule \"tenants\" allows only [\"eacces\" \"enoent\"]: not allowed by policy`) {
		t.Errorf("crictl, a profile not allowed: %v", err)
	} else {
		t.Logf("refused: %v", err)
	}

	d := n.decisionsByID(t)
	for _, c := range checks {
		rec := d[c.id]
		if rec == nil {
			t.Errorf("%s: no decision for %s", c.name, c.id)
			continue
		}
		if rec["rule"] != c.rule || (c.profile != "" && rec["profile"] != c.profile) || rec["action"] != c.action ||
			rec["cri_profile"] != c.cri || rec["component"] != "seccomp-agent nri" {
			t.Errorf("%s: decision %v; want rule %q profile %q action %q cri_profile %q", c.name, rec, c.rule, c.profile, c.action, c.cri)
		}
	}
	// Pause containers: containerd creates them before NRI sees the pod's
	// containers, so the plugin is not asked; every sandbox runs and is
	// ready, the refused one's too.
	sandboxes, err := ctd.CrictlOut("pods", "-q", "--state", "ready")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append([]string{podID, badPod}, ids(pods)...) {
		if !strings.Contains(sandboxes, id) {
			t.Errorf("sandbox %s not ready: %s", id, sandboxes)
		}
		if d[id] != nil {
			t.Errorf("sandbox %s: the plugin decided on it: %v", id, d[id])
		}
	}

	// Counted, by action and rule.
	text := getMetrics(t, metrics)
	for _, line := range []string{`seccomp_agent_nri_creates_total{action="injected",rule="tenants"} 2`, `seccomp_agent_nri_creates_total{action="refused",rule=""} 1`,
		`seccomp_agent_nri_creates_total{action="tightened",rule="tenants"} 2`, "seccomp_agent_nri_connected 1"} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, text)
		}
	}

	// The denials were audited with the pod's names.
	time.Sleep(1500 * time.Millisecond) // the writer flushes within a second
	found := map[string]bool{}
	for _, r := range readAudit(t, n.auditLog) {
		k := fmt.Sprint(r["namespace"], "/", r["pod"], "/", r["name"], " ", r["syscall"], " ", r["errno"])
		if r["action"] == "complain" {
			k += " complain"
		}
		found[k] = true
	}
	for _, w := range []string{"web/waiting/probe keyctl 1", "web/app/unconfined keyctl 1", "team-a/pay/unconfined keyctl 13", "team-a/pay-ann/annotated keyctl 2",
		"staging/web/complain keyctl 1 complain"} {
		if !found[w] {
			t.Errorf("no audit record %q in %v", w, found)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(agentOut)
		t.Logf("agent output:\n%s", b)
		b, _ = os.ReadFile(n.decisions)
		t.Logf("decisions:\n%s", b)
	}
}

func ids(pods map[string]*harness.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.ID)
	}
	return out
}

// TestNRIRestart: the agent (and with it the plugin) restarts while a pod
// runs, with the holder keeping the container's notify fd, as the project
// promises for the agent's restarts: the running container is answered by
// the holder meanwhile and by the new agent after, and the new plugin
// registers again and decides for new containers. Then containerd restarts,
// and the plugin connects again by itself.
func TestNRIRestart(t *testing.T) {
	n := newNRINode(t, `
[[notify.rule]]
syscalls = ["keyctl"]
action = "continue"
`)
	dir := t.TempDir()
	private, ctl := filepath.Join(dir, "agent.private.sock"), filepath.Join(dir, "holder.ctl")
	daemon(t, "holder", "hold", "--socket", n.socket, "--agent", private, "--control", ctl)
	waitSocket(t, n.socket)
	waitSocket(t, ctl)
	agent := func() (func(os.Signal), string) {
		stop, out := daemonOut(t, "agent", "--socket", private, "--holder", ctl, "--config", n.cfg, "--metrics", "",
			"--audit-log", n.auditLog, "--nri-socket", n.ctd.NRISocket)
		waitOutput(t, out, "registered with NRI", 1)
		return stop, out
	}
	stop, _ := agent()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k := n.ctd.CRI(t)
	p, err := k.RunPod(ctx, harness.PodConfig("loop", "web", t.TempDir(), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	loop := harness.ContainerConfig("loop", harness.PauseImage, nil, "/bin/sh", "-c", "while true; do /bin/probe call keyctl; sleep 0.1; done")
	if _, err := k.Start(ctx, p, loop); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(p.Config.LogDirectory, loop.LogPath)
	waitFor := func(line string) { t.Helper(); waitCRILastLine(t, logPath, line) }
	waitFor("keyctl errno EINVAL 22") // the agent lets it through; the kernel rejects zero args
	stop(os.Kill)                     // a crash
	waitFor("keyctl errno EPERM 1")   // the holder: the profile's own denial
	stop, out := agent()
	waitFor("keyctl errno EINVAL 22") // the new agent decides again

	// New containers get the policy from the new plugin.
	runProbe := func(name string) {
		t.Helper()
		id, log, err := k.Run(ctx, p, harness.ContainerConfig(name, harness.PauseImage, nil, probeCmd...))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want(t, log, "Seccomp:\t2", "keyctl errno EINVAL 22", "getpid ok")
		if d := n.decisionsByID(t)[id]; d == nil || d["action"] != "injected" || d["audit"] != "audited" {
			t.Errorf("%s: decision %v", name, d)
		}
	}
	runProbe("after-agent-restart")

	// containerd restarts: the plugin connects again, the pod runs on.
	n.ctd.Restart(t)
	waitOutput(t, out, "registered with NRI", 2)
	waitFor("keyctl errno EINVAL 22")
	runProbe("after-containerd-restart")
	// Each registration checked the running pod, which has the policy's
	// (audited) profile: no false alarm.
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "escaped the policy") {
		t.Errorf("a container with the policy's profile reported:\n%s", b)
	}

	log, _ := harness.ContainerLog(logPath)
	if strings.Contains(log, "ENOSYS") {
		t.Errorf("a routed syscall got ENOSYS: the notify fd was lost:\n%s", tail(log, 20))
	}
}

// waitCRILastLine waits until the last line of a CRI container log is line.
func waitCRILastLine(t *testing.T, path, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var log string
	for time.Now().Before(deadline) {
		log, _ = harness.ContainerLog(path)
		if lines := strings.Split(strings.TrimSpace(log), "\n"); lines[len(lines)-1] == line {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the container never printed %q; last lines:\n%s", line, tail(log, 5))
}

// TestNRIOptionalPlugin: a node without required_plugins. A container created
// before the plugin registers runs as the pod asked (unconfined here), and
// the plugin reports it once registered: a warning naming it, and a gauge.
// Where the operator told NRI's default validator to reject seccomp
// adjustments of Unconfined containers, the plugin's adjustment fails the
// create (closed, never a container without the policy), and crictl says
// which validator and why; kept profiles need no adjustment without the
// audit, and pass.
func TestNRIOptionalPlugin(t *testing.T) {
	cfg, profiles := writeConfig(t, "[audit]\nmode = \"off\"\n")
	writeProfile(t, profiles, "eacces", eaccesProfile)
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{Newstack: true, CRI: `
[plugins."io.containerd.nri.v1.nri".default_validator]
  enable = true
  reject_unconfined_seccomp_adjustment = true
`})
	pod := harness.PodConfig("app", "web", t.TempDir(), nil)
	unconfined := &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	early := harness.CrictlFile(t, harness.ContainerConfig("early", harness.PauseImage, unconfined, "/bin/sleep", "100000"))
	podID, err := ctd.CrictlOut("runp", harness.CrictlFile(t, pod))
	if err != nil {
		t.Fatal(err)
	}
	id, err := ctd.CrictlOut("create", podID, early, harness.CrictlFile(t, pod))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctd.CrictlOut("start", id); err != nil {
		t.Fatal(err)
	}

	metrics := freeAddr(t)
	_, out := daemonOut(t, "agent", "--socket", filepath.Join(t.TempDir(), "agent.sock"), "--audit-log", filepath.Join(t.TempDir(), "audit.log"),
		"--metrics", metrics, "--config", cfg, "--nri-socket", ctd.NRISocket)
	waitOutput(t, out, "registered with NRI", 1)
	waitOutput(t, out, "running container escaped the policy", 1)
	b, _ := os.ReadFile(out)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "escaped the policy") {
			t.Logf("reported: %s", line)
			if !strings.Contains(line, "container=early") || !strings.Contains(line, "namespace=web") || !strings.Contains(line, "pod=app") {
				t.Errorf("the warning does not name the container: %s", line)
			}
		}
	}
	text := getMetrics(t, metrics)
	if !strings.Contains(text, "seccomp_agent_nri_escaped_containers 1\n") {
		t.Errorf("metrics lack the escaped container:\n%s", text)
	}

	_, _, _, err = ctd.CrictlRun(t, podID, pod, harness.ContainerConfig("unconfined", harness.PauseImage, unconfined, probeCmd...))
	if err == nil || !strings.Contains(err.Error(), `validator \"00-default-validator\" rejected container adjustment`) {
		t.Fatalf("an adjusted Unconfined container: %v", err)
	}
	t.Logf("rejected: %v", err)
	_, _, log, err := ctd.CrictlRun(t, podID, pod, harness.ContainerConfig("runtime-default", harness.PauseImage,
		&cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, probeCmd...))
	if err != nil {
		t.Fatalf("RuntimeDefault, kept: %v", err)
	}
	want(t, log, "Seccomp:\t2", "keyctl errno EPERM 1")
}

// freeAddr is a free local TCP address for an agent's --metrics.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// getMetrics scrapes the agent's /metrics once.
func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNRIPrivileged: a privileged pod asking for RuntimeDefault (the
// kubelet's SeccompDefault) gets no policy from containerd; the rule's
// Docker default profile the plugin injects is resolved for all
// capabilities, as the shim would: mount, allowed by CAP_SYS_ADMIN, reaches
// the kernel instead of failing with the profile's EPERM. The decision says
// which capabilities.
func TestNRIPrivileged(t *testing.T) {
	n := newNRINode(t, `
[[rule]]
name = "privileged"
match.namespaces = ["node-agents"]
profile = "default"
existing = "replace"
`)
	n.agent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := n.ctd.CRI(t)
	pc := harness.PodConfig("csi", "node-agents", t.TempDir(), nil)
	pc.Linux.SecurityContext.Privileged = true
	p, err := k.RunPod(ctx, pc, "")
	if err != nil {
		t.Fatal(err)
	}
	cc := harness.ContainerConfig("driver", harness.PauseImage, &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault},
		"/bin/probe", "status", "call", "mount", "call", "getpid")
	cc.Linux.SecurityContext.Privileged = true
	id, log, err := k.Run(ctx, p, cc)
	if err != nil {
		t.Fatal(err)
	}
	want(t, log, "Seccomp:\t2", "getpid ok")
	if strings.Contains(log, "mount errno EPERM") {
		t.Errorf("privileged: mount denied by the profile:\n%s", log)
	}
	if rec := n.decisionsByID(t)[id]; rec == nil || rec["action"] != "injected" || !strings.HasPrefix(fmt.Sprint(rec["capabilities"]), "all (privileged") {
		t.Errorf("decision %v", rec)
	}
}

// TestNRIConfigAnnotations: NRI shows a container's annotations with its CRI
// config's over the spec's (a device plugin's reach the config through the
// kubelet); ones naming another namespace don't choose its rule: containerd's
// own, in the spec, do, as the shim sees them.
func TestNRIConfigAnnotations(t *testing.T) {
	n := newNRINode(t, nriRules)
	n.agent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := n.ctd.CRI(t)
	p, err := k.RunPod(ctx, harness.PodConfig("pay", "team-a", t.TempDir(), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	cc := harness.ContainerConfig("probe", harness.PauseImage, &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}, probeCmd...)
	cc.Annotations = map[string]string{"io.kubernetes.cri.sandbox-namespace": "debug", "io.kubernetes.cri.container-type": "sandbox"}
	id, log, err := k.Run(ctx, p, cc)
	if err != nil {
		t.Fatal(err)
	}
	want(t, log, "Seccomp:\t2", "keyctl errno EACCES 13", "getpid ok")
	if rec := n.decisionsByID(t)[id]; rec == nil || rec["rule"] != "tenants" || rec["namespace"] != "team-a" {
		t.Errorf("decision %v", rec)
	}
}
