package holder

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/pkg/handoff"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	childtest.Main()
	os.Exit(m.Run())
}

// meta is what policy.Audit writes for a profile denying with EPERM and
// mkdir with EACCES.
const meta = `{"v":1,"profile":"p","errno":1,"errnos":{"mkdir":13}}`

type env struct {
	h                       *Holder
	runtime, control, agent string // socket paths
	logs                    *childtest.SyncBuffer
	served                  chan error // Serve's result
}

// start serves a holder on sockets in a temporary directory. allow nil
// leaves the holder's default, root only: then the test needs root.
func start(t *testing.T, allow func(unix.Ucred) bool) *env {
	t.Helper()
	if allow == nil && os.Geteuid() != 0 {
		t.Skip("the holder admits root only by default")
	}
	dir := t.TempDir()
	e := &env{runtime: filepath.Join(dir, "holder.sock"), control: filepath.Join(dir, "holder.ctl"), agent: filepath.Join(dir, "agent.sock"), logs: &childtest.SyncBuffer{}, served: make(chan error, 1)}
	e.h = &Holder{Agent: e.agent, AllowPeer: allow, Log: &logrus.Logger{Out: e.logs, Formatter: &logrus.TextFormatter{DisableTimestamp: true}, Hooks: logrus.LevelHooks{}, Level: logrus.DebugLevel}}
	rt := listen(t, e.runtime)
	ctl := listen(t, e.control)
	go func() { e.served <- e.h.Serve(rt, ctl) }()
	t.Cleanup(func() {
		rt.Close()
		ctl.Close()
		<-e.served
		if t.Failed() {
			t.Logf("holder log:\n%s", e.logs.String())
		}
	})
	return e
}

func listen(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// connect is an agent coming up: it listens for hand-offs, then opens its
// control connection. Closing the connection is the agent going away.
func (e *env) connect(t *testing.T) (*net.UnixListener, *net.UnixConn) {
	t.Helper()
	os.Remove(e.agent)
	l := listen(t, e.agent)
	t.Cleanup(func() { l.Close() })
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.control, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c
}

// receive takes one forwarded fd on the agent's socket.
func receive(t *testing.T, l *net.UnixListener) *handoff.Handoff {
	t.Helper()
	l.SetDeadline(time.Now().Add(childtest.Wait))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("no hand-off from the holder: %v", err)
	}
	defer c.Close()
	h, err := handoff.Receive(c, time.Now().Add(childtest.Wait))
	if err != nil {
		t.Fatal(err)
	}
	handoff.Ack(c)
	t.Cleanup(func() { unix.Close(h.SeccompFd) })
	return h
}

func wantErrno(t *testing.T, c *childtest.Child, cmd string, want unix.Errno) {
	t.Helper()
	if _, errno := c.Run(cmd); unix.Errno(errno) != want {
		t.Errorf("%s: errno %v, want %v", cmd, unix.Errno(errno), want)
	}
}

// TestReplayWithoutAgent: with no agent connected the holder answers with
// the profile's errnos, and with EPERM where the metadata is missing.
func TestReplayWithoutAgent(t *testing.T) {
	e := start(t, nil)
	c := childtest.Start(t)
	c.HandOff(e.runtime, "c1", meta, nil)
	wantErrno(t, c, "getppid", unix.EPERM)
	wantErrno(t, c, "mkdir "+filepath.Join(t.TempDir(), "x"), unix.EACCES)

	bare := childtest.Start(t)
	bare.HandOff(e.runtime, "c2", "", nil)
	wantErrno(t, bare, "mkdir "+filepath.Join(t.TempDir(), "x"), unix.EPERM)
}

// TestAgentRestart: the holder hands the fd to an agent, answers it itself
// while the agent is away, and hands it again to the next agent.
func TestAgentRestart(t *testing.T) {
	e := start(t, nil)
	c := childtest.Start(t)
	c.HandOff(e.runtime, "c1", meta, nil)
	wantErrno(t, c, "getppid", unix.EPERM)

	for round := range 2 {
		l, ctl := e.connect(t)
		h := receive(t, l)
		if h.State.State.ID != "c1" || h.State.Metadata != meta {
			t.Fatalf("round %d: forwarded %+v", round, h.State)
		}
		// The agent answers alone: an errno the profile never gives.
		c.Command("getppid")
		if ev := childtest.PollFD(t, h.SeccompFd, childtest.Wait); ev&unix.POLLIN == 0 {
			t.Fatalf("round %d: no notification for the agent (events %#x)", round, ev)
		}
		var n unotify.Notif
		if err := unotify.Receive(h.SeccompFd, &n); err != nil {
			t.Fatal(err)
		}
		resp := unotify.Deny(n.ID, unix.EXDEV)
		if err := unotify.Send(h.SeccompFd, &resp); err != nil {
			t.Fatal(err)
		}
		if _, errno := c.Result(); unix.Errno(errno) != unix.EXDEV {
			t.Fatalf("round %d: getppid with the agent up: errno %v, want the agent's EXDEV", round, unix.Errno(errno))
		}

		// The agent goes away, its copy with it: the holder answers again.
		ctl.Close()
		unix.Close(h.SeccompFd)
		h.SeccompFd = -1
		wantErrno(t, c, "getppid", unix.EPERM)
	}
}

