// Package recording keeps what the notify agent learnt of a workload while
// it ran under a recording profile: for each architecture, the syscalls it
// made and, for the syscalls Docker's default profile allows only for some
// argument values (clone, socket, personality), the values it used. It reads
// and writes recording files (versioned JSON, one per name), merges them
// (replicas, restarts, several runs: the union), and writes the minimal
// Docker-format profile that allows exactly what was recorded plus the
// baseline every program and the runtime need (Profile).
package recording

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/specfile"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// Version is the recording file format's version: a file of another version
// is refused, never guessed at.
const Version = 1

// Bounds on what one recording holds. A syscall table has fewer than 1000
// names, and the conditioned arguments take a handful of values in any real
// program; a workload that cycles through more (socket with every number)
// gets the first MaxValues allowed and the rest denied: fail closed, and
// the agent's memory and the file stay bounded.
const (
	MaxSyscalls = 2048
	MaxValues   = 256
	MaxFileSize = 1 << 20
)

// ErrInvalid marks every error about a recording file's content.
var ErrInvalid = errors.New("invalid recording")

// Recording is one name's recording.
type Recording struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// Containers is how many containers (and runc execs) were recorded
	// into it: replicas and restarts add up.
	Containers int `json:"containers"`
	// First and Last are when the first and the last of them ended
	// (RFC 3339), for the operator.
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
	// Architectures holds what was seen per architecture (SCMP_ARCH_*).
	Architectures map[specs.Arch]*Arch `json:"architectures"`
}

// Arch is what was seen on one architecture.
type Arch struct {
	// Syscalls are the names the workload made, sorted, each once.
	Syscalls []string `json:"syscalls"`
	// Args holds, for each conditioned syscall made (Conditioned), the
	// values of the argument Docker's profile looks at, sorted, each once.
	Args map[string][]uint64 `json:"args,omitempty"`
}

// Condition is how Docker's default profile looks at a syscall's argument,
// and so what a recording keeps of it.
type Condition struct {
	// Index is the argument (s390 and s390x pass clone's flags second:
	// see argIndex).
	Index uint
	// Mask, if set, keeps only these bits of the value: the profile
	// compares (arg & Mask) == value (SCMP_CMP_MASKED_EQ); otherwise the
	// whole value (SCMP_CMP_EQ).
	Mask uint64
}

// NamespaceFlags are the clone flags Docker's default profile refuses
// without CAP_SYS_ADMIN: creating namespaces.
const NamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// Conditioned are the syscalls whose argument values are recorded, as
// Docker's default profile conditions them: clone on its namespace flags,
// socket on the address family, personality on the persona. (clone3's flags
// are in memory, where no filter can look: see Profile.)
var Conditioned = map[string]Condition{
	"clone":       {Index: 0, Mask: NamespaceFlags},
	"socket":      {Index: 0},
	"personality": {Index: 0},
}

// argIndex is the index of the conditioned argument on arch: s390 and
// s390x swap clone's first two arguments.
func argIndex(name string, arch specs.Arch) uint {
	if name == "clone" && (arch == specs.ArchS390 || arch == specs.ArchS390X) {
		return 1
	}
	return Conditioned[name].Index
}

// New returns an empty recording named name.
func New(name string) *Recording {
	return &Recording{Version: Version, Name: name, Architectures: map[specs.Arch]*Arch{}}
}

// Add records one syscall made on arch, with its arguments. Names this
// libseccomp can't resolve ("syscall_<nr>") are not recorded: no profile
// could name them either.
func (r *Recording) Add(arch specs.Arch, name string, args [6]uint64) {
	if !validSyscallName(name) {
		return
	}
	a := r.Architectures[arch]
	if a == nil {
		a = &Arch{}
		r.Architectures[arch] = a
	}
	a.Syscalls = insert(a.Syscalls, name, MaxSyscalls)
	c, ok := Conditioned[name]
	if !ok {
		return
	}
	v := args[argIndex(name, arch)]
	if c.Mask != 0 {
		v &= c.Mask
	}
	if a.Args == nil {
		a.Args = map[string][]uint64{}
	}
	a.Args[name] = insert(a.Args[name], v, MaxValues)
}

// insert adds v to the sorted set s unless it holds max already.
func insert[T cmp.Ordered](s []T, v T, max int) []T {
	i, found := slices.BinarySearch(s, v)
	if found || len(s) >= max {
		return s
	}
	return slices.Insert(s, i, v)
}

