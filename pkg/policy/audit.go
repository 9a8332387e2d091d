package policy

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/replay"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
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
	meta.V = 1
	def := verdict{sc.DefaultAction, sc.DefaultErrnoRet}
	if def.Action == specs.ActErrno {
		meta.Errno = errnoOrEPERM(def.Errno)
	}
	t := treatments(sc)
	var routed []string
	for n := range unotify.SyscallNames() {
		if n == "write" {
			continue
		}
		v := def
		if tr, ok := t[n]; ok {
			if tr.Uncond == nil {
				continue
			}
			v = *tr.Uncond
		}
		if v.Action != specs.ActErrno {
			continue
		}
		if e := errnoOrEPERM(v.Errno); e != meta.Errno {
			if meta.Errnos == nil {
				meta.Errnos = map[string]uint{}
			}
			meta.Errnos[n] = e
		}
		routed = append(routed, n)
	}
	if len(routed) == 0 {
		return sc, nil
	}
	meta.ENOSYSAbove = map[specs.Arch]int{}
	named := map[string]bool{}
	for _, s := range sc.Syscalls {
		for _, n := range s.Names {
			named[n] = true
		}
	}
	for _, a := range archesOrNative(sc.Architectures) {
		arch, ok := specArch(a)
		if !ok || !hasTable(arch) {
			continue
		}
		highest := -1
		for s := range arch.Syscalls() {
			if named[s.Name] {
				highest = int(s.Nr)
			}
		}
		meta.ENOSYSAbove[a] = highest
	}
	md, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	out := *sc
	out.ListenerPath, out.ListenerMetadata = listener, string(md)
	out.Syscalls = nil
	isRouted := make(map[string]bool, len(routed))
	for _, n := range routed {
		isRouted[n] = true
	}
	for _, s := range sc.Syscalls {
		// Unconditional errno rules give their names to the notify rule.
		if len(s.Args) == 0 && s.Action == specs.ActErrno {
			var keep []string
			for _, n := range s.Names {
				if !isRouted[n] {
					keep = append(keep, n)
				}
			}
			if len(keep) == 0 {
				continue
			}
			s.Names = keep
		}
		out.Syscalls = append(out.Syscalls, s)
	}
	out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: routed, Action: specs.ActNotify})
	return &out, nil
}

func errnoOrEPERM(e *uint) uint {
	if e == nil {
		return 1
	}
	return *e
}
