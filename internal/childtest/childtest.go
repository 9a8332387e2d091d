// Package childtest gives tests a real seccomp listener fd: the test
// binary re-execs itself as a child that installs a filter notifying getppid
// and mkdirat, hands the listener over, and then makes those syscalls on
// command, like a one-process container. A test package's TestMain calls
// Main first.
package childtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"golang.org/x/sys/unix"
)

// Main runs the child and exits when the process is one; otherwise it
// returns. Call it first in TestMain.
func Main() {
	if os.Getenv(Env) == "1" {
		childMain()
		os.Exit(0)
	}
}

// Env set to "1" makes the test binary the child: installing a filter is
// irreversible, so it can only happen in a process of its own.
const Env = "SECCOMP_SHIM_TEST_CHILD"

// Wait bounds every blocking step, so a broken interaction fails the test
// instead of hanging it.
const Wait = 10 * time.Second

// childMain runs in the re-executed child. Its commands, one per line on
// stdin, answer "<return value> <errno>" on stdout:
//
//	getppid | mkdir PATH | mkdirat PATH   the notified syscalls
//	loop N                               N getppids; errno = how many failed
//	exit
func childMain() {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "child: %s: %v\n", what, err)
		os.Exit(2)
	}
	// The notified syscalls must run on the thread whose tid is the pid, so
	// the parent can check the audit record's tid.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("PR_SET_NO_NEW_PRIVS", err)
	}
	lfd, err := installFilter()
	if err != nil {
		fail("seccomp", err)
	}
	const sock = 3 // ExtraFiles[0]
	if err := unix.Sendmsg(sock, []byte{'L'}, unix.UnixRights(lfd), nil, 0); err != nil {
		fail("sendmsg", err)
	}
	// A copy kept here would keep the filter attached after the test closes
	// its fd, and hide the ENOSYS the fail-closed tests expect.
	unix.Close(lfd)
	unix.Close(sock)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var r uintptr
		var e unix.Errno
		switch f[0] {
		case "getppid":
			r, _, e = unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
		case "mkdir", "mkdirat":
			p, err := unix.BytePtrFromString(f[1])
			if err != nil {
				fail("path", err)
			}
			if f[0] == "mkdir" {
				r, _, e = unix.Syscall(unix.SYS_MKDIR, uintptr(unsafe.Pointer(p)), 0o700, 0)
			} else {
				r, _, e = unix.Syscall(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o700)
			}
			runtime.KeepAlive(p)
		case "loop":
			n, _ := strconv.Atoi(f[1])
			for range n {
				if _, _, e1 := unix.Syscall(unix.SYS_GETPPID, 0, 0, 0); e1 != 0 {
					e++
				}
			}
			r = uintptr(n)
		case "exit":
			os.Exit(0)
		default:
			fail("command", fmt.Errorf("unknown %q", f[0]))
		}
		fmt.Printf("%d %d\n", int64(r), int64(e))
	}
	os.Exit(0)
}

// installFilter notifies getppid, mkdir and mkdirat, allows every other x86_64
// syscall and kills on any other arch, since its numbers are x86_64's.
func installFilter() (int, error) {
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ldAbs, K: uint32(unsafe.Offsetof(seccompData{}.Arch))},
		{Code: jeq, K: unix.AUDIT_ARCH_X86_64, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: ldAbs, K: uint32(unsafe.Offsetof(seccompData{}.Nr))},
		{Code: jeq, K: unix.SYS_GETPPID, Jt: 3},
		{Code: jeq, K: unix.SYS_MKDIRAT, Jt: 2},
		{Code: jeq, K: unix.SYS_MKDIR, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC puts every runtime thread under the filter, like a container's
	// init; the kernel accepts it with NEW_LISTENER only with TSYNC_ESRCH.
	flags := unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// Child is the test's handle on a filtered child: a "container" of one
// process.
type Child struct {
	tb     testing.TB
	cmd    *exec.Cmd
	Fd     int // our copy of the listener until handOff, then -1
	in     *os.File
	out    *os.File
	lines  *bufio.Reader
	stderr SyncBuffer
	waited chan struct{}
	werr   error
}

// RequireFeature gates a test on a kernel feature, as cilium/ebpf's
// testutils do: err is a kernelfeat probe's answer. Absent, the test skips
// and says why; present, it runs, and fails like any other; a probe that
// could not tell fails the test, since that is a broken machine.
func RequireFeature(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case err == nil:
	case errors.Is(err, kernelfeat.ErrNotSupported):
		tb.Skipf("kernel: %v", err)
	default:
		tb.Fatalf("kernel feature probe: %v", err)
	}
}

// AssumeNoIA32Env set to "1" makes RequireIA32 skip as it would on a kernel
// without 32-bit emulation: how to see a gated test's skip on a machine
// that has it. Only the tests honour it, never the shim.
const AssumeNoIA32Env = "SECCOMP_SHIM_TEST_ASSUME_NO_IA32"

// RequireIA32 gates a test that runs a 32-bit x86 program: it fails with
// "exec format error" on a kernel booted with ia32_emulation=0.
func RequireIA32(tb testing.TB) {
	tb.Helper()
	if os.Getenv(AssumeNoIA32Env) == "1" {
		tb.Skipf("kernel: 32-bit emulation: assumed off (%s=1)", AssumeNoIA32Env)
	}
	RequireFeature(tb, kernelfeat.IA32())
}

