package unotify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrTruncated is returned by ReadString with the bytes it did read when no
// NUL was found within max bytes (or before unreadable memory).
var ErrTruncated = errors.New("unotify: string not NUL-terminated within limit")

// ReadString reads the NUL-terminated string at addr in the memory of the
// target of notification n (a path argument, say), reading at most max bytes
// including the NUL; unix.PathMax suits paths.
//
// Only ever use the result to deny or to log. The target's other threads can
// rewrite the string after we read it, and a CONTINUEd syscall uses what the
// memory holds when the kernel runs it (TOCTOU), so the result can never
// justify a CONTINUE.
//
// n.Pid may be recycled once the target dies, so the notification is checked
// with IDValid after opening /proc/<pid>/mem (still pending means the target
// was alive when the file was opened, so the file is its memory) and again
// after reading (the bytes are the target's, not those of a new image after
// another of its threads exec'd). If either check fails the result is
// ErrStale and nothing read is returned.
func ReadString(fd int, n *Notif, addr uint64, max int) (string, error) {
	if max <= 0 {
		return "", fmt.Errorf("unotify: ReadString: max %d must be positive", max)
	}
	mem, err := openMem(n.Pid)
	if err != nil {
		// The target may simply be gone; say so rather than report ENOENT from
		// /proc.
		if IDValid(fd, n.ID) != nil {
			return "", ErrStale
		}
		return "", fmt.Errorf("unotify: open /proc/%d/mem: %w", n.Pid, err)
	}
	defer unix.Close(mem)
	if IDValid(fd, n.ID) != nil {
		return "", ErrStale
	}

	// Paths fit on the stack; only a larger limit costs an allocation.
	var stack [unix.PathMax]byte
	buf := stack[:]
	if max > len(buf) {
		buf = make([]byte, max)
	}
	buf = buf[:max]

	got, end := 0, -1
	var rerr error
	for got < max {
		r, err := pread(mem, buf[got:], addr+uint64(got))
		if err != nil {
			// EIO is an unmapped address; other errors are not expected here.
			rerr = err
			break
		}
		if r == 0 {
			break
		}
		if i := bytes.IndexByte(buf[got:got+r], 0); i >= 0 {
			end = got + i
			break
		}
		// A short read stops at the end of a mapping: the next pread tells
		// whether the string goes on or the memory is unreadable.
		got += r
	}
	if IDValid(fd, n.ID) != nil {
		return "", ErrStale
	}
	switch {
	case end >= 0:
		return string(buf[:end]), nil
	case got == 0 && rerr != nil:
		return "", fmt.Errorf("unotify: read pid %d memory at %#x: %w", n.Pid, addr, rerr)
	}
	return string(buf[:got]), ErrTruncated
}

var atFDCWD = uintptr(unix.AT_FDCWD & (1<<64 - 1))

// openMem opens /proc/<pid>/mem without allocating the path.
func openMem(pid uint32) (int, error) {
	var path [32]byte
	p := append(path[:0], "/proc/"...)
	p = strconv.AppendUint(p, uint64(pid), 10)
	p = append(p, "/mem\x00"...)
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&p[0])),
			unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// pread takes the address unsigned, as it is: pread64 refuses negative
// offsets, i.e. kernel addresses.
func pread(fd int, p []byte, off uint64) (int, error) {
	if off > 1<<63-1 {
		return 0, unix.EIO
	}
	for {
		n, err := unix.Pread(fd, p, int64(off))
		if err != unix.EINTR {
			return n, err
		}
	}
}
