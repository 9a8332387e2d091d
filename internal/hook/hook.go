// Package hook is seccomp-hook, an OCI hook for podman and CRI-O.
//
// In the precreate stage (a podman/CRI-O extension) it reads the spec on
// stdin and writes it, with the policy applied by the same code as
// seccomp-shim, to stdout. In the classic stages the runtime has already read
// config.json, so it can only check: at createRuntime, createContainer and
// prestart it fails the start of a container whose profile is not what the
// policy requires; at poststart and poststop it records. Hook stdio is
// usually swallowed, so it logs to the config's log file, and why it failed
// to --error-log too, which does not depend on the config.
package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/logfile"
	"github.com/seccomp-shim/seccomp-shim/internal/specfile"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// ErrPolicyMismatch is returned when a container's profile is not the one
// the policy requires.
var ErrPolicyMismatch = errors.New("seccomp profile differs from what policy requires")

// maxInput bounds what the hook reads from stdin: a spec is kilobytes.
const maxInput = 64 << 20

// DefaultErrorLog is where the hook writes why it failed, whatever the
// config says: podman 4.3 shows only a failing precreate hook's exit status
// and drops its stderr, and a broken config can't name its own log.file.
const DefaultErrorLog = "/var/log/seccomp-shim/hook.log"

// Hook holds one invocation's process state.
type Hook struct {
	Args           []string // os.Args
	Getenv         func(string) string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ErrorLog is --error-log's default: DefaultErrorLog for the command,
	// "" (none) where unset.
	ErrorLog string

	errorLog string // as the command line set it
}

// stages are the OCI (and podman/CRI-O) hook stages, each a command.
var stages = []struct{ name, usage string }{
	{"precreate", "read the spec on stdin, write it with the policy applied on stdout"},
	{"createRuntime", "refuse a container whose profile escaped the policy (state on stdin)"},
	{"createContainer", "as createRuntime"},
	{"prestart", "as createRuntime"},
	{"startContainer", "record the container in log.file (state on stdin)"},
	{"poststart", "as startContainer"},
	{"poststop", "as startContainer"},
}

// Run runs the hook and returns its exit code.
func (h *Hook) Run() int {
	app := cliapp.New("seccomp-hook", "apply the node's seccomp policy as an OCI hook (podman, CRI-O)", h.Stdout, h.Stderr)
	// Hooks run with an empty environment, so the config path is a flag.
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "the policy file; default $" + policy.ConfigEnv + " or " + policy.DefaultConfigPath},
		&cli.StringFlag{Name: "error-log", Value: h.ErrorLog, Usage: "append why the hook failed here, whatever the config says (\"\" for nowhere)"},
	}
	for _, st := range stages {
		app.Commands = append(app.Commands, &cli.Command{Name: st.name, Usage: st.usage, Action: func(c *cli.Context) error {
			// Refused before reading stdin: from a terminal it would
			// wait for EOF first.
			if err := cliapp.NoArgs(c); err != nil {
				return err
			}
			if code := h.stage(c.String("config"), c.String("error-log"), st.name); code != 0 {
				return cli.Exit("", code)
			}
			return nil
		}})
	}
	return cliapp.Run(app, h.Args[1:])
}

