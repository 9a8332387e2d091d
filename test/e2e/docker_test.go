package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestDocker runs containers through Docker 20.10 (Debian's docker.io) with
// seccomp-shim registered in daemon.json, as on a node. One dockerd serves
// every case; each runtime name is the shim with another policy.
func TestDocker(t *testing.T) {
	harness.RequireRoot(t)
	plain, _ := writeConfig(t, "")
	tighten, _ := writeConfig(t, "[[rule]]\nname = \"tighten\"\nprofile = \"default\"\nexisting = \"tighten\"\n")
	// replace, so the missing profile is needed even though Docker set
	// its own (with keep, the rule would keep Docker's and never load it).
	broken, _ := writeConfig(t, "[[rule]]\nname = \"missing\"\nprofile = \"nope\"\nexisting = \"replace\"\n")
	_, audited, auditLog := agentShim(t, "")
	d := harness.NewDocker(t, bins.shim, map[string]string{
		"seccomp-shim":         plain,
		"seccomp-shim-tighten": tighten,
		"seccomp-shim-broken":  broken,
		"seccomp-shim-audit":   audited,
	})
	img := harness.DockerImage

	// A Docker profile: allow all but keyctl, which fails with EACCES.
	custom := filepath.Join(t.TempDir(), "eacces.json")
	if err := os.WriteFile(custom, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, stderr, err := d.RunContainer(append([]string{"--rm"}, args...)...)
		if err != nil {
			t.Fatalf("docker run %v: %v\nstderr: %s", args, err, stderr)
		}
		return out
	}
	docker := func(t *testing.T, args ...string) string {
		t.Helper()
		out, stderr, err := d.Run(args...)
		if err != nil {
			t.Fatalf("docker %v: %v\nstderr: %s", args, err, stderr)
		}
		return out
	}

	t.Run("profile", func(t *testing.T) {
		want(t, run(t, "--runtime=seccomp-shim", img, "/bin/probe", "status", "call", "keyctl", "call", "getpid"),
			"Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok")
		// seccomp=unconfined is overridden: the policy gives a container
		// without a profile `default`.
		want(t, run(t, "--runtime=seccomp-shim", "--security-opt", "seccomp=unconfined", img, "/bin/probe", "status", "call", "keyctl"),
			"Seccomp:\t2", "keyctl errno EPERM 1")
		// Plain runc honours it.
		want(t, run(t, "--runtime=runc", "--security-opt", "seccomp=unconfined", img, "/bin/probe", "status", "call", "keyctl"),
			"Seccomp:\t0", "keyctl errno EINVAL 22")
	})

	t.Run("custom", func(t *testing.T) {
		// existing = keep (the default policy): Docker's profile stays.
		out := run(t, "--runtime=seccomp-shim", "--security-opt", "seccomp="+custom, img, "/bin/probe", "status", "call", "keyctl", "call", "add_key")
		want(t, out, "Seccomp:\t2", "keyctl errno EACCES 13")
		if strings.Contains(out, "add_key errno EPERM") {
			t.Errorf("the custom profile allows add_key:\n%s", out)
		}
		// existing = tighten: default's denials are added, the custom
		// profile's own errno stays.
		want(t, run(t, "--runtime=seccomp-shim-tighten", "--security-opt", "seccomp="+custom, img, "/bin/probe", "status", "call", "keyctl", "call", "add_key"),
			"Seccomp:\t2", "keyctl errno EACCES 13", "add_key errno EPERM 1")
	})

	t.Run("audit", func(t *testing.T) {
		name := "audit-keyctl"
		out, stderr, err := d.RunContainer("--name", name, "--runtime=seccomp-shim-audit", img, "/bin/probe", "call", "keyctl")
		defer func() { _, _, _ = d.Run("rm", "-f", name) }()
		if err != nil {
			t.Fatalf("docker run: %v\nstderr: %s", err, stderr)
		}
		want(t, out, "keyctl errno EPERM 1")
		id := strings.TrimSpace(docker(t, "inspect", "-f", "{{.Id}}", name))
		if len(id) != 64 {
			t.Fatalf("container id %q", id)
		}
		docker(t, "rm", name)
		var recs []map[string]any
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err := os.Stat(auditLog); err != nil {
				continue
			}
			recs = readAudit(t, auditLog)
			for _, r := range recs {
				if r["container"] == id && r["syscall"] == "keyctl" && r["errno"] == float64(1) {
					return
				}
			}
		}
		t.Errorf("no audit record for container %s keyctl errno 1 in %v", id, recs)
	})

	t.Run("error", func(t *testing.T) {
		_, stderr, err := d.RunContainer("--rm", "--runtime=seccomp-shim-broken", img, "/bin/probe", "status")
		if err == nil {
			t.Fatal("docker run succeeded with a rule naming a missing profile")
		}
		t.Logf("docker run stderr: %s", stderr)
		for _, w := range []string{"seccomp-shim create failed:", "unknown profile", `profile "nope"`} {
			if !strings.Contains(stderr, w) {
				t.Errorf("docker run's error lacks %q:\n%s", w, stderr)
			}
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		name := "life"
		defer func() { _, _, _ = d.Run("rm", "-f", name) }()
		docker(t, "run", "-d", "--network", "none", "--name", name, "--runtime=seccomp-shim", img, "sleep", "1000")
		want(t, docker(t, "exec", name, "/bin/probe", "status", "call", "keyctl"), "Seccomp:\t2", "keyctl errno EPERM 1")
		docker(t, "stop", "-t", "1", name)
		docker(t, "start", name)
		want(t, docker(t, "exec", name, "/bin/probe", "status"), "Seccomp:\t2")
		docker(t, "restart", "-t", "1", name)
		want(t, docker(t, "exec", name, "/bin/probe", "status"), "Seccomp:\t2")
		docker(t, "kill", name)
		docker(t, "start", name)
		docker(t, "rm", "-f", name)
		if out := docker(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Errorf("containers left: %s", out)
		}
	})
}
