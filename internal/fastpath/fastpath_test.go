package fastpath

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	childtest.Main()
	os.Exit(m.Run())
}

// loop serves a fresh child's listener with a fast path whose asks answer
// EACCES and are counted.
type loop struct {
	*Loop
	c     *childtest.Child
	asked atomic.Int64
	stop  int
}

func start(t *testing.T, blocking bool) *loop {
	t.Helper()
	c := childtest.Start(t)
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{c: c, stop: stop}
	fd := c.Fd
	c.Fd = -1 // ours now, closed after Done
	l.Loop, err = Start(fd, Options{Arch: unix.AUDIT_ARCH_X86_64, Blocking: blocking, StopFd: stop}, func(_ *Loop, n *unotify.Notif) {
		l.asked.Add(1)
		r := unotify.Deny(n.ID, unix.EACCES)
		unotify.Send(fd, &r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		select {
		case <-l.Done():
		case <-time.After(childtest.Wait):
			t.Fatal("the loop did not end when its child did")
		}
		l.Free()
		unix.Close(fd)
		unix.Close(stop)
	})
	return l
}

func want(t *testing.T, what string, ret, errno int64, wantErrno unix.Errno) {
	t.Helper()
	if unix.Errno(errno) != wantErrno {
		t.Errorf("%s: got %d errno %d (%v), want errno %d (%v)", what, ret, errno, unix.Errno(errno), wantErrno, wantErrno)
	}
}

func TestEmptyTableAsks(t *testing.T) {
	l := start(t, false)
	ret, errno := l.c.Run("getppid")
	want(t, "getppid", ret, errno, unix.EACCES)
	if l.asked.Load() != 1 {
		t.Errorf("asked %d times, want 1", l.asked.Load())
	}
}

func TestTableContinue(t *testing.T) {
	l := start(t, false)
	var tab Table
	tab[unix.SYS_GETPPID] = Entry{Kind: Continue}
	l.SetTable(&tab)
	for range 3 {
		ret, errno := l.c.Run("getppid")
		if errno != 0 || ret != int64(os.Getpid()) {
			t.Fatalf("getppid = %d errno %d, want %d", ret, errno, os.Getpid())
		}
	}
	ret, errno := l.c.Run("mkdirat " + t.TempDir() + "/x") // not in the table
	want(t, "mkdirat", ret, errno, unix.EACCES)
	if l.asked.Load() != 1 {
		t.Errorf("asked %d times, want 1 (mkdirat)", l.asked.Load())
	}
	s := l.Drain()
	if s.Continues[unix.SYS_GETPPID] != 3 || len(s.Errnos) != 0 || s.Count != 3 {
		t.Errorf("Drain = %+v, want 3 continues of getppid", s)
	}
	var inBuckets uint64
	for _, b := range s.Buckets {
		inBuckets += b
	}
	if inBuckets != 3 || s.Sum <= 0 {
		t.Errorf("latency: %d in buckets, sum %v; want 3 and > 0", inBuckets, s.Sum)
	}
	if s := l.Drain(); s.Count != 0 || s.Continues != nil {
		t.Errorf("a second Drain = %+v, want nothing", s)
	}
}

func TestTableErrno(t *testing.T) {
	l := start(t, false)
	var tab Table
	tab[unix.SYS_GETPPID] = Entry{Kind: Errno, Errno: uint16(unix.EXDEV)}
	tab[unix.SYS_MKDIRAT] = Entry{Kind: Errno, Errno: 0} // out of range: asked
	l.SetTable(&tab)
	ret, errno := l.c.Run("getppid")
	want(t, "getppid", ret, errno, unix.EXDEV)
	ret, errno = l.c.Run("mkdirat " + t.TempDir() + "/x")
	want(t, "mkdirat", ret, errno, unix.EACCES)
	tab[unix.SYS_MKDIRAT] = Entry{Kind: 7, Errno: 5} // no such kind: asked, never answered
	l.SetTable(&tab)
	ret, errno = l.c.Run("mkdirat " + t.TempDir() + "/y")
	want(t, "mkdirat with an unknown kind", ret, errno, unix.EACCES)
	if s := l.Drain(); s.Errnos[unix.SYS_GETPPID] != 1 {
		t.Errorf("Drain = %+v, want 1 errno for getppid", s)
	}
}

// TestCounting: an audited denial is asked until Go hands its counting
// over, then answered and counted in C, then asked again.
func TestCounting(t *testing.T) {
	l := start(t, false)
	var tab Table
	tab[unix.SYS_GETPPID] = Entry{Kind: Errno, Errno: uint16(unix.EXDEV), Audit: true}
	l.SetTable(&tab)
	ret, errno := l.c.Run("getppid")
	want(t, "getppid before counting", ret, errno, unix.EACCES)

	before := time.Now()
	l.StartCounting(unix.SYS_GETPPID)
	for range 5 {
		ret, errno = l.c.Run("getppid")
		want(t, "getppid while counting", ret, errno, unix.EXDEV)
	}
	c := l.StopCounting(unix.SYS_GETPPID)
	if c.N != 5 || int(c.Tid) != l.c.Pid() || c.Last.Before(before) || time.Since(c.Last) > time.Minute {
		t.Errorf("StopCounting = %+v, want 5 from tid %d since %v", c, l.c.Pid(), before)
	}
	ret, errno = l.c.Run("getppid")
	want(t, "getppid after counting", ret, errno, unix.EACCES)
	if l.asked.Load() != 2 {
		t.Errorf("asked %d times, want 2", l.asked.Load())
	}
	if c := l.StopCounting(unix.SYS_GETPPID); c.N != 0 {
		t.Errorf("a second StopCounting = %+v, want 0", c)
	}
	l.StartCounting(-1) // out of range: ignored
	l.StartCounting(Syscalls)
}

// TestSetTableWhileServing swaps tables under a busy loop: every answer is
// one of the two tables', never garbage, and nothing crashes.
func TestSetTableWhileServing(t *testing.T) {
	l := start(t, false)
	var a, b Table
	a[unix.SYS_GETPPID] = Entry{Kind: Errno, Errno: uint16(unix.EXDEV)}
	b[unix.SYS_GETPPID] = Entry{Kind: Errno, Errno: uint16(unix.EROFS)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			if i%2 == 0 {
				l.SetTable(&a)
			} else {
				l.SetTable(&b)
			}
		}
	}()
	for range 300 {
		_, errno := l.c.Run("getppid")
		if e := unix.Errno(errno); e != unix.EXDEV && e != unix.EROFS && e != unix.EACCES {
			t.Fatalf("getppid: errno %v, want one of the tables' answers", e)
		}
	}
	<-done
	l.SetTable(&b)
	_, errno := l.c.Run("getppid")
	want(t, "getppid after the last swap", 0, errno, unix.EROFS)
}

