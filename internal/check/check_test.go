package check

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
		t.Fatal(err)
	}
}

func statuses(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Status + " " + f.Detail + "\n")
	}
	return b.String()
}

func TestKernel(t *testing.T) {
	root := t.TempDir()
	h := Host{Root: root, Release: "6.1.0-test"}
	write(t, filepath.Join(root, "boot/config-6.1.0-test"), "CONFIG_SECCOMP=y\nCONFIG_SECCOMP_FILTER=y\n# CONFIG_X is not set\n")
	write(t, filepath.Join(root, "proc/sys/kernel/seccomp/actions_avail"), "kill_process kill_thread trap errno user_notif trace log allow\n")
	got := statuses(h.Kernel())
	if strings.Contains(got, Fail) || strings.Contains(got, Warn) || !strings.Contains(got, "CONFIG_SECCOMP_FILTER=y") {
		t.Fatalf("healthy kernel:\n%s", got)
	}

	// No user_notif: a warning. A missing option: a failure.
	write(t, filepath.Join(root, "proc/sys/kernel/seccomp/actions_avail"), "kill_process errno allow log\n")
	write(t, filepath.Join(root, "boot/config-6.1.0-test"), "CONFIG_SECCOMP=y\n")
	got = statuses(h.Kernel())
	if !strings.Contains(got, "FAIL CONFIG_SECCOMP_FILTER is not set") || !strings.Contains(got, "warn no user_notif") {
		t.Fatalf("degraded kernel:\n%s", got)
	}

	// /proc/config.gz when /boot has nothing.
	os.Remove(filepath.Join(root, "boot/config-6.1.0-test"))
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("CONFIG_SECCOMP=y\nCONFIG_SECCOMP_FILTER=y\n"))
	w.Close()
	write(t, filepath.Join(root, "proc/config.gz"), gz.String())
	if got = statuses(h.Kernel()); !strings.Contains(got, "ok CONFIG_SECCOMP=y ("+filepath.Join(root, "proc/config.gz")) {
		t.Fatalf("config.gz:\n%s", got)
	}

	// Neither: can't confirm, a warning; no seccomp at all: a failure.
	os.Remove(filepath.Join(root, "proc/config.gz"))
	os.Remove(filepath.Join(root, "proc/sys/kernel/seccomp/actions_avail"))
	if got = statuses(h.Kernel()); !strings.Contains(got, "warn build config not found") || !strings.Contains(got, "FAIL no /proc/sys/kernel/seccomp/actions_avail") {
		t.Fatalf("no kernel info:\n%s", got)
	}
}

func TestRuntime(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "fakerunc")
	write(t, rt, `#!/bin/sh
case "$1" in
--version) echo "runc version 1.1.5"; echo "spec: 1.0.2-dev";;
features) echo '{"linux":{"seccomp":{"enabled":true,"actions":["SCMP_ACT_ALLOW","SCMP_ACT_ERRNO","SCMP_ACT_NOTIFY"]}}}';;
esac
`)
	cfg := policy.DefaultConfig()
	cfg.Runtime.Path = policy.StringList{"nothere", "fakerunc"}
	h := Host{Path: dir}
	got := statuses(h.Runtime(cfg))
	if strings.Contains(got, Fail) || strings.Contains(got, Warn) || !strings.Contains(got, "runc version 1.1.5; spec: 1.0.2-dev") || !strings.Contains(got, "SCMP_ACT_NOTIFY") {
		t.Fatalf("healthy runtime:\n%s", got)
	}
	cfg.Runtime.Path = policy.StringList{"/nope/runc"}
	if got = statuses(h.Runtime(cfg)); !strings.Contains(got, `FAIL none of ["/nope/runc"] found`) {
		t.Fatalf("missing runtime:\n%s", got)
	}
}

func TestConfigProfiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "good.json"), `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`)
	write(t, filepath.Join(dir, "typo.json"), `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["opne"],"action":"SCMP_ACT_ERRNO"}]}`)
	cfg, err := policy.ParseConfig("t.toml", []byte("[profiles]\ndir = \""+dir+"\"\n[[rule]]\nprofile = \"missing\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := statuses(Config(cfg))
	for _, want := range []string{
		`ok default (built-in) validates`, `ok strict (built-in) validates`, `ok unconfined (built-in): no filter`,
		`ok good (` + filepath.Join(dir, "good.json") + `) validates`,
		`FAIL profile "typo" (` + filepath.Join(dir, "typo.json") + `): syscalls[0] ["opne"]: unknown syscall "opne"`,
		`FAIL profile "missing": not in`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestRunExitCode(t *testing.T) {
	cfg := policy.DefaultConfig()
	cfg.Runtime.Path = policy.StringList{"/nope/runc"}
	cfg.Profiles.Dir = ""                                       // the built-ins only, never the node's profiles
	cfg.Audit.Socket = filepath.Join(t.TempDir(), "agent.sock") // not the node's agent
	var out bytes.Buffer
	if code := Run(cfg, &out); code != 1 || !strings.Contains(out.String(), "FAIL runtime") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

// The 32-bit emulation line, for each answer the probe can give.
func TestKernelIA32(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok 32-bit emulation on"},
		{fmt.Errorf("x: %w", kernelfeat.ErrNotSupported), "ok 32-bit emulation off"},
		{errors.New("memfd_create: EPERM"), "warn 32-bit emulation unknown (memfd_create: EPERM)"},
	} {
		h := Host{Root: t.TempDir(), Release: "6.1.0-test", IA32: func() error { return c.err }}
		if got := statuses(h.Kernel()); !strings.Contains(got, c.want) {
			t.Errorf("probe %v: want %q in\n%s", c.err, c.want, got)
		}
	}
}
