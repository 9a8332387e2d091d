package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// testServer is a Server on a real UNIX listener in a temp dir, with its
// audit log in memory.
type testServer struct {
	t       *testing.T
	path    string
	srv     *Server
	pol     *Policy
	audit   *AuditLog
	log     *syncBuffer // the audit log
	logs    *syncBuffer // the agent's own lines (Log)
	metrics *Metrics
	served  chan error
	down    bool
}

func startServer(t *testing.T, cfg *policy.Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith lets setup change the Server before it serves, when no
// goroutine reads its fields yet.
func startServerWith(t *testing.T, cfg *policy.Config, setup func(*Server)) *testServer {
	t.Helper()
	if cfg == nil {
		cfg = &policy.Config{}
	}
	ts := &testServer{t: t, path: filepath.Join(t.TempDir(), "agent.sock"), log: &syncBuffer{}, logs: &syncBuffer{}, served: make(chan error, 1)}
	ts.pol = NewPolicy(cfg)
	ts.audit = NewAuditLog(ts.log)
	ts.metrics = NewMetrics()
	ts.srv = &Server{
		Handler: ts.pol, Audit: ts.audit, Metrics: ts.metrics,
		// t.Logf from a server goroutine could outlive the test; keep lines
		// and show them on failure instead.
		Log: &logrus.Logger{Out: ts.logs, Formatter: &logrus.TextFormatter{DisableTimestamp: true}, Hooks: logrus.LevelHooks{}, Level: logrus.DebugLevel},
		// Root is not needed for anything else here, so let the test's own
		// uid hand off; the root-only default has its own test.
		AllowPeer: func(c unix.Ucred) bool { return int(c.Uid) == os.Geteuid() },
	}
	if setup != nil {
		setup(ts.srv)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: ts.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { ts.served <- ts.srv.Serve(l) }()
	t.Cleanup(func() {
		ts.shutdown()
		if t.Failed() {
			t.Logf("agent log:\n%s\naudit log:\n%s", ts.logs.String(), ts.log.String())
		}
	})
	return ts
}

// shutdown stops the server and the audit log, checking Serve's result.
func (ts *testServer) shutdown() time.Duration {
	if ts.down {
		return 0
	}
	ts.down = true
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("Shutdown: %v", err)
	}
	took := time.Since(start)
	select {
	case err := <-ts.served:
		if !errors.Is(err, ErrServerClosed) {
			ts.t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(wait):
		ts.t.Error("Serve did not return after Shutdown")
	}
	ts.audit.Close()
	return took
}

// waitContainers waits for the server to serve exactly n containers.
func (ts *testServer) waitContainers(n int64) {
	ts.t.Helper()
	if !eventually(wait, func() bool { return ts.metrics.Containers.Load() == n }) {
		ts.t.Fatalf("containers = %d, want %d", ts.metrics.Containers.Load(), n)
	}
}

// records returns the audit log's records so far.
func (ts *testServer) records() []Record {
	ts.t.Helper()
	var out []Record
	for _, line := range strings.Split(strings.TrimSpace(ts.log.String()), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			ts.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// waitRecord waits for a record that satisfies ok.
func (ts *testServer) waitRecord(ok func(Record) bool) Record {
	ts.t.Helper()
	var found Record
	if !eventually(wait, func() bool {
		i := slices.IndexFunc(ts.records(), ok)
		if i >= 0 {
			found = ts.records()[i]
		}
		return i >= 0
	}) {
		ts.t.Fatalf("no such audit record in:\n%s", ts.log.String())
	}
	return found
}

// testMeta is listenerMetadata as policy.Audit writes it for a profile
// whose default is EPERM, that answers getppid with EXDEV, and that names
// nothing above mkdirat's number on x86_64.
func testMeta(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(policy.AuditMeta{
		V: 1, Profile: "test-profile", Errno: uint(unix.EPERM),
		Errnos:      map[string]uint{"getppid": uint(unix.EXDEV)},
		ENOSYSAbove: map[specs.Arch]int{"SCMP_ARCH_X86_64": unix.SYS_MKDIRAT},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var criAnnotations = map[string]string{
	"io.kubernetes.cri.container-type":    "container",
	"io.kubernetes.cri.container-name":    "web",
	"io.kubernetes.cri.sandbox-name":      "web-7f9c",
	"io.kubernetes.cri.sandbox-namespace": "shop",
	"io.kubernetes.cri.image-name":        "example.com/web:1.2",
}

func wantErrno(t *testing.T, what string, ret, errno int64, want unix.Errno) {
	t.Helper()
	if ret != -1 || errno != int64(want) {
		t.Errorf("%s = %d errno %d (%v), want -1 errno %d (%v)", what, ret, errno, unix.Errno(errno), int(want), want)
	}
}

func TestServerReplaysProfileErrno(t *testing.T) {
	ts := startServer(t, nil)
	c := startChild(t)
	c.HandOff(ts.path, "ctr-replay", testMeta(t), criAnnotations)

	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid", ret, errno, unix.EXDEV)
	ret, errno = c.Run("mkdirat /tmp/notify-test-never-created")
	wantErrno(t, "mkdirat", ret, errno, unix.EPERM)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	comm := filepath.Base(exe)
	comm = comm[:min(len(comm), 15)] // TASK_COMM_LEN - 1
	r := ts.waitRecord(func(r Record) bool { return r.Syscall == "getppid" })
	want := Record{
		Time: r.Time, Container: "ctr-replay", Name: "web", Pod: "web-7f9c", Namespace: "shop", Image: "example.com/web:1.2",
		Pid: c.Pid(), Tid: c.Pid(), Comm: comm, Exe: exe, UID: os.Getuid(),
		Arch: "x86_64", Syscall: "getppid", Nr: unix.SYS_GETPPID,
		Action: "errno", Errno: uint(unix.EXDEV), Rule: "profile test-profile",
	}
	if r != want {
		t.Errorf("audit record\n got %+v\nwant %+v", r, want)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
		t.Errorf("time %q: %v", r.Time, err)
	}
	m := ts.waitRecord(func(r Record) bool { return r.Syscall == "mkdirat" })
	if m.Errno != uint(unix.EPERM) || m.Pid != c.Pid() || int32(m.Args[0]) != unix.AT_FDCWD || m.Args[2] != 0o700 {
		t.Errorf("mkdirat record %+v", m)
	}
}

func TestServerContinueRule(t *testing.T) {
	cfg := parseConfig(t, `
[[notify.rule]]
name = "ci may getppid"
match.ids = ["ci-*"]
syscalls = ["getppid"]
action = "continue"
`)
	ts := startServer(t, cfg)
	c := startChild(t)
	c.HandOff(ts.path, "ci-42", testMeta(t), nil)

	if ret, errno := c.Run("getppid"); ret != int64(os.Getpid()) || errno != 0 {
		t.Errorf("getppid under a continue rule = %d errno %d, want our pid %d", ret, errno, os.Getpid())
	}
	// Live policy: the same running container falls back to the profile's
	// answer once the rule is gone.
	ts.pol.Store(&policy.Config{})
	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid after Store", ret, errno, unix.EXDEV)

	ts.waitRecord(func(r Record) bool { return r.Syscall == "getppid" })
	for _, r := range ts.records() {
		if r.Action == "continue" || r.Errno == 0 {
			t.Errorf("a syscall let through was audited as a denial: %+v", r)
		}
	}
	if got := len(ts.records()); got != 1 {
		t.Errorf("%d audit records, want 1 (only the denial)", got)
	}
	// Counted after the answer is sent, so possibly after the child has it.
	var out string
	eventually(wait, func() bool {
		out = scrape(t, ts.metrics)
		return ts.metrics.InFlight.Load() == 0 && strings.Contains(out, "seccomp_agent_decision_seconds_count 2\n")
	})
	for _, line := range []string{
		`seccomp_agent_decisions_total{action="continue",syscall="getppid"} 1`,
		`seccomp_agent_decisions_total{action="errno",syscall="getppid"} 1`,
		`seccomp_agent_notifications_total{syscall="getppid"} 2`,
		`seccomp_agent_inflight_notifications 0`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, out)
		}
	}
}

func TestServerPathRule(t *testing.T) {
	cfg := parseConfig(t, `
[[notify.rule]]
name = "nothing under /tmp/notify-forbidden"
syscalls = ["mkdirat"]
path = { arg = 1, glob = "/tmp/notify-forbidden/*" }
action = "errno"
errno = 13
`)
	ts := startServer(t, cfg)
	c := startChild(t)
	c.HandOff(ts.path, "ctr-path", testMeta(t), nil)
	ret, errno := c.Run("mkdirat /tmp/notify-forbidden/x")
	wantErrno(t, "mkdirat of a forbidden path", ret, errno, unix.EACCES)
	ret, errno = c.Run("mkdirat /tmp/notify-elsewhere/x")
	wantErrno(t, "mkdirat elsewhere", ret, errno, unix.EPERM)
	r := ts.waitRecord(func(r Record) bool { return r.Errno == uint(unix.EACCES) })
	if r.Rule != "nothing under /tmp/notify-forbidden" {
		t.Errorf("record rule %q", r.Rule)
	}
}

func TestServerKillsOnlyTheCaller(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &policy.Config{Notify: policy.NotifyConfig{Rules: []policy.NotifyRule{{
		Name: "victims may not mkdir", Match: policy.Match{IDs: []string{"victim"}},
		Syscalls: []string{"mkdirat"}, Exe: []string{exe}, Action: policy.NotifyKill,
	}}}}
	ts := startServer(t, cfg)
	victim, bystander := startChild(t), startChild(t)
	victim.HandOff(ts.path, "victim", testMeta(t), nil)
	bystander.HandOff(ts.path, "bystander", testMeta(t), nil)
	ts.waitContainers(2)

	victim.Command("mkdirat /tmp/notify-test-never-created")
	ws, ok := victim.Exited(wait)
	if !ok {
		t.Fatal("the victim survived its kill rule")
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("victim ended with %v, want SIGKILL", ws)
	}
	// The bystander, in another container, is neither killed nor stuck.
	ret, errno := bystander.Run("mkdirat /tmp/notify-test-never-created")
	wantErrno(t, "bystander's mkdirat", ret, errno, unix.EPERM)
	if _, dead := bystander.Exited(0); dead {
		t.Error("the bystander was killed too")
	}
	r := ts.waitRecord(func(r Record) bool { return r.Container == "victim" })
	if r.Action != "kill" || r.Pid != victim.Pid() || r.Rule != "victims may not mkdir" || r.Exe != exe {
		t.Errorf("kill record %+v", r)
	}
	// The victim was the last task on its filter: its goroutine ends.
	ts.waitContainers(1)
}

func fdTargets(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// listeners counts our open seccomp listener fds.
func listeners(t *testing.T) int {
	n := 0
	for _, l := range fdTargets(t) {
		if strings.Contains(l, "seccomp notify") {
			n++
		}
	}
	return n
}

func TestServerReleasesExitedContainer(t *testing.T) {
	before := fdTargets(t)
	ts := startServer(t, nil)
	c := startChild(t)
	c.HandOff(ts.path, "ctr-exit", testMeta(t), nil)
	ts.waitContainers(1)
	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid", ret, errno, unix.EXDEV)
	if n := listeners(t); n != 1 {
		t.Fatalf("%d listener fds open while the container runs, want the agent's 1", n)
	}

	c.Command("exit")
	if _, ok := c.Exited(wait); !ok {
		t.Fatal("child did not exit")
	}
	ts.waitContainers(0)
	if !eventually(wait, func() bool { return strings.Contains(ts.logs.String(), "msg=released container=ctr-exit") }) {
		t.Error("no release logged")
	}
	if n := listeners(t); n != 0 {
		t.Errorf("%d listener fds still open after the container exited", n)
	}

	ts.shutdown()
	after := fdTargets(t)
	extra := slices.Clone(after)
	for _, b := range before {
		if i := slices.Index(extra, b); i >= 0 {
			extra = slices.Delete(extra, i, i+1)
		}
	}
	if len(extra) == 0 && len(after) == len(before) {
		return
	}
	if slices.Equal(extra, []string{"anon_inode:[eventfd]"}) {
		t.Fatal("regression: notify.go Server.Shutdown never closes the stop eventfd made by initStop, so every Server leaks one fd")
	}
	t.Errorf("fds leaked after the container exited and Shutdown: %q\nbefore %q\nafter  %q", extra, before, after)
}

func TestShutdownFailsClosed(t *testing.T) {
	ts := startServer(t, nil)
	c := startChild(t)
	c.HandOff(ts.path, "ctr-attached", testMeta(t), nil)
	ts.waitContainers(1)
	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid while served", ret, errno, unix.EXDEV)

	if took := ts.shutdown(); took > time.Second {
		t.Errorf("Shutdown took %v with a container attached", took)
	}
	if n := listeners(t); n != 0 {
		t.Errorf("%d listener fds open after Shutdown", n)
	}
	// It runs on: the log must not say it was released, as when it ends.
	if logs := ts.logs.String(); strings.Contains(logs, "msg=released") || !strings.Contains(logs, "agent stopping") {
		t.Errorf("a running container's end of service is logged as a release, or not at all:\n%s", logs)
	}
	// Nobody holds the listener any more: the kernel fails the call.
	ret, errno = c.Run("getppid")
	wantErrno(t, "getppid after Shutdown", ret, errno, unix.ENOSYS)
	if _, dead := c.Exited(0); dead {
		t.Error("child died")
	}

	// Nor can a container be adopted after Shutdown; its fd is closed.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	if err := ts.srv.Adopt(nil, p[0]); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Adopt after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("Adopt after Shutdown left its fd open (fcntl: %v)", err)
		unix.Close(p[0])
	}
}

func TestServerAdopt(t *testing.T) {
	ts := startServer(t, nil)
	c := startChild(t)
	st := handoffState(c, "adopted", testMeta(t))
	fd := c.Fd
	c.Fd = -1 // the server owns it now
	if err := ts.srv.Adopt(st, fd); err != nil {
		t.Fatal(err)
	}
	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid of an adopted container", ret, errno, unix.EXDEV)
	ts.waitRecord(func(r Record) bool { return r.Container == "adopted" })
}

// sendRaw sends data (and fds) like a runtime would and waits until the
// server has closed its end, so the hand-off has been judged by then.
func sendRaw(t *testing.T, path string, data string, fds ...int) {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if data != "" || len(fds) > 0 {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := conn.WriteMsgUnix([]byte(data), oob, nil); err != nil {
			t.Fatal(err)
		}
	}
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	if _, err := conn.Read(b[:]); err == nil {
		t.Fatal("the server wrote to a runtime")
	}
}

func TestHandoffFailureMetric(t *testing.T) {
	ts := startServer(t, nil)
	failures := func() uint64 { return ts.metrics.HandoffFailures.Load() }
	// The accept goroutine counts just after it closes the connection.
	settle := func(want uint64) {
		t.Helper()
		if !eventually(time.Second, func() bool { return failures() == want }) {
			t.Errorf("hand-off failures = %d, want %d", failures(), want)
		}
		time.Sleep(20 * time.Millisecond)
		if got := failures(); got != want {
			t.Errorf("hand-off failures = %d, want %d", got, want)
		}
	}

	// The shim's liveness probe: connect, send nothing, close.
	sendRaw(t, ts.path, "")
	settle(0)
	if strings.Contains(ts.logs.String(), "refused") {
		t.Errorf("a probe was logged as a refused hand-off: %s", ts.logs.String())
	}

	sendRaw(t, ts.path, "this is not JSON")
	settle(1)

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	// Well-formed, but the fd it carries is not named seccompFd.
	sendRaw(t, ts.path, `{"ociVersion":"1.0.2","fds":["other"],"pid":1,"state":{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/b"}}`, p[0])
	settle(2)
	if ts.metrics.Containers.Load() != 0 {
		t.Error("a broken hand-off was served")
	}

	// A runtime that dies halfway through its message is broken, not a probe.
	sendRaw(t, ts.path, `{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":`, p[0])
	if eventually(200*time.Millisecond, func() bool { return failures() == 3 }) {
		return
	}
	if got := failures(); got == 2 {
		t.Fatal(`regression: notify.go isProbe takes any ErrMalformed whose text contains "EOF" for a probe, so a truncated hand-off ("unexpected EOF") is not counted in HandoffFailures nor logged; it should match only the bare io.EOF of an empty message`)
	}
	t.Errorf("hand-off failures = %d after a truncated hand-off, want 3", failures())
}

func TestHandoffDefaultPeerIsRootOnly(t *testing.T) {
	ts := startServerWith(t, nil, func(s *Server) { s.AllowPeer = nil })
	c := startChild(t)
	c.HandOff(ts.path, "ctr-peer", testMeta(t), nil)
	if os.Geteuid() == 0 {
		ret, errno := c.Run("getppid")
		wantErrno(t, "getppid handed off by root", ret, errno, unix.EXDEV)
		return
	}
	if !eventually(wait, func() bool { return ts.metrics.HandoffFailures.Load() == 1 }) {
		t.Errorf("a non-root hand-off was not refused (failures %d)", ts.metrics.HandoffFailures.Load())
	}
	// Refused means its fd was closed: the filter has no listener.
	ret, errno := c.Run("getppid")
	wantErrno(t, "getppid after a refused hand-off", ret, errno, unix.ENOSYS)
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Handler: Replay}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
		}
		l.Close()
	case <-time.After(300 * time.Millisecond):
		l.Close()
		<-served
		t.Fatal("regression: notify.go Serve does not check s.closed, so Serve after Shutdown (the agent getting SIGTERM before it reaches Serve) accepts hand-offs for ever; return ErrServerClosed (and close l) when s.closed is set")
	}
}

func TestShutdownWithSilentPeer(t *testing.T) {
	ts := startServer(t, nil)
	conn, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // for the accept goroutine to be waiting on it
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = ts.srv.Shutdown(ctx)
	conn.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("regression: notify.go Shutdown waits for accept goroutines still in handoff.ReceiveFrom, so a connected peer that sends nothing delays it up to the 5 s hand-off deadline; track the connections being received and close them (or set their deadline to now) in Shutdown")
	}
	if err != nil {
		t.Errorf("Shutdown with a silent peer: %v", err)
	}
}

// TestServeSurvivesEMFILE: out of fds, accept fails; the agent backs off,
// counts and logs it once, and accepts again when fds are free, instead of
// returning from Serve and leaving every later container without an agent.
func TestServeSurvivesEMFILE(t *testing.T) {
	ts := startServer(t, nil)
	sendRaw(t, ts.path, "") // Serve has its fds: it accepted this one
	clients, release := childtest.ConnectOutOfFds(t, ts.path, ts.path, ts.path)
	ok := eventually(wait, func() bool { return ts.metrics.AcceptErrors.Load() >= 2 })
	release()
	if !ok {
		t.Fatalf("accept errors = %d, want some while out of fds", ts.metrics.AcceptErrors.Load())
	}
	select {
	case err := <-ts.served:
		ts.served <- err
		t.Fatalf("Serve returned %v while out of fds", err)
	default:
	}
	// With fds free again, the connections made meanwhile are served:
	// garbage counts as a failed hand-off.
	for _, fd := range clients {
		unix.Write(fd, []byte("not JSON"))
		unix.Shutdown(fd, unix.SHUT_WR)
	}
	if !eventually(wait, func() bool { return ts.metrics.HandoffFailures.Load() == 3 }) {
		t.Fatalf("hand-off failures = %d, want 3 once fds are free", ts.metrics.HandoffFailures.Load())
	}
	if n := strings.Count(ts.logs.String(), "accept failed"); n != 1 {
		t.Errorf("%d lines say accept failed, want 1 per episode:\n%s", n, ts.logs.String())
	}
	if !strings.Contains(ts.logs.String(), "accepting again") {
		t.Errorf("no line says the agent accepts again:\n%s", ts.logs.String())
	}
}

// TestServerAuditedContinue: a continue rule with audit = true records what
// it lets through, with the rule's name, from the C fast path's container
// too; and a flood of them stays bounded like denials, never turned into
// denials by the fast path's counting.
func TestServerAuditedContinue(t *testing.T) {
	cfg := parseConfig(t, `
[[notify.rule]]
name = "ci may getppid"
syscalls = ["getppid"]
action = "continue"
audit = true
`)
	ts := startServer(t, cfg)
	c := startChild(t)
	c.HandOff(ts.path, "ci-43", testMeta(t), nil)
	for range 15 { // more than PerKey
		if ret, errno := c.Run("getppid"); ret != int64(os.Getpid()) || errno != 0 {
			t.Fatalf("getppid under an audited continue rule = %d errno %d, want our pid %d", ret, errno, os.Getpid())
		}
	}
	r := ts.waitRecord(func(r Record) bool { return r.Syscall == "getppid" })
	if r.Action != "continue" || r.Errno != 0 || r.Rule != "ci may getppid" || r.Container != "ci-43" {
		t.Errorf("record %+v, want action continue by rule \"ci may getppid\"", r)
	}
	ts.shutdown() // flushes the aggregate
	n := 0
	for _, r := range ts.records() {
		if r.Action != "continue" {
			t.Errorf("record %+v, want only continues", r)
		}
		n += max(r.Count, 1)
	}
	if n != 15 {
		t.Errorf("records count %d continues, want 15", n)
	}
}
