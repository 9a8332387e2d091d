package notify

import (
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

// Decide implements Handler.
func (p *Policy) Decide(r *Request) Decision {
	cfg := p.cfg.Load()
	var who *proc // read once, and only if a rule looks at the caller
	for i := range cfg.Notify.Rules {
		rule := &cfg.Notify.Rules[i]
		if !matches(rule, r, &who) {
			continue
		}
		switch rule.Action {
		case policy.NotifyContinue:
			return Decision{Continue: true, Rule: rule.Name}
		case policy.NotifyKill:
			return Decision{Kill: true, Errno: uint(unix.EPERM), Rule: rule.Name}
		default:
			return Decision{Errno: rule.Errno, Rule: rule.Name}
		}
	}
	return Replay.Decide(r)
}

type proc struct {
	ok        bool
	comm, exe string
	uid       int
}

func matches(rule *policy.NotifyRule, r *Request, who **proc) bool {
	c := r.Container
	if !rule.Match.Matches(policy.Container{ID: c.ID, Annotations: c.Annotations}) {
		return false
	}
	if len(rule.Syscalls) > 0 && !slices.Contains(rule.Syscalls, r.Syscall) {
		return false
	}
	for _, a := range rule.Args {
		if !a.Holds(r.Notif.Data.Args[a.Index]) {
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
