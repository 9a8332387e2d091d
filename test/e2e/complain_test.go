package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// complainCalls are would-be denials of Docker's default profile, by name
// (keyctl), by an argument rule's fall-through (socket AF_VSOCK, with the
// complement routed by conditions; personality READ_IMPLIES_EXEC, routed
// whole), then calls it allows whatever the mode (socket AF_INET,
// personality query, getpid).
var complainCalls = []string{
	"status", "call", "keyctl", "call", "socket", "40", "1", "0", "call", "personality", "0x400000",
	"call", "socket", "2", "1", "0", "call", "personality", "0xffffffff", "call", "getpid",
}

const complainPolicy = `
[[rule]]
name = "dry"
match.ids = ["dry-*"]
existing = "replace"
enforce = false
[[rule]]
name = "may"
match.ids = ["may-*"]
existing = "replace"
allow_complain = true
[[rule]]
name = "enforced"
existing = "replace"
`

// TestComplain: through the shim and runc, complain mode lets the calls its
// profile would deny run and audits each with the errno it would have got;
// enforcing blocks them; a request the policy doesn't allow is refused.
func TestComplain(t *testing.T) {
	rt, _, auditLog := agentShim(t, complainPolicy)
	annotate := func(b string) string {
		harness.EditConfig(t, b, func(m map[string]any) { m["annotations"] = map[string]string{"seccomp-shim.io/complain": "true"} })
		return b
	}
	allowed := []string{"socket ok", "personality ok", "getpid ok"}
	for _, id := range []string{"dry-1", "may-1"} {
		b := probe(t, complainCalls...)
		if id == "may-1" {
			b = annotate(b)
		}
		out := run(t, rt, id, b)
		want(t, out, "Seccomp:\t2")
		want(t, out, allowed...)
		for _, denied := range []string{"keyctl errno EPERM 1", "socket errno EPERM 1", "personality errno EPERM 1"} {
			if strings.Contains(out, denied+"\n") {
				t.Errorf("%s: complain mode denied a call: %q in\n%s", id, denied, out)
			}
		}
	}
	// Enforced: the same calls are denied.
	want(t, run(t, rt, "may-2", probe(t, complainCalls...)), "keyctl errno EPERM 1", "socket errno EPERM 1", "personality errno EPERM 1", "socket ok", "getpid ok")
	// A request the rule doesn't allow fails the create, naming the rule.
	res, err := rt.Run(t, "other-1", annotate(probe(t, "call", "getpid")))
	if err == nil || !strings.Contains(err.Error(), `rule \"enforced\" enforces its profile`) {
		t.Fatalf("want a refusal naming the rule, got %v\n%s", err, res.Stdout)
	}

	// The audit log: each would-be denial, once per container, with its errno.
	wantRecs := []string{}
	for _, id := range []string{"dry-1", "may-1"} {
		wantRecs = append(wantRecs, id+" keyctl complain 1", id+" socket complain 1", id+" personality complain 1")
	}
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = nil
		for _, r := range readAudit(t, auditLog) {
			got = append(got, fmt.Sprint(r["container"], " ", r["syscall"], " ", r["action"], " ", r["errno"]))
			if r["action"] == "complain" && (r["rule"] != "profile default" || r["would"] != "errno") {
				t.Errorf("record %v", r)
			}
		}
		if !slices.ContainsFunc(wantRecs, func(w string) bool { return !slices.Contains(got, w) }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range wantRecs {
		if !slices.Contains(got, w) {
			t.Errorf("no audit record %q in %q", w, got)
		}
	}
	for _, g := range got {
		// What the profile allows, complain mode lets through unrecorded.
		if strings.Contains(g, " getpid ") || strings.HasPrefix(g, "may-2 ") && strings.Contains(g, " complain ") {
			t.Errorf("unexpected record %q", g)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(got), func(g string) bool { return g != "dry-1 socket complain 1" })); n != 1 {
		t.Errorf("socket(AF_VSOCK) recorded %d times, want 1 (AF_INET is allowed): %q", n, got)
	}
}

// TestComplainWithoutAgent: without the agent, a complain-mode container is
// enforced, and the shim says so in the engine's log; under
// audit.unreachable = "refuse" its create fails.
func TestComplainWithoutAgent(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nobody.sock")
	rt, _ := shim(t, "[audit]\nsocket = \""+socket+"\"\n"+complainPolicy)
	b := probe(t, "call", "keyctl")
	res, err := rt.Run(t, "dry-degrade", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Stderr)
	}
	want(t, res.Stdout, "keyctl errno EPERM 1")
	log, _ := os.ReadFile(res.LogFile)
	if !strings.Contains(string(log), `"level":"warning","msg":"seccomp-shim: complain mode not in effect, profile enforced: notify agent at `+socket) {
		t.Errorf("the engine's log does not say the profile is enforced:\n%s", log)
	}

	rt, _ = shim(t, "[audit]\nsocket = \""+socket+"\"\nunreachable = \"refuse\"\n"+complainPolicy)
	res, err = rt.Run(t, "dry-refuse", probe(t, "call", "keyctl"))
	if err == nil || !strings.Contains(err.Error(), "complain mode, audit.unreachable = refuse") {
		t.Fatalf("want a refusal, got %v\n%s", err, res.Stdout)
	}
}

