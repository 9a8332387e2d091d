package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/logfile"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestAgentMetrics: a live agent, after a container's denials, serves every
// metric it ever had, with the same labels, plus its build info and the
// standard Go and process metrics.
func TestAgentMetrics(t *testing.T) {
	addr := metricsAgent(t, "metrics-1")

	// name{label names} of each family, as the agent served them before
	// client_golang (pkg/notify's own writer).
	wanted := map[string][]string{
		"seccomp_agent_notifications_total":     {"syscall"},
		"seccomp_agent_decisions_total":         {"action", "syscall"},
		"seccomp_agent_inflight_notifications":  nil,
		"seccomp_agent_containers":              nil,
		"seccomp_agent_handoff_failures_total":  nil,
		"seccomp_agent_audit_dropped_total":     nil,
		"seccomp_agent_accept_errors_total":     nil,
		"seccomp_agent_degraded_creates_total":  nil,
		"seccomp_agent_decision_seconds_bucket": {"le"},
		"seccomp_agent_decision_seconds_sum":    nil,
		"seccomp_agent_decision_seconds_count":  nil,
		"seccomp_agent_build_info":              {"goversion", "version"},
		"go_goroutines":                         nil,
		"process_cpu_seconds_total":             nil,
	}
	sample := regexp.MustCompile(`(?m)^([a-z_]+)(?:\{([^}]*)\})? `)
	text := scrape(t, addr)
	got := map[string]string{}
	for _, m := range sample.FindAllStringSubmatch(text, -1) {
		var names []string
		for _, kv := range strings.Split(m[2], ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				names = append(names, k)
			}
		}
		got[m[1]] = strings.Join(names, ",")
	}
	for name, labels := range wanted {
		l, ok := got[name]
		if !ok {
			t.Errorf("no %s", name)
		} else if l != strings.Join(labels, ",") {
			t.Errorf("%s labels %q, want %q", name, l, labels)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

// metricsAgent starts an agent with its own config, socket and metrics port
// (the default ones may be a node agent's), and runs container id through it
// with a denied keyctl, so that the labelled families exist. It returns the
// metrics address.
func metricsAgent(t *testing.T, id string) string {
	return metricsAgentAt(t, id, filepath.Join(t.TempDir(), "run", "agent.sock"))
}

// metricsAgentAt is metricsAgent with its socket at socket.
func metricsAgentAt(t *testing.T, id, socket string) string {
	harness.RequireRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg, _ := writeConfig(t, "")
	daemon(t, "agent", "--socket", socket, "--audit-log", filepath.Join(dir, "audit.log"), "--metrics", addr, "--config", cfg)
	waitSocket(t, socket)
	rt, _ := shim(t, "[audit]\nmode = \"always\"\nsocket = \""+socket+"\"\nunreachable = \"refuse\"\n")
	want(t, run(t, rt, id, probe(t, "call", "keyctl")), "keyctl errno EPERM 1")
	return addr
}

// scrape returns the agent's metrics once they count metricsAgent's keyctl.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text = string(b)
			if strings.Contains(text, `seccomp_agent_notifications_total{syscall="keyctl"}`) {
				return text
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no keyctl in the metrics (%v):\n%s", err, text)
		}
	}
}

// TestDegradedCreateCounted: a container created while no agent answers
// (audit.mode = auto degrades) is counted beside audit.socket, and the
// agent, once up on that socket, exports the count: such containers stay
// unaudited for life, and the shim that decided so is gone.
func TestDegradedCreateCounted(t *testing.T) {
	run0 := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(run0, 0o700); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(run0, "agent.sock")
	rt, _ := shim(t, "[audit]\nsocket = \""+socket+"\"\n")
	want(t, run(t, rt, "degraded-1", probe(t, "call", "keyctl")), "keyctl errno EPERM 1")
	if n, err := logfile.Degraded(run0); n != 1 || err != nil {
		t.Fatalf("degraded count %d (%v), want 1", n, err)
	}
	text := scrape(t, metricsAgentAt(t, "degraded-2", socket)) // audited: not counted
	if line := "seccomp_agent_degraded_creates_total 1\n"; !strings.Contains(text, line) {
		t.Errorf("metrics lack %q:\n%s", line, text)
	}
}
