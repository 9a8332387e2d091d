package childtest

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ExhaustFds uses up the test process's fds, under a soft RLIMIT_NOFILE
// lowered for the purpose, so that the next accept fails with EMFILE; until
// release, it takes again any fd something else closes (a finalizer, another
// goroutine). Calling release closes them and restores the limit. Connect the
// client sockets first: a connect needs no new fd, an accept does.
func ExhaustFds(t *testing.T) (release func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	probe, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(probe)
	low := old
	low.Cur = min(uint64(probe)+32, old.Cur) // a few fds to open, not thousands
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []int
	fill := func() {
		mu.Lock()
		defer mu.Unlock()
		for {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return
			}
			held = append(held, fd)
		}
	}
	fill()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				fill()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		for _, fd := range held {
			unix.Close(fd)
		}
		unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	}
}
