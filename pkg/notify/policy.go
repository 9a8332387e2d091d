package notify

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// Policy decides by the config's [[notify.rule]]s, first match wins, and
// answers what the profile answered (Replay) when none matches. Store swaps
// the config in for containers already running: that is live policy.
type Policy struct {
	cfg atomic.Pointer[policy.Config]

	mu       sync.Mutex
	watchers map[*func()]struct{} // fast paths' tables to rebuild on Store
}

// NewPolicy returns a Policy deciding by c.
func NewPolicy(c *policy.Config) *Policy {
	p := &Policy{}
	p.cfg.Store(c)
	return p
}

// Store puts c in force for every decision from now on, and rebuilds the
// tables of the fast paths serving running containers.
func (p *Policy) Store(c *policy.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Store(c)
	for f := range p.watchers {
		(*f)()
	}
}

// Decide implements Handler: it runs the container's plan for the
// syscall, the same plan its fast path's table was built from.
func (p *Policy) Decide(r *Request) Decision {
	var who *proc // read once, and only if a rule looks at the caller
	for _, st := range p.plan(r.Container).steps(r.Syscall) {
		if st.perCall && !st.matches(r, &who) {
			continue
		}
		return st.d
	}
	return Replay.Decide(r)
}

// plan is the config's [[notify.rule]]s compiled for one container: for
// each syscall, the rules that may decide it, in order. It is the one
// evaluation of the rules: Decide runs it per call, and the fast path's
// table (fast.go) answers from it what no rule decides per call.
type plan struct {
	cfg     *policy.Config
	named   map[string][]step // syscalls some rule names
	unnamed []step            // every other syscall: the rules naming none
}

// step is one rule of a plan.
type step struct {
	rule *policy.NotifyRule
	// perCall: the rule looks at the call itself (its arguments, the
	// caller or a path), so only Decide can tell whether it matches.
	perCall bool
	d       Decision // its answer when it matches
}

// plan returns c's plan under the config in force, compiling it the first
// time the config is seen for c. A compiled plan is kept, so a decision
// does not allocate.
func (p *Policy) plan(c *Container) *plan {
	cfg := p.cfg.Load()
	if pl := c.plan.Load(); pl != nil && pl.cfg == cfg {
		return pl
	}
	pl := compile(cfg, c)
	c.plan.Store(pl)
	return pl
}

func compile(cfg *policy.Config, c *Container) *plan {
	pl := &plan{cfg: cfg, named: map[string][]step{}}
	who := policy.Container{ID: c.ID, Annotations: c.Annotations}
	var rules []step
	for i := range cfg.Notify.Rules {
		rule := &cfg.Notify.Rules[i]
		if !rule.Match.Matches(who) {
			continue // another container's
		}
		st := step{rule: rule, perCall: len(rule.Args) > 0 || len(rule.Comm) > 0 || len(rule.Exe) > 0 || len(rule.UIDs) > 0 || rule.Path != nil}
		switch rule.Action {
		case policy.NotifyContinue:
			st.d = Decision{Continue: true, Rule: rule.Name, Audit: rule.Audit}
		case policy.NotifyKill:
			st.d = Decision{Kill: true, Errno: uint(unix.EPERM), Rule: rule.Name}
		default:
			st.d = Decision{Errno: rule.Errno, Rule: rule.Name}
		}
		rules = append(rules, st)
		for _, name := range rule.Syscalls {
			pl.named[name] = nil
		}
	}
	for name := range pl.named {
		for _, st := range rules {
			if len(st.rule.Syscalls) == 0 || slices.Contains(st.rule.Syscalls, name) {
				pl.named[name] = append(pl.named[name], st)
			}
		}
	}
	for _, st := range rules {
		if len(st.rule.Syscalls) == 0 {
			pl.unnamed = append(pl.unnamed, st)
		}
	}
	return pl
}

// steps are the rules that may decide syscall, in order.
func (pl *plan) steps(syscall string) []step {
	if s, ok := pl.named[syscall]; ok {
		return s
	}
	return pl.unnamed
}

type proc struct {
	ok        bool
	comm, exe string
	uid       int
}

// matches tells whether the call matches the conditions of st's rule that
// the plan could not settle in advance.
func (st *step) matches(r *Request, who **proc) bool {
	rule := st.rule
	for _, a := range rule.Args {
		// The kernel reads an int argument's low 32 bits (socket's family)
		// and a long's all 64 (a length), and the agent can't tell which:
		// a continue holds only where the condition holds of the value both
		// ways, an errno or kill where it holds either way, so bits the
		// kernel ignores can't dodge a rule.
		v := r.Notif.Data.Args[a.Index]
		lo := a
		lo.Value, lo.Mask = a.Value&math.MaxUint32, a.Mask&math.MaxUint32
		full, low := a.Holds(v), lo.Holds(v&math.MaxUint32)
		if st.d.Continue && !(full && low) || !st.d.Continue && !full && !low {
			return false
		}
	}
	if len(rule.Comm) > 0 || len(rule.Exe) > 0 || len(rule.UIDs) > 0 {
		if *who == nil {
			p := &proc{}
			_, p.comm, p.exe, p.uid = procInfo(r.Fd, r.Notif)
			p.ok = p.uid >= 0
			*who = p
		}
		p := *who
		if !p.ok ||
			len(rule.Comm) > 0 && !anyGlob(rule.Comm, p.comm) ||
			len(rule.Exe) > 0 && !anyGlob(rule.Exe, p.exe) ||
			len(rule.UIDs) > 0 && !slices.Contains(rule.UIDs, p.uid) {
			return false
		}
	}
	if rule.Path != nil {
		// Validation allows paths only for errno and kill: whatever the
		// container does to the string after this read, it can only get
		// itself denied.
		s, err := unotify.ReadString(r.Fd, r.Notif, r.Notif.Data.Args[rule.Path.Arg], unix.PathMax)
		if err != nil || !policy.Glob(rule.Path.Glob, s) {
			return false
		}
	}
	return true
}

func anyGlob(pats []string, s string) bool {
	return slices.ContainsFunc(pats, func(p string) bool { return policy.Glob(p, s) })
}

// kill sends SIGKILL to the process that made notification n, safely
// against pid reuse: the pidfd is opened first and the notification checked
// still pending after, so the pid still named the caller when the pidfd was
// made.
func kill(fd int, n *unotify.Notif) error {
	pid, _, _, _ := procInfo(fd, n)
	if pid <= 0 {
		return unix.ESRCH
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if err := unotify.IDValid(fd, n.ID); err != nil {
		return err
	}
	return unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
}
