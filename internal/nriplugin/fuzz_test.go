package nriplugin_test

import (
	"encoding/json"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/seccomp-shim/seccomp-shim/internal/nriplugin"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// FuzzAdjust: whatever container NRI shows (here decoded from JSON), Adjust
// returns an error or a decision, never panics; and a container that already
// has the policy it was given gets no further adjustment.
func FuzzAdjust(f *testing.F) {
	cfg, err := policy.ParseConfig("fuzz.toml", []byte("[profiles]\ndir = \"\"\n[audit]\nsocket = \"/nonexistent/agent.sock\"\n"+rules))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range parityCases {
		pod, ctr := nriContainer(c)
		ctr.Annotations["pod"] = pod.Namespace
		b, err := json.Marshal(ctr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ctr api.Container
		if json.Unmarshal(data, &ctr) != nil {
			return
		}
		pod := &api.PodSandbox{Name: "pod", Namespace: ctr.GetAnnotations()["pod"]}
		adj, res, err := nriplugin.Adjust(cfg, pod, &ctr, nil)
		if err != nil {
			return
		}
		if res == nil {
			t.Fatal("no error and no decision")
		}
		sp := adj.GetLinux().GetSeccompPolicy()
		if sp == nil {
			return
		}
		if ctr.Linux == nil {
			ctr.Linux = &api.LinuxContainer{}
		}
		ctr.Linux.SeccompPolicy = sp
		again, _, err := nriplugin.Adjust(cfg, pod, &ctr, nil)
		if err != nil || again != nil {
			t.Fatalf("its own policy adjusted again: %v, %v\nfirst: %v", again.GetLinux().GetSeccompPolicy(), err, sp)
		}
	})
}

// FuzzSupported: whatever a runtime calls itself at registration,
// Supported answers without panicking, and accepts containerd only.
func FuzzSupported(f *testing.F) {
	for _, s := range [][2]string{{"containerd", "2.4.2+unknown"}, {"containerd", "v2.2.1"}, {"cri-o", "1.33.0"}, {"containerd", "v99999999999999999999.3"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, runtime, version string) {
		if err := nriplugin.Supported(runtime, version); err == nil && runtime != "containerd" {
			t.Errorf("Supported(%q, %q): nil", runtime, version)
		}
	})
}
