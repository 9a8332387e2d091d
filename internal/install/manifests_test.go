package install

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/seccomp-shim/seccomp-shim/internal/install/kube"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

const manifestDir = "../../deploy/kubernetes"

type manifests struct {
	namespaces     []corev1.Namespace
	configMaps     []corev1.ConfigMap
	daemonSets     []appsv1.DaemonSet
	runtimeClasses []nodev1.RuntimeClass
	accounts       []corev1.ServiceAccount
	roles          []rbacv1.ClusterRole
	bindings       []rbacv1.ClusterRoleBinding
}

// loadManifests decodes every document under deploy/kubernetes strictly
// into its API type: a misspelt or misplaced field is an error here, not a
// field the API server silently drops.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := loadManifestDir(t, manifestDir)
	if len(m.namespaces) != 1 || len(m.configMaps) != 1 || len(m.daemonSets) != 1 || len(m.runtimeClasses) != 1 ||
		len(m.accounts) != 1 || len(m.roles) != 1 || len(m.bindings) != 1 {
		t.Fatalf("want one each of Namespace, ConfigMap, DaemonSet, RuntimeClass, ServiceAccount, ClusterRole, ClusterRoleBinding; got %d %d %d %d %d %d %d",
			len(m.namespaces), len(m.configMaps), len(m.daemonSets), len(m.runtimeClasses), len(m.accounts), len(m.roles), len(m.bindings))
	}
	return m
}

// loadManifestDir decodes the documents of dir's *.yaml files.
func loadManifestDir(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s[%d]: %v", f, i, err)
			}
			strict := func(v any) {
				t.Helper()
				if err := decodeStrict([]byte(doc), v); err != nil {
					t.Errorf("%s[%d] (%s): %v", f, i, tm.Kind, err)
				}
			}
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				var o corev1.Namespace
				strict(&o)
				m.namespaces = append(m.namespaces, o)
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				strict(&o)
				m.configMaps = append(m.configMaps, o)
			case "apps/v1 DaemonSet":
				var o appsv1.DaemonSet
				strict(&o)
				m.daemonSets = append(m.daemonSets, o)
			case "node.k8s.io/v1 RuntimeClass":
				var o nodev1.RuntimeClass
				strict(&o)
				m.runtimeClasses = append(m.runtimeClasses, o)
			case "v1 ServiceAccount":
				var o corev1.ServiceAccount
				strict(&o)
				m.accounts = append(m.accounts, o)
			case "rbac.authorization.k8s.io/v1 ClusterRole":
				var o rbacv1.ClusterRole
				strict(&o)
				m.roles = append(m.roles, o)
			case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
				var o rbacv1.ClusterRoleBinding
				strict(&o)
				m.bindings = append(m.bindings, o)
			default:
				t.Errorf("%s[%d]: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
		}
	}
	return m
}

