package check

import (
	"fmt"

	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/install"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// Engines reports each container engine's registration under h.Root, as
// `seccomp-install status` finds it (the same code): Docker's daemon.json
// runtime, containerd's drop-in and its import, podman's containers.conf.d
// runtime and hooks.d hook, CRI-O's crio.conf.d handler.
func (h Host) Engines() []Finding {
	regs, err := install.Registrations(h.Root)
	if err != nil {
		return []Finding{{Fail, "engine", err.Error()}}
	}
	if len(regs) == 0 {
		return []Finding{{Warn, "engine", "no container engine found (Docker, containerd, podman, CRI-O): nothing runs seccomp-shim"}}
	}
	// An engine with nothing registered is one line, not one per file.
	registered := map[string]bool{}
	for _, r := range regs {
		registered[r.Engine] = registered[r.Engine] || r.State != "missing"
	}
	said := map[string]bool{}
	var out []Finding
	for _, r := range regs {
		if !registered[r.Engine] {
			if !said[r.Engine] {
				out = append(out, Finding{Warn, "engine", r.Engine + ": not registered (seccomp-install install)"})
				said[r.Engine] = true
			}
			continue
		}
		switch r.State {
		case "ok":
			out = append(out, Finding{OK, "engine", r.Engine + ": " + r.Detail})
		case "missing":
			out = append(out, Finding{Warn, "engine", r.Engine + ": not registered: " + r.Detail + " (seccomp-install install)"})
		case "error":
			out = append(out, Finding{Fail, "engine", r.Engine + ": " + r.Detail})
		default:
			out = append(out, Finding{Warn, "engine", r.Engine + ": " + r.State + ": " + r.Detail})
		}
	}
	return out
}

// Agent reports whether the notify agent answers at audit.socket, as the
// shim finds out at each create (inject.Reach), and what that means for
// containers started now.
// A nil cfg failed to load: its socket is unknown.
func Agent(cfg *policy.Config) []Finding {
	if cfg == nil {
		return []Finding{{Warn, "agent", "not checked: the config did not load, so its audit.socket is unknown"}}
	}
	a := cfg.Audit
	if a.Mode == policy.AuditOff {
		return []Finding{{OK, "agent", "audit.mode = off: denied syscalls are not audited"}}
	}
	err := inject.Reach(cfg)
	switch {
	case err == nil:
		return []Finding{{OK, "agent", "answers at " + a.Socket + ": containers started now are audited"}}
	case a.Mode == policy.AuditAlways && a.Unreachable == policy.AgentRefuse:
		return []Finding{{Fail, "agent", fmt.Sprintf("not answering at %s (%v): audit.unreachable = refuse, so every container with a filter is refused; start seccomp-agent", a.Socket, err)}}
	default:
		return []Finding{{Warn, "agent", fmt.Sprintf("not answering at %s (%v): containers started now run unaudited for their whole life (same protection, no audit record), even after the agent starts; start seccomp-agent", a.Socket, err)}}
	}
}
