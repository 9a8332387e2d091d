package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// startAgent runs seccomp-agent on a private socket and returns the socket
// and the audit log's path. It stops the agent when the test ends.
func startAgent(t *testing.T) (socket, auditLog string) {
	t.Helper()
	harness.RequireRoot(t)
	dir := t.TempDir()
	socket, auditLog = filepath.Join(dir, "run", "agent.sock"), filepath.Join(dir, "audit.log")
	cmd := exec.Command(bins.agent, "--socket", socket, "--audit-log", auditLog)
	out, _ := os.Create(filepath.Join(dir, "agent.out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("agent output:\n%s", b)
		}
	})
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return socket, auditLog
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("agent did not start listening")
	return
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
	}
	for _, w := range []string{"audit-1 keyctl 1", "audit-1 add_key 1", "eacces-1 keyctl 13"} {
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
