package notify

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

// observed is an Observer that keeps what it is told.
type observed struct {
	mu       sync.Mutex
	denials  []string // syscall errno would rule
	released []string
}

func (o *observed) WouldDeny(r *Request, d Decision) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.denials = append(o.denials, r.Container.ID+" "+r.Syscall+" "+unix.Errno(d.Errno).Error()+" "+d.Would)
}

func (o *observed) Released(c *Container, stopping bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.released = append(o.released, c.ID)
}

func (o *observed) get() ([]string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.denials...), append([]string(nil), o.released...)
}

// complainMeta is testMeta in complain mode, as policy.Complain writes it:
// mkdirat and mkdir are routed whole, allowed with mode 0700 and 0755.
func complainMeta(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(testMeta(t)), &m); err != nil {
		t.Fatal(err)
	}
	eacces := uint(unix.EACCES)
	rule := func(mode uint64, index uint) []specs.LinuxSyscall {
		return []specs.LinuxSyscall{{Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: index, Op: specs.OpEqualTo, Value: mode}}}}
	}
	m["complain"] = policy.ComplainMeta{
		DefaultAction: specs.ActErrno, DefaultErrno: &eacces,
		Rules: map[string][]specs.LinuxSyscall{"mkdirat": rule(0o700, 2), "mkdir": rule(0o755, 1)},
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestServerComplain(t *testing.T) {
	obs := &observed{}
	ts := startServerWith(t, nil, func(s *Server) { s.Observer = obs })
	c := startChild(t)
	c.HandOff(ts.path, "ctr-complain", complainMeta(t), nil)

	// Denied by name: runs, recorded with the errno it would have got.
	if ret, errno := c.Run("getppid"); ret != int64(os.Getpid()) || errno != 0 {
		t.Errorf("getppid in complain mode = %d errno %d, want our pid", ret, errno)
	}
	// Allowed by its argument rule: runs, unrecorded.
	if ret, errno := c.Run("mkdirat /nonexistent-complain/a"); ret != -1 || errno != int64(unix.ENOENT) {
		t.Errorf("mkdirat = %d errno %d, want ENOENT: it ran", ret, errno)
	}
	// Its argument rule's fall-through: runs, recorded with the default's errno.
	if ret, errno := c.Run("mkdir /nonexistent-complain/b"); ret != -1 || errno != int64(unix.ENOENT) {
		t.Errorf("mkdir = %d errno %d, want ENOENT: it ran", ret, errno)
	}
	g := ts.waitRecord(func(r Record) bool { return r.Syscall == "getppid" })
	if g.Action != ActionComplain || g.Errno != uint(unix.EXDEV) || g.Would != "errno" || g.Rule != "profile test-profile" {
		t.Errorf("getppid record %+v", g)
	}
	m := ts.waitRecord(func(r Record) bool { return r.Syscall == "mkdir" })
	if m.Action != ActionComplain || m.Errno != uint(unix.EACCES) {
		t.Errorf("mkdir record %+v", m)
	}
	for _, r := range ts.records() {
		if r.Syscall == "mkdirat" {
			t.Errorf("an allowed call was recorded: %+v", r)
		}
	}
	c.Kill()
	ts.waitContainers(0)
	denials, released := obs.get()
	want := []string{"ctr-complain getppid " + unix.EXDEV.Error() + " errno", "ctr-complain mkdir " + unix.EACCES.Error() + " errno"}
	if strings.Join(denials, "\n") != strings.Join(want, "\n") || len(released) != 1 || released[0] != "ctr-complain" {
		t.Errorf("observed %q, released %q; want %q", denials, released, want)
	}
	out := scrape(t, ts.metrics)
	if !strings.Contains(out, `seccomp_agent_decisions_total{action="complain",syscall="getppid"} 1`+"\n") {
		t.Errorf("metrics lack the complain decision:\n%s", out)
	}
}

// TestServerComplainNotifyRule: a notify rule's answer is the would-be one.
func TestServerComplainNotifyRule(t *testing.T) {
	cfg := parseConfig(t, `
[[notify.rule]]
name = "no getppid"
syscalls = ["getppid"]
action = "kill"
`)
	ts := startServer(t, cfg)
	c := startChild(t)
	c.HandOff(ts.path, "ctr-complain-kill", complainMeta(t), nil)
	if ret, errno := c.Run("getppid"); ret != int64(os.Getpid()) || errno != 0 {
		t.Errorf("getppid in complain mode = %d errno %d, want our pid: not killed", ret, errno)
	}
	r := ts.waitRecord(func(r Record) bool { return r.Syscall == "getppid" })
	if r.Action != ActionComplain || r.Would != "kill" || r.Rule != "no getppid" || r.Errno != 0 {
		t.Errorf("record %+v", r)
	}
}

// TestComplain32: a syscall routed whole, called from a 32-bit ABI, is
// judged on the low 32 bits of its arguments, as the filter judges it: an
// x32 call the profile denies is a would-be denial, however its upper bits
// are set.
func TestComplain32(t *testing.T) {
	cm, err := policy.ParseComplainMeta(complainMeta(t))
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := policy.ParseAuditMeta(complainMeta(t))
	s := &Server{Handler: NewPolicy(parseConfig(t, ""))}
	c := &Container{ID: "ctr", Meta: meta, Complain: cm}
	for _, tc := range []struct {
		r        *Request
		complain bool
	}{
		{x64(c, 83, "mkdir", 0, 0o755), false},
		{x64(c, 83, "mkdir", 0, 1<<32|0o755), true},
		{x64(c, x32Bit|83, "mkdir", 0, 1<<32|0o755), false}, // x32: the filter sees 0755
		{req(c, unix.AUDIT_ARCH_I386, 39, "mkdir", 0, 1<<32|0o755), false},
		{req(c, unix.AUDIT_ARCH_I386, 39, "mkdir", 0, 0o700), true},
	} {
		if d := s.complain(tc.r); !d.Continue || d.Complain != tc.complain {
			t.Errorf("%s %s(%#x): %+v, want a would-be denial %v", tc.r.Arch, tc.r.Syscall, tc.r.Notif.Data.Args, d, tc.complain)
		}
	}
}
