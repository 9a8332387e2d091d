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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

const manifestDir = "../../deploy/kubernetes"

type manifests struct {
	namespaces     []corev1.Namespace
	configMaps     []corev1.ConfigMap
	daemonSets     []appsv1.DaemonSet
	runtimeClasses []nodev1.RuntimeClass
}

// loadManifests decodes every document under deploy/kubernetes strictly
// into its API type: a misspelt or misplaced field is an error here, not a
// field the API server silently drops.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
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
			default:
				t.Errorf("%s[%d]: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
		}
	}
	if len(m.namespaces) != 1 || len(m.configMaps) != 1 || len(m.daemonSets) != 1 || len(m.runtimeClasses) != 1 {
		t.Fatalf("want one each of Namespace, ConfigMap, DaemonSet, RuntimeClass; got %d %d %d %d",
			len(m.namespaces), len(m.configMaps), len(m.daemonSets), len(m.runtimeClasses))
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
		var args []string
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
		out, code := run(t, append([]string{"--bin", bins}, args...)...)
		if code != 0 {
			t.Fatalf("%s: %v: %d\n%s", c.Name, args, code, out)
		}
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
