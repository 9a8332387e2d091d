package unotify

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"golang.org/x/sys/unix"
)

// A real listener fd comes from internal/childtest's child process, which
// notifies getppid, mkdir and mkdirat.
type child struct {
	*childtest.Child
	tb testing.TB
}

func startChild(tb testing.TB) *child { return &child{childtest.Start(tb), tb} }

// probePath is the mkdirat argument ReadString must recover. Every test
// denies mkdirat, so nothing is ever created there.
const probePath = "/tmp/probe-path"

// wait bounds every blocking step, so a broken kernel interaction fails the
// test instead of hanging it.
const wait = childtest.Wait

var pollFD = childtest.PollFD

func TestMain(m *testing.M) {
	childtest.Main()
	os.Exit(m.Run())
}

func (c *child) closeFD() {
	if c.Fd >= 0 {
		unix.Close(c.Fd)
		c.Fd = -1
	}
}

// recv waits for the next notification, failing the test instead of
// blocking forever.
func (c *child) recv() Notif {
	c.tb.Helper()
	for {
		if ev := pollFD(c.tb, c.Fd, wait); ev&unix.POLLIN == 0 {
			c.tb.Fatalf("no notification (poll events %#x)", ev)
		}
		var n Notif
		err := Receive(c.Fd, &n)
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
		err := Send(c.Fd, &r)
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
	for pollFD(c.tb, c.Fd, 50*time.Millisecond)&unix.POLLIN != 0 {
		var n Notif
		if Receive(c.Fd, &n) == nil {
			r := Continue(n.ID)
			Send(c.Fd, &r)
		}
	}
}

func TestDenyGivesExactErrno(t *testing.T) {
	c := startChild(t)
	for _, errno := range []unix.Errno{unix.EACCES, 122, maxErrno} {
		c.Command("getppid")
		c.answer(unix.SYS_GETPPID, func(id uint64) Resp { return Deny(id, errno) })
		if ret, got := c.Result(); ret != -1 || got != int64(errno) {
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
	c.Command("getppid")
	c.answer(unix.SYS_GETPPID, func(id uint64) Resp { return Deny(id, 0) })
	if ret, errno := c.Result(); ret != -1 || errno != int64(unix.EPERM) {
		t.Errorf("Deny(id, 0): child got ret %d errno %d, want -1 EPERM", ret, errno)
	}
}

func TestContinue(t *testing.T) {
	c := startChild(t)
	c.Command("getppid")
	c.answer(unix.SYS_GETPPID, Continue)
	if ret, errno := c.Result(); ret != int64(os.Getpid()) || errno != 0 {
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
		c.Command(tc.cmd)
		n := c.answer(tc.nr, func(id uint64) Resp { return Deny(id, unix.EACCES) })
		c.Result()
		if got := SyscallName(n.Data.Arch, n.Data.Nr); got != tc.name {
			t.Errorf("SyscallName(%#x, %d) = %q, want %q", n.Data.Arch, n.Data.Nr, got, tc.name)
		}
		if got := n.Data.ArchName(); got != "x86_64" {
			t.Errorf("ArchName = %q", got)
		}
		// The child runs the syscalls on its locked main thread, whose tid is
		// its pid.
		if int(n.Pid) != c.Pid() {
			t.Errorf("Pid = %d, want %d", n.Pid, c.Pid())
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
		// MIPS numbers carry their ABI's base, as seccomp_data.nr does.
		{unix.AUDIT_ARCH_MIPS, 4020, "getpid"},
		{unix.AUDIT_ARCH_MIPS64N32, 6038, "getpid"},
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
	c.Command("mkdirat " + probePath)
	n := c.recv()
	if n.Data.Nr != unix.SYS_MKDIRAT {
		t.Fatalf("nr %d", n.Data.Nr)
	}
	if err := IDValid(c.Fd, n.ID); err != nil {
		t.Fatalf("IDValid while pending: %v", err)
	}
	addr := n.Data.Args[1]
	if got, err := ReadString(c.Fd, &n, addr, unix.PathMax); got != probePath || err != nil {
		t.Errorf("ReadString = %q, %v; want %q", got, err, probePath)
	}
	// A limit above the stack buffer takes the allocating path.
	if got, err := ReadString(c.Fd, &n, addr, 3*unix.PathMax); got != probePath || err != nil {
		t.Errorf("ReadString(big max) = %q, %v", got, err)
	}
	// max counts the NUL, so len(probePath) bytes cannot hold the string.
	if got, err := ReadString(c.Fd, &n, addr, len(probePath)); got != probePath || !errors.Is(err, ErrTruncated) {
		t.Errorf("ReadString(short max) = %q, %v; want %q, ErrTruncated", got, err, probePath)
	}
	if got, err := ReadString(c.Fd, &n, addr, len(probePath)+1); got != probePath || err != nil {
		t.Errorf("ReadString(exact max) = %q, %v", got, err)
	}
	// Unmapped memory is an error, not a stale notification.
	if _, err := ReadString(c.Fd, &n, 0, unix.PathMax); err == nil || errors.Is(err, ErrStale) {
		t.Errorf("ReadString(NULL) error = %v, want a read error", err)
	}
	if _, err := ReadString(c.Fd, &n, 1<<63, unix.PathMax); err == nil || errors.Is(err, ErrStale) {
		t.Errorf("ReadString(kernel address) error = %v, want a read error", err)
	}
	r := Deny(n.ID, unix.EACCES)
	if err := Send(c.Fd, &r); err != nil {
		t.Fatal(err)
	}
	if ret, errno := c.Result(); ret != -1 || errno != int64(unix.EACCES) {
		t.Errorf("mkdirat got %d errno %d", ret, errno)
	}
}

func TestDeadTarget(t *testing.T) {
	c := startChild(t)
	c.Command("mkdirat " + probePath)
	n := c.recv()
	c.Kill()

	if err := IDValid(c.Fd, n.ID); err != unix.ENOENT {
		t.Errorf("IDValid after death = %v, want ENOENT", err)
	}
	if s, err := ReadString(c.Fd, &n, n.Data.Args[1], unix.PathMax); err != ErrStale {
		t.Errorf("ReadString after death = %q, %v; want ErrStale", s, err)
	}
	r := Continue(n.ID)
	if err := Send(c.Fd, &r); err != unix.ENOENT {
		t.Errorf("Send after death = %v, want ENOENT", err)
	}
	// The filter has no task left: that is POLLHUP, not a readable fd.
	if ev := pollFD(t, c.Fd, wait); ev&unix.POLLHUP == 0 {
		t.Errorf("poll after death = %#x, want POLLHUP", ev)
	}
}

func TestReceiveAfterLastTaskExits(t *testing.T) {
	childtest.RequireFeature(t, kernelfeat.RecvWakesAtExit())
	c := startChild(t)
	done := make(chan error, 1)
	fd := c.Fd
	go func() {
		var n Notif
		done <- Receive(fd, &n)
	}()
	time.Sleep(50 * time.Millisecond) // let it block first
	c.Kill()
	select {
	case err := <-done:
		if err != ErrNoTasks {
			t.Errorf("blocked Receive after exit = %v, want ErrNoTasks", err)
		}
	case <-time.After(wait):
		t.Fatal("blocked Receive did not return after the last task exited")
	}
	var n Notif
	if err := Receive(c.Fd, &n); err != ErrNoTasks {
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
		c.Command("getppid")
		n := c.answer(unix.SYS_GETPPID, Continue)
		c.Result()
		return n.ID
	}
	interrupt := func(c *child) {
		pid := c.Pid()
		// The child's syscalls run on its main thread, whose tid is its pid.
		if err := unix.Tgkill(pid, pid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // for the restart to be queued
	}

	t.Run("before RECV", func(t *testing.T) {
		c := startChild(t)
		k := learnID(c)
		c.Command("getppid")
		if ev := pollFD(t, c.Fd, wait); ev&unix.POLLIN == 0 {
			t.Fatalf("poll = %#x", ev)
		}
		interrupt(c)
		var n Notif
		if err := Receive(c.Fd, &n); err != nil {
			t.Fatal(err)
		}
		if n.ID != k+2 {
			t.Errorf("got ID %d, want the restarted syscall's %d", n.ID, k+2)
		}
		r := Continue(n.ID)
		if err := Send(c.Fd, &r); err != nil {
			t.Fatal(err)
		}
		if ret, _ := c.Result(); ret != int64(os.Getpid()) {
			t.Errorf("restarted getppid = %d", ret)
		}
		// The kernel counted two requests for one notification: the next
		// RECV finds nothing and fails at once. poll does not report it.
		if ev := pollFD(t, c.Fd, 0); ev != 0 {
			t.Errorf("poll = %#x, want nothing ready", ev)
		}
		done := make(chan error, 1)
		go func() {
			var n Notif
			done <- Receive(c.Fd, &n)
		}()
		select {
		case err := <-done:
			if err != unix.ENOENT {
				t.Errorf("Receive = %v, want ENOENT", err)
			}
		case <-time.After(wait):
			c.Stop() // wakes it on 6.11+
			t.Fatal("Receive blocked")
		}
		learnID(c) // and the fd works as before
	})
	t.Run("after RECV", func(t *testing.T) {
		c := startChild(t)
		k := learnID(c)
		c.Command("getppid")
		n := c.recv()
		interrupt(c)
		r := Continue(n.ID)
		if err := Send(c.Fd, &r); err != unix.ENOENT {
			t.Errorf("Send to an interrupted target = %v, want ENOENT", err)
		}
		n = c.answer(unix.SYS_GETPPID, Continue)
		if n.ID != k+2 {
			t.Errorf("restarted ID %d, want %d", n.ID, k+2)
		}
		if ret, _ := c.Result(); ret != int64(os.Getpid()) {
			t.Errorf("restarted getppid = %d", ret)
		}
	})
}

func TestClosedListenerGivesENOSYS(t *testing.T) {
	t.Run("received", func(t *testing.T) {
		c := startChild(t)
		c.Command("getppid")
		c.recv()
		c.closeFD()
		if ret, errno := c.Result(); ret != -1 || errno != int64(unix.ENOSYS) {
			t.Errorf("pending getppid = %d errno %d, want ENOSYS", ret, errno)
		}
		// Nothing can listen any more, so every later notification fails too.
		for _, cmd := range []string{"getppid", "mkdirat " + probePath} {
			c.Command(cmd)
			if ret, errno := c.Result(); ret != -1 || errno != int64(unix.ENOSYS) {
				t.Errorf("%s after close = %d errno %d, want ENOSYS", cmd, ret, errno)
			}
		}
	})
	t.Run("queued", func(t *testing.T) {
		c := startChild(t)
		c.Command("getppid")
		if ev := pollFD(t, c.Fd, wait); ev&unix.POLLIN == 0 {
			t.Fatalf("poll = %#x", ev)
		}
		c.closeFD()
		if ret, errno := c.Result(); ret != -1 || errno != int64(unix.ENOSYS) {
			t.Errorf("queued getppid = %d errno %d, want ENOSYS", ret, errno)
		}
	})
}

func TestSetSyncWakeUp(t *testing.T) {
	c := startChild(t)
	err := SetSyncWakeUp(c.Fd)
	if feat := kernelfeat.SyncWakeUp(); errors.Is(feat, kernelfeat.ErrNotSupported) && !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetSyncWakeUp where %v = %v, want ErrNotSupported", feat, err)
	}
	childtest.RequireFeature(t, kernelfeat.SyncWakeUp())
	if err != nil {
		t.Fatalf("SetSyncWakeUp on Linux >= 6.6: %v", err)
	}
	c.Command("getppid")
	c.answer(unix.SYS_GETPPID, Continue)
	if ret, _ := c.Result(); ret != int64(os.Getpid()) {
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
	c.Command(fmt.Sprintf("loop %d", runs+1))
	var n Notif
	allocs := testing.AllocsPerRun(runs, func() {
		for {
			if err := Receive(c.Fd, &n); err == unix.ENOENT {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			r := Continue(n.ID)
			if err := Send(c.Fd, &r); err == nil {
				return
			} else if err != unix.ENOENT {
				t.Fatal(err)
			}
		}
	})
	c.drain()
	if ret, failed := c.Result(); ret != runs+1 || failed != 0 {
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
	c.Command("mkdirat " + probePath)
	c.answer(unix.SYS_MKDIRAT, func(id uint64) Resp { return Deny(id, unix.EACCES) })
	c.Result()
	c.Command("mkdirat " + probePath)
	n := c.recv()
	if s, err := ReadString(c.Fd, &n, n.Data.Args[1], unix.PathMax); s != probePath || err != nil {
		t.Fatalf("ReadString = %q, %v", s, err)
	}
	c.Kill()
	if _, err := ReadString(c.Fd, &n, n.Data.Args[1], unix.PathMax); err != ErrStale {
		t.Fatalf("ReadString after death = %v, want ErrStale", err)
	}
	c.Stop()
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
				if err := SetSyncWakeUp(c.Fd); err != nil {
					b.Skip(err)
				}
			}
			// A blocking RECV on a locked thread is the agent's fast
			// configuration (DESIGN-NOTES §7).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c.Command(fmt.Sprintf("loop %d", b.N))
			var n Notif
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				if err := Receive(c.Fd, &n); err == unix.ENOENT {
					continue
				} else if err != nil {
					b.Fatal(err)
				}
				r := Continue(n.ID)
				switch err := Send(c.Fd, &r); err {
				case nil:
					done++
				case unix.ENOENT:
				default:
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.drain()
			if ret, failed := c.Result(); ret != int64(b.N) || failed != 0 {
				b.Errorf("child loop: %d calls, %d failed", ret, failed)
			}
		})
	}
}
