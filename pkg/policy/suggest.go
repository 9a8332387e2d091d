package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Call is one call a workload made: its syscall (by name) and arguments.
type Call struct {
	Syscall string
	Args    [6]uint64
}

// Suggest returns base, in Docker's format, letting calls through too: a
// syscall base names no argument rule for is allowed whole; one it does
// (Docker's clone, socket, personality) is allowed for the values the calls
// had on the arguments those rules look at, and nothing more. Unconditional
// denials of those syscalls leave base (they would outrank the allow).
// skipped lists names that are no syscall libseccomp knows (a number newer
// than its table), which a profile can't name.
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
	whole := map[string]bool{}
	byArgs := map[string]*mobyseccomp.Syscall{} // one rule per syscall and values
	for _, c := range calls {
		if !slices.Contains(allSyscalls, c.Syscall) {
			if !slices.Contains(skipped, c.Syscall) {
				skipped = append(skipped, c.Syscall)
			}
			continue
		}
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
	// Denials of what is now allowed go, as they would outrank the allow:
	// unconditional ones, and argument rules that hold for a call made
	// (said in the comment of what replaces them).
	kept := p.Syscalls[:0]
	widened := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action != specs.ActAllow && s.Action != specs.ActLog {
			all := names(s)
			s.Name, s.Names = "", slices.DeleteFunc(slices.Clone(all), func(n string) bool {
				made := func(c Call) bool { return c.Syscall == n && (len(s.Args) == 0 || Holds(s.LinuxSyscall, c.Args)) }
				if len(s.Args) > 0 && slices.ContainsFunc(calls, made) {
					widened[n] = true
					return true
				}
				_, args := argIdx[n]
				return len(s.Args) == 0 && (whole[n] || args && slices.ContainsFunc(calls, made))
			})
			if len(s.Names) == 0 {
				continue
			}
		}
		kept = append(kept, s)
	}
	p.Syscalls = kept
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
