package unotify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tests need a real listener fd, and installing a filter is irreversible,
// so the test binary re-execs itself as a child (as the os/exec tests do)
// that installs the filter, hands the listener over, and then runs syscalls
// on command.
const childEnv = "UNOTIFY_TEST_CHILD"

// probePath is the mkdirat argument ReadString must recover. Every test
// denies mkdirat, so nothing is ever created there.
const probePath = "/tmp/probe-path"

// wait bounds every blocking step, so a broken kernel interaction fails the
// test instead of hanging it.
const wait = 10 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		childMain()
		return
	}
	os.Exit(m.Run())
}

// childMain runs in the re-executed child. Its commands, one per line on
// stdin, answer one line "<return value> <errno>" on stdout:
//
//	getppid | mkdir PATH | mkdirat PATH  the notified syscalls
//	loop N                               N getppids; errno = how many failed
//	exit
func childMain() {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "child: %s: %v\n", what, err)
		os.Exit(2)
	}
	// The syscalls below must run on the thread that is being watched.
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
	// Keeping a copy would defeat the closed-listener test: the kernel
	// detaches only when the last reference goes.
	unix.Close(lfd)
	unix.Close(sock)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var r, e uintptr
		switch f[0] {
		case "getppid":
			r, e = getppid()
		case "mkdir", "mkdirat":
			p, err := unix.BytePtrFromString(f[1])
			if err != nil {
				fail("path", err)
			}
			if f[0] == "mkdir" {
				r, _, e = syscallErrno(unix.SYS_MKDIR, uintptr(unsafe.Pointer(p)), 0o700, 0)
			} else {
				r, _, e = syscallErrno(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o700)
			}
		case "loop":
			n, _ := strconv.Atoi(f[1])
			for range n {
				if _, e1 := getppid(); e1 != 0 {
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

func getppid() (uintptr, uintptr) {
	r, _, e := syscallErrno(unix.SYS_GETPPID, 0, 0, 0)
	return r, e
}

// syscallErrno is unix.Syscall with the errno as a number; the notified
// syscall blocks, so the runtime must know the thread is in a syscall.
func syscallErrno(nr, a1, a2, a3 uintptr) (uintptr, uintptr, uintptr) {
	r1, r2, e := unix.Syscall(nr, a1, a2, a3)
	return r1, r2, uintptr(e)
}

// installFilter notifies getppid, mkdir and mkdirat, allows every other
// x86_64 syscall and kills on any other arch, since its numbers are x86_64's.
func installFilter() (int, error) {
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ldAbs, K: uint32(unsafe.Offsetof(Data{}.Arch))},
		{Code: jeq, K: unix.AUDIT_ARCH_X86_64, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: ldAbs, K: uint32(unsafe.Offsetof(Data{}.Nr))},
		{Code: jeq, K: unix.SYS_GETPPID, Jt: 3},
		{Code: jeq, K: unix.SYS_MKDIRAT, Jt: 2},
		{Code: jeq, K: unix.SYS_MKDIR, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC puts every runtime thread under the filter, like a container's
	// init; NEW_LISTENER alone would cover only this thread. The kernel
	// accepts the pair only with TSYNC_ESRCH, because TSYNC would otherwise
	// use the return value that carries the listener fd.
	flags := unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// child is the parent's handle on a filtered child.
type child struct {
	tb     testing.TB
	cmd    *exec.Cmd
	fd     int // the listener, -1 once closed
	in     *os.File
	out    *os.File
	lines  *bufio.Reader
	stderr bytes.Buffer
}

func startChild(tb testing.TB) *child {
	tb.Helper()
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

	c := &child{tb: tb, fd: -1}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), childEnv+"=1")
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
	tb.Cleanup(c.stop)
	theirs.Close()

	// If the child fails before sending, its end closes and this returns
	// with no fd instead of waiting.
	if ev := pollFD(tb, pair[0], wait); ev&unix.POLLIN == 0 {
		tb.Fatalf("no listener from child (poll events %#x)", ev)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	// CLOEXEC so that no concurrently started process inherits a copy,
	// which would keep the listener alive after we close it.
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
	c.fd = fds[0]
	return c
}

// stop kills the child (ours, by pid) and closes the listener. Safe to call
// twice.
func (c *child) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		if c.tb.Failed() && c.stderr.Len() > 0 {
			c.tb.Logf("child stderr: %s", c.stderr.String())
		}
	}
	c.closeFD()
}

func (c *child) closeFD() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

func (c *child) command(s string) {
	c.tb.Helper()
	if _, err := fmt.Fprintln(c.in, s); err != nil {
		c.tb.Fatalf("command %q: %v", s, err)
	}
}

// result reads the answer to the last command.
func (c *child) result() (ret, errno int64) {
	c.tb.Helper()
	c.out.SetReadDeadline(time.Now().Add(wait))
	line, err := c.lines.ReadString('\n')
	if err != nil {
		c.tb.Fatalf("reading child result: %v (stderr: %s)", err, c.stderr.String())
	}
	if _, err := fmt.Sscan(line, &ret, &errno); err != nil {
		c.tb.Fatalf("child result %q: %v", line, err)
	}
	return ret, errno
}

// recv waits for the next notification, failing the test instead of
// blocking forever.
func (c *child) recv() Notif {
	c.tb.Helper()
	for {
		if ev := pollFD(c.tb, c.fd, wait); ev&unix.POLLIN == 0 {
			c.tb.Fatalf("no notification (poll events %#x)", ev)
		}
		var n Notif
		err := Receive(c.fd, &n)
		if err == unix.ENOENT {
			continue // the target was interrupted; it comes back
		}
		if err != nil {
			c.tb.Fatalf("Receive: %v", err)
		}
		return n
	}
}

// answer receives the notification for syscall nr and answers it with
// resp. A signal can interrupt the child after we received; its syscall is
// then restarted and notified again, which answer handles like the kernel.
func (c *child) answer(nr int32, resp func(id uint64) Resp) Notif {
	c.tb.Helper()
	for {
		n := c.recv()
		if n.Data.Nr != nr || n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
			c.tb.Fatalf("got nr %d arch %#x, want nr %d on x86_64", n.Data.Nr, n.Data.Arch, nr)
		}
		r := resp(n.ID)
		err := Send(c.fd, &r)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			c.tb.Fatalf("Send: %v", err)
		}
		return n
	}
}