// TestPeerCheck: a peer AllowPeer refuses can neither hand off an fd nor
// take them as the agent.
func TestPeerCheck(t *testing.T) {
	e := start(t, func(unix.Ucred) bool { return false })
	c := childtest.Start(t)
	// As runc does, but the holder may close before the send: refused
	// unread, so a broken pipe is a refusal too.
	payload, err := json.Marshal(childtest.HandoffState(c, "c1", meta))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.runtime, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.WriteMsgUnix(payload, unix.UnixRights(c.Fd), nil); err != nil && !errors.Is(err, unix.EPIPE) {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(childtest.Wait))
	conn.Read(make([]byte, 1)) // until the holder has closed its end
	conn.Close()
	unix.Close(c.Fd)
	c.Fd = -1
	// Refused and closed: the filter has no listener left, so the call
	// fails closed with ENOSYS.
	wantErrno(t, c, "getppid", unix.ENOSYS)

	l, ctl := e.connect(t)
	ctl.SetReadDeadline(time.Now().Add(childtest.Wait))
	if _, err := ctl.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("control connection of a refused peer: %v, want it closed", err)
	}
	l.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if conn, err := l.AcceptUnix(); err == nil {
		conn.Close()
		t.Error("a refused peer got a hand-off")
	}
}

func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(childtest.Wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestSurvivesEMFILE: out of fds, accept fails on both sockets; the holder
// backs off and logs it once per socket, and serves runc and the agent again
// when fds are free, instead of exiting and taking every container's
// listener with it.
func TestSurvivesEMFILE(t *testing.T) {
	e := start(t, nil)
	// Serve has its fds once it accepts: a probe, as the shim's.
	probe, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.runtime, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	probe.CloseWrite()
	probe.SetReadDeadline(time.Now().Add(childtest.Wait))
	probe.Read(make([]byte, 1)) // until the holder closes it
	probe.Close()
	clients, release := childtest.ConnectOutOfFds(t, e.runtime, e.control)
	ok := eventually(func() bool { return strings.Count(e.logs.String(), "accept failed") >= 2 })
	time.Sleep(50 * time.Millisecond) // a few more failures, each not logged
	release()
	if !ok {
		t.Fatalf("no accept failure logged for each socket:\n%s", e.logs.String())
	}
	select {
	case err := <-e.served:
		e.served <- err
		t.Fatalf("Serve returned %v while out of fds", err)
	default:
	}
	for _, fd := range clients {
		unix.Shutdown(fd, unix.SHUT_RDWR) // a probe; an agent that came and went
	}

	c := childtest.Start(t)
	c.HandOff(e.runtime, "c1", meta, nil)
	wantErrno(t, c, "getppid", unix.EPERM)
	l, _ := e.connect(t)
	if h := receive(t, l); h.State.State.ID != "c1" {
		t.Fatalf("forwarded %+v", h.State)
	}
	if n := strings.Count(e.logs.String(), "accept failed"); n != 2 {
		t.Errorf("%d lines say accept failed, want one per socket", n)
	}
}

// TestReleasedOnce: through agent restarts a running container is never
// said to be released; when it ends, it is, once.
func TestReleasedOnce(t *testing.T) {
	e := start(t, nil)
	c := childtest.Start(t)
	c.HandOff(e.runtime, "c1", meta, nil)
	wantErrno(t, c, "getppid", unix.EPERM)
	for range 3 {
		l, ctl := e.connect(t)
		h := receive(t, l)
		ctl.Close()
		unix.Close(h.SeccompFd)
		h.SeccompFd = -1
		wantErrno(t, c, "getppid", unix.EPERM)
	}
	time.Sleep(1500 * time.Millisecond) // a reap or more
	if n := strings.Count(e.logs.String(), "msg=released"); n != 0 {
		t.Fatalf("%d lines say a running container was released:\n%s", n, e.logs.String())
	}
	c.Kill()
	if !eventually(func() bool { return strings.Contains(e.logs.String(), "msg=released") }) {
		t.Fatal("an ended container was never released")
	}
	time.Sleep(1500 * time.Millisecond)
	if n := strings.Count(e.logs.String(), "msg=released"); n != 1 {
		t.Errorf("%d lines say the container was released, want 1:\n%s", n, e.logs.String())
	}
}
