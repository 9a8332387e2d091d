package recording

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// call is what the agent hands an Observer for one notified syscall.
func call(c *notify.Container, arch uint32, nr int32, args ...uint64) *notify.Request {
	n := &unotify.Notif{Data: unotify.Data{Arch: arch, Nr: nr}}
	copy(n.Data.Args[:], args)
	return &notify.Request{Container: c, Notif: n, Syscall: unotify.SyscallName(arch, nr), Arch: n.Data.ArchName()}
}

func TestCollector(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recordings")
	var logs bytes.Buffer
	log := logrus.New()
	log.Out = &logs
	col := NewCollector(dir, log)
	rec := func(id string, exec bool) *notify.Container {
		return &notify.Container{ID: id, Meta: &policy.AuditMeta{V: 1, Record: "web"}, Complain: &policy.ComplainMeta{}, Exec: exec}
	}
	x86_64, i386 := uint32(unix.AUDIT_ARCH_X86_64), uint32(unix.AUDIT_ARCH_I386)
	// Two replicas, and a probe exec'd into one of them.
	a, b, probe := rec("a", false), rec("b", false), rec("a", true)
	col.WouldDeny(call(a, x86_64, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM), notify.Decision{})
	col.WouldDeny(call(a, x86_64, unix.SYS_BIND), notify.Decision{})
	col.WouldDeny(call(b, x86_64, unix.SYS_SOCKET, unix.AF_INET6), notify.Decision{})
	col.WouldDeny(call(b, i386, 102), notify.Decision{}) // socketcall on i386
	col.WouldDeny(call(probe, x86_64, unix.SYS_UNAME), notify.Decision{})
	// A complain-mode container that is not recorded passes by.
	other := &notify.Container{ID: "c", Meta: &policy.AuditMeta{V: 1}, Complain: &policy.ComplainMeta{}}
	col.WouldDeny(call(other, x86_64, unix.SYS_KEYCTL), notify.Decision{})
	col.Released(other, false)
	col.Released(probe, false)
	col.Released(a, false)
	col.Released(b, true)                // the agent stops: what was seen is written, uncounted
	col.Released(rec("b", false), false) // ... and b ends under the next agent
	r, err := Store{Dir: dir}.Load("web")
	if err != nil {
		t.Fatal(err)
	}
	if r.Containers != 2 || r.First == "" || r.Last == "" {
		t.Errorf("containers %d (want 2: the exec is not one), first %q last %q", r.Containers, r.First, r.Last)
	}
	got := r.Architectures[specs.ArchX86_64]
	if !slices.Equal(got.Syscalls, []string{"bind", "socket", "uname"}) || !slices.Equal(got.Args["socket"], []uint64{unix.AF_INET, unix.AF_INET6}) {
		t.Errorf("x86_64: %+v", got)
	}
	if x86 := r.Architectures[specs.ArchX86]; x86 == nil || !slices.Equal(x86.Syscalls, []string{"socketcall"}) {
		t.Errorf("x86: %+v", x86)
	}
	if len(col.recs) != 0 {
		t.Errorf("%d recordings still held after every container ended", len(col.recs))
	}
	if n := strings.Count(logs.String(), "recording written"); n != 4 {
		t.Errorf("%d recordings written, want 4:\n%s", n, logs.String())
	}
	// A store it can't write: said in the agent's log.
	col.SetDir("relative")
	col.Released(rec("d", false), false)
	if !strings.Contains(logs.String(), "recording not written") {
		t.Errorf("no error logged:\n%s", logs.String())
	}
}
