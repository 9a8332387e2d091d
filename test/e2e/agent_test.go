package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// startAgent runs seccomp-agent on a private socket and returns the socket
// and the audit log's path. It stops the agent when the test ends. Without a
// config it gets an empty one: never the node's.
func startAgent(t *testing.T, config ...string) (socket, auditLog string) {
	t.Helper()
	harness.RequireRoot(t)
	dir := t.TempDir()
	socket, auditLog = filepath.Join(dir, "run", "agent.sock"), filepath.Join(dir, "audit.log")
	if len(config) == 0 {
		cfg, _ := writeConfig(t, "")
		config = append(config, cfg)
	}
	args := []string{"--socket", socket, "--audit-log", auditLog, "--metrics", "", "--config", config[0]}
	daemon(t, "agent", args...)
	waitSocket(t, socket)
	return socket, auditLog
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

// TestAuditDenied: with the agent up, a denied syscall still fails with the
// profile's errno, and the audit log names the container.
func TestAuditDenied(t *testing.T) {
	socket, auditLog := startAgent(t)
	rt, profiles := shim(t, `
[audit]
mode = "always"
socket = "`+socket+`"
unreachable = "refuse"
[[rule]]
match.ids = ["eacces-*"]
profile = "eacces"
`)
	writeProfile(t, profiles, "eacces", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
	want(t, run(t, rt, "audit-1", probe(t, "status", "call", "keyctl", "call", "add_key", "call", "getpid")),
		"Seccomp:\t2", "keyctl errno EPERM 1", "add_key errno EPERM 1", "getpid ok")
	// A 32-bit process: its calls are decided in Go (the C thread's table
	// is the native arch's), and named by their own arch's numbers.
	ran32 := false
	t.Run("32bit", func(t *testing.T) {
		want(t, run(t, rt, "audit-32", probe32(t, "call", "keyctl", "call", "getpid")), "keyctl errno EPERM 1", "getpid ok")
		ran32 = true
	})
	out := run(t, rt, "eacces-1", probe(t, "call", "keyctl", "call", "add_key"))
	want(t, out, "keyctl errno EACCES 13")
	if strings.Contains(out, "add_key errno EPERM") {
		t.Errorf("eacces allows add_key:\n%s", out)
	}

	time.Sleep(1500 * time.Millisecond) // the writer flushes within a second
	found := map[string]bool{}
	for _, r := range readAudit(t, auditLog) {
		found[fmt.Sprint(r["container"], " ", r["syscall"], " ", r["errno"])] = true
		if r["container"] == "audit-1" && r["syscall"] == "keyctl" && (r["comm"] != "probe" || r["exe"] != "/bin/probe" || r["arch"] != "x86_64") {
			t.Errorf("record: %v", r)
		}
		if r["container"] == "audit-32" && (r["syscall"] != "keyctl" || r["arch"] != "x86" || r["nr"] != float64(288) || r["exe"] != "/bin/probe32") {
			t.Errorf("32-bit record: %v", r)
		}
	}
	wants := []string{"audit-1 keyctl 1", "audit-1 add_key 1", "eacces-1 keyctl 13"}
	if ran32 {
		wants = append(wants, "audit-32 keyctl 1")
	}
	for _, w := range wants {
		if !found[w] {
			t.Errorf("no audit record %q in %v", w, found)
		}
	}
}

// TestAgentUnreachable: without the agent, "degrade" starts the container
// with the same denials, unaudited; "refuse" fails the create and says why.
func TestAgentUnreachable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nobody.sock")
	rt, _ := shim(t, "[audit]\nmode = \"always\"\nsocket = \""+socket+"\"\nunreachable = \"degrade\"\n")
	want(t, run(t, rt, "degrade-1", probe(t, "status", "call", "keyctl")), "Seccomp:\t2", "keyctl errno EPERM 1")

	rt, _ = shim(t, "[audit]\nmode = \"always\"\nsocket = \""+socket+"\"\nunreachable = \"refuse\"\n")
	res, err := rt.Run(t, "refuse-1", probe(t, "status"))
	if err == nil || !strings.Contains(err.Error(), "notify agent unreachable") {
		t.Fatalf("want a refusal, got %v\n%s", err, res.Stdout)
	}
}

// agentShim starts an agent and a shim sharing one policy file whose audit
// section points the shim at the agent; body adds rules.
func agentShim(t *testing.T, body string) (rt *harness.Runtime, cfg, auditLog string) {
	t.Helper()
	harness.RequireRoot(t)
	socket := filepath.Join(t.TempDir(), "agent.sock")
	full := "[audit]\nmode = \"always\"\nsocket = \"" + socket + "\"\nunreachable = \"refuse\"\n" + body
	rt, _ = shim(t, full)
	cfg = strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	dir := t.TempDir()
	auditLog = filepath.Join(dir, "audit.log")
	daemon(t, "agent", "--socket", socket, "--audit-log", auditLog, "--config", cfg, "--metrics", "")
	waitSocket(t, socket)
	return rt, cfg, auditLog
}

// TestAgentRules: a rule lets keyctl through for one container while
// another still gets the profile's EPERM.
func TestAgentRules(t *testing.T) {
	rt, _, _ := agentShim(t, `
[[notify.rule]]
name = "ci may use keyrings"
match.ids = ["allowed-*"]
syscalls = ["keyctl"]
action = "continue"
`)
	// Allowed: keyctl reaches the kernel, which rejects its zero arguments.
	want(t, run(t, rt, "allowed-1", probe(t, "call", "keyctl")), "keyctl errno EINVAL 22")
	want(t, run(t, rt, "other-1", probe(t, "call", "keyctl")), "keyctl errno EPERM 1")
}

// TestAuditedContinue: a continue rule with audit = true lets keyctl
// through in a real container and writes a record of it, with the rule.
func TestAuditedContinue(t *testing.T) {
	rt, _, auditLog := agentShim(t, `
[[notify.rule]]
name = "keyrings, watched"
syscalls = ["keyctl"]
action = "continue"
audit = true
`)
	want(t, run(t, rt, "watched-1", probe(t, "call", "keyctl", "call", "add_key")), "keyctl errno EINVAL 22", "add_key errno EPERM 1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []string
		for _, r := range readAudit(t, auditLog) {
			if r["container"] == "watched-1" {
				got = append(got, fmt.Sprint(r["syscall"], " ", r["action"], " ", r["rule"]))
			}
		}
		if slices.Contains(got, "keyctl continue keyrings, watched") && slices.Contains(got, "add_key errno profile default") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records %q, want keyctl let through by its rule and add_key denied", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLivePolicy: changing the agent's rules flips the outcome for a
// container that is already running; an invalid change is rejected and the
// old policy stays.
func TestLivePolicy(t *testing.T) {
	rt, cfg, _ := agentShim(t, `
[[notify.rule]]
name = "deny keyctl with EACCES"
syscalls = ["keyctl"]
action = "errno"
errno = 13
`)
	bundle := harness.NewBundle(t, harness.Rootfs(t), "/bin/sh", "-c", "while true; do /bin/probe call keyctl; sleep 0.2; done")
	if err := rt.Create("live-1", bundle); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Delete("live-1", bundle); _, _ = harness.Wait(bundle) }()
	if err := rt.Start("live-1", bundle); err != nil {
		t.Fatal(err)
	}
	waitFor := func(line string) { t.Helper(); waitLastLine(t, bundle, line) }
	waitFor("keyctl errno EACCES 13")
	edit := func(from, to string) {
		b, _ := os.ReadFile(cfg)
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit(`action = "errno"`+"\nerrno = 13", `action = "errno"`+"\nerrno = 22222")
	time.Sleep(3 * time.Second) // past the agent's 2 s poll: the bad policy was seen and rejected
	waitFor("keyctl errno EACCES 13")
	edit(`action = "errno"`+"\nerrno = 22222", `action = "continue"`)
	waitFor("keyctl errno EINVAL 22")
}