// drain continues whatever is still queued, for loops that may have seen a
// restarted syscall and so one notification more than they counted.
func (c *child) drain() {
	for pollFD(c.tb, c.fd, 50*time.Millisecond)&unix.POLLIN != 0 {
		var n Notif
		if Receive(c.fd, &n) == nil {
			r := Continue(n.ID)
			Send(c.fd, &r)
		}
	}
}

func pollFD(tb testing.TB, fd int, d time.Duration) int16 {
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

func TestDenyGivesExactErrno(t *testing.T) {
	c := startChild(t)
	for _, errno := range []unix.Errno{unix.EACCES, 122, maxErrno} {
		c.command("getppid")
		c.answer(unix.SYS_GETPPID, func(id uint64) Resp { return Deny(id, errno) })
		if ret, got := c.result(); ret != -1 || got != int64(errno) {
			t.Errorf("Deny(%d): child got ret %d errno %d, want -1 and %d", errno, ret, got, errno)
		}
	}
}

func TestDenyFailsClosed(t *testing.T) {
	if r := Deny(7, unix.EACCES); r != (Resp{ID: 7, Error: -13}) {
		t.Errorf("Deny(7, EACCES) = %+v, want a negative errno", r)
	}
	// Error 0 or below -4095 would reach the target as a successful return.
	for _, e := range []unix.Errno{0, maxErrno + 1, 1 << 20} {
		if r := Deny(7, e); r.Error != -int32(unix.EPERM) || r.Flags != 0 || r.Val != 0 {
			t.Errorf("Deny(7, %d) = %+v, want EPERM", e, r)
		}
	}
	if r := Continue(9); r != (Resp{ID: 9, Flags: 1}) {
		t.Errorf("Continue(9) = %+v", r)
	}

	c := startChild(t)
	c.command("getppid")
	c.answer(unix.SYS_GETPPID, func(id uint64) Resp { return Deny(id, 0) })
	if ret, errno := c.result(); ret != -1 || errno != int64(unix.EPERM) {
		t.Errorf("Deny(id, 0): child got ret %d errno %d, want -1 EPERM", ret, errno)
	}
}

func TestContinue(t *testing.T) {
	c := startChild(t)
	c.command("getppid")
	c.answer(unix.SYS_GETPPID, Continue)
	if ret, errno := c.result(); ret != int64(os.Getpid()) || errno != 0 {
		t.Errorf("getppid after CONTINUE = %d errno %d, want %d", ret, errno, os.Getpid())
	}
}

func TestNotificationFields(t *testing.T) {
	c := startChild(t)
	for _, tc := range []struct {
		cmd  string
		nr   int32
		name string
	}{
		{"getppid", unix.SYS_GETPPID, "getppid"},
		{"mkdirat " + probePath, unix.SYS_MKDIRAT, "mkdirat"},
		{"mkdir " + probePath, unix.SYS_MKDIR, "mkdir"},
	} {
		c.command(tc.cmd)
		n := c.answer(tc.nr, func(id uint64) Resp { return Deny(id, unix.EACCES) })
		c.result()
		if got := SyscallName(n.Data.Arch, n.Data.Nr); got != tc.name {
			t.Errorf("SyscallName(%#x, %d) = %q, want %q", n.Data.Arch, n.Data.Nr, got, tc.name)
		}
		if got := n.Data.ArchName(); got != "x86_64" {
			t.Errorf("ArchName = %q", got)
		}
		// The child runs the syscalls on its locked main thread, whose tid is
		// its pid.
		if int(n.Pid) != c.cmd.Process.Pid {
			t.Errorf("Pid = %d, want %d", n.Pid, c.cmd.Process.Pid)
		}
		if tc.nr == unix.SYS_MKDIRAT && int32(n.Data.Args[0]) != unix.AT_FDCWD {
			t.Errorf("mkdirat dirfd = %d, want AT_FDCWD", int32(n.Data.Args[0]))
		}
	}
}

func TestSyscallName(t *testing.T) {
	const x32 = x32SyscallBit
	for _, tc := range []struct {
		arch uint32
		nr   int32
		want string
	}{
		{unix.AUDIT_ARCH_X86_64, 39, "getpid"},
		{unix.AUDIT_ARCH_X86_64, 110, "getppid"},
		{unix.AUDIT_ARCH_X86_64, 258, "mkdirat"},
		// The same number means different syscalls on the two x86 ABIs.
		{unix.AUDIT_ARCH_X86_64, 20, "writev"},
		{unix.AUDIT_ARCH_I386, 20, "getpid"},
		{unix.AUDIT_ARCH_I386, 64, "getppid"},
		{unix.AUDIT_ARCH_X86_64, x32 | 0, "read"},
		{unix.AUDIT_ARCH_X86_64, x32 | 512, "rt_sigaction"},
		{unix.AUDIT_ARCH_AARCH64, 172, "getpid"},
		{unix.AUDIT_ARCH_ARM, 20, "getpid"},
		{unix.AUDIT_ARCH_X86_64, 99999, "syscall_99999"},
		// x32-only numbers do not exist without the x32 bit.
		{unix.AUDIT_ARCH_X86_64, 512, "syscall_512"},
		// libseccomp names negative numbers after its pseudo-syscalls (-101 is
		// "socket" on x86); the kernel has no such thing.
		{unix.AUDIT_ARCH_I386, -101, "syscall_-101"},
		{unix.AUDIT_ARCH_X86_64, -1, "syscall_-1"},
		{0x1234, 39, "syscall_39"},
	} {
		// Twice: the second answer comes from the cache.
		for range 2 {
			if got := SyscallName(tc.arch, tc.nr); got != tc.want {
				t.Errorf("SyscallName(%#x, %d) = %q, want %q", tc.arch, tc.nr, got, tc.want)
			}
		}
	}
}

func TestSyscallNameCacheCollision(t *testing.T) {
	// Fill one slot with another (arch, nr) and check nothing stale is served.
	const nr = 39
	want := SyscallName(unix.AUDIT_ARCH_X86_64, nr)
	slot := cacheSlot(unix.AUDIT_ARCH_X86_64, nr)
	for other := int32(0); ; other++ {
		if other != nr && cacheSlot(unix.AUDIT_ARCH_X86_64, other) == slot {
			SyscallName(unix.AUDIT_ARCH_X86_64, other)
			break
		}
	}
	if got := SyscallName(unix.AUDIT_ARCH_X86_64, nr); got != want {
		t.Errorf("after collision got %q, want %q", got, want)
	}
}

func TestSyscallNameNoAllocs(t *testing.T) {
	SyscallName(unix.AUDIT_ARCH_X86_64, 110)
	SyscallName(unix.AUDIT_ARCH_I386, 20)
	if a := testing.AllocsPerRun(1000, func() {
		SyscallName(unix.AUDIT_ARCH_X86_64, 110)
		SyscallName(unix.AUDIT_ARCH_I386, 20)
	}); a != 0 {
		t.Errorf("cached SyscallName allocates %v times", a)
	}
}

func TestArchName(t *testing.T) {
	for arch, want := range map[uint32]string{
		unix.AUDIT_ARCH_X86_64:  "x86_64",
		unix.AUDIT_ARCH_I386:    "x86",
		unix.AUDIT_ARCH_AARCH64: "aarch64",
		unix.AUDIT_ARCH_ARM:     "arm",
		unix.AUDIT_ARCH_RISCV64: "riscv64",
		unix.AUDIT_ARCH_S390X:   "s390x",
		0x1234:                  "arch_0x1234",
	} {
		if got := ArchName(arch); got != want {
			t.Errorf("ArchName(%#x) = %q, want %q", arch, got, want)
		}
	}
	d := Data{Arch: unix.AUDIT_ARCH_X86_64, Nr: x32SyscallBit | 1}
	if got := d.ArchName(); got != "x32" {
		t.Errorf("x32 Data.ArchName() = %q", got)
	}
	d.Nr = 1
	if got := d.ArchName(); got != "x86_64" {
		t.Errorf("x86_64 Data.ArchName() = %q", got)
	}
}

func TestReadString(t *testing.T) {
	c := startChild(t)
	c.command("mkdirat " + probePath)
	n := c.recv()
	if n.Data.Nr != unix.SYS_MKDIRAT {
		t.Fatalf("nr %d", n.Data.Nr)
	}
	if err := IDValid(c.fd, n.ID); err != nil {
		t.Fatalf("IDValid while pending: %v", err)
	}
	addr := n.Data.Args[1]
	if got, err := ReadString(c.fd, &n, addr, unix.PathMax); got != probePath || err != nil {
		t.Errorf("ReadString = %q, %v; want %q", got, err, probePath)
	}
	// A limit above the stack buffer takes the allocating path.
	if got, err := ReadString(c.fd, &n, addr, 3*unix.PathMax); got != probePath || err != nil {
		t.Errorf("ReadString(big max) = %q, %v", got, err)
	}
	// max counts the NUL, so len(probePath) bytes cannot hold the string.
	if got, err := ReadString(c.fd, &n, addr, len(probePath)); got != probePath || !errors.Is(err, ErrTruncated) {
		t.Errorf("ReadString(short max) = %q, %v; want %q, ErrTruncated", got, err, probePath)
	}
	if got, err := ReadString(c.fd, &n, addr, len(probePath)+1); got != probePath || err != nil {
		t.Errorf("ReadString(exact max) = %q, %v", got, err)
	}
	// Unmapped memory is an error, not a stale notification.
	if _, err := ReadString(c.fd, &n, 0, unix.PathMax); err == nil || errors.Is(err, ErrStale) {
		t.Errorf("ReadString(NULL) error = %v, want a read error", err)
	}
	if _, err := ReadString(c.fd, &n, 1<<63, unix.PathMax); err == nil || errors.Is(err, ErrStale) {
		t.Errorf("ReadString(kernel address) error = %v, want a read error", err)
	}
	r := Deny(n.ID, unix.EACCES)
	if err := Send(c.fd, &r); err != nil {
		t.Fatal(err)
	}
	if ret, errno := c.result(); ret != -1 || errno != int64(unix.EACCES) {
		t.Errorf("mkdirat got %d errno %d", ret, errno)
	}
}

func TestDeadTarget(t *testing.T) {
	c := startChild(t)
	c.command("mkdirat " + probePath)
	n := c.recv()
	c.cmd.Process.Kill()
	c.cmd.Wait()

	if err := IDValid(c.fd, n.ID); err != unix.ENOENT {
		t.Errorf("IDValid after death = %v, want ENOENT", err)
	}
	if s, err := ReadString(c.fd, &n, n.Data.Args[1], unix.PathMax); err != ErrStale {
		t.Errorf("ReadString after death = %q, %v; want ErrStale", s, err)
	}
	r := Continue(n.ID)
	if err := Send(c.fd, &r); err != unix.ENOENT {
		t.Errorf("Send after death = %v, want ENOENT", err)
	}
	// The filter has no task left: that is POLLHUP, not a readable fd.
	if ev := pollFD(t, c.fd, wait); ev&unix.POLLHUP == 0 {
		t.Errorf("poll after death = %#x, want POLLHUP", ev)
	}
}

func TestReceiveAfterLastTaskExits(t *testing.T) {
	if !kernelAtLeast(t, 6, 11) {
		t.Skip("before Linux 6.11 RECV keeps blocking when the filter loses its last task")
	}
	c := startChild(t)
	done := make(chan error, 1)
	fd := c.fd
	go func() {
		var n Notif
		done <- Receive(fd, &n)
	}()
	time.Sleep(50 * time.Millisecond) // let it block first
	c.cmd.Process.Kill()
	c.cmd.Wait()
	select {
	case err := <-done:
		if err != ErrNoTasks {
			t.Errorf("blocked Receive after exit = %v, want ErrNoTasks", err)
		}
	case <-time.After(wait):
		t.Fatal("blocked Receive did not return after the last task exited")
	}
	var n Notif
	if err := Receive(c.fd, &n); err != ErrNoTasks {
		t.Errorf("Receive after exit = %v, want ErrNoTasks", err)
	}
}

// TestInterruptedTarget signals the target while it waits in a notified
// syscall. Go's runtime does this all the time (SIGURG), and runc's init is
// Go too. The syscall is restarted under a new ID; the agent sees ENOENT,
// which must not be taken for the end of the container.
func TestInterruptedTarget(t *testing.T) {
	// learnID makes one round trip, so the next notification's ID is known:
	// the kernel numbers them in sequence per filter.
	learnID := func(c *child) uint64 {
		c.command("getppid")
		n := c.answer(unix.SYS_GETPPID, Continue)
		c.result()
		return n.ID
	}
	interrupt := func(c *child) {
		pid := c.cmd.Process.Pid
		// The child's syscalls run on its main thread, whose tid is its pid.
		if err := unix.Tgkill(pid, pid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // for the restart to be queued
	}

	t.Run("before RECV", func(t *testing.T) {
		c := startChild(t)
		k := learnID(c)
		c.command("getppid")
		if ev := pollFD(t, c.fd, wait); ev&unix.POLLIN == 0 {
			t.Fatalf("poll = %#x", ev)
		}
		interrupt(c)
		var n Notif
		if err := Receive(c.fd, &n); err != nil {
			t.Fatal(err)
		}
		if n.ID != k+2 {
			t.Errorf("got ID %d, want the restarted syscall's %d", n.ID, k+2)
		}
		r := Continue(n.ID)
		if err := Send(c.fd, &r); err != nil {
			t.Fatal(err)
		}
		if ret, _ := c.result(); ret != int64(os.Getpid()) {
			t.Errorf("restarted getppid = %d", ret)
		}
		// The kernel counted two requests for one notification: the next
		// RECV finds nothing and fails at once. poll does not report it.
		if ev := pollFD(t, c.fd, 0); ev != 0 {
			t.Errorf("poll = %#x, want nothing ready", ev)
		}
		done := make(chan error, 1)
		go func() {
			var n Notif
			done <- Receive(c.fd, &n)
		}()
		select {
		case err := <-done:
			if err != unix.ENOENT {
				t.Errorf("Receive = %v, want ENOENT", err)
			}
		case <-time.After(wait):
			c.stop() // wakes it on 6.11+
			t.Fatal("Receive blocked")
		}
		learnID(c) // and the fd works as before
	})
	t.Run("after RECV", func(t *testing.T) {
		c := startChild(t)
		k := learnID(c)
		c.command("getppid")
		n := c.recv()
		interrupt(c)
		r := Continue(n.ID)
		if err := Send(c.fd, &r); err != unix.ENOENT {
			t.Errorf("Send to an interrupted target = %v, want ENOENT", err)
		}
		n = c.answer(unix.SYS_GETPPID, Continue)
		if n.ID != k+2 {
			t.Errorf("restarted ID %d, want %d", n.ID, k+2)
		}
		if ret, _ := c.result(); ret != int64(os.Getpid()) {
			t.Errorf("restarted getppid = %d", ret)
		}
	})
}

func TestClosedListenerGivesENOSYS(t *testing.T) {
	t.Run("received", func(t *testing.T) {
		c := startChild(t)
		c.command("getppid")
		c.recv()
		c.closeFD()
		if ret, errno := c.result(); ret != -1 || errno != int64(unix.ENOSYS) {
			t.Errorf("pending getppid = %d errno %d, want ENOSYS", ret, errno)
		}
		// Nothing can listen any more, so every later notification fails too.
		for _, cmd := range []string{"getppid", "mkdirat " + probePath} {
			c.command(cmd)
			if ret, errno := c.result(); ret != -1 || errno != int64(unix.ENOSYS) {
				t.Errorf("%s after close = %d errno %d, want ENOSYS", cmd, ret, errno)
			}
		}
	})
	t.Run("queued", func(t *testing.T) {
		c := startChild(t)
		c.command("getppid")
		if ev := pollFD(t, c.fd, wait); ev&unix.POLLIN == 0 {
			t.Fatalf("poll = %#x", ev)
		}
		c.closeFD()
		if ret, errno := c.result(); ret != -1 || errno != int64(unix.ENOSYS) {
			t.Errorf("queued getppid = %d errno %d, want ENOSYS", ret, errno)
		}
	})
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var ma, mi int
	if _, err := fmt.Sscanf(rel, "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return ma > major || ma == major && mi >= minor
}

func TestSetSyncWakeUp(t *testing.T) {
	c := startChild(t)
	err := SetSyncWakeUp(c.fd)
	if !kernelAtLeast(t, 6, 6) {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("SetSyncWakeUp on a pre-6.6 kernel = %v, want ErrNotSupported", err)
		}
		t.Skip("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP needs Linux 6.6")
	}
	if err != nil {
		t.Fatalf("SetSyncWakeUp on Linux >= 6.6: %v", err)
	}
	c.command("getppid")
	c.answer(unix.SYS_GETPPID, Continue)
	if ret, _ := c.result(); ret != int64(os.Getpid()) {
		t.Errorf("getppid = %d after SetSyncWakeUp", ret)
	}
}

func TestSetSyncWakeUpNotListener(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if err := SetSyncWakeUp(p[0]); !errors.Is(err, ErrNotSupported) || !errors.Is(err, unix.ENOTTY) {
		t.Errorf("SetSyncWakeUp(pipe) = %v, want ErrNotSupported wrapping ENOTTY", err)
	}
}

func TestCheckSizes(t *testing.T) {
	if err := checkSizes(); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTripNoAllocs holds the agent's hot loop to zero allocations.
func TestRoundTripNoAllocs(t *testing.T) {
	c := startChild(t)
	const runs = 200
	// AllocsPerRun makes one extra warm-up call.
	c.command(fmt.Sprintf("loop %d", runs+1))
	var n Notif
	allocs := testing.AllocsPerRun(runs, func() {
		for {
			if err := Receive(c.fd, &n); err == unix.ENOENT {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			r := Continue(n.ID)
			if err := Send(c.fd, &r); err == nil {
				return
			} else if err != unix.ENOENT {
				t.Fatal(err)
			}
		}
	})
	c.drain()
	if ret, failed := c.result(); ret != runs+1 || failed != 0 {
		t.Errorf("child loop: %d calls, %d failed", ret, failed)
	}
	if allocs != 0 {
		t.Errorf("Receive+Continue+Send allocates %v times per round trip", allocs)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// cycle exercises every fd-using path once: receive, read memory, answer,
// read from a dead target, close.
func cycle(t *testing.T) {
	c := startChild(t)
	c.command("mkdirat " + probePath)
	c.answer(unix.SYS_MKDIRAT, func(id uint64) Resp { return Deny(id, unix.EACCES) })
	c.result()
	c.command("mkdirat " + probePath)
	n := c.recv()
	if s, err := ReadString(c.fd, &n, n.Data.Args[1], unix.PathMax); s != probePath || err != nil {
		t.Fatalf("ReadString = %q, %v", s, err)
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
	if _, err := ReadString(c.fd, &n, n.Data.Args[1], unix.PathMax); err != ErrStale {
		t.Fatalf("ReadString after death = %v, want ErrStale", err)
	}
	c.stop()
}

func TestNoFDLeak(t *testing.T) {
	// The first cycle may open fds the runtime keeps (the netpoller's).
	t.Run("warmup", cycle)
	before := openFDs(t)
	for i := range 3 {
		t.Run(fmt.Sprint("cycle", i), cycle)
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds: %d before, %d after 3 cycles", before, after)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "default"
		if sync {
			name = "syncwakeup"
		}
		b.Run(name, func(b *testing.B) {
			c := startChild(b)
			if sync {
				if err := SetSyncWakeUp(c.fd); err != nil {
					b.Skip(err)
				}
			}
			// A blocking RECV on a locked thread is the agent's fast
			// configuration (DESIGN-NOTES §7).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c.command(fmt.Sprintf("loop %d", b.N))
			var n Notif
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				if err := Receive(c.fd, &n); err == unix.ENOENT {
					continue
				} else if err != nil {
					b.Fatal(err)
				}
				r := Continue(n.ID)
				switch err := Send(c.fd, &r); err {
				case nil:
					done++
				case unix.ENOENT:
				default:
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.drain()
			if ret, failed := c.result(); ret != int64(b.N) || failed != 0 {
				b.Errorf("child loop: %d calls, %d failed", ret, failed)
			}
		})
	}
}