// stage runs one stage with the config file path (if not "") and the error
// log path (if not "").
func (h *Hook) stage(path, errorLog, stage string) int {
	h.errorLog = errorLog
	getenv := h.Getenv
	if path != "" {
		getenv = func(k string) string {
			if k == policy.ConfigEnv {
				return path
			}
			return h.Getenv(k)
		}
	}
	cfg, err := policy.Load(getenv)
	if err != nil {
		return h.fail(nil, stage, "", err)
	}
	// One byte past the cap tells a whole input from a cut one, whose
	// prefix might parse. Trailing garbage within it, json.Unmarshal refuses.
	in, err := io.ReadAll(io.LimitReader(h.Stdin, maxInput+1))
	if err != nil {
		return h.fail(cfg, stage, "", fmt.Errorf("reading stdin: %w", err))
	}
	if len(in) > maxInput {
		return h.fail(cfg, stage, "", fmt.Errorf("stdin: larger than %d MiB, not a spec or state", maxInput>>20))
	}
	if stage == "precreate" {
		out, res, err := inject.Spec(cfg, in, "", "spec on stdin", inject.Reach(cfg))
		if err != nil {
			return h.fail(cfg, stage, "", err)
		}
		if _, err := h.Stdout.Write(out); err != nil {
			return h.fail(cfg, stage, "", fmt.Errorf("writing stdout: %w", err))
		}
		h.log(cfg, logrus.InfoLevel, "seccomp profile "+res.Action, stage, "", res)
		if res.Degraded() {
			if err := logfile.CountDegraded(filepath.Dir(cfg.Audit.Socket)); err != nil {
				fmt.Fprintf(h.Stderr, "seccomp-hook: counting a degraded create: %v\n", err)
			}
		}
		return 0
	}
	var state specs.State
	if err := json.Unmarshal(in, &state); err != nil {
		return h.fail(cfg, stage, "", fmt.Errorf("state on stdin: %w", err))
	}
	switch stage {
	case "createRuntime", "createContainer", "prestart":
		res, err := Verify(cfg, state)
		if err != nil {
			return h.fail(cfg, stage, state.ID, err)
		}
		h.log(cfg, logrus.InfoLevel, "seccomp profile verified", stage, state.ID, res)
	default:
		h.log(cfg, logrus.InfoLevel, "container "+stage, stage, state.ID, nil)
	}
	return 0
}

// Verify checks that the bundle's config.json already has the protection
// the policy gives it (inject.Follows). Apply is idempotent, so any other
// profile is a container started without the policy: by a runtime other than
// seccomp-shim, or without the precreate hook. Whether its denials reach the
// agent is not checked: that depends on whether the agent answered when the
// spec was written, and runc fails the create if a listener does not.
func Verify(cfg *policy.Config, state specs.State) (*policy.Result, error) {
	path := filepath.Join(state.Bundle, "config.json")
	// As the shim reads it: a regular file, not a link, within the cap.
	f, err := specfile.Read(path)
	if err != nil {
		return nil, err
	}
	res, ok, err := inject.Follows(cfg, f.Data, state.ID, path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("container %s: %w: rule %q requires profile %q (%s), the spec has another", state.ID, ErrPolicyMismatch, res.Rule, res.Profile, res.Action)
	}
	return res, nil
}

func (h *Hook) fail(cfg *policy.Config, stage, id string, err error) int {
	msg := fmt.Sprintf("seccomp-hook %s: %v", stage, err)
	fmt.Fprintln(h.Stderr, msg)
	if h.errorLog != "" {
		fields := logrus.Fields{"component": "seccomp-hook", "stage": stage}
		if id != "" {
			fields["id"] = id
		}
		// The directory is the installer's; made here too, as a hook that
		// fails to say why is what this log is for.
		err := os.MkdirAll(filepath.Dir(h.errorLog), 0o755)
		if err == nil {
			err = logfile.Node(policy.LogConfig{File: h.errorLog, Level: "error"}, logrus.ErrorLevel, msg, fields)
		}
		if err != nil {
			fmt.Fprintf(h.Stderr, "seccomp-hook: --error-log: %v\n", err)
		}
	}
	if cfg != nil {
		h.log(cfg, logrus.ErrorLevel, msg, stage, id, nil)
	}
	return 1
}

func (h *Hook) log(cfg *policy.Config, level logrus.Level, msg, stage, id string, res *policy.Result) {
	fields := logrus.Fields{}
	if res != nil {
		fields = logfile.Result(res)
	}
	fields["component"], fields["stage"] = "seccomp-hook", stage
	if id != "" {
		fields["id"] = id
	}
	if err := logfile.Node(cfg.Log, level, msg, fields); err != nil {
		fmt.Fprintf(h.Stderr, "seccomp-hook: log.file: %v\n", err)
	}
}
