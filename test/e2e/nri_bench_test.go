package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// BenchmarkNRICreate times CRI CreateContainer + StartContainer +
// RemoveContainer (which stops it) through containerd 2.4 + runc 1.3, on
// two private containerds side by side, interleaved in each iteration and
// in alternating order:
//
//   - nri: the agent's NRI plugin registered, the container asking for no
//     profile, so the plugin applies the policy's default profile;
//   - pod: no plugin, the container asking for the very same profile as
//     Localhost (the OCI policy the plugin gave the first container, read
//     back from CRI).
//
// audit.mode is off, so both containers load the same filter and the ratio
// is the plugin's cost on the create path: one NRI round trip and the
// policy's decision, where the wrapper would exec a shim.
func BenchmarkNRICreate(b *testing.B) {
	cfg, _ := writeConfig(b, "[audit]\nmode = \"off\"\n\n[[rule]]\nname = \"all\"\nprofile = \"default\"\nexisting = \"replace\"\n")
	withNRI := harness.NewContainerd(b, harness.ContainerdOptions{Newstack: true})
	plain := harness.NewContainerd(b, harness.ContainerdOptions{Newstack: true})
	_, out := daemonOut(b, "agent", "--socket", filepath.Join(b.TempDir(), "agent.sock"), "--audit-log", filepath.Join(b.TempDir(), "audit.log"),
		"--metrics", "", "--config", cfg, "--nri-socket", withNRI.NRISocket)
	waitOutput(b, out, "registered with NRI", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	type node struct {
		k   *harness.CRI
		pod *harness.Pod
		sp  *cri.SecurityProfile
	}
	nodes := map[string]*node{}
	for name, c := range map[string]*harness.Containerd{"nri": withNRI, "pod": plain} {
		k := c.CRI(b)
		p, err := k.RunPod(ctx, harness.PodConfig("bench", "bench", b.TempDir(), nil), "")
		if err != nil {
			b.Fatalf("%s: RunPodSandbox: %v", name, err)
		}
		nodes[name] = &node{k: k, pod: p}
	}
	// The profile the plugin applies, as the Localhost file the pod names;
	// checked to be what the pod's container then gets.
	applied := specSeccomp(b, ctx, nodes["nri"].k, nodes["nri"].pod, nil)
	profile := filepath.Join(b.TempDir(), "default.json")
	if err := os.WriteFile(profile, applied, 0o644); err != nil {
		b.Fatal(err)
	}
	nodes["pod"].sp = &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Localhost, LocalhostRef: profile}
	var a, p any
	json.Unmarshal(applied, &a)
	json.Unmarshal(specSeccomp(b, ctx, nodes["pod"].k, nodes["pod"].pod, nodes["pod"].sp), &p)
	if !reflect.DeepEqual(a, p) {
		b.Fatalf("the pod's Localhost profile is not what the plugin applies")
	}

	seq := 0
	op := func(name string) time.Duration {
		n := nodes[name]
		seq++
		cc := harness.ContainerConfig(fmt.Sprintf("c%d", seq), harness.PauseImage, n.sp, "/bin/sleep", "1000")
		t0 := time.Now()
		id, err := n.k.Start(ctx, n.pod, cc)
		if err == nil {
			_, err = n.k.Runtime.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: id})
		}
		el := time.Since(t0)
		if err != nil {
			b.Fatalf("%s: create+start+remove: %v", name, err)
		}
		return el
	}
	// Warm up both (page cache, the shims, the plugin's policy).
	for i := 0; i < 3; i++ {
		op("nri")
		op("pod")
	}
	var nri, pod time.Duration
	// Each iteration's pair ratio too: its median shrugs off the spikes a
	// busy machine puts into one side of a few pairs.
	pairs := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var n, p time.Duration
		if i%2 == 0 {
			n = op("nri")
			p = op("pod")
		} else {
			p = op("pod")
			n = op("nri")
		}
		nri, pod = nri+n, pod+p
		pairs = append(pairs, float64(n)/float64(p))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(nri), "nri-ms")
	b.ReportMetric(ms(pod), "pod-ms")
	b.ReportMetric(ms(nri)/ms(pod), "nri/pod")
	slices.Sort(pairs)
	b.ReportMetric(pairs[len(pairs)/2], "nri/pod-median")
}

// specSeccomp creates a container asking for sp and returns the OCI seccomp
// policy of its spec, as CRI's verbose status shows it.
func specSeccomp(b *testing.B, ctx context.Context, k *harness.CRI, pod *harness.Pod, sp *cri.SecurityProfile) json.RawMessage {
	b.Helper()
	cr, err := k.Runtime.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: pod.ID, SandboxConfig: pod.Config,
		Config: harness.ContainerConfig("spec", harness.PauseImage, sp, "/bin/sleep", "1000")})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Runtime.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: cr.ContainerId})
	st, err := k.Runtime.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: cr.ContainerId, Verbose: true})
	if err != nil {
		b.Fatal(err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Seccomp json.RawMessage `json:"seccomp"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || len(info.RuntimeSpec.Linux.Seccomp) < 100 {
		b.Fatalf("no seccomp policy in the container's spec: %v\n%.300s", err, st.Info["info"])
	}
	return info.RuntimeSpec.Linux.Seccomp
}
