package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// ErrInvalidProfile marks every validation failure.
var ErrInvalidProfile = errors.New("invalid seccomp profile")

// Problem is one thing wrong with a profile. Rule is the index in the
// profile file's "syscalls", or -1 for the profile as a whole.
type Problem struct {
	Rule  int
	Names []string
	Msg   string
}

func (p Problem) String() string {
	if p.Rule < 0 {
		return p.Msg
	}
	return fmt.Sprintf("syscalls[%d] %q: %s", p.Rule, p.Names, p.Msg)
}

// ValidationError lists every problem of one profile, so an operator fixes
// them in one go rather than one per container start.
type ValidationError struct {
	Profile, Source string
	Problems        []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %q (%s): ", e.Profile, e.Source)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return ErrInvalidProfile }

// specArch finds a spec architecture runc can filter, with libseccomp's
// name for it, in the one table of architectures.
func specArch(a specs.Arch) (unotify.Arch, bool) {
	return unotify.LookupArch(func(a unotify.Arch) specs.Arch { return a.Spec }, a)
}

var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
	specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var knownOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

var knownFlags = []specs.LinuxSeccompFlag{
	"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
}

// maxErrno is the kernel's MAX_ERRNO: a larger value is not an error return.
const maxErrno = 4095

// newerSyscalls are real syscalls that Docker's default profile names. A name
// from this set that libseccomp does not know is a warning, not an error:
// runc skips names libseccomp can't resolve, exactly as for Docker.
var newerSyscalls = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, s := range mobyseccomp.DefaultProfile().Syscalls {
		for _, n := range s.Names {
			m[n] = true
		}
	}
	return m
})

// Validate checks sc, resolved from p, the way runc 1.1 will compile it, and
// more: runc accepts duplicate and contradictory rules silently. Two equal
// rules are only a duplicate if neither has includes or excludes in the
// source: Docker's own profile repeats names across capability groups. It
// returns warnings about names libseccomp can't resolve. Names are checked
// against the table generated from libseccomp (unotify.SyscallNames, from
// libseccomp unotify.LibseccompVersion).
func Validate(p *Profile, sc *specs.LinuxSeccomp) (warnings []string, err error) {
	return validate(p, sc, false)
}

// ValidateAll is Validate that also checks the names of built-in profiles,
// for the check command.
func ValidateAll(p *Profile, sc *specs.LinuxSeccomp) (warnings []string, err error) {
	return validate(p, sc, true)
}