// decodeStrict refuses what the API server refuses with field validation
// Strict. sigs.k8s.io/yaml.UnmarshalStrict catches unknown and duplicate
// fields but matches names as encoding/json does, ignoring case, so
// "hostPid" would pass it and then be dropped by the API server, which
// matches case-sensitively; the second pass decodes the way the server
// does.
func decodeStrict(doc []byte, v any) error {
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return err
	}
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err == nil && len(strictErrs) > 0 {
		err = fmt.Errorf("%v", strictErrs)
	}
	return err
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, doc := range []string{
		"kind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPid: true\n",
		"kind: DaemonSet\nspec:\n  template:\n    spec:\n      hostpath: {}\n",
		"kind: DaemonSet\nspec:\n  updateStrategy: {type: OnDelete}\n  updateStrategy: {type: OnDelete}\n",
	} {
		var ds appsv1.DaemonSet
		if err := decodeStrict([]byte(doc), &ds); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

func TestRuntimeClass(t *testing.T) {
	rc := loadManifests(t).runtimeClasses[0]
	if rc.Name != runtimeName || rc.Handler != runtimeName {
		t.Errorf("RuntimeClass %s handler %q, want %s", rc.Name, rc.Handler, runtimeName)
	}
	if rc.Scheduling == nil || rc.Scheduling.NodeSelector["seccomp-shim.io/ready"] != "true" {
		t.Errorf("RuntimeClass schedules pods on nodes without the handler: %+v", rc.Scheduling)
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// hostMounts maps each container path of c's mounts to its hostPath.
func hostMounts(t *testing.T, spec corev1.PodSpec, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Errorf("container %s mounts undeclared volume %s", c.Name, vm.Name)
			continue
		}
		if hp := spec.Volumes[i].HostPath; hp != nil {
			out[vm.MountPath] = hp.Path
		}
	}
	return out
}

// recordsOnNode: the agent writes recordings into [record] dir (its
// default: the ConfigMap sets none) on the node, writable: the container's
// root is read-only, where every recording would be lost.
func recordsOnNode(t *testing.T, spec corev1.PodSpec, agent corev1.Container) {
	t.Helper()
	dir := filepath.Dir(policy.DefaultRecordDir)
	i := slices.IndexFunc(agent.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
	if hostMounts(t, spec, agent)[dir] != dir || agent.VolumeMounts[i].ReadOnly {
		t.Errorf("agent: %s is not the node's, writable: recordings are lost (%v)", dir, agent.VolumeMounts)
	}
}

func TestDaemonSet(t *testing.T) {
	m := loadManifests(t)
	ds := m.daemonSets[0]
	ns := m.namespaces[0].Name
	if ds.Namespace != ns || m.configMaps[0].Namespace != ns {
		t.Errorf("namespaces: DaemonSet %s, ConfigMap %s, Namespace %s", ds.Namespace, m.configMaps[0].Namespace, ns)
	}
	if m.namespaces[0].Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("Pod Security would refuse the privileged pods")
	}
	spec := ds.Spec.Template.Spec
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("updateStrategy %q: a rolling update restarts the holder", ds.Spec.UpdateStrategy.Type)
	}
	if !spec.HostPID {
		t.Errorf("without hostPID the agent sees pid 0 for every container process")
	}
	if spec.RuntimeClassName != nil {
		t.Errorf("the agent can't run under the handler it serves")
	}
	if !equalLabels(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v doesn't match template labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}
	// Holder and agent share the host's /run/seccomp-shim, where runc (on
	// the host) finds the holder's socket.
	for _, name := range []string{"holder", "agent"} {
		if hm := hostMounts(t, spec, container(t, spec.Containers, name)); hm["/run/seccomp-shim"] != "/run/seccomp-shim" {
			t.Errorf("%s: /run/seccomp-shim not the host's: %v", name, hm)
		}
	}
	agent := container(t, spec.Containers, "agent")
	if hm := hostMounts(t, spec, agent); hm["/var/log/seccomp-shim"] != "/var/log/seccomp-shim" || hm["/etc/seccomp-shim"] != "/etc/seccomp-shim" {
		t.Errorf("agent mounts %v", hm)
	}
	recordsOnNode(t, spec, agent)
	if !slices.Contains(agent.Command, "--audit-stdout") {
		t.Errorf("agent without --audit-stdout: kubectl logs shows no audit")
	}
	// The holder's and agent's command lines are the systemd units'.
	for name, unit := range map[string][]byte{"holder": holderUnit, "agent": agentUnit} {
		exec := regexp.MustCompile(`(?m)^ExecStart=\S+ (.*)$`).FindSubmatch(unit)
		c := container(t, spec.Containers, name)
		got := strings.Join(c.Command[1:], " ")
		for _, f := range strings.Fields(string(exec[1])) {
			if strings.HasPrefix(f, "--") {
				continue
			}
			if !strings.Contains(got, f) {
				t.Errorf("%s: %q, which the unit passes, is missing from %q", name, f, got)
			}
		}
	}
	install := container(t, spec.InitContainers, "install")
	// The handler on every containerd, 2.x included, where auto would
	// register the NRI plugin that this pod doesn't run.
	if !slices.Contains(install.Command, "--nri=off") {
		t.Errorf("install: %v without --nri=off", install.Command)
	}
	hm := hostMounts(t, spec, install)
	for _, p := range []string{"/usr/local/bin", "/etc/seccomp-shim", "/etc/containerd"} {
		if hm["/host"+p] != p {
			t.Errorf("install: host %s not mounted at /host%s: %v", p, p, hm)
		}
	}
	image := install.Image
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Image != image {
			t.Errorf("%s runs %s, install %s: the node would run other binaries than the pod", c.Name, c.Image, image)
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name != m.configMaps[0].Name {
			t.Errorf("volume %s: ConfigMap %s doesn't exist", v.Name, v.ConfigMap.Name)
		}
	}
}

func equalLabels(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

func TestConfigMapPolicy(t *testing.T) {
	cm := loadManifests(t).configMaps[0]
	data, ok := cm.Data["config.toml"]
	if !ok {
		t.Fatal("no config.toml in the ConfigMap")
	}
	cfg, err := policy.ParseConfig("ConfigMap "+cm.Name, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.Socket != "/run/seccomp-shim/agent.sock" {
		t.Errorf("audit socket %s is not the holder's", cfg.Audit.Socket)
	}
	for _, r := range cfg.Rules {
		if r.Profile == "strict" || slices.Contains(r.AllowedProfiles, "strict") {
			t.Errorf("rule %s: strict kills the pod's pause container (no rt_sigaction, no pause)", r.Name)
		}
	}
}

// The init containers' and the sync container's commands, run as they are
// written against a node tree that has only what the pod mounts: they work,
// and write nowhere else.
func TestDaemonSetCommandsRun(t *testing.T) {
	m := loadManifests(t)
	spec := m.daemonSets[0].Spec.Template.Spec
	root := t.TempDir()
	mounted := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), container(t, spec.Containers, "policy-sync")) {
		for cp, hp := range hostMounts(t, spec, c) {
			if strings.HasPrefix(cp, "/host/") {
				mounted[hp] = true
				os.MkdirAll(filepath.Join(root, hp), 0o755)
			}
		}
	}
	writeTestFile(t, filepath.Join(root, containerdConfig), readFixture(t, "containerd/v2-default.toml"))
	policyDir := t.TempDir()
	writeTestFile(t, filepath.Join(policyDir, "config.toml"), []byte(m.configMaps[0].Data["config.toml"]))
	bins := testBins(t)
	for _, c := range append(slices.Clone(spec.InitContainers), container(t, spec.Containers, "policy-sync")) {
		runPodCommand(t, c, root, policyDir, "--bin", bins)
	}
	if got, _ := os.ReadFile(filepath.Join(root, configPath)); !bytes.Equal(got, []byte(m.configMaps[0].Data["config.toml"])) {
		t.Errorf("the node's policy is not the ConfigMap's")
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		rel = "/" + rel
		if d.IsDir() {
			return nil
		}
		for dir := filepath.Dir(rel); dir != "/"; dir = filepath.Dir(dir) {
			if mounted[dir] {
				return nil
			}
		}
		t.Errorf("%s written outside the pod's host mounts", rel)
		return nil
	})
	if !exists(filepath.Join(root, containerdDropIn)) || !exists(filepath.Join(root, "/usr/local/bin/seccomp-shim")) {
		t.Errorf("install did not install")
	}
}