// Merge adds everything of o to r: the union of syscalls and values, the
// containers counted, the earliest First and the latest Last.
func (r *Recording) Merge(o *Recording) {
	r.Containers += o.Containers
	if o.First != "" && (r.First == "" || o.First < r.First) {
		r.First = o.First
	}
	if o.Last > r.Last {
		r.Last = o.Last
	}
	for arch, oa := range o.Architectures {
		a := r.Architectures[arch]
		if a == nil {
			a = &Arch{}
			r.Architectures[arch] = a
		}
		for _, n := range oa.Syscalls {
			a.Syscalls = insert(a.Syscalls, n, MaxSyscalls)
		}
		for n, vs := range oa.Args {
			if a.Args == nil {
				a.Args = map[string][]uint64{}
			}
			for _, v := range vs {
				a.Args[n] = insert(a.Args[n], v, MaxValues)
			}
		}
	}
}

// Marshal returns the recording file's content.
func (r *Recording) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse reads a recording file strictly: unknown or repeated keys, another
// version, a name that is not a profile name, an architecture runc can't
// filter, a syscall name that isn't one, an unsorted or repeated list, or
// values for a syscall that isn't conditioned are errors naming source and
// the field. A recording becomes a profile that is enforced: nothing in it
// is guessed at.
func Parse(source string, data []byte) (*Recording, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("recording %s: %w: %s", source, ErrInvalid, fmt.Sprintf(format, a...))
	}
	if len(data) > MaxFileSize {
		return nil, bad("larger than %d bytes", MaxFileSize)
	}
	if err := specfile.CheckKeys(data); err != nil {
		return nil, bad("%v", err)
	}
	var r Recording
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, bad("%v", err)
	}
	if dec.More() {
		return nil, bad("trailing data after the JSON object")
	}
	if r.Version != Version {
		return nil, bad("version %d: this build reads version %d", r.Version, Version)
	}
	if !policy.ValidName(r.Name) {
		return nil, bad("name %q: not a valid profile name", r.Name)
	}
	if r.Containers < 0 {
		return nil, bad("containers %d: negative", r.Containers)
	}
	if r.Architectures == nil {
		r.Architectures = map[specs.Arch]*Arch{}
	}
	for arch, a := range r.Architectures {
		field := "architectures." + string(arch)
		if _, ok := unotify.LookupArch(func(a unotify.Arch) specs.Arch { return a.Spec }, arch); !ok {
			return nil, bad("%s: not an architecture runc can filter", field)
		}
		if a == nil {
			return nil, bad("%s: null", field)
		}
		if len(a.Syscalls) > MaxSyscalls {
			return nil, bad("%s.syscalls: more than %d names", field, MaxSyscalls)
		}
		for i, n := range a.Syscalls {
			if !validSyscallName(n) {
				return nil, bad("%s.syscalls[%d] %q: not a syscall name", field, i, n)
			}
			if i > 0 && a.Syscalls[i-1] >= n {
				return nil, bad("%s.syscalls[%d] %q: not sorted, or repeated", field, i, n)
			}
		}
		for n, vs := range a.Args {
			f := field + ".args." + n
			if _, ok := Conditioned[n]; !ok {
				return nil, bad("%s: %q has no argument condition (only clone, socket and personality do)", f, n)
			}
			if _, found := slices.BinarySearch(a.Syscalls, n); !found {
				return nil, bad("%s: %q is not in %s.syscalls", f, n, field)
			}
			if len(vs) > MaxValues {
				return nil, bad("%s: more than %d values", f, MaxValues)
			}
			for i, v := range vs {
				if i > 0 && vs[i-1] >= v {
					return nil, bad("%s[%d] %s: not sorted, or repeated", f, i, strconv.FormatUint(v, 10))
				}
				if m := Conditioned[n].Mask; m != 0 && v&^m != 0 {
					return nil, bad("%s[%d] %#x: has bits outside the mask %#x", f, i, v, m)
				}
			}
		}
	}
	return &r, nil
}

// validSyscallName is the shape of a syscall name in libseccomp's tables;
// "syscall_<nr>", what unotify names a number libseccomp doesn't know, is
// not one.
func validSyscallName(n string) bool {
	if n == "" || len(n) > 64 || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(n, "syscall_")
}