// Start starts a child and takes its listener fd (Child.Fd); the child is
// killed when the test ends. It skips where the kernel has no seccomp user
// notification.
func Start(tb testing.TB) *Child {
	tb.Helper()
	RequireFeature(tb, kernelfeat.UserNotif())
	if runtime.GOARCH != "amd64" {
		tb.Skip("the test filter is written for x86_64")
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	theirs := os.NewFile(uintptr(pair[1]), "child-sock")
	defer theirs.Close()
	defer unix.Close(pair[0])

	c := &Child{tb: tb, Fd: -1, waited: make(chan struct{})}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), Env+"=1")
	c.cmd.ExtraFiles = []*os.File{theirs}
	c.cmd.Stderr = &c.stderr
	in, err := c.cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	c.in, c.out = in.(*os.File), out.(*os.File)
	c.lines = bufio.NewReader(c.out)
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	// Wait reaps in the background, so a test can see a kill as it happens.
	// It closes the stdout pipe too, which is why lines were set up first.
	go func() { c.werr = c.cmd.Wait(); close(c.waited) }()
	tb.Cleanup(c.Stop)
	theirs.Close()

	// If the child fails before sending, its end closes and poll returns
	// without an fd instead of waiting.
	if ev := PollFD(tb, pair[0], Wait); ev&unix.POLLIN == 0 {
		tb.Fatalf("no listener from child (poll events %#x, stderr %q)", ev, c.stderr.String())
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	// CLOEXEC so that a child started concurrently by another test can't
	// inherit a copy that would keep the filter's listener alive.
	_, oobn, _, _, err := unix.Recvmsg(pair[0], buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		tb.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		tb.Fatalf("child sent no fd: %v (stderr: %s)", err, c.stderr.String())
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		tb.Fatalf("child sent %d fds: %v", len(fds), err)
	}
	c.Fd = fds[0]
	return c
}

func (c *Child) Pid() int { return c.cmd.Process.Pid }

// stop kills the child (ours, by pid) and closes whatever we still hold.
// Safe to call twice.
func (c *Child) Stop() {
	select {
	case <-c.waited:
	default:
		c.cmd.Process.Kill()
		<-c.waited
	}
	if c.tb.Failed() && c.stderr.Len() > 0 {
		c.tb.Logf("child %d stderr: %s", c.Pid(), c.stderr.String())
	}
	if c.Fd >= 0 {
		unix.Close(c.Fd)
		c.Fd = -1
	}
	c.in.Close()
}

// Kill kills the child and waits for it, keeping the listener fd.
func (c *Child) Kill() {
	c.cmd.Process.Kill()
	<-c.waited
}

// Exited waits for the child to end and returns how.
func (c *Child) Exited(d time.Duration) (syscall.WaitStatus, bool) {
	select {
	case <-c.waited:
		return c.cmd.ProcessState.Sys().(syscall.WaitStatus), true
	case <-time.After(d):
		return 0, false
	}
}

func (c *Child) Command(s string) {
	c.tb.Helper()
	if _, err := fmt.Fprintln(c.in, s); err != nil {
		c.tb.Fatalf("command %q: %v", s, err)
	}
}

// result reads the answer to the last command.
func (c *Child) Result() (ret, errno int64) {
	c.tb.Helper()
	c.out.SetReadDeadline(time.Now().Add(Wait))
	line, err := c.lines.ReadString('\n')
	if err != nil {
		c.tb.Fatalf("reading child %d result: %v (stderr: %s)", c.Pid(), err, c.stderr.String())
	}
	if _, err := fmt.Sscan(line, &ret, &errno); err != nil {
		c.tb.Fatalf("child result %q: %v", line, err)
	}
	return ret, errno
}

// run sends one command and returns its result.
func (c *Child) Run(cmd string) (ret, errno int64) {
	c.tb.Helper()
	c.Command(cmd)
	return c.Result()
}

// handOff does what runc's sendContainerProcessState does: dial the
// listener path, send the state JSON with the notify fd in SCM_RIGHTS in one
// sendmsg, close. Like runc it then closes its own copy, so the agent holds
// the only one.
func (c *Child) HandOff(path, id, metadata string, annotations map[string]string) {
	c.tb.Helper()
	st := HandoffState(c, id, metadata)
	st.State.Annotations = annotations
	payload, err := json.Marshal(st)
	if err != nil {
		c.tb.Fatal(err)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		c.tb.Fatal(err)
	}
	defer conn.Close()
	n, _, err := conn.WriteMsgUnix(payload, unix.UnixRights(c.Fd), nil)
	if err != nil || n != len(payload) {
		c.tb.Fatalf("sendmsg: %d of %d bytes: %v", n, len(payload), err)
	}
	unix.Close(c.Fd)
	c.Fd = -1
}

// handoffState is the state runc sends for c, as captured from runc 1.1.5
// (DESIGN-NOTES §1), with the shim's metadata.
func HandoffState(c *Child, id, metadata string) *specs.ContainerProcessState {
	return &specs.ContainerProcessState{
		Version:  "1.0.2-dev",
		Fds:      []string{specs.SeccompFdName},
		Pid:      c.Pid(),
		Metadata: metadata,
		State: specs.State{
			Version: "1.0.2-dev", ID: id, Status: specs.StateCreating, Pid: c.Pid(),
			Bundle: "/tmp/bundle-" + id,
		},
	}
}

func PollFD(tb testing.TB, fd int, d time.Duration) int16 {
	tb.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(p, int(d/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			tb.Fatalf("poll: %v", err)
		}
		if n == 0 {
			return 0
		}
		return p[0].Revents
	}
}

// seccompData is struct seccomp_data's head, for the filter's offsets.
type seccompData struct {
	Nr   int32
	Arch uint32
}

// atFDCWD is AT_FDCWD as a syscall argument; a negative constant can't be
// converted to uintptr directly.
var atFDCWD = func() uintptr { v := unix.AT_FDCWD; return uintptr(v) }()