// runPodCommand runs seccomp-install as container c's command, once (no
// --watch), with the node's / at root and the ConfigMap at policyDir.
func runPodCommand(t *testing.T, c corev1.Container, root, policyDir string, extra ...string) {
	t.Helper()
	args := extra
	for i := 1; i < len(c.Command); i++ {
		a := c.Command[i]
		switch {
		case a == "--watch":
			i++ // once is enough here
			continue
		case a == "/host":
			a = root
		case strings.HasPrefix(a, "/policy/"):
			a = filepath.Join(policyDir, strings.TrimPrefix(a, "/policy/"))
		}
		args = append(args, a)
	}
	if out, code := run(t, args...); code != 0 {
		t.Fatalf("%s: %v: %d\n%s", c.Name, args, code, out)
	}
}

// No container is privileged; each has the capabilities it needs, named,
// and drops the rest.
func TestDaemonSetCapabilities(t *testing.T) {
	checkCapabilities(t, loadManifests(t).daemonSets[0].Spec.Template.Spec, map[string][]corev1.Capability{
		"policy":      nil,
		"install":     {"CHOWN", "DAC_OVERRIDE", "FOWNER"},
		"holder":      nil,
		"agent":       {"SYS_PTRACE", "DAC_READ_SEARCH", "KILL"},
		"policy-sync": nil,
		"ready":       nil,
	})
}

// checkCapabilities checks that spec's containers are the ones want names,
// none privileged or able to gain privileges, with a read-only root, and
// each adding the capabilities want gives it after dropping ALL; and that
// the agent runs without AppArmor.
func checkCapabilities(t *testing.T, spec corev1.PodSpec, want map[string][]corev1.Capability) {
	t.Helper()
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(all) != len(want) {
		t.Errorf("%d containers, want %d", len(all), len(want))
	}
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil {
			t.Errorf("%s: no securityContext.capabilities", c.Name)
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation not false", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: writable root filesystem", c.Name)
		}
		if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: drops %v, not ALL", c.Name, sc.Capabilities.Drop)
		}
		add := sc.Capabilities.Add
		if c.Name == "install" && slices.Contains(c.Command, "--restart-containerd=true") {
			// systemctl chrooted in /proc/1/root.
			add = slices.DeleteFunc(slices.Clone(add), func(c corev1.Capability) bool { return c == "SYS_CHROOT" || c == "SYS_PTRACE" })
		}
		if !slices.Equal(add, want[c.Name]) {
			t.Errorf("%s: adds %v, want %v", c.Name, sc.Capabilities.Add, want[c.Name])
		}
	}
	agent := container(t, spec.Containers, "agent")
	if p := agent.SecurityContext.AppArmorProfile; p == nil || p.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Errorf("agent: the runtime's AppArmor profile refuses ptrace access to other profiles' processes")
	}
}

