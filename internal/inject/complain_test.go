package inject_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// TestComplain: a complain-mode container gets its profile routed to the
// agent in complain mode where the agent answers; where it doesn't, the
// profile enforced with a warning, or the create refused, as
// audit.unreachable says; never unconfined.
func TestComplain(t *testing.T) {
	const sock = "/nonexistent/agent.sock"
	for _, tc := range []struct {
		name, audit string
		agent       error
		complain    bool   // routed in complain mode
		warn        string // in the warnings
		refused     bool
	}{
		{"agent up", "", nil, true, "", false},
		{"agent down, degrade", "", noAgent, false, "complain mode not in effect, profile enforced: notify agent at " + sock, false},
		{"agent down, refuse", "unreachable = \"refuse\"\n", noAgent, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, "[audit]\nsocket = \""+sock+"\"\n"+tc.audit+"[[rule]]\nexisting = \"replace\"\nenforce = false\n")
			out, res, err := inject.Spec(cfg, []byte(runcSpec), "c1", "config.json", tc.agent)
			if tc.refused {
				if !errors.Is(err, inject.ErrAgentUnreachable) || !strings.Contains(err.Error(), "complain mode") {
					t.Fatalf("Spec = %v, want a refusal naming complain mode", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sc := seccomp(t, out)
			if sc == nil || sc.DefaultAction != specs.ActErrno {
				t.Fatalf("no profile: %s", seccompOf(t, out))
			}
			if got := policy.IsComplain(sc, sock); got != tc.complain {
				t.Fatalf("complain mode %v, want %v (audit %q)", got, tc.complain, res.Audit)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(res.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q, want %q", res.Warnings, tc.warn)
			}
			// Its own output is left as it is.
			again, _, err := inject.Spec(cfg, out, "c1", "config.json", tc.agent)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("not idempotent: %v\n%s", err, diff(out, again))
			}
			// The check hook: it follows this policy, not an enforcing one.
			if _, ok, err := inject.Follows(cfg, out, "c1", "config.json"); !ok || err != nil {
				t.Errorf("Follows = %v, %v", ok, err)
			}
			enforcing := config(t, "[audit]\nsocket = \""+sock+"\"\n[[rule]]\nexisting = \"replace\"\n")
			if _, ok, _ := inject.Follows(enforcing, out, "c1", "config.json"); ok == tc.complain {
				t.Errorf("Follows an enforcing policy = %v", ok)
			}
			// The shim, under an enforcing policy, takes complain mode back.
			fixed, _, err := inject.Spec(enforcing, out, "c1", "config.json", nil)
			if err != nil || policy.IsComplain(seccomp(t, fixed), sock) {
				t.Errorf("an enforcing policy kept complain mode: %v", err)
			}
		})
	}
}

func seccomp(t *testing.T, data []byte) *specs.LinuxSeccomp {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Seccomp
}

// TestComplainMetadataKept: the agent reads what a complain-mode call would
// get from the listener metadata (for a syscall routed whole, the
// profile's default too); a spec whose metadata says otherwise than the
// policy's is rewritten, not left as it is, lest its would-be denials run
// unrecorded.
func TestComplainMetadataKept(t *testing.T) {
	const sock = "/nonexistent/agent.sock"
	cfg := config(t, "[audit]\nsocket = \""+sock+"\"\n[[rule]]\nexisting = \"replace\"\nenforce = false\n")
	out, _, err := inject.Spec(cfg, []byte(runcSpec), "c1", "config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := seccomp(t, out)
	var md map[string]any
	if err := json.Unmarshal([]byte(sc.ListenerMetadata), &md); err != nil {
		t.Fatal(err)
	}
	md["complain"].(map[string]any)["defaultAction"] = string(specs.ActAllow)
	forged, _ := json.Marshal(md)
	var spec map[string]any
	_ = json.Unmarshal(out, &spec)
	spec["linux"].(map[string]any)["seccomp"].(map[string]any)["listenerMetadata"] = string(forged)
	in, _ := json.Marshal(spec)
	again, _, err := inject.Spec(cfg, in, "c1", "config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := seccomp(t, again).ListenerMetadata; got != sc.ListenerMetadata {
		t.Errorf("forged metadata kept:\n%s\nwant %s", got, sc.ListenerMetadata)
	}
}
