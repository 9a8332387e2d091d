package handoff

import (
	"errors"
	"syscall"
	"time"
)

// Backoff paces an accept loop whose accept fails, as net/http's Server
// does: 5ms after the first failure, doubling to 1s while it keeps failing.
// Running out of fds (EMFILE) then slows the loop down until some close,
// instead of ending it: a listener that stops accepting for good would leave
// every container started later without its agent. The zero value is ready.
type Backoff struct{ delay time.Duration }

// Wait sleeps before the next accept after err. ok is false if err is not
// one an accept recovers from (the listener is closed or broken): the loop
// should end. first is true for the first failure after a success, so the
// caller logs once per episode.
func (b *Backoff) Wait(err error) (first, ok bool) {
	if !Temporary(err) {
		return false, false
	}
	first = b.delay == 0
	if first {
		b.delay = 5 * time.Millisecond
	} else if b.delay *= 2; b.delay > time.Second {
		b.delay = time.Second
	}
	time.Sleep(b.delay)
	return first, true
}

// Done ends an episode of failures, and reports whether there was one.
func (b *Backoff) Done() bool {
	was := b.delay != 0
	b.delay = 0
	return was
}

// Temporary reports whether an accept that failed with err may succeed
// later: out of fds or memory, or a connection that went away before it
// was accepted.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
