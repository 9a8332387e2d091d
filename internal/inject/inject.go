// Package inject applies the node's seccomp policy to a raw OCI spec. It is
// the one piece of code that both seccomp-shim (on config.json) and
// seccomp-hook precreate (on stdin) run, so the two give the same result.
//
// It decodes the spec only to read it, and patches the raw JSON at
// linux.seccomp alone, so fields this build does not know survive untouched.
package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/specfile"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

// ErrUnknownFields is returned when a profile would be rewritten but holds
// fields this build can't carry over.
var ErrUnknownFields = errors.New("unknown fields")

// Spec applies cfg to the spec in data for container id (empty where
// unknown) and returns the new spec, or data itself when nothing changes.
// source names the spec in errors. agent is whether the notify agent
// answers, as Reach found it: nil if it does. Spec itself touches nothing
// outside its arguments, so the same inputs always give the same spec.
func Spec(cfg *policy.Config, data []byte, id, source string, agent error) ([]byte, *policy.Result, error) {
	if err := cfg.CheckProfiles(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	spec, err := decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a valid OCI spec: %w", source, err)
	}
	var before *specs.LinuxSeccomp
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		c := *spec.Linux.Seccomp
		before = &c
	}
	res, err := cfg.Apply(spec, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := audit(cfg, spec, res, agent); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	var after *specs.LinuxSeccomp
	if spec.Linux != nil {
		after = spec.Linux.Seccomp
	}
	if reflect.DeepEqual(before, after) {
		return data, res, nil
	}
	if res.Action == policy.ActionTightened {
		if err := strictSeccomp(data); err != nil {
			return nil, nil, fmt.Errorf("%s: linux.seccomp: %w; refusing to tighten it and drop them", source, err)
		}
	}
	var raw json.RawMessage // nil deletes linux.seccomp
	if after != nil {
		if raw, err = json.Marshal(after); err != nil {
			return nil, nil, fmt.Errorf("%s: encoding linux.seccomp: %w", source, err)
		}
	}
	out, err := specfile.SetPath(data, raw, "linux", "seccomp")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, res, nil
}

// ErrAgentUnreachable is returned when policy requires the audit and the
// notify agent does not answer.
var ErrAgentUnreachable = errors.New("notify agent unreachable")

// audit routes the profile's denials through the notify agent when policy
// asks for it and the agent answers (agent is nil). A profile that already
// names a listener (ours from an earlier pass, or the engine's own agent) is
// left alone.
func audit(cfg *policy.Config, spec *specs.Spec, res *policy.Result, agent error) error {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil
	}
	sc := spec.Linux.Seccomp
	switch {
	case cfg.Audit.Mode == policy.AuditOff:
		res.Audit = "off by policy"
		return nil
	case sc.ListenerPath != "":
		res.Audit = "listener already set: " + sc.ListenerPath
		return nil
	}
	if err := agent; err != nil {
		res.Audit = "degraded: " + err.Error()
		if cfg.Audit.Mode != policy.AuditAlways {
			return nil
		}
		if cfg.Audit.Unreachable == policy.AgentRefuse {
			return fmt.Errorf("audit.socket %s: %w (audit.unreachable = refuse): %w", cfg.Audit.Socket, ErrAgentUnreachable, err)
		}
		res.Warnings = append(res.Warnings, "denials not audited, same protection: notify agent at "+cfg.Audit.Socket+": "+err.Error())
		return nil
	}
	out, err := policy.Audit(sc, cfg.Audit.Socket, policy.AuditMeta{Rule: res.Rule, Profile: res.Profile})
	if err != nil {
		return err
	}
	spec.Linux.Seccomp = out
	res.Audit = "audited"
	return nil
}

// Reach checks that the notify agent at cfg's audit.socket accepts
// connections, for Spec's agent argument: runc will connect during create and
// fail it if nobody answers. With audit off it dials nothing and returns nil,
// which Spec then ignores. A bare connect, not package net: its
// initialisation alone costs every container start more than the connect
// does. The send timeout bounds the wait on a full backlog.
func Reach(cfg *policy.Config) error {
	if cfg.Audit.Mode == policy.AuditOff {
		return nil
	}
	socket := cfg.Audit.Socket
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socket}); err != nil {
		return fmt.Errorf("dial unix %s: connect: %w", socket, err)
	}
	return nil
}

// decode reads what the policy looks at. Decoding all of specs.Spec would
// cost a cold process a millisecond of reflection at every container start;
// runc checks the rest.
func decode(data []byte) (*specs.Spec, error) {
	var v struct {
		Annotations map[string]string `json:"annotations"`
		Process     *struct {
			Args         []string                 `json:"args"`
			Env          []string                 `json:"env"`
			Capabilities *specs.LinuxCapabilities `json:"capabilities"`
		} `json:"process"`
		Linux *struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	spec := &specs.Spec{Annotations: v.Annotations}
	if v.Process != nil {
		spec.Process = &specs.Process{Args: v.Process.Args, Env: v.Process.Env, Capabilities: v.Process.Capabilities}
	}
	if v.Linux != nil {
		spec.Linux = &specs.Linux{Seccomp: v.Linux.Seccomp}
	}
	return spec, nil
}

// strictSeccomp fails if the spec's linux.seccomp has fields the typed spec
// would drop on re-encoding.
func strictSeccomp(data []byte) error {
	var doc struct {
		Linux struct {
			Seccomp json.RawMessage `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(doc.Linux.Seccomp))
	dec.DisallowUnknownFields()
	var sc specs.LinuxSeccomp
	if err := dec.Decode(&sc); err != nil {
		return fmt.Errorf("%w: %w", ErrUnknownFields, err)
	}
	return nil
}

// File applies cfg to the config.json at path, rewriting it atomically (mode
// and owner kept) only if something changed. On error the file is as it was.
// agent is as for Spec.
func File(cfg *policy.Config, path, id string, agent error) (*policy.Result, error) {
	f, err := specfile.Read(path)
	if err != nil {
		return nil, err
	}
	out, res, err := Spec(cfg, f.Data, id, path, agent)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAtomic(out); err != nil {
		return nil, err
	}
	return res, nil
}
