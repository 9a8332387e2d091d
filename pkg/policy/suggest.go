package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// Call is one call a workload made: its syscall (by name) and arguments.
type Call struct {
	Syscall string
	Args    [6]uint64
}

// Suggest returns base, in Docker's format, letting calls through too: a
// syscall base names no argument rule for is allowed whole; one it does
// (Docker's clone, socket, personality) is allowed for the values the calls
// had on the arguments those rules look at on this node, and nothing more.
// Denials that would outrank such an allow leave base: unconditional ones
// of those syscalls, and argument rules that hold for a call made. Calls
// base allows already change nothing. skipped lists names that are no
// syscall libseccomp knows (a number newer than its table), which a
// profile can't name.
func Suggest(base *Profile, calls []Call) (out []byte, skipped []string, err error) {
	if base.Unconfined() {
		return nil, nil, fmt.Errorf("profile %q: unconfined: nothing to suggest", base.Name)
	}
	var p mobyseccomp.Seccomp
	if err := json.Unmarshal(base.Bytes(), &p); err != nil {
		return nil, nil, fmt.Errorf("profile %q: %w", base.Name, err)
	}
	names := func(s *mobyseccomp.Syscall) []string {
		if s.Name != "" {
			return append([]string{s.Name}, s.Names...)
		}
		return s.Names
	}
	// The arguments base's rules look at on this node, as the resolver
	// picks them: a rule for another architecture (Docker's clone on s390
	// looks at argument 1, the child's stack elsewhere) is no part of it.
	// Resolved with no capability and with every one base names, so
	// that rules on either side of a capability count.
	var caps []string
	for _, s := range p.Syscalls {
		if s.Includes != nil {
			caps = append(caps, s.Includes.Caps...)
		}
		if s.Excludes != nil {
			caps = append(caps, s.Excludes.Caps...)
		}
	}
	argIdx := map[string][]uint{}
	for _, bounding := range [][]string{nil, caps} {
		sc, err := base.Resolve(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding}}})
		if err != nil {
			return nil, nil, err
		}
		for _, s := range sc.Syscalls {
			for _, n := range s.Names {
				for _, a := range s.Args {
					if !slices.Contains(argIdx[n], a.Index) {
						argIdx[n] = append(argIdx[n], a.Index)
					}
				}
			}
		}
	}
	calls = slices.DeleteFunc(slices.Clone(calls), func(c Call) bool {
		if unotify.KnownSyscall(c.Syscall) {
			return false
		}
		if !slices.Contains(skipped, c.Syscall) {
			skipped = append(skipped, c.Syscall)
		}
		return true
	})
	// Calls base allows need nothing (records of another profile, named
	// with --profile): an allow for them would duplicate base's.
	calls, err = denied(base, calls)
	if err != nil {
		return nil, nil, err
	}
	// Denials that would outrank the allow go.
	kept := p.Syscalls[:0]
	widened := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action != specs.ActAllow && s.Action != specs.ActLog {
			s.Name, s.Names = "", slices.DeleteFunc(slices.Clone(names(s)), func(n string) bool {
				gone := slices.ContainsFunc(calls, func(c Call) bool {
					return c.Syscall == n && (len(s.Args) == 0 || Holds(s.LinuxSyscall, c.Args))
				})
				widened[n] = widened[n] || gone && len(s.Args) > 0
				return gone
			})
			if len(s.Names) == 0 {
				continue
			}
		}
		kept = append(kept, s)
	}
	p.Syscalls = kept
	// What those denials alone denied, base's own rules now allow.
	data, err := json.Marshal(&p)
	if err != nil {
		return nil, nil, err
	}
	left, err := ParseProfile(base.Name, base.Source, data)
	if err == nil {
		calls, err = denied(left, calls)
	}
	if err != nil {
		return nil, nil, err
	}
	whole := map[string]bool{}
	byArgs := map[string]*mobyseccomp.Syscall{} // one rule per syscall and values
	for _, c := range calls {
		idx := argIdx[c.Syscall]
		if len(idx) == 0 {
			whole[c.Syscall] = true
			continue
		}
		slices.Sort(idx)
		r := &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{c.Syscall}, Action: specs.ActAllow}}
		for _, i := range idx {
			r.Args = append(r.Args, specs.LinuxSeccompArg{Index: i, Op: specs.OpEqualTo, Value: c.Args[i]})
		}
		k, _ := json.Marshal(r)
		byArgs[string(k)] = r
	}
	if len(whole) > 0 {
		ns := make([]string, 0, len(whole))
		for n := range whole {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: ns, Action: specs.ActAllow}, Comment: "suggested: calls the workload made"})
	}
	keys := make([]string, 0, len(byArgs))
	for k := range byArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := byArgs[k]
		r.Comment = "suggested: argument values the workload used"
		if widened[r.Names[0]] {
			r.Comment += "; the profile's argument rule that denied them is gone"
		}
		p.Syscalls = append(p.Syscalls, r)
	}
	out, err = json.MarshalIndent(&p, "", "\t")
	return append(out, '\n'), skipped, err
}

// denied is the calls p, resolved for this node with no capability, denies:
// by an unconditional rule, else by the argument rules (Would, the agent's
// evaluation), else by its default.
func denied(p *Profile, calls []Call) ([]Call, error) {
	sc, err := p.Resolve(nil)
	if err != nil {
		return nil, err
	}
	t := treatments(sc)
	return slices.DeleteFunc(calls, func(c Call) bool {
		tr := t[c.Syscall]
		if tr.Uncond != nil {
			return !denies(*tr.Uncond)
		}
		cm := ComplainMeta{DefaultAction: sc.DefaultAction, DefaultErrno: sc.DefaultErrnoRet, Rules: map[string][]specs.LinuxSyscall{c.Syscall: tr.Rules}}
		_, _, allowed := cm.Would(c.Syscall, c.Args, false)
		return allowed
	}), nil
}
