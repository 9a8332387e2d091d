package policy

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/replay"
)

// AuditMeta travels to the notify agent as the profile's listenerMetadata:
// see replay.Meta, which the agent and the holder answer from.
type AuditMeta = replay.Meta

// ProfileEngineKept names the profile in force when the engine's own
// profile stays (rule existing = "keep"): not the rule's profile.
const ProfileEngineKept = "engine profile (kept)"

// InForce names the profile the container runs under: the decision's, or
// the engine's own where it was kept.
func (r *Result) InForce() string {
	if r.EngineKept {
		return ProfileEngineKept
	}
	return r.Profile
}

// ParseAuditMeta decodes listenerMetadata written by Audit.
func ParseAuditMeta(s string) (*AuditMeta, error) { return replay.Parse(s) }

// Audit returns sc with every syscall it denies with an errno routed to the
// notify agent at listener: runc refuses SCMP_ACT_NOTIFY as the default
// action, so the denied syscalls are listed one by one. What is not
// converted, and so not audited: write (runc refuses to notify it), syscalls
// with argument rules (their fall-through can't be notified), and kill, trap,
// trace and log actions. The result denies exactly what sc denies, as long as
// the agent answers; runc fails the create if it can't reach the agent.
func Audit(sc *specs.LinuxSeccomp, listener string, meta AuditMeta) (*specs.LinuxSeccomp, error) {
	return route(sc, listener, meta, nil)
}

func errnoOrEPERM(e *uint) uint {
	if e == nil {
		return 1
	}
	return *e
}
