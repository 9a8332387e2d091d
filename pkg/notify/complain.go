package notify

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Observer learns what complain mode finds: the seam where a collector (a
// recording of what a workload needs) plugs in without touching how calls
// are answered. Both methods run on the container's own thread, in order:
// they must not block.
type Observer interface {
	// WouldDeny is called for each call of a complain-mode container that
	// its profile (or a notify rule) would deny, before the call runs. r
	// (the container, r.Notif.Data's arch, nr and args, r.Syscall) and d
	// (the would-be errno, action and rule) are valid during the call only.
	WouldDeny(r *Request, d Decision)
	// Released is called when the agent stops serving a hand-off of a
	// complain-mode container: the container, or with c.Exec a runc exec's
	// process, ended; or, with agentStopping, the agent stops (the
	// container may run on).
	Released(c *Container, agentStopping bool)
}

// complain answers a call of a complain-mode container: it runs. What it
// would have got is the Handler's decision (a notify rule's, else the
// profile's); where that lets it run, or the profile's argument rules allow
// it (a syscall routed whole: policy.Complain), it is no denial and runs
// unrecorded (a continue rule's audit aside). Letting it run is safe
// whatever the call's memory holds: the decision rests on the syscall
// number and scalar arguments only.
func (s *Server) complain(r *Request) Decision {
	c, cm := r.Container, r.Container.Complain
	act, errno, allowed := specs.LinuxSeccompAction(""), uint(0), false
	_, whole := cm.Rules[r.Syscall]
	if whole {
		if act, errno, allowed = cm.Would(r.Syscall, r.Notif.Data.Args, r.Notif.Data.Bits32()); allowed {
			return Decision{Continue: true}
		}
	}
	d := s.Handler.Decide(r)
	if d.Continue {
		return d
	}
	would := "errno"
	if replay, newer := c.replayRules(); c.Meta != nil && (d.Rule == replay || d.Rule == newer) {
		// The profile's answer: its own action, where not an errno.
		if a, ok := cm.Actions[r.Syscall]; ok && d.Rule == replay {
			would = string(a)
		}
		if whole {
			d.Errno, would = errno, "errno"
			if act != specs.ActErrno {
				would = string(act)
			}
		}
	} else if d.Kill {
		would = "kill"
	}
	if would != "errno" {
		d.Errno = 0 // a kill or a trap: no errno would have been seen
	}
	return Decision{Continue: true, Complain: true, Errno: d.Errno, Rule: d.Rule, Would: would}
}
