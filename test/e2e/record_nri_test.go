package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestRecordNRI: the record → install → enforce loop through the NRI plugin
// on containerd 2.4 + runc 1.3, no runtime wrapper: a pod's
// seccomp-shim.io/record annotation, allowed by the rule, records its
// container; two replicas merge when they end; the installed profile then
// enforces through the plugin (a rule on a container annotation), a syscall
// the workload never made denied and audited; a name the rule doesn't allow
// fails the create, naming the rule.
func TestRecordNRI(t *testing.T) {
	recordings := filepath.Join(t.TempDir(), "recordings")
	n := newNRINode(t, engineRecordConfig(recordings, "nri", false))
	n.agent(t)
	k := n.ctd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The pod's seccomp-shim.io annotations reach the plugin without any
	// pod_annotations setting.
	recordEngineLoop(t, n.cfg, n.auditLog, recordings, "nri", false, criRecordRun(t, ctx, k, "", "shop", harness.PauseImage, "127.0.0.1:18932"))

	// crictl, as an operator runs it: a name the rule doesn't allow is
	// refused with the rule and the reason.
	bad := harness.PodConfig("rec-bad", "shop", t.TempDir(), map[string]string{"seccomp-shim.io/record": "web"})
	_, _, _, err := n.ctd.CrictlRun(t, "", bad, harness.ContainerConfig("work", harness.PauseImage, nil, "/bin/true"))
	if err == nil || !strings.Contains(err.Error(), `seccomp-shim.io/record=\"web\": rule \"recording\" allows recording only as [\"nri-*\"]: not allowed by policy`) {
		t.Errorf("crictl, a recording not allowed: %v", err)
	}
	// The plugin made each decision: the recorded replicas' and the
	// enforced container's.
	actions := map[string]int{}
	for _, d := range n.decisionsByID(t) {
		if d["component"] == "seccomp-agent nri" {
			actions[fmt.Sprint(d["rule"], " ", d["profile"], " ", d["action"])]++
		}
	}
	if want := map[string]int{"recording recording:nri-web injected": 2, "enforce nri-web injected": 1}; !maps.Equal(actions, want) {
		t.Errorf("the plugin's decisions: %v, want %v", actions, want)
	}
}
