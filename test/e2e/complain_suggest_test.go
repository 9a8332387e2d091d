package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestComplainSuggestEnforce: the loop complain.md tells a user to run. A
// container runs in complain mode; `seccomp-agent suggest` turns its
// would-be denials into a profile; installed and enforced, that profile
// lets the same workload run, and denies (and audits) a call it never made.
func TestComplainSuggestEnforce(t *testing.T) {
	// complainPolicy's rules, after one for the suggestion (first match).
	rt, cfg, auditLog := agentShim(t, `
[[rule]]
name = "suggested"
match.ids = ["web-*"]
profile = "suggested"
existing = "replace"
`+complainPolicy)
	profiles := filepath.Join(filepath.Dir(cfg), "profiles")
	writeProfile(t, profiles, "suggested", `{"defaultAction":"SCMP_ACT_ALLOW"}`) // until suggest writes it
	// clone(CLONE_NEWUSER|CLONE_THREAD), which the kernel refuses with
	// EINVAL, with a stack (argument 1) that differs from run to run.
	calls := func(stack string) []string {
		return []string{"call", "keyctl", "call", "socket", "40", "1", "0", "call", "personality", "0x400000",
			"call", "clone", "0x10010000", stack, "call", "getpid"}
	}
	denied := []string{"keyctl errno EPERM 1", "socket errno EPERM 1", "personality errno EPERM 1", "clone errno EPERM 1"}
	out := run(t, rt, "dry-1", probe(t, calls("0x10000")...))
	for _, d := range denied {
		if strings.Contains(out, d+"\n") {
			t.Fatalf("complain mode denied a call: %q in\n%s", d, out)
		}
	}
	waitComplains(t, auditLog, "personality", "profile default", 1)
	waitComplains(t, auditLog, "keyctl", "profile default", 1)
	waitComplains(t, auditLog, "clone", "profile default", 1)

	cmd := exec.Command(bins.agent, "suggest", "--container", "dry-1", "--config", cfg, auditLog)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	suggested, err := cmd.Output()
	if err != nil {
		t.Fatalf("suggest: %v\n%s", err, stderr.String())
	}
	tmp := filepath.Join(profiles, ".suggested.json")
	if err := os.WriteFile(tmp, suggested, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(profiles, "suggested.json")); err != nil {
		t.Fatal(err)
	}
	// Enforced: the workload's calls run (the kernel answers them), and a
	// call it never made is denied and audited.
	out = run(t, rt, "web-1", probe(t, append(calls("0x20000"), "call", "add_key")...))
	for _, d := range denied {
		if strings.Contains(out, d+"\n") {
			t.Errorf("the suggested profile denies a call the workload made: %q in\n%s\nprofile:\n%s", d, out, suggested)
		}
	}
	want(t, out, "getpid ok", "personality ok", "clone errno EINVAL 22", "add_key errno EPERM 1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := readAudit(t, auditLog)
		if slices.ContainsFunc(recs, func(r map[string]any) bool {
			return r["container"] == "web-1" && r["syscall"] == "add_key" && r["action"] != "complain"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of web-1's add_key: %v", recs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
