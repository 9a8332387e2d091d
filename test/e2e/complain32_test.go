package e2e

import (
	"strings"
	"testing"
)

// TestComplain32: a 32-bit (x86) program in complain mode: the x86 section
// of the filter routes the would-be denials too (by name, by the socket
// complement, personality whole, judged by the agent on 32 bits); the
// calls the profile allows run unrecorded.
func TestComplain32(t *testing.T) {
	rt, _, auditLog := agentShim(t, complainPolicy)
	out := run(t, rt, "dry-32", probe32(t, complainCalls...))
	want(t, out, "socket ok", "personality ok", "getpid ok")
	for _, d := range []string{"keyctl errno EPERM 1", "socket errno EPERM 1", "personality errno EPERM 1"} {
		if strings.Contains(out, d+"\n") {
			t.Errorf("complain mode denied a 32-bit call: %q in\n%s", d, out)
		}
	}
	for _, s := range []string{"keyctl", "socket", "personality"} {
		waitComplains(t, auditLog, s, "profile default", 1)
	}
	for _, r := range readAudit(t, auditLog) {
		if r["arch"] != "x86" || r["syscall"] == "getpid" || r["syscall"] == "socketcall" {
			t.Errorf("record %v", r)
		}
	}
}
