package cliapp_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/agentcmd"
	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/internal/hook"
	"github.com/seccomp-shim/seccomp-shim/internal/install"
	"github.com/seccomp-shim/seccomp-shim/internal/shim"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// binary runs one binary's command line in-process.
type binary struct {
	name     string
	commands []string // its subcommands
	run      func(t *testing.T, args ...string) (code int, stdout, stderr string)
}

func binaries() []binary {
	return []binary{
		{"seccomp-agent", []string{"serve", "hold", "summary"}, func(t *testing.T, args ...string) (int, string, string) {
			var o, e bytes.Buffer
			return agentcmd.Main(args, &o, &e), o.String(), e.String()
		}},
		{"seccomp-hook", []string{"precreate", "createRuntime", "createContainer", "prestart", "startContainer", "poststart", "poststop"}, func(t *testing.T, args ...string) (int, string, string) {
			var o, e bytes.Buffer
			h := &hook.Hook{Args: append([]string{"seccomp-hook"}, args...), Getenv: func(string) string { return "" },
				Stdin: failReader{t}, Stdout: &o, Stderr: &e}
			return h.Run(), o.String(), e.String()
		}},
		{"seccomp-install", []string{"install", "uninstall", "status", "config"}, func(t *testing.T, args ...string) (int, string, string) {
			var o, e bytes.Buffer
			return install.Main(args, &o, &e), o.String(), e.String()
		}},
		// Only the shim's own commands: any other command line is runc's.
		{"seccomp-shim", []string{"check"}, func(t *testing.T, args ...string) (int, string, string) {
			var o, e bytes.Buffer
			s := shimFor(t, &o, &e, args)
			return s.Run(), o.String(), e.String()
		}},
	}
}

// shimFor is a shim with a config of its own whose runtime is never run.
func shimFor(t *testing.T, stdout, stderr io.Writer, args []string) *shim.Shim {
	dir := t.TempDir()
	return &shim.Shim{
		Args: append([]string{"seccomp-shim"}, args...), Dir: dir,
		Env:    []string{policy.ConfigEnv + "=" + filepath.Join(dir, "none.toml"), "PATH=" + dir},
		Stdout: stdout, Stderr: stderr, Self: "/proc/self/exe",
		Exec: func(string, []string, []string) error { t.Error("runtime exec'd"); return errors.New("no exec here") },
		Check: func(*policy.Config, io.Writer) int {
			t.Error("check ran")
			return 1
		},
	}
}

type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("stdin read")
	return 0, io.EOF
}

// TestCLIRules holds every binary and subcommand to the same rules: an
// unknown argument or flag exits 2 with the usage on stderr; --help exits 0
// with the usage on stdout, listing the subcommands; --version prints the
// binary's own version.
func TestCLIRules(t *testing.T) {
	for _, b := range binaries() {
		t.Run(b.name, func(t *testing.T) {
			var refused [][]string
			if b.name != "seccomp-shim" { // any other first argument is runc's
				refused = [][]string{{"--no-such-flag"}, {"-no-such-flag=1"}, {"no-such-command"}}
			}
			helps := [][]string{{"--help"}, {"-h"}, {"help"}}
			if b.name == "seccomp-shim" { // the runtime's first: TestShimHelpVersion
				helps = nil
			}
			for _, c := range b.commands {
				refused = append(refused, []string{c, "--no-such-flag"}, []string{c, "extra", "arguments"})
				helps = append(helps, []string{c, "--help"}, []string{c, "-h"}, []string{"help", c})
			}
			for _, args := range refused {
				code, out, errOut := b.run(t, args...)
				if code != 2 || out != "" || !strings.Contains(errOut, "USAGE:") || !strings.HasPrefix(errOut, b.name) {
					t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, out, errOut)
				}
			}
			for _, args := range helps {
				code, out, errOut := b.run(t, args...)
				if code != 0 || errOut != "" || !strings.Contains(out, "USAGE:") || !strings.Contains(out, b.name) {
					t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, out, errOut)
				}
				if len(args) == 1 {
					for _, c := range b.commands {
						if !strings.Contains(out, "\n   "+c+" ") {
							t.Errorf("%q lists no %s:\n%s", args, c, out)
						}
					}
				}
			}
			if b.name == "seccomp-shim" {
				return // its --version also runs the runtime's: TestShimVersion
			}
			for _, args := range [][]string{{"--version"}, {"-v"}} {
				code, out, errOut := b.run(t, args...)
				if code != 0 || out != b.name+" version "+cliapp.Version()+"\n" || errOut != "" {
					t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
				}
			}
		})
	}
}

// TestShimHelpVersion: the shim's --version and --help are the runtime's,
// whole and first on stdout with its exit code (engines parse `runc
// --version`; runc's own tests read the first lines of both), then the
// shim's own version or command list on stderr.
func TestShimHelpVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"--help"}, {"-h"}, {"help"}} {
		var o, e bytes.Buffer
		s := shimFor(t, &o, &e, args)
		dir := strings.TrimPrefix(s.Env[1], "PATH=")
		runtime := "#!/bin/sh\necho \"runc $*\"\necho runtime-stderr >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(dir, "runc"), []byte(runtime), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		code := s.Run()
		own := "seccomp-shim version " + cliapp.Version() + "\n"
		if args[0] != "--version" && args[0] != "-v" {
			own = "COMMANDS of its own:\n   check "
		}
		if code != 3 || o.String() != "runc "+args[0]+"\n" || !strings.HasPrefix(e.String(), "runtime-stderr\n") || !strings.Contains(e.String(), own) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want the runtime's exit 3 and output, then %q on stderr", args, code, o.String(), e.String(), own)
		}
	}
}
