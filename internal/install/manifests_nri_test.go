package install

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const nriManifestDir = manifestDir + "/nri"

// loadNRIDaemonSet decodes deploy/kubernetes/nri strictly: one DaemonSet,
// and nothing that the handler's directory already has (the Namespace and
// the ConfigMap are reused) or that the NRI path does without (RBAC, a
// RuntimeClass).
func loadNRIDaemonSet(t *testing.T) (appsv1.DaemonSet, manifests) {
	t.Helper()
	n := loadManifestDir(t, nriManifestDir)
	if len(n.daemonSets) != 1 || len(n.namespaces)+len(n.configMaps)+len(n.runtimeClasses)+len(n.accounts)+len(n.roles)+len(n.bindings) != 0 {
		t.Fatalf("%s: want one DaemonSet and nothing else, got %+v", nriManifestDir, n)
	}
	return n.daemonSets[0], loadManifests(t)
}

func TestNRIDaemonSet(t *testing.T) {
	ds, m := loadNRIDaemonSet(t)
	spec := ds.Spec.Template.Spec
	if ds.Namespace != m.namespaces[0].Name {
		t.Errorf("namespace %s, not the Namespace %s", ds.Namespace, m.namespaces[0].Name)
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name != m.configMaps[0].Name {
			t.Errorf("volume %s: ConfigMap %s doesn't exist", v.Name, v.ConfigMap.Name)
		}
	}
	if !equalLabels(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) || equalLabels(ds.Spec.Selector.MatchLabels, m.daemonSets[0].Spec.Template.Labels) {
		t.Errorf("selector %v: must match its pods and not the handler DaemonSet's", ds.Spec.Selector.MatchLabels)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("updateStrategy %q: a rolling update restarts the holder", ds.Spec.UpdateStrategy.Type)
	}
	if !spec.HostPID {
		t.Errorf("without hostPID the agent sees pid 0 for every container process")
	}
	if !spec.HostNetwork {
		t.Errorf("on the pod network, with required_plugins, the pod waits for CNI pods that wait for it")
	}
	if spec.RuntimeClassName != nil {
		t.Errorf("runtimeClassName set: the NRI path has none")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("the pod gets an API token it has no use for")
	}
	// Nothing of the node's but the policy, the sockets, the log and the
	// recordings: no binaries, no containerd config, no containerd socket.
	allowed := map[string]bool{"/etc/seccomp-shim": true, "/run/seccomp-shim": true, "/var/log/seccomp-shim": true, "/var/lib/seccomp-shim": true, "/var/run/nri": true}
	for _, v := range spec.Volumes {
		if v.HostPath != nil && !allowed[v.HostPath.Path] {
			t.Errorf("volume %s mounts the node's %s", v.Name, v.HostPath.Path)
		}
	}
	if ds.Spec.Template.Annotations[nriTolerate] != "true" {
		t.Errorf("no %s: \"true\": with required_plugins the pod could never start", nriTolerate)
	}
	agent := container(t, spec.Containers, "agent")
	recordsOnNode(t, spec, agent)
	hm := hostMounts(t, spec, agent)
	sock := ""
	for _, a := range agent.Command {
		if v, ok := strings.CutPrefix(a, nriAgentFlag+"="); ok {
			sock = v
		}
	}
	if sock != nriSocket || hm[filepath.Dir(sock)] != filepath.Dir(nriSocket) {
		t.Errorf("agent: %s=%q, mounts %v: want the node's %s", nriAgentFlag, sock, hm, nriSocket)
	}
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.HostPath != nil && v.HostPath.Path == filepath.Dir(nriSocket) })
	if i < 0 || spec.Volumes[i].HostPath.Type == nil || *spec.Volumes[i].HostPath.Type != corev1.HostPathDirectory {
		t.Errorf("the NRI socket's directory is not required to exist: where there is no NRI the pod would run without effect")
	}
	// The same holder and agent as the handler's DaemonSet, but for the
	// plugin: one command line to keep in step with the units.
	handler := m.daemonSets[0].Spec.Template.Spec
	for _, name := range []string{"holder", "agent", "policy-sync"} {
		want := container(t, handler.Containers, name)
		got := container(t, spec.Containers, name)
		cmd := slices.DeleteFunc(slices.Clone(got.Command), func(a string) bool { return strings.HasPrefix(a, nriAgentFlag+"=") })
		if !slices.Equal(cmd, want.Command) || got.Image != want.Image {
			t.Errorf("%s: %s %v, the handler DaemonSet's %s %v", name, got.Image, got.Command, want.Image, want.Command)
		}
		if hm := hostMounts(t, spec, got); hm["/run/seccomp-shim"] != hostMounts(t, handler, want)["/run/seccomp-shim"] {
			t.Errorf("%s: /run/seccomp-shim %v", name, hm)
		}
	}
	if !slices.Equal(container(t, spec.InitContainers, "policy").Command, container(t, handler.InitContainers, "policy").Command) {
		t.Errorf("policy init container differs from the handler DaemonSet's")
	}
	// Never both on one node: they would share /run/seccomp-shim/agent.sock.
	na := spec.Affinity
	if na == nil || na.NodeAffinity == nil || na.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("no required node affinity keeping it off the handler DaemonSet's nodes")
	}
	for k, v := range handler.NodeSelector {
		if spec.NodeSelector[k] == v {
			t.Errorf("nodeSelector %v selects the handler DaemonSet's nodes", spec.NodeSelector)
		}
		terms := na.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || !slices.ContainsFunc(terms[0].MatchExpressions, func(e corev1.NodeSelectorRequirement) bool {
			return e.Key == k && e.Operator == corev1.NodeSelectorOpNotIn && slices.Equal(e.Values, []string{v})
		}) {
			t.Errorf("affinity %+v does not exclude %s=%s", terms, k, v)
		}
	}
}

