package policy

import (
	"errors"
	"fmt"
	"slices"
)

// Notify rule actions.
const (
	NotifyContinue = "continue" // let the syscall run: only on values the container can't change
	NotifyErrno    = "errno"    // fail it with Errno
	NotifyKill     = "kill"     // kill the process that made it
)

// NotifyConfig is the agent's runtime policy, in the same config file.
type NotifyConfig struct {
	Rules []NotifyRule `toml:"rule"`
}

// NotifyRule decides syscalls the shim routed to the agent, that is,
// syscalls the container's profile denies. Rules are tried in order; the
// first that matches decides; no match keeps the profile's own answer.
type NotifyRule struct {
	Name     string    `toml:"name"`
	Match    Match     `toml:"match"`    // which containers, as for [[rule]]
	Syscalls []string  `toml:"syscalls"` // empty: any
	Args     []ArgCond `toml:"args"`     // all must hold
	Comm     []string  `toml:"comm"`     // globs on the thread's comm (the process can set its own: never trust it to allow)
	Exe      []string  `toml:"exe"`      // globs on /proc/<pid>/exe
	UIDs     []int     `toml:"uids"`     // real uid
	Path     *PathCond `toml:"path"`     // a path argument: deny or kill only
	Action   string    `toml:"action"`
	Errno    uint      `toml:"errno"`
	// Audit records what a continue rule lets through, like denials (which
	// are always recorded). Its syscalls are then decided in Go, not by the
	// agent's C fast path: a few µs more per call.
	Audit bool `toml:"audit"`
}

// ArgCond compares a scalar syscall argument.
type ArgCond struct {
	Index uint   `toml:"index"`
	Op    string `toml:"op"` // eq, ne, lt, le, gt, ge, mask (value & mask == value2... see docs)
	Value uint64 `toml:"value"`
	Mask  uint64 `toml:"mask"` // for op = "mask": (arg & mask) == value
}

// PathCond matches a string argument read from the caller's memory.
type PathCond struct {
	Arg  uint   `toml:"arg"`
	Glob string `toml:"glob"`
}

var argOps = []string{"eq", "ne", "lt", "le", "gt", "ge", "mask"}

func (r *NotifyRule) validate() error {
	var errs []error
	switch r.Action {
	case NotifyContinue, NotifyKill:
	case NotifyErrno:
		// 4095 is MAX_ERRNO, but Go reads -4095 as a successful return.
		if r.Errno == 0 || r.Errno > maxErrno-1 {
			errs = append(errs, fmt.Errorf("errno %d: must be 1-%d", r.Errno, maxErrno-1))
		}
	default:
		errs = append(errs, fmt.Errorf("action %q: must be continue, errno or kill", r.Action))
	}
	if r.Path != nil && r.Action == NotifyContinue {
		// The container can rewrite the path after the agent read it.
		errs = append(errs, errors.New("path: a path read from the container may only lead to errno or kill, never continue (the container could change it after the check)"))
	}
	if r.Action == NotifyContinue && (len(r.Comm) > 0 || len(r.Exe) > 0) {
		// A process names itself (prctl PR_SET_NAME), and a container can
		// put any binary at any path of its own rootfs: both can only narrow
		// a deny, never earn a continue.
		errs = append(errs, errors.New("comm, exe: set by the container itself: they may only lead to errno or kill, never continue"))
	}
	if r.Path != nil && (r.Path.Arg > 5 || r.Path.Glob == "") {
		errs = append(errs, fmt.Errorf("path: arg %d must be 0-5 and glob set", r.Path.Arg))
	}
	for i, a := range r.Args {
		if a.Index > 5 || !slices.Contains(argOps, a.Op) {
			errs = append(errs, fmt.Errorf("args[%d]: index must be 0-5 and op one of %v", i, argOps))
		}
	}
	if err := r.Match.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Holds reports whether the condition is true of the argument.
func (a ArgCond) Holds(v uint64) bool {
	switch a.Op {
	case "eq":
		return v == a.Value
	case "ne":
		return v != a.Value
	case "lt":
		return v < a.Value
	case "le":
		return v <= a.Value
	case "gt":
		return v > a.Value
	case "ge":
		return v >= a.Value
	case "mask":
		return v&a.Mask == a.Value
	}
	return false
}

// racyContinues finds continue rules that could take a call an earlier path
// rule looked at: the container could show the path rule one string, be let
// through by the continue, and have the kernel act on another.
func racyContinues(rules []NotifyRule) []error {
	var errs []error
	for i, p := range rules {
		if p.Path == nil {
			continue
		}
		for j := i + 1; j < len(rules); j++ {
			c := rules[j]
			if c.Action != NotifyContinue {
				continue
			}
			if len(p.Syscalls) == 0 || len(c.Syscalls) == 0 || slices.ContainsFunc(c.Syscalls, func(s string) bool { return slices.Contains(p.Syscalls, s) }) {
				errs = append(errs, fmt.Errorf("notify.rule[%d] (%s): continue after the path rule notify.rule[%d] (%s) for the same syscalls would allow whatever path the container swaps in after the check", j, c.Name, i, p.Name))
			}
		}
	}
	return errs
}