// The agent has probes on what it serves (GETs of /metrics, served by the
// process that answers notifications); the holder has no liveness probe:
// restarting it would end every audited container's audit. Both
// DaemonSets.
func TestDaemonSetProbes(t *testing.T) {
	nri, m := loadNRIDaemonSet(t)
	for _, ds := range []appsv1.DaemonSet{m.daemonSets[0], nri} {
		t.Run(ds.Name, func(t *testing.T) { checkProbes(t, ds.Spec.Template.Spec) })
	}
}

func checkProbes(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	agent := container(t, spec.Containers, "agent")
	for name, p := range map[string]*corev1.Probe{"readiness": agent.ReadinessProbe, "liveness": agent.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/metrics" || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("agent %s probe: %+v, want GET /metrics on port metrics", name, p)
		}
	}
	if !slices.ContainsFunc(agent.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
		t.Errorf("agent has no port named metrics")
	}
	if i := slices.Index(agent.Command, "--metrics=:9646"); i < 0 {
		t.Errorf("agent does not serve metrics on the pod's address: %v", agent.Command)
	}
	if h := container(t, spec.Containers, "holder"); h.LivenessProbe != nil {
		t.Errorf("holder has a liveness probe: a restart loses every notify fd it holds")
	}
}

// The ready container: its node's name from the downward API, the service
// account's right to get and patch nodes and nothing more, the label
// removed before the pod goes, and containerd's socket directory mounted
// where its --cri points.
func TestDaemonSetReadyLabel(t *testing.T) {
	m := loadManifests(t)
	spec := m.daemonSets[0].Spec.Template.Spec
	ready := container(t, spec.Containers, "ready")
	i := slices.IndexFunc(ready.Env, func(e corev1.EnvVar) bool { return e.Name == "NODE_NAME" })
	if i < 0 || ready.Env[i].ValueFrom == nil || ready.Env[i].ValueFrom.FieldRef == nil || ready.Env[i].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("ready: NODE_NAME is not the downward API's spec.nodeName: %+v", ready.Env)
	}
	if !slices.Equal(ready.Command[:2], []string{"seccomp-install", "ready"}) || !slices.Contains(ready.Command, "--watch") {
		t.Errorf("ready runs %v", ready.Command)
	}
	if l := ready.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Exec == nil || !slices.Equal(l.PreStop.Exec.Command, []string{"seccomp-install", "ready", "--remove"}) {
		t.Errorf("ready: no preStop removing the label: %+v", ready.Lifecycle)
	}
	cri := ready.Command[slices.Index(ready.Command, "--cri")+1]
	if hm := hostMounts(t, spec, ready); hm[filepath.Dir(cri)] != strings.TrimPrefix(filepath.Dir(cri), "/host") {
		t.Errorf("ready: --cri %s, mounts %v", cri, hm)
	}
	sa := m.accounts[0]
	if spec.ServiceAccountName != sa.Name || sa.Namespace != m.daemonSets[0].Namespace {
		t.Errorf("pods run as %q; ServiceAccount %s/%s", spec.ServiceAccountName, sa.Namespace, sa.Name)
	}
	// The token only where it is used.
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("every container of the pod gets the API token")
	}
	const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == tokenDir })
		if (i >= 0) != (c.Name == "ready") {
			t.Errorf("%s: token mounted %v", c.Name, i >= 0)
		}
		if i < 0 {
			continue
		}
		v := spec.Volumes[slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })]
		if v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(p corev1.VolumeProjection) bool {
			return p.ServiceAccountToken != nil && p.ServiceAccountToken.Path == "token"
		}) || !slices.ContainsFunc(v.Projected.Sources, func(p corev1.VolumeProjection) bool {
			return p.ConfigMap != nil && p.ConfigMap.Name == "kube-root-ca.crt"
		}) {
			t.Errorf("%s: %s is not the service account's token and CA: %+v", c.Name, tokenDir, v)
		}
	}
	rules := m.roles[0].Rules
	if len(rules) != 1 || !slices.Equal(rules[0].APIGroups, []string{""}) || !slices.Equal(rules[0].Resources, []string{"nodes"}) || !slices.Equal(rules[0].Verbs, []string{"get", "patch"}) {
		t.Errorf("ClusterRole rules %+v, want nodes get, patch only", rules)
	}
	b := m.bindings[0]
	if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != m.roles[0].Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("binding %+v does not bind %s to %s/%s", b, m.roles[0].Name, sa.Namespace, sa.Name)
	}
	if rc := m.runtimeClasses[0]; rc.Scheduling.NodeSelector[kube.ReadyLabel] != "true" {
		t.Errorf("the RuntimeClass selects %v, not the label ready sets", rc.Scheduling.NodeSelector)
	}
}
