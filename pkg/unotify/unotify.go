// Package unotify is the kernel interface of seccomp user notification
// (SECCOMP_RET_USER_NOTIF) that the notify agent is built on: receiving
// notifications from a listener fd, answering them, checking that a
// notification is still pending, and reading a string argument out of the
// target's memory. See seccomp_unotify(2) and
// Documentation/userspace-api/seccomp_filter.rst.
//
// It talks to the kernel with raw ioctls rather than libseccomp-golang's
// NotifReceive/NotifRespond: NotifRespond expects a positive Error and negates
// it, so the kernel's own convention (negative) turns a deny into success;
// NotifReceive cannot be cancelled; neither has ADDFD or SET_FLAGS.
// Syscalls are named from a table generated from libseccomp (syscalls_gen.go).
//
// Receive, Send, Deny, Continue and IDValid do not allocate, so an agent loop
// built on them runs without garbage.
//
// Blocking and cancellation: Receive blocks the calling OS thread in the
// kernel. Closing the fd from another thread does not wake it (the ioctl holds
// the file), and EINTR is retried. Since Linux 6.11 (commit "seccomp:
// interrupt SECCOMP_IOCTL_NOTIF_RECV when all users have exited") it returns
// ErrNoTasks once the last task using the filter has exited; older kernels
// keep it blocked and report that only as POLLHUP (5.9+). An agent that must
// stop waiting for other reasons (shutdown), or that runs on older kernels,
// waits for POLLIN/POLLHUP with poll(2) or epoll and calls Receive only when
// the fd is readable.
package unotify

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Notif mirrors struct seccomp_notif from include/uapi/linux/seccomp.h.
type Notif struct {
	ID uint64
	// Pid is the thread id of the target, in the agent's pid namespace (0 if
	// the target is not visible there).
	Pid   uint32
	Flags uint32
	Data  Data
}

// Data mirrors struct seccomp_data. Nr is meaningful only together with
// Arch: the same number names different syscalls on different ABIs of one
// machine (see SyscallName).
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Resp mirrors struct seccomp_notif_resp. Build it with Deny or Continue:
// Error must be a negative errno, and the kernel rejects CONTINUE combined
// with a non-zero Val or Error.
type Resp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// FlagContinue is SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel runs the
// syscall itself, reading its memory arguments only then (see ReadString).
const FlagContinue = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE

// The ioctl numbers encode these sizes; a mismatch would make the kernel
// reject every call, so fail the build instead.
var (
	_ [80 - unsafe.Sizeof(Notif{})]byte
	_ [unsafe.Sizeof(Notif{}) - 80]byte
	_ [24 - unsafe.Sizeof(Resp{})]byte
	_ [unsafe.Sizeof(Resp{}) - 24]byte
	_ [64 - unsafe.Sizeof(Data{})]byte
	_ [unsafe.Sizeof(Data{}) - 64]byte
)

var (
	// ErrNotSupported is wrapped by calls the running kernel does not
	// implement.
	ErrNotSupported = errors.New("unotify: not supported by this kernel")
	// ErrStale means the notification is no longer pending: the target was
	// killed, exited, or was interrupted and will come back with a new ID.
	// Anything read from its memory must be thrown away.
	ErrStale = errors.New("unotify: notification no longer valid")
	// ErrNoTasks is returned by Receive when no task uses the filter any
	// more (the container exited): the fd can be closed.
	ErrNoTasks = errors.New("unotify: no task uses the filter any more")
)

// notifSizes mirrors struct seccomp_notif_sizes.
type notifSizes struct {
	Notif uint16
	Resp  uint16
	Data  uint16
}

// checkSizes runs SECCOMP_GET_NOTIF_SIZES once, on first use rather than in
// init, so that merely importing the package never makes a syscall.
var checkSizes = sync.OnceValue(func() error {
	var s notifSizes
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s)))
	if e != 0 {
		if e == unix.EINVAL {
			return fmt.Errorf("unotify: SECCOMP_GET_NOTIF_SIZES: %w (%w)", ErrNotSupported, e)
		}
		return fmt.Errorf("unotify: SECCOMP_GET_NOTIF_SIZES: %w", e)
	}
	// A larger kernel struct is fine: the ioctl numbers fix the size the
	// kernel copies. A smaller one would mean our layout is wrong.
	if uintptr(s.Notif) < unsafe.Sizeof(Notif{}) || uintptr(s.Resp) < unsafe.Sizeof(Resp{}) || uintptr(s.Data) < unsafe.Sizeof(Data{}) {
		return fmt.Errorf("unotify: kernel struct sizes notif=%d resp=%d data=%d are smaller than ours (%d, %d, %d)",
			s.Notif, s.Resp, s.Data, unsafe.Sizeof(Notif{}), unsafe.Sizeof(Resp{}), unsafe.Sizeof(Data{}))
	}
	return nil
})