func validate(p *Profile, sc *specs.LinuxSeccomp, fullCheck bool) (warnings []string, err error) {
	name, source := p.Name, p.Source
	var origins []Origin
	origin := func(i int) Origin {
		if origins == nil {
			origins = p.Origins(sc)
		}
		return origins[i]
	}
	var probs []Problem
	bad := func(rule int, names []string, format string, a ...any) {
		if rule >= 0 {
			rule = origin(rule).Index
		}
		probs = append(probs, Problem{Rule: rule, Names: names, Msg: fmt.Sprintf(format, a...)})
	}
	if !slices.Contains(knownActions, sc.DefaultAction) {
		bad(-1, nil, "defaultAction: unknown action %q", sc.DefaultAction)
	}
	if sc.DefaultAction == specs.ActNotify {
		bad(-1, nil, "defaultAction: SCMP_ACT_NOTIFY is refused by runc; list the syscalls to notify explicitly")
	}
	checkErrno(sc.DefaultAction, sc.DefaultErrnoRet, func(msg string) { bad(-1, nil, "defaultErrnoRet: %s", msg) })
	// The built-in profiles' names are checked by this package's tests; at
	// most they could warn, and looking up 370 names at every container
	// start would be work for nothing.
	checkNames := p.Source != sourceBuiltin || fullCheck
	var arches []unotify.Arch
	for _, a := range sc.Architectures {
		sa, ok := specArch(a)
		if !ok {
			bad(-1, nil, "architectures: unknown architecture %q", a)
			continue
		}
		if !checkNames {
			continue
		}
		arches = append(arches, sa)
	}
	if len(sc.Architectures) == 0 && checkNames {
		if native, ok := unotify.NativeArch(); ok {
			arches = append(arches, native)
		}
	}
	checkNames = checkNames && len(arches) > 0
	for _, f := range sc.Flags {
		if !slices.Contains(knownFlags, f) {
			bad(-1, nil, "flags: unknown flag %q", f)
		}
	}

	type seen struct {
		rule int
		key  string
		act  string
	}
	byName := map[string][]seen{}
	checked := map[string]struct{}{}
	var skipped []string
	for i, s := range sc.Syscalls {
		if len(s.Names) == 0 {
			bad(i, s.Names, "no syscall names")
		}
		if !slices.Contains(knownActions, s.Action) {
			bad(i, s.Names, "action: unknown action %q", s.Action)
		}
		checkErrno(s.Action, s.ErrnoRet, func(msg string) { bad(i, s.Names, "errnoRet: %s", msg) })
		for j, a := range s.Args {
			if a.Index > 5 {
				bad(i, s.Names, "args[%d]: index %d out of range 0-5", j, a.Index)
			}
			if !slices.Contains(knownOps, a.Op) {
				bad(i, s.Names, "args[%d]: unknown operator %q", j, a.Op)
			}
		}
		key := fmt.Sprint(s.Args)
		act := fmt.Sprint(s.Action, errnoOf(s.ErrnoRet))
		for _, n := range s.Names {
			if s.Action == specs.ActNotify && n == "write" {
				bad(i, s.Names, "SCMP_ACT_NOTIFY on write is refused by runc")
			}
			if _, done := checked[n]; !done && checkNames {
				checked[n] = struct{}{}
				switch known, real := resolves(n, arches); {
				case known:
				case real:
					skipped = append(skipped, n)
				default:
					bad(i, []string{n}, "unknown syscall %q for architectures %v", n, archNames(sc.Architectures))
				}
			}
			for _, prev := range byName[n] {
				switch {
				case prev.key == key && prev.act == act:
					if !origin(i).Conditional && !origin(prev.rule).Conditional {
						bad(i, []string{n}, "duplicates syscalls[%d]", origin(prev.rule).Index)
					}
				case prev.key == key || prev.key == "[]" || key == "[]":
					if prev.act != act {
						bad(i, []string{n}, "contradicts syscalls[%d] (%s vs %s)", origin(prev.rule).Index, act, prev.act)
					}
				}
			}
			byName[n] = append(byName[n], seen{i, key, act})
		}
	}
	if len(skipped) > 0 {
		warnings = append(warnings, fmt.Sprintf("profile %q (%s): libseccomp %s does not know %s; runc will skip them", name, source, unotify.LibseccompVersion, strings.Join(skipped, ", ")))
	}
	if len(probs) > 0 {
		return warnings, &ValidationError{Profile: name, Source: source, Problems: probs}
	}
	return warnings, nil
}

func checkErrno(act specs.LinuxSeccompAction, errno *uint, bad func(string)) {
	if errno == nil {
		return
	}
	if act != specs.ActErrno && act != specs.ActTrace {
		bad(fmt.Sprintf("only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", act))
	}
	if *errno > maxErrno {
		bad(fmt.Sprintf("%d is above the largest errno %d", *errno, maxErrno))
	}
}

func errnoOf(e *uint) string {
	if e == nil {
		return ""
	}
	return fmt.Sprintf("(%d)", *e)
}

// resolves reports whether libseccomp knows the name on one of the arches
// (possibly as another arch's syscall, as for chown32 on x86_64: Docker's
// profiles list the union of every arch's names), and whether it is a real
// syscall name at all. libseccomp resolves every name it knows on every
// architecture it has a table for (unotify.SyscallNames).
func resolves(name string, arches []unotify.Arch) (known, real bool) {
	if slices.ContainsFunc(arches, hasTable) && unotify.KnownSyscall(name) {
		return true, true
	}
	return false, newerSyscalls()[name]
}

// hasTable reports whether libseccomp has a table for a: it resolves no
// name on an architecture it does not support.
func hasTable(a unotify.Arch) bool {
	for range a.Syscalls() {
		return true
	}
	return false
}

func archNames(a []specs.Arch) []specs.Arch {
	if len(a) == 0 {
		return []specs.Arch{"native"}
	}
	return a
}