// No container is privileged; each has the capabilities it needs, named,
// and drops the rest: the agent what it needs to read a caller's memory
// and kill it, nothing for the NRI socket (root's).
func TestNRIDaemonSetCapabilities(t *testing.T) {
	ds, _ := loadNRIDaemonSet(t)
	checkCapabilities(t, ds.Spec.Template.Spec, map[string][]corev1.Capability{
		"policy":      nil,
		"holder":      nil,
		"agent":       {"SYS_PTRACE", "DAC_READ_SEARCH", "KILL"},
		"policy-sync": nil,
	})
}

// The policy containers' commands, run as written against a node tree that
// has only what the pod mounts: they write the node's policy and nothing
// else.
func TestNRIDaemonSetCommandsRun(t *testing.T) {
	ds, m := loadNRIDaemonSet(t)
	spec := ds.Spec.Template.Spec
	root := t.TempDir()
	policyDir := t.TempDir()
	writeTestFile(t, filepath.Join(policyDir, "config.toml"), []byte(m.configMaps[0].Data["config.toml"]))
	for _, c := range []corev1.Container{container(t, spec.InitContainers, "policy"), container(t, spec.Containers, "policy-sync")} {
		runPodCommand(t, c, root, policyDir)
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		if !d.IsDir() && "/"+rel != configPath {
			t.Errorf("/%s written: the NRI DaemonSet writes the node's policy only", rel)
		}
		return nil
	})
	if !exists(filepath.Join(root, configPath)) {
		t.Errorf("no policy written")
	}
}

// The toleration annotation is one key everywhere: the one seccomp-install
// writes as the default validator's tolerate_missing_plugins_annotation, the
// one docs/nri.md's containerd snippet shows, and the one the NRI
// DaemonSet's pod carries (with required_plugins, the pod would otherwise
// wait for itself).
func TestNRITolerationKeyIsOne(t *testing.T) {
	ds, _ := loadNRIDaemonSet(t)
	if got := ds.Spec.Template.Annotations[nriTolerate]; got != "true" {
		t.Errorf("the NRI DaemonSet's pod: annotation %s = %q, want \"true\" (annotations %v)", nriTolerate, got, ds.Spec.Template.Annotations)
	}
	// docs/kubernetes.md shows the same snippet.
	for _, name := range []string{"nri.md", "kubernetes.md"} {
		doc, err := os.ReadFile("../../docs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for i, block := range strings.Split(string(doc), "```toml\n")[1:] {
			block, _, _ = strings.Cut(block, "```")
			if !strings.Contains(block, "default_validator") {
				continue
			}
			var m map[string]any
			if _, err := toml.Decode(block, &m); err != nil {
				t.Fatalf("docs/%s: toml block %d: %v", name, i+1, err)
			}
			dv, _ := lookup(m, "plugins", nriPlugin, "default_validator")
			if got := dv["tolerate_missing_plugins_annotation"]; got != nriTolerate {
				t.Errorf("docs/%s: toml block %d: tolerate_missing_plugins_annotation = %v, seccomp-install writes %q", name, i+1, got, nriTolerate)
			}
			found++
		}
		if found == 0 {
			t.Errorf("docs/%s: no containerd snippet with default_validator", name)
		}
	}
}
