// Package shim is seccomp-shim, a runc-compatible OCI runtime. On create, run
// and restore it applies the node's seccomp policy to the bundle's
// config.json, then execs the real runtime with the very same argv. Every
// other command goes straight through. It never writes to stdout: engines
// parse the real runtime's stdout, and the exec leaves it all to runc.
package shim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/logline"
	"github.com/seccomp-shim/seccomp-shim/internal/passthrough"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/runcargs"
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
	// Check runs the operator's readiness check (seccomp-shim check).
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
	if len(s.Args) > 1 && s.Args[1] == "check" {
		cfg, err := policy.Load(s.getenv)
		if err != nil {
			fmt.Fprintf(s.Stderr, "seccomp-shim check: %v\n", err)
			return 1
		}
		return s.Check(cfg, s.Stdout)
	}
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
		res, err := inject.File(cfg, filepath.Join(a.Bundle, "config.json"), a.ID)
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
	if err := passthrough.Remember(s.RuntimeCache, config, s.getenv("PATH"), rt); err != nil {
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

// fail reports err where engines look for it: stderr, and the --log file in
// its --log-format, which is the only place Docker and containerd read a
// runtime's error from.
func (s *Shim) fail(a *runcargs.Args, err error) int {
	msg := "seccomp-shim: " + err.Error()
	fmt.Fprintln(s.Stderr, msg)
	if a.Log != "" {
		if lerr := logline.Append(a.Log, a.LogFormat, logline.Error, msg, nil); lerr != nil {
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
			_ = logline.Append(a.Log, a.LogFormat, logline.Warning, "seccomp-shim: "+w, nil)
		}
	}
	if cfg.Log.File == "" || !logline.Enabled(cfg.Log.Level, logline.Info) {
		return
	}
	fields := map[string]any{
		"component": "seccomp-shim", "id": a.ID, "bundle": a.Bundle, "command": a.Command,
		"rule": res.Rule, "profile": res.Profile, "requested": res.Requested, "action": res.Action,
	}
	if res.Audit != "" {
		fields["audit"] = res.Audit
	}
	if len(res.Warnings) > 0 {
		fields["warnings"] = res.Warnings
	}
	err := logline.Append(cfg.Log.File, "json", logline.Info, "seccomp profile "+res.Action, fields)
	if err != nil {
		fmt.Fprintf(s.Stderr, "seccomp-shim: warning: log.file: %v\n", err)
	}
}
