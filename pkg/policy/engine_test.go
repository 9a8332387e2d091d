package policy

import (
	"errors"
	"strings"
	"testing"
)

// A pod's own annotations may reach the spec (containerd's pod_annotations,
// CRI-O's allowed_annotations): only the keys of the engine that made the
// spec say which namespace, pod, container and image it is.
func TestKubeKeysOfTheEngineOnly(t *testing.T) {
	c := mustConfig(t, "[[rule]]\nname = \"system\"\nmatch.namespaces = [\"kube-system\"]\nprofile = \"unconfined\"\nallow_unconfined = true\n")
	for _, tc := range []struct {
		name string
		ann  map[string]string
		rule string
		err  string
	}{
		{"containerd", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-namespace": "kube-system"}, "system", ""},
		{"cri-o", map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.pod.namespace": "kube-system"}, "system", ""},
		// A containerd pod claiming kube-system with CRI-O's key.
		{"containerd, cri-o's key", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-namespace": "tenant", "io.kubernetes.pod.namespace": "kube-system"}, "built-in default", ""},
		{"containerd, cri-o's key alone", map[string]string{"io.kubernetes.cri.sandbox-id": "x", "io.kubernetes.pod.namespace": "kube-system"}, "built-in default", ""},
		// A CRI-O pod claiming it with containerd's.
		{"cri-o, containerd's key", map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.pod.namespace": "tenant", "io.kubernetes.cri.sandbox-namespace": "kube-system"}, "built-in default", ""},
		// No engine: docker run --annotation, podman.
		{"no engine", map[string]string{"io.kubernetes.pod.namespace": "kube-system", "io.kubernetes.cri.sandbox-namespace": "kube-system"}, "built-in default", ""},
		// Both engines' markers, and their keys disagree: which engine made it?
		{"both, disagree", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri.sandbox-namespace": "tenant", "io.kubernetes.pod.namespace": "kube-system"}, "", `"io.kubernetes.cri.sandbox-namespace"="tenant" and "io.kubernetes.pod.namespace"="kube-system" disagree`},
		{"both, type disagrees", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri-o.ContainerType": "sandbox"}, "", `disagree`},
		{"both, agree", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri.sandbox-namespace": "kube-system", "io.kubernetes.pod.namespace": "kube-system"}, "system", ""},
	} {
		d, err := c.Choose(Container{Annotations: tc.ann})
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrAnnotations)):
			t.Errorf("%s: got %+v, %v; want error %q", tc.name, d, err, tc.err)
		case tc.err == "" && (err != nil || d.Rule != tc.rule):
			t.Errorf("%s: got rule %q, %v; want %q", tc.name, d.Rule, err, tc.rule)
		}
	}
}
