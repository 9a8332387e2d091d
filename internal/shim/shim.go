// Package shim is seccomp-shim, a runc-compatible OCI runtime. On create, run
// and restore it applies the node's seccomp policy to the bundle's
// config.json, then execs the real runtime with the very same argv. Every
// other command goes straight through. It never writes to stdout: engines
// parse the real runtime's stdout, and the exec leaves it all to runc.
package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/logfile"
	"github.com/seccomp-shim/seccomp-shim/internal/passthrough"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/runcargs"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// ErrNoRuntime is returned when no configured runtime candidate exists.
var ErrNoRuntime = policy.ErrNoRuntime

// Shim holds what one invocation needs from its process, so tests can run it
// in-process.
type Shim struct {
	Args   []string // os.Args, argv[0] included
	Env    []string
	Dir    string // the working directory: the default bundle
	Stdout io.Writer
	Stderr io.Writer
	// Exec replaces the process with the real runtime (syscall.Exec).
	Exec func(path string, argv, env []string) error
	// Self is our own executable, never to be exec'd as the runtime.
	Self string
	// RuntimeCache is where to record the runtime this config resolves to,
	// for internal/passthrough's pass-through fast path; "" records nothing.
	RuntimeCache string
	// Check runs the operator's readiness check (seccomp-shim check); a nil
	// cfg is one that failed to load.
	Check func(cfg *policy.Config, stdout io.Writer) int
}