// ioctl retries EINTR: the seccomp notify ioctls wait interruptibly only
// before they change any state (RECV for a notification, SEND and ID_VALID
// for the notify_lock), so a retry cannot act twice. Go's runtime interrupts
// threads with SIGURG, which would otherwise surface here.
func ioctl(fd int, req uint, arg uintptr) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		// Errno values are small, so the conversion to error does not
		// allocate.
		return e
	}
}

// Receive waits for the next notification on the listener fd and stores it
// in *n. See the package comment for how to stop waiting.
//
// unix.ENOENT is returned as is when the target was interrupted by a signal
// (or killed) between the kernel queueing the notification and this call;
// the kernel still counts the withdrawn notification, so the ENOENT can also
// come one call later, while poll reports nothing to read. It is not the end
// of the container: call Receive again. ErrNoTasks means no task uses the
// filter any more: nothing will ever arrive on fd again.
func Receive(fd int, n *Notif) error {
	if err := checkSizes(); err != nil {
		return err
	}
	// The kernel refuses a buffer that is not zeroed (EINVAL), so that the
	// struct can grow in future. It writes nothing when it fails, so one
	// zeroing also covers the EINTR retries.
	*n = Notif{}
	err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(n)))
	if err == unix.ENOENT && hungUp(fd) {
		// Since 6.11 an unused filter answers every RECV with ENOENT at
		// once: passed on as is, it would turn a retrying agent into a busy
		// loop.
		return ErrNoTasks
	}
	return err
}

// hungUp reports whether the kernel signals POLLHUP on fd: the filter has no
// task left (seccomp_notify_poll).
func hungUp(fd int) bool {
	p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(p[:], 0)
		if err != unix.EINTR {
			return err == nil && p[0].Revents&unix.POLLHUP != 0
		}
	}
}

// Send answers a notification. unix.ENOENT means the target is no longer
// waiting for this ID (killed, exited, or interrupted by a signal, in which
// case it restarts the syscall and a new notification follows); callers
// normally ignore it.
func Send(fd int, r *Resp) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(r)))
}

// maxErrno bounds the errnos a target is sure to see as a failure. The
// kernel's MAX_ERRNO is 4095 and glibc and musl treat [-4095, -1] as errors,
// but Go's syscall stubs (CMPQ AX, $0xfffffffffffff001; JLS ok) take -4095 as
// a successful return. Anything outside [-4094, -1] would reach some caller as
// a result, not an error.
const maxErrno = 4094

// Deny makes the notified syscall fail with errno.
//
// Sign: the kernel wants a NEGATIVE errno in seccomp_notif_resp.error and
// returns it from the syscall unchanged, so Deny stores -errno and takes a
// positive unix.Errno. (libseccomp-golang's NotifRespond negates Error itself;
// do not mix the two.) A zero or out-of-range errno would make the syscall
// look successful, so Deny fails closed and uses EPERM instead.
func Deny(id uint64, errno unix.Errno) Resp {
	if errno == 0 || errno > maxErrno {
		errno = unix.EPERM
	}
	return Resp{ID: id, Error: -int32(errno)}
}

// Continue lets the kernel execute the syscall as if the filter had allowed
// it. The kernel reads memory arguments only then, after the agent looked at
// them: only use it for decisions the target cannot change afterwards (see
// ReadString).
func Continue(id uint64) Resp {
	return Resp{ID: id, Flags: FlagContinue}
}

// IDValid reports whether notification id is still pending on fd: nil if it
// is, unix.ENOENT if the target no longer waits for it.
func IDValid(fd int, id uint64) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, uintptr(unsafe.Pointer(&id)))
}

// SetSyncWakeUp asks the kernel to wake the target on the CPU that answers
// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6+), which roughly halves the
// round trip when agent and target are not pinned to one CPU. On older
// kernels it returns an error wrapping ErrNotSupported; the fd still works.
// An fd that is not a seccomp listener (ENOTTY) gets ErrNotSupported too.
func SetSyncWakeUp(fd int) error {
	// The flags travel by value in the ioctl argument, not by pointer
	// (seccomp_notify_set_flags in kernel/seccomp.c).
	err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	switch err {
	case nil:
		return nil
	case unix.EINVAL, unix.ENOTTY:
		// Kernels before 6.6 answer an unknown seccomp ioctl with EINVAL.
		return fmt.Errorf("unotify: SECCOMP_IOCTL_NOTIF_SET_FLAGS: %w (%w)", ErrNotSupported, err)
	}
	return fmt.Errorf("unotify: SECCOMP_IOCTL_NOTIF_SET_FLAGS: %w", err)
}
