package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestCheck runs `seccomp-shim check` on this machine: the kernel has
// seccomp with user notification, runc answers, and every profile the
// config reaches validates. A broken profile makes it fail.
func TestCheck(t *testing.T) {
	harness.RequireRoot(t)
	cfg, profiles := writeConfig(t, "[[rule]]\nprofile = \"mine\"\n")
	writeProfile(t, profiles, "mine", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`)
	check := func() (string, error) {
		cmd := exec.Command(bins.shim, "check")
		cmd.Env = append(os.Environ(), "SECCOMP_SHIM_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := check()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	ia32 := "32-bit emulation on"
	if err := kernelfeat.IA32(); errors.Is(err, kernelfeat.ErrNotSupported) {
		ia32 = "32-bit emulation off"
	}
	for _, want := range []string{"kernel", "user_notif", ia32, "runc version 1.1", "SCMP_ACT_NOTIFY", "default (built-in) validates", "mine (" + profiles + "/mine.json) validates"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	writeProfile(t, profiles, "mine", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_EXPLODE"}]}`)
	if out, err = check(); err == nil || !strings.Contains(out, "FAIL profile") || !strings.Contains(out, "SCMP_ACT_EXPLODE") {
		t.Fatalf("want a failing check, got %v:\n%s", err, out)
	}
}

// TestFastPath: after a create, pass-through commands reach runc through
// the C constructor without starting the shim's Go code; a changed config
// file sends them through Go again, with the same result.
func TestFastPath(t *testing.T) {
	rt, _ := shim(t, "")
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	bundle := probe(t, "status")
	if err := rt.Create("fast-1", bundle); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = rt.Delete("fast-1", bundle)
		_, _ = harness.Wait(bundle)
	}()
	state := func() (stdout, stderr string) {
		cmd := rt.Command(bundle, "state", "fast-1")
		cmd.Env = append(cmd.Env, "GODEBUG=inittrace=1")
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("state: %v\n%s", err, e.String())
		}
		return o.String(), e.String()
	}
	out, trace := state()
	if !strings.Contains(out, `"status": "created"`) {
		t.Fatalf("state: %s", out)
	}
	if strings.Contains(trace, "github.com/seccomp-shim") {
		t.Errorf("state went through the shim's Go code, not the fast path:\n%s", trace)
	}
	// A newer config file: the cache no longer applies.
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(cfg, later, later); err != nil {
		t.Fatal(err)
	}
	out, trace = state()
	if !strings.Contains(out, `"status": "created"`) || !strings.Contains(trace, "github.com/seccomp-shim") {
		t.Errorf("with a changed config, want the Go path and the same state:\n%s\n%s", out, trace)
	}
	// That run cached the new identity: fast again.
	if _, trace = state(); strings.Contains(trace, "github.com/seccomp-shim") {
		t.Errorf("the Go path did not refresh the cache:\n%s", trace)
	}
}

// TestFastPathNeverExecsItself: a recorded runtime path that has become the
// shim since (installed as runc, say) sends the pass-through to Go, whose
// lookup skips this binary, instead of the shim exec'ing itself forever.
func TestFastPathNeverExecsItself(t *testing.T) {
	harness.RequireRoot(t)
	runcBin := harness.RequireBinary(t, "runc")
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(bin, "runc")
	if err := os.Symlink(runcBin, first); err != nil {
		t.Fatal(err)
	}
	cfg, _ := writeConfig(t, "")
	data, _ := os.ReadFile(cfg)
	data = []byte(strings.Replace(string(data), "[runtime]\npath = [", fmt.Sprintf("[runtime]\npath = [%q, ", first), 1))
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	state := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bins.shim, "--root", t.TempDir(), "state", "nobody")
		cmd.Env = append(os.Environ(), "SECCOMP_SHIM_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return fmt.Errorf("state did not end: %s", out)
		}
		if !strings.Contains(string(out), "does not exist") { // runc: container does not exist
			return fmt.Errorf("state: %v: %s", err, out)
		}
		return nil
	}
	if err := state(); err != nil { // Go: records bin/runc for the pass-through
		t.Fatal(err)
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bins.shim, first); err != nil {
		t.Fatal(err)
	}
	if err := state(); err != nil {
		t.Fatal(err)
	}
}