// TestPodmanComplain: podman, through the shim as its runtime and through
// the precreate hook (with the createRuntime check), runs a container that
// asks for complain mode in it, audited; and refuses one whose rule doesn't
// allow it.
func TestPodmanComplain(t *testing.T) {
	pm, image := podman(t)
	_, cfg, auditLog := agentShim(t, `
[[rule]]
name = "may"
match.annotations = { team = "dry*" }
existing = "replace"
allow_complain = true
[[rule]]
name = "enforced"
existing = "replace"
`)
	probeArgs := []string{image, "/bin/probe", "status", "call", "keyctl", "call", "getpid"}
	hooks := hooksDir(t, cfg, "precreate", "createRuntime")
	for name, how := range map[string][]string{
		"runtime": {"--runtime", shimWrapper(t, cfg)},
		"hook":    {"--hooks-dir", hooks},
	} {
		ask := []string{"--annotation", "seccomp-shim.io/complain=true"}
		out, err := pm.Run(append(append(append(how, ask...), "--annotation", "team=dry-"+name), probeArgs...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		want(t, out, "Seccomp:\t2", "getpid ok")
		if strings.Contains(out, "keyctl errno EPERM 1\n") {
			t.Errorf("%s: complain mode denied keyctl:\n%s", name, out)
		}
		out, err = pm.Run(append(append([]string(nil), how...), probeArgs...)...)
		if err != nil {
			t.Fatalf("%s, enforced: %v\n%s", name, err, out)
		}
		want(t, out, "keyctl errno EPERM 1")
		// Refused: podman shows the runtime's error; the hook's is in its
		// --error-log.
		out, err = pm.Run(append(append(append([]string(nil), how...), ask...), probeArgs...)...)
		hookLog, _ := os.ReadFile(filepath.Join(hooks, "hook.log"))
		msg := out
		if name == "hook" {
			msg = string(hookLog)
		}
		if err == nil || !strings.Contains(msg, `enforced\" enforces its profile (it has no allow_complain = true)`) && !strings.Contains(msg, `enforced" enforces its profile (it has no allow_complain = true)`) {
			t.Errorf("%s: want a refusal naming the rule, got %v\n%s\nhook log: %s", name, err, out, hookLog)
		}
	}
	waitComplains(t, auditLog, "keyctl", "profile default", 2)
}

// TestDockerComplain: Docker runs a container in complain mode by the rule
// (matched by its environment: Debian's docker CLI has no --annotation),
// with Docker's own profile kept: the would-be denials run and are audited
// as the engine's profile's; another container is enforced.
func TestDockerComplain(t *testing.T) {
	_, cfg, auditLog := agentShim(t, `
[[rule]]
name = "dry"
match.env = ["COMPLAIN=1"]
enforce = false
`)
	d := harness.NewDocker(t, bins.shim, map[string]string{"seccomp-shim": cfg})
	run := func(args ...string) string {
		t.Helper()
		out, stderr, err := d.RunContainer(append([]string{"--rm", "--runtime=seccomp-shim"}, args...)...)
		if err != nil {
			t.Fatalf("docker run %v: %v\nstderr: %s", args, err, stderr)
		}
		return out
	}
	probeArgs := []string{harness.DockerImage, "/bin/probe", "status", "call", "keyctl", "call", "getpid"}
	out := run(append([]string{"-e", "COMPLAIN=1"}, probeArgs...)...)
	want(t, out, "Seccomp:\t2", "getpid ok")
	if strings.Contains(out, "keyctl errno EPERM 1\n") {
		t.Errorf("complain mode denied keyctl:\n%s", out)
	}
	want(t, run(probeArgs...), "keyctl errno EPERM 1")
	waitComplains(t, auditLog, "keyctl", "engine profile (kept)", 1)
}

// waitComplains waits for n would-be EPERMs of syscall by rule in the audit
// log.
func waitComplains(t *testing.T, auditLog, syscall, rule string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, r := range readAudit(t, auditLog) {
			if r["syscall"] == syscall && r["action"] == "complain" && r["errno"] == float64(1) && r["rule"] == rule {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d complain records of %s by %q, want %d", got, syscall, rule, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
