package recording

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

// Baseline returns the names every recorded profile allows: the
// recording profile's own (policy.RecordBaseline), which a recorded
// container makes without the agent seeing them.
func Baseline() []string { return policy.RecordBaseline() }

// Comments the profile's rules carry, so that a reader of an installed
// profile knows where each allowance came from.
const (
	commentBaseline = "baseline: what every program and the runtime make (seccomp-shim docs/recording.md)"
	commentRecorded = "recorded"
	commentClone3   = "clone3's flags are in memory, where no filter can look: ENOSYS makes libc fall back to clone, whose flags are checked (as in Docker's default)"
)

// Profile returns the minimal Docker-format profile for r: EPERM by
// default; the architectures r saw (none: the native one); the baseline and
// every syscall r saw allowed; clone, socket and personality allowed only
// for the argument values r saw; clone3 answered ENOSYS.
//
// One profile applies to every architecture it lists (Docker's format has
// no per-architecture rules), so a name seen on one architecture is allowed
// on every other listed where it exists.
func Profile(r *Recording) *mobyseccomp.Seccomp {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	p := &mobyseccomp.Seccomp{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm}}
	base := Baseline()
	var recorded []string
	type key struct {
		name  string
		index uint
		value uint64
	}
	var conds []key
	clone3 := false
	for _, arch := range slices.Sorted(maps.Keys(r.Architectures)) {
		p.Architectures = append(p.Architectures, arch)
		a := r.Architectures[arch]
		for _, n := range a.Syscalls {
			_, conditioned := Conditioned[n]
			_, inBase := slices.BinarySearch(base, n)
			switch {
			case n == "clone3":
				clone3 = true
			case !conditioned && !inBase:
				recorded = append(recorded, n)
			}
		}
		for n, vs := range a.Args {
			for _, v := range vs {
				conds = append(conds, key{n, argIndex(n, arch), v})
			}
		}
		if clone3 {
			// libc falls back to clone with the same flags; what clone3
			// did with namespace flags is not known, so only without.
			conds = append(conds, key{"clone", argIndex("clone", arch), 0})
		}
	}
	slices.Sort(recorded)
	p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: base, Action: specs.ActAllow}, Comment: commentBaseline})
	if recorded = slices.Compact(recorded); len(recorded) > 0 {
		p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: recorded, Action: specs.ActAllow}, Comment: commentRecorded})
	}
	slices.SortFunc(conds, func(a, b key) int {
		switch {
		case a.name != b.name:
			return cmp.Compare(a.name, b.name)
		case a.index != b.index:
			return cmp.Compare(a.index, b.index)
		}
		return cmp.Compare(a.value, b.value)
	})
	for _, c := range slices.Compact(conds) {
		arg := specs.LinuxSeccompArg{Index: c.index, Value: c.value, Op: specs.OpEqualTo}
		if m := Conditioned[c.name].Mask; m != 0 {
			arg = specs.LinuxSeccompArg{Index: c.index, Value: m, ValueTwo: c.value, Op: specs.OpMaskedEqual}
		}
		p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{
			Names: []string{c.name}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg}}, Comment: commentRecorded})
	}
	p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{
		Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys}, Comment: commentClone3})
	return p
}

// ProfileJSON returns r's profile as a profile file, named name, after
// checking it with pkg/policy's validator as the shim would check it at a
// create; warnings are the validator's (names this libseccomp doesn't know).
func ProfileJSON(r *Recording, name string) (data []byte, warnings []string, err error) {
	data, err = json.MarshalIndent(Profile(r), "", "  ")
	if err != nil {
		return nil, nil, err
	}
	data = append(data, '\n')
	source := "recording " + r.Name
	p, err := policy.ParseProfile(name, source, data)
	if err != nil {
		return nil, nil, err
	}
	sc, err := p.Resolve(nil)
	if err != nil {
		return nil, nil, err
	}
	if warnings, err = policy.ValidateAll(p, sc); err != nil {
		return nil, warnings, fmt.Errorf("the profile written from it does not validate: %w", err)
	}
	return data, warnings, nil
}
