package check

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/install"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// A rule naming a profile that doesn't exist is named in the failure.
func TestMissingProfileNamesRule(t *testing.T) {
	cfg, err := policy.ParseConfig("t.toml", []byte("[profiles]\ndir = \""+t.TempDir()+"\"\n[[rule]]\nname = \"web\"\nprofile = \"default\"\nallowed_profiles = [\"nope\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := statuses(Config(cfg))
	if !strings.Contains(got, `FAIL profile "nope"`) || !strings.Contains(got, `rule "web"`) {
		t.Errorf("want the failure to name rule \"web\":\n%s", got)
	}
}

// A profile's warnings appear once, not once per capability set it is
// resolved for.
func TestProfileWarnsOnce(t *testing.T) {
	cfg := policy.DefaultConfig()
	cfg.Profiles.Dir = t.TempDir()
	var warns []string
	for _, f := range Profile(cfg, "default") {
		if f.Status == Warn {
			warns = append(warns, f.Detail)
		}
	}
	if len(warns) > 1 {
		t.Errorf("%d warnings for one profile:\n%s", len(warns), strings.Join(warns, "\n"))
	}
}

// Each engine's registration, found by seccomp-install's own detection: a
// stale containerd copy is reported with the command that refreshes it.
func TestEngines(t *testing.T) {
	root := t.TempDir()
	bins := t.TempDir()
	for _, b := range []string{"seccomp-shim", "seccomp-hook", "seccomp-agent", "seccomp-install"} {
		write(t, filepath.Join(bins, b), "#!/bin/sh\n")
	}
	write(t, filepath.Join(root, "etc/containerd/config.toml"), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"pause:3.6\"\n")
	write(t, filepath.Join(root, "etc/docker/daemon.json"), "{}\n")
	h := Host{Root: root}
	if got := statuses(h.Engines()); !strings.Contains(got, "warn") || !strings.Contains(got, "not registered") {
		t.Errorf("before install:\n%s", got)
	}
	var out bytes.Buffer
	if code := install.Main([]string{"--root", root, "--bin", bins, "--systemd=false", "--engines", "docker,containerd", "install"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	got := statuses(h.Engines())
	if strings.Contains(got, "warn") || strings.Contains(got, "FAIL") || !strings.Contains(got, "ok docker") || !strings.Contains(got, "ok containerd") {
		t.Errorf("after install:\n%s", got)
	}
	p := filepath.Join(root, "etc/containerd/config.toml")
	cfg, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(cfg, []byte("pause:3.6"), []byte("pause:3.9"), 1), 0o644)
	if got := statuses(h.Engines()); !strings.Contains(got, "warn containerd: stale") || !strings.Contains(got, "seccomp-install refresh") {
		t.Errorf("stale copy:\n%s", got)
	}
}

// The agent: answering is ok; not answering under audit.mode = auto says
// that containers started now are never audited.
func TestAgent(t *testing.T) {
	cfg := policy.DefaultConfig()
	cfg.Audit.Socket = filepath.Join(t.TempDir(), "agent.sock")
	if got := statuses(Agent(cfg)); !strings.Contains(got, "warn") || !strings.Contains(got, "unaudited for their whole life") {
		t.Errorf("no agent:\n%s", got)
	}
	cfg.Audit.Unreachable = policy.AgentRefuse
	cfg.Audit.Mode = policy.AuditAlways
	if got := statuses(Agent(cfg)); !strings.Contains(got, "FAIL") || !strings.Contains(got, "refused") {
		t.Errorf("no agent, refuse:\n%s", got)
	}
	l, err := net.Listen("unix", cfg.Audit.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := statuses(Agent(cfg)); !strings.HasPrefix(got, "ok") || strings.Contains(got, "warn") {
		t.Errorf("agent up:\n%s", got)
	}
	cfg.Audit.Mode = policy.AuditOff
	if got := statuses(Agent(cfg)); !strings.Contains(got, "ok audit.mode = off") {
		t.Errorf("audit off:\n%s", got)
	}
}

// Without a config (it failed to load), every other check still runs.
func TestAllWithoutConfig(t *testing.T) {
	h := Host{Root: t.TempDir(), Path: t.TempDir()}
	got := h.All(nil)
	topics := map[string]bool{}
	for _, f := range got {
		topics[f.Topic] = true
	}
	for _, want := range []string{"kernel", "runtime", "agent"} {
		if !topics[want] {
			t.Errorf("no %s finding without a config: %v", want, got)
		}
	}
	if topics["config"] || topics["profile"] {
		t.Errorf("config findings without a config: %v", got)
	}
}
