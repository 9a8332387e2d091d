package replay

import (
	"testing"

	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

func TestAnswer(t *testing.T) {
	m, err := Parse(`{"v":1,"errno":1,"errnos":{"clone3":38,"keyctl":13},"enosysAbove":{"SCMP_ARCH_X86_64":334,"SCMP_ARCH_X32":1073742158}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		m       *Meta
		d       unotify.Data
		syscall string
		want    unix.Errno
		above   bool
	}{
		{"named", m, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 250}, "keyctl", unix.EACCES, false},
		{"default", m, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 165}, "mount", unix.EPERM, false},
		{"newer than the profile", m, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 500}, "syscall_500", unix.ENOSYS, true},
		{"x32 by its own bound", m, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 0x40000000 | 300}, "x32 call", unix.EPERM, false},
		{"x32 above", m, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 0x40000000 | 400}, "x32 call", unix.ENOSYS, true},
		{"no bound for the arch", m, unotify.Data{Arch: unix.AUDIT_ARCH_I386, Nr: 500}, "syscall_500", unix.EPERM, false},
		{"no metadata fails closed", nil, unotify.Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: 250}, "keyctl", unix.EPERM, false},
	} {
		e, above := tc.m.Answer(&tc.d, tc.syscall)
		if unix.Errno(e) != tc.want || above != tc.above {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, unix.Errno(e), above, tc.want, tc.above)
		}
	}
	for _, bad := range []string{"", "{", `{"v":2}`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