func TestEndsWithContainer(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		name := "poll"
		if blocking {
			name = "blocking"
		}
		t.Run(name, func(t *testing.T) {
			if blocking {
				childtest.RequireFeature(t, kernelfeat.RecvWakesAtExit())
			}
			l := start(t, blocking)
			l.c.Command("exit")
			select {
			case <-l.Done():
			case <-time.After(childtest.Wait):
				t.Fatal("loop still running after the child exited")
			}
			if err := l.Err(); err != nil {
				t.Errorf("Err = %v, want nil", err)
			}
		})
	}
}

func TestStopFd(t *testing.T) {
	l := start(t, false)
	unix.Write(l.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	select {
	case <-l.Done():
	case <-time.After(childtest.Wait):
		t.Fatal("loop still running after the stop fd fired")
	}
}

func TestStop(t *testing.T) {
	l := start(t, true)
	l.Stop()
	// A blocking loop already waiting in RECV sees Stop after the next
	// notification (answered, or left for the fd's closing to fail).
	l.c.Command("getppid")
	select {
	case <-l.Done():
	case <-time.After(childtest.Wait):
		t.Fatal("loop still running after Stop and a notification")
	}
}

// TestPanicEndsLoop: a panic in ask must not cross into C (that would end
// the agent); the loop ends with an error instead.
func TestPanicEndsLoop(t *testing.T) {
	c := childtest.Start(t)
	l, err := Start(c.Fd, Options{Arch: unix.AUDIT_ARCH_X86_64, StopFd: -1}, func(*Loop, *unotify.Notif) { panic("bad rule") })
	if err != nil {
		t.Fatal(err)
	}
	c.Command("getppid")
	select {
	case <-l.Done():
	case <-time.After(childtest.Wait):
		t.Fatal("loop still running after a panic")
	}
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "bad rule") {
		t.Errorf("Err = %v, want the panic", err)
	}
	l.Free()
	unix.Close(c.Fd) // now the pending call fails with ENOSYS
	c.Fd = -1
	ret, errno := c.Result()
	want(t, "getppid after the panic", ret, errno, unix.ENOSYS)
}

func TestReceiveError(t *testing.T) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	unix.Write(fd, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // readable, not a listener
	l, err := Start(fd, Options{StopFd: -1}, func(*Loop, *unotify.Notif) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	if err := l.Err(); !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
		t.Errorf("Err = %v, want ENOTTY or EINVAL from RECV on an eventfd", err)
	}
}

// TestNoLeak: loops that ended leave no fd and no thread behind.
func TestNoLeak(t *testing.T) {
	cycle := func() {
		c := childtest.Start(t)
		l, err := Start(c.Fd, Options{Arch: unix.AUDIT_ARCH_X86_64, StopFd: -1}, func(*Loop, *unotify.Notif) {})
		if err != nil {
			t.Fatal(err)
		}
		c.Command("exit")
		<-l.Done()
		l.Free()
		c.Stop()
	}
	cycle()
	fds, threads := count(t)
	for range 5 {
		cycle()
	}
	// Detached threads finish exiting after Done; the Go runtime may start
	// a thread of its own meanwhile, but not one per loop.
	var f, th int
	deadline := time.Now().Add(childtest.Wait)
	for {
		if f, th = count(t); f <= fds && th <= threads+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f > fds || th > threads+1 {
		t.Errorf("after 5 loops: %d fds and %d threads, before %d and %d", f, th, fds, threads)
	}
}

func count(t *testing.T) (fds, threads int) {
	f, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	th, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(f), len(th)
}
