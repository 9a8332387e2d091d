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
//
// Its own output is left as it is: a profile with the protection the policy
// asks for and the audit routing the agent's state asks for is not rewritten,
// however its rules are grouped.
func Spec(cfg *policy.Config, data []byte, id, source string, agent error) ([]byte, *policy.Result, error) {
	spec, before, res, err := apply(cfg, data, id, source)
	if err != nil {
		return nil, nil, err
	}
	var unknown func() error
	if _, ours := policy.Unaudit(before, cfg.Audit.Socket); res.Action == policy.ActionKept && before != nil && !ours {
		// The engine's profile stays: auditing it re-encodes it.
		unknown = func() error { return strictSeccomp(data) }
	}
	if err := audit(cfg, spec, res, agent, unknown); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	var after *specs.LinuxSeccomp
	if spec.Linux != nil {
		after = spec.Linux.Seccomp
	}
	if reflect.DeepEqual(before, after) {
		return kept(data, res, source) // the common case, without SameProtection's work
	}
	// Left as it was where routed alike and protecting alike. Audit leaves
	// a listener it did not set, so a listener on the socket only one side
	// has means one is routed to us and the other not: no more to compare
	// (the usual create, which audits a profile, stops here).
	if before != nil && after != nil && (before.ListenerPath == cfg.Audit.Socket) == (after.ListenerPath == cfg.Audit.Socket) {
		_, wasAudited := policy.Unaudit(before, cfg.Audit.Socket)
		_, isAudited := policy.Unaudit(after, cfg.Audit.Socket)
		// In complain mode the agent takes what each call would get from
		// the metadata alone (a routed-whole syscall's default too), which
		// must be the policy's.
		complain := policy.IsComplain(after, cfg.Audit.Socket)
		if wasAudited == isAudited && policy.IsComplain(before, cfg.Audit.Socket) == complain &&
			(!complain || before.ListenerMetadata == after.ListenerMetadata) &&
			policy.SameProtection(before, after, cfg.Audit.Socket) {
			return kept(data, res, source)
		}
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
	// SetPath refuses what checkPath does, in the same scan.
	out, err := specfile.SetPath(data, raw, "linux", "seccomp")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, res, nil
}

// Follows reports whether the spec in data already has the protection cfg
// asks for (policy.SameProtection): whether its denials are routed to the
// agent is the agent's state at the time, not the policy. The check hook's
// question, with Spec's arguments.
func Follows(cfg *policy.Config, data []byte, id, source string) (*policy.Result, bool, error) {
	spec, before, res, err := apply(cfg, data, id, source)
	if err != nil {
		return nil, false, err
	}
	if err := checkPath(data, source); err != nil {
		return nil, false, err
	}
	// A profile in complain mode lets its denials run: it follows a policy
	// that asks for complain mode only.
	if policy.IsComplain(before, cfg.Audit.Socket) && !res.Complain {
		return res, false, nil
	}
	return res, policy.SameProtection(before, spec.Linux.Seccomp, cfg.Audit.Socket), nil
}

// apply decodes data and applies cfg to it, returning the spec with the
// policy's profile, unaudited, and the profile it had before.
func apply(cfg *policy.Config, data []byte, id, source string) (*specs.Spec, *specs.LinuxSeccomp, *policy.Result, error) {
	if err := cfg.CheckProfiles(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	spec, err := decode(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: not a valid OCI spec: %w", source, err)
	}
	var before *specs.LinuxSeccomp
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		c := *spec.Linux.Seccomp
		before = &c
	}
	res, err := cfg.Apply(spec, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	return spec, before, res, nil
}

// checkPath refuses a spec whose linux.seccomp has a twin differing only in
// case (specfile.CheckPath). Spec asks only where it leaves the spec as it
// is: where it patches the spec, SetPath refuses the same in its own scan.
func checkPath(data []byte, source string) error {
	if err := specfile.CheckPath(data, "linux", "seccomp"); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}

// kept is Spec's result where the spec stays as it is.
func kept(data []byte, res *policy.Result, source string) ([]byte, *policy.Result, error) {
	if err := checkPath(data, source); err != nil {
		return nil, nil, err
	}
	return data, res, nil
}

// ErrAgentUnreachable is returned when policy requires the audit and the
// notify agent does not answer.
var ErrAgentUnreachable = errors.New("notify agent unreachable")

// audit routes the profile's denials through the notify agent when policy
// asks for it and the agent answers (agent is nil). A profile that names
// another listener (the engine's own agent) is left alone; ours from an
// earlier pass, Apply has taken out. unknown, where not nil, says why the
// kept profile can't be re-encoded without loss: it is then kept whole and
// not audited (or, where policy requires the audit, refused), never silently
// cut down. It is asked only when the audit would re-encode it.
func audit(cfg *policy.Config, spec *specs.Spec, res *policy.Result, agent error, unknown func() error) error {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil
	}
	sc := spec.Linux.Seccomp
	// Complain mode is the agent's answer: where it can't be had, the
	// profile is enforced (and said so), or the create refused where
	// audit.unreachable = "refuse"; never started with less.
	enforced := func(why string) error {
		if res.Record != "" {
			// Enforced, the recording profile denies all but the baseline.
			return fmt.Errorf("recording %q not possible: %s", res.Record, why)
		}
		if res.Complain && cfg.Audit.Unreachable == policy.AgentRefuse {
			return fmt.Errorf("complain mode not possible: %s (audit.unreachable = refuse)", why)
		}
		if res.Complain {
			res.Warnings = append(res.Warnings, "complain mode not in effect, profile enforced: "+why)
		}
		return nil
	}
	switch {
	case cfg.Audit.Mode == policy.AuditOff:
		res.Audit = "off by policy"
		return enforced("audit.mode is off")
	case sc.ListenerPath != "":
		res.Audit = "listener already set: " + sc.ListenerPath
		return enforced("the profile names another listener: " + sc.ListenerPath)
	}
	if err := agent; err != nil {
		res.Audit = policy.AuditDegraded + err.Error()
		if res.Complain {
			if cfg.Audit.Unreachable == policy.AgentRefuse {
				return fmt.Errorf("audit.socket %s: %w (complain mode, audit.unreachable = refuse): %w", cfg.Audit.Socket, ErrAgentUnreachable, err)
			}
			return enforced("notify agent at " + cfg.Audit.Socket + ": " + err.Error())
		}
		if cfg.Audit.Mode != policy.AuditAlways {
			return nil
		}
		if cfg.Audit.Unreachable == policy.AgentRefuse {
			return fmt.Errorf("audit.socket %s: %w (audit.unreachable = refuse): %w", cfg.Audit.Socket, ErrAgentUnreachable, err)
		}
		res.Warnings = append(res.Warnings, "denials not audited, same protection: notify agent at "+cfg.Audit.Socket+": "+err.Error())
		return nil
	}
	if unknown != nil {
		if err := unknown(); err != nil {
			res.Audit = "not audited: the engine's profile has fields this build does not know"
			if (res.Complain || cfg.Audit.Mode == policy.AuditAlways) && cfg.Audit.Unreachable == policy.AgentRefuse {
				return fmt.Errorf("linux.seccomp: %w; refusing to audit it and drop them (audit.unreachable = refuse)", err)
			}
			if res.Complain {
				return enforced("the engine's profile is kept whole: " + err.Error())
			}
			res.Warnings = append(res.Warnings, "denials not audited, same protection: the engine's profile is kept whole: "+err.Error())
			return nil
		}
	}
	meta := policy.AuditMeta{Rule: res.Rule, Profile: res.InForce(), Record: res.Record}
	if res.Complain {
		out, warnings, err := policy.Complain(sc, cfg.Audit.Socket, meta)
		if err != nil {
			return err
		}
		spec.Linux.Seccomp = out
		res.Audit, res.Warnings = "complain mode", append(res.Warnings, warnings...)
		return nil
	}
	out, err := policy.Audit(sc, cfg.Audit.Socket, meta)
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
