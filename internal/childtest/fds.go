package childtest

import (
	"bytes"
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

// ConnectOutOfFds connects a client to each UNIX socket path with the
// process out of fds (ExhaustFds), so that the server's accept of each
// fails with EMFILE until release. The clients are returned for the test
// to write to once released; they close when it ends.
func ConnectOutOfFds(t *testing.T, paths ...string) (clients []int, release func()) {
	t.Helper()
	for range paths {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		clients = append(clients, fd)
	}
	release = ExhaustFds(t)
	for i, fd := range clients {
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: paths[i]}); err != nil {
			release()
			t.Fatal(err)
		}
	}
	return clients, release
}

// SyncBuffer is a bytes.Buffer safe for a logger's goroutines and the
// test reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *SyncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