func (s *Shim) getenv(key string) string {
	for i := len(s.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.Env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Run does the work and returns the exit code; it only returns on failure,
// or after seccomp-shim's own commands.
func (s *Shim) Run() int {
	switch {
	case len(s.Args) > 1 && s.Args[1] == "check",
		len(s.Args) == 3 && s.Args[1] == "help" && s.Args[2] == "check":
		// The shim's own command. Only here is a cli.App built: not at
		// every container start.
		return s.own()
	case len(s.Args) == 2 && slices.Contains([]string{"--version", "-v", "--help", "-h", "help"}, s.Args[1]):
		return s.runtimeThenOwn()
	}
	return s.passThrough()
}

// runtimeThenOwn answers --version and --help: the runtime's answer first,
// whole and on stdout as runc gives it (engines parse `runc --version`,
// and runc's own test suite reads the first lines of both), then the
// shim's own on stderr. So the runtime runs as a child here, not exec'd.
func (s *Shim) runtimeThenOwn() int {
	a, rt, err := s.prepare()
	if err != nil {
		return s.fail(a, err)
	}
	cmd := exec.Command(rt, s.Args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = s.Env, s.Stdout, s.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return s.fail(a, fmt.Errorf("running %s: %w", rt, err))
		}
		code = exit.ExitCode()
	}
	if s.Args[1] == "--version" || s.Args[1] == "-v" {
		fmt.Fprintf(s.Stderr, "seccomp-shim version %s\n", cliapp.Version())
	} else {
		fmt.Fprintf(s.Stderr, "\nseccomp-shim %s runs the runtime above (%s) with the node's seccomp policy.\n"+
			"COMMANDS of its own:\n   check  tell whether this node is ready (seccomp-shim check --help)\n", cliapp.Version(), rt)
	}
	return code
}

// own runs the shim's own command, check.
func (s *Shim) own() int {
	app := cliapp.New("seccomp-shim", "a runc-compatible OCI runtime that applies the node's seccomp policy", s.Stdout, s.Stderr)
	app.UsageText = "seccomp-shim check"
	app.HideVersion = true // --version is the runtime's first: runtimeThenOwn
	app.Commands = []*cli.Command{{
		Name: "check", Usage: "tell whether this node is ready: kernel, runtime, config and every profile",
		Action: func(c *cli.Context) error {
			if err := cliapp.NoArgs(c); err != nil {
				return err
			}
			cfg, err := policy.Load(s.getenv)
			if err != nil {
				// The checks that need no config still run (Check(nil)).
				fmt.Fprintf(s.Stdout, "%-4s %-10s %v\n", "FAIL", "config", err)
				s.Check(nil, s.Stdout)
				return cli.Exit("", 1)
			}
			return cli.Exit("", s.Check(cfg, s.Stdout))
		},
	}}
	return cliapp.Run(app, s.Args[1:])
}

// passThrough runs the command line as runc's: the policy for a create,
// then the exec.
func (s *Shim) passThrough() int {
	a, rt, err := s.prepare()
	if err != nil {
		return s.fail(a, err)
	}
	err = s.Exec(rt, append([]string{rt}, s.Args[1:]...), s.Env)
	return s.fail(a, fmt.Errorf("exec %s: %w", rt, err))
}

func (s *Shim) prepare() (*runcargs.Args, string, error) {
	a, perr := runcargs.Parse(s.Args[1:], s.Dir)
	if perr != nil {
		a = &runcargs.Args{}
	}
	cfg, cerr := policy.Load(s.getenv)
	if perr != nil {
		// runc will refuse this command line itself, but we can't know which
		// config.json it would read: if it could be a create, stop here.
		if looksLikeCreate(s.Args[1:]) {
			return a, "", perr
		}
	} else if a.ModifiesBundle() && cerr != nil {
		return a, "", cerr
	}
	if cerr != nil {
		// A broken config must not stop anyone from killing or deleting
		// the containers that already run: use the default runtimes.
		fmt.Fprintf(s.Stderr, "seccomp-shim: warning: %v; using the default runtime for %q\n", cerr, a.Command)
		cfg = policy.DefaultConfig()
	}
	// Before the bundle is touched: a create that can't reach a runtime
	// must leave config.json as the engine wrote it, like every other
	// error before the exec.
	rt, err := s.runtime(cfg)
	if err != nil {
		return a, "", err
	}
	if cerr == nil && s.RuntimeCache != "" {
		s.remember(rt)
	}
	if perr == nil && a.ModifiesBundle() {
		res, err := inject.File(cfg, filepath.Join(a.Bundle, "config.json"), a.ID, inject.Reach(cfg))
		if err != nil {
			return a, "", err
		}
		s.record(cfg, a, res)
	}
	return a, rt, nil
}

// remember records the runtime for the fast path. A failure only costs
// speed, so it is a warning.
func (s *Shim) remember(rt string) {
	config := s.getenv(policy.ConfigEnv)
	if config == "" {
		config = policy.DefaultConfigPath
	}
	cache := s.RuntimeCache
	if d := s.getenv(policy.RunDirEnv); d != "" {
		cache = filepath.Join(d, passthrough.CacheName)
	}
	if err := passthrough.Remember(cache, config, s.getenv("PATH"), rt); err != nil {
		fmt.Fprintf(s.Stderr, "seccomp-shim: warning: runtime cache: %v\n", err)
	}
}

func looksLikeCreate(args []string) bool {
	for _, a := range args {
		if a == "create" || a == "run" || a == "restore" {
			return true
		}
	}
	return false
}

// runtime finds the real runtime, never this binary.
func (s *Shim) runtime(cfg *policy.Config) (string, error) {
	self, _ := os.Stat(s.Self)
	return cfg.FindRuntime(s.getenv("PATH"), self)
}

// fail reports err as runc reports its own (fatal: logrus, then stderr):
// on stderr, and in the --log file in its --log-format, the only place
// Docker and containerd read a runtime's error from. Errors never carry
// the program's name: it is added here, once.
func (s *Shim) fail(a *runcargs.Args, err error) int {
	// runc's shape, "runc create failed: ...": podman puts the runtime's
	// name in front of the message ("runc: runc create failed: ..."), where
	// a bare "seccomp-shim: " prefix read as the name said twice.
	msg := "seccomp-shim: " + err.Error()
	if a != nil && a.Command != "" {
		msg = "seccomp-shim " + a.Command + " failed: " + err.Error()
	}
	fmt.Fprintln(s.Stderr, msg)
	if a.Log != "" {
		if lerr := logfile.Engine(a.Log, a.LogFormat, logrus.ErrorLevel, msg); lerr != nil {
			fmt.Fprintf(s.Stderr, "seccomp-shim: writing --log %s: %v\n", a.Log, lerr)
		}
	}
	return 1
}

// record notes the decision in the node's log file and passes warnings to
// the engine's log.
func (s *Shim) record(cfg *policy.Config, a *runcargs.Args, res *policy.Result) {
	for _, w := range res.Warnings {
		if a.Log != "" {
			_ = logfile.Engine(a.Log, a.LogFormat, logrus.WarnLevel, "seccomp-shim: "+w)
		}
	}
	fields := logfile.Result(res)
	fields["component"], fields["id"], fields["bundle"], fields["command"], fields["requested"] = "seccomp-shim", a.ID, a.Bundle, a.Command, res.Requested
	if err := logfile.Node(cfg.Log, logrus.InfoLevel, "seccomp profile "+res.Action, fields); err != nil {
		fmt.Fprintf(s.Stderr, "seccomp-shim: warning: log.file: %v\n", err)
	}
	if res.Degraded() {
		if err := logfile.CountDegraded(filepath.Dir(cfg.Audit.Socket)); err != nil {
			fmt.Fprintf(s.Stderr, "seccomp-shim: warning: counting a degraded create: %v\n", err)
		}
	}
}
