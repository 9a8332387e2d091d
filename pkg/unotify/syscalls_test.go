package unotify

import (
	"slices"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// TestSyscallTable checks syscalls_gen.go against the installed libseccomp,
// on every architecture of the one table: the binaries name and validate
// syscalls from it and link no libseccomp, so this is where the two must
// agree. Where they don't, regenerate: go generate ./pkg/unotify.
func TestSyscallTable(t *testing.T) {
	ma, mi, mc := libseccomp.GetLibraryVersion()
	t.Logf("table from libseccomp %s, installed %d.%d.%d", LibseccompVersion, ma, mi, mc)
	// Every name libseccomp has: each number, real or pseudo, it names on
	// some architecture.
	known := map[string]bool{}
	for _, a := range Arches() {
		scmp, err := libseccomp.GetArchFromString(a.Scmp)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		for _, r := range [][2]int32{{-30000, 10000}, {0xf0000, 0xf0000 + 2000}, {x32SyscallBit, x32SyscallBit + 2000}} {
			for nr := r[0]; nr < r[1]; nr++ {
				if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(scmp); err == nil && n != "" {
					known[n] = true
				}
			}
		}
	}
	var names []string
	for n := range known {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, syscallNames[:]) {
		t.Errorf("libseccomp knows %d names, the table %d: regenerate (go generate ./pkg/unotify)", len(names), len(syscallNames))
	}
	for _, a := range Arches() {
		scmp, _ := libseccomp.GetArchFromString(a.Scmp)
		var want []Syscall
		for _, n := range names {
			nr, err := libseccomp.GetSyscallFromNameByArch(n, scmp)
			switch {
			case err == nil && int32(nr) >= 0:
				want = append(want, Syscall{int32(nr), n})
			case err != nil && len(archSyscalls(a.Scmp)) > 0:
				// Validation counts on this: a name libseccomp knows resolves
				// on every architecture it has a table for.
				t.Errorf("%s: libseccomp does not resolve %q", a.Name, n)
			}
		}
		slices.SortFunc(want, func(x, y Syscall) int { return int(x.Nr) - int(y.Nr) })
		if got := archSyscalls(a.Scmp); !slices.Equal(got, want) {
			t.Errorf("%s: the table has %d numbers, libseccomp %d: regenerate (go generate ./pkg/unotify)", a.Name, len(got), len(want))
		}
		for _, s := range want {
			if n, err := libseccomp.ScmpSyscall(s.Nr).GetNameByArch(scmp); err != nil || n != s.Name {
				t.Errorf("%s: libseccomp names %d %q (%v), the table %q", a.Name, s.Nr, n, err, s.Name)
			}
		}
		// Decoding by number: a real number whose name resolves to a
		// pseudo-syscall (x86's direct socket(2) is 359, "socket" resolves
		// to socketcall's) is named alike by libseccomp and the agent.
		for _, r := range [][2]int32{{0, 10000}, {0xf0000, 0xf0000 + 2000}, {x32SyscallBit, x32SyscallBit + 2000}} {
			for nr := r[0]; nr < r[1]; nr++ {
				n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(scmp)
				if err != nil || n == "" || !known[n] {
					continue
				}
				if byName, err := libseccomp.GetSyscallFromNameByArch(n, scmp); err != nil || int32(byName) >= 0 {
					continue // the table's, checked above
				}
				if got := SyscallName(a.Audit, nr); got != n {
					t.Errorf("%s: libseccomp names %d %q, SyscallName %q: regenerate (go generate ./pkg/unotify)", a.Name, nr, n, got)
				}
			}
		}
	}
}
