package inject_test

import (
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// TestRecord: a recorded container reaches the agent in complain mode with
// its recording's name in the metadata; without the agent it is refused,
// whatever audit.unreachable says, as the recording profile enforced would
// deny all but the baseline.
func TestRecord(t *testing.T) {
	const sock = "/nonexistent/agent.sock"
	cfg := config(t, "[audit]\nsocket = \""+sock+"\"\n[[rule]]\nrecord = \"web\"\n")
	out, res, err := inject.Spec(cfg, []byte(runcSpec), "c1", "config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := seccomp(t, out)
	m, err := policy.ParseAuditMeta(sc.ListenerMetadata)
	if !policy.IsComplain(sc, sock) || err != nil || m.Record != "web" || res.Record != "web" {
		t.Errorf("not recorded as web: %v %+v %+v", err, m, res)
	}
	if _, _, err := inject.Spec(cfg, []byte(runcSpec), "c1", "config.json", noAgent); err == nil || !strings.Contains(err.Error(), `recording "web" not possible: notify agent at `+sock) {
		t.Errorf("without the agent: %v", err)
	}
}
