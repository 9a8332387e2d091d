package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// hooksDir writes a hooks.d for podman with seccomp-hook in the given
// stages, using config file cfg. Hooks run with an empty environment, so the
// config is passed as a flag, and so is the error log: DIR/hook.log, not the
// node's.
func hooksDir(t *testing.T, cfg string, stages ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, stage := range stages {
		hook := map[string]any{
			"version": "1.0.0",
			"hook":    map[string]any{"path": bins.hook, "args": []string{"seccomp-hook", "--config", cfg, "--error-log", filepath.Join(dir, "hook.log"), stage}},
			"when":    map[string]any{"always": true},
			"stages":  []string{stage},
		}
		b, _ := json.Marshal(hook)
		if err := os.WriteFile(filepath.Join(dir, "seccomp-"+stage+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// podman returns a private podman with the e2e image imported, and the
// image's name.
func podman(t *testing.T) (*harness.Podman, string) {
	t.Helper()
	pm := harness.NewPodman(t)
	const image = "localhost/seccomp-shim-e2e:latest"
	pm.Import(t, harness.Rootfs(t), image)
	return pm, image
}

// TestPodmanHook: podman with our precreate hook runs a container with the
// policy's profile even when asked for seccomp=unconfined, and a
// createRuntime check stops a container that escaped the policy.
func TestPodmanHook(t *testing.T) {
	pm, image := podman(t)
	cfg, profiles := writeConfig(t, `
[[rule]]
match.annotations = { "team" = "pay*" }
profile = "eacces"
existing = "replace"
`)
	writeProfile(t, profiles, "eacces", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
	probe := []string{image, "/bin/probe", "status", "call", "keyctl", "call", "getpid"}

	hooks := hooksDir(t, cfg, "precreate", "createRuntime")
	out, err := pm.Run(append([]string{"--hooks-dir", hooks, "--security-opt", "seccomp=unconfined"}, probe...)...)
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	want(t, out, "Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok")

	out, err = pm.Run(append([]string{"--hooks-dir", hooks, "--annotation", "team=payments"}, probe...)...)
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	want(t, out, "Seccomp:\t2", "keyctl errno EACCES 13")

	// The check alone cannot change the profile, but refuses the start.
	check := hooksDir(t, cfg, "createRuntime")
	out, err = pm.Run(append([]string{"--hooks-dir", check, "--security-opt", "seccomp=unconfined"}, probe...)...)
	if err == nil || !strings.Contains(out, "differs from what policy requires") {
		t.Fatalf("want the createRuntime check to refuse, got %v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "shim.log"))
	if !strings.Contains(string(log), `"stage":"precreate"`) || !strings.Contains(string(log), `"level":"error"`) {
		t.Errorf("hook log:\n%s", log)
	}
}

// TestPodmanHookTighten: with existing = "tighten" and the audit on, podman's
// precreate hook tightens podman's own profile and routes its denials to the
// agent, and the createRuntime check accepts the result, with the agent up
// (the denial is audited) and down (the same denial, unaudited).
func TestPodmanHookTighten(t *testing.T) {
	pm, image := podman(t)
	probe := []string{image, "/bin/probe", "status", "call", "keyctl", "call", "getpid"}
	for _, up := range []bool{true, false} {
		socket, auditLog := filepath.Join(t.TempDir(), "nobody.sock"), ""
		if up {
			socket, auditLog = startAgent(t)
		}
		cfg, _ := writeConfig(t, "[audit]\nsocket = \""+socket+"\"\n[[rule]]\nexisting = \"tighten\"\n")
		hooks := hooksDir(t, cfg, "precreate", "createRuntime")
		out, err := pm.Run(append([]string{"--hooks-dir", hooks}, probe...)...)
		if err != nil {
			t.Fatalf("agent up %v: podman run: %v\n%s", up, err, out)
		}
		want(t, out, "Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok")
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "shim.log"))
		audit := `"audit":"audited"`
		if !up {
			audit = `"audit":"degraded: `
		}
		if !strings.Contains(string(log), `"action":"tightened"`) || !strings.Contains(string(log), audit) || !strings.Contains(string(log), `"msg":"seccomp profile verified"`) {
			t.Errorf("agent up %v: hook log lacks tightened, %s, verified:\n%s", up, audit, log)
		}
		if !up {
			continue
		}
		var found bool
		for i := 0; i < 30 && !found; i++ {
			time.Sleep(100 * time.Millisecond) // the writer flushes within a second
			if _, err := os.Stat(auditLog); err == nil {
				for _, r := range readAudit(t, auditLog) {
					found = found || r["syscall"] == "keyctl"
				}
			}
		}
		if !found {
			t.Errorf("no audit record of keyctl in %s", auditLog)
		}
	}
}
