// Package handoff receives the OCI seccomp agent hand-off: the one message a
// runtime (runc 1.1+, crun) sends to `linux.seccomp.listenerPath`, carrying the
// JSON of a specs.ContainerProcessState and, via SCM_RIGHTS, the fds it names,
// among them the seccomp notify fd ("seccompFd").
//
// The sender is not trusted: its credentials are checked before a byte is read,
// the payload and fd count are capped, a silent sender is cut off at a deadline,
// and no received fd outlives a failed hand-off.
package handoff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	// MaxPayload is far above a real state (a few hundred bytes plus
	// annotations) yet keeps a hostile sender from making us buffer without end.
	MaxPayload = 1 << 20
	// MaxFds bounds the fds a sender can make us hold; runtimes send one.
	MaxFds = 16
)

// Errors are wrapped with details; test them with errors.Is.
var (
	ErrNotRoot     = errors.New("handoff: peer not allowed")
	ErrNoSeccompFd = errors.New("handoff: no seccompFd")
	ErrTooLarge    = errors.New("handoff: too large")
	ErrMalformed   = errors.New("handoff: malformed")
)

// Handoff is one received hand-off. The caller owns SeccompFd; every other fd
// received has been closed.
type Handoff struct {
	State     specs.ContainerProcessState
	SeccompFd int        // the fd named "seccompFd", close-on-exec
	Peer      unix.Ucred // SO_PEERCRED of the sender (zero from Parse)
}

// Receive is ReceiveFrom allowing only uid 0, since anyone else who can reach
// the socket could feed us a forged state. Rootless runtimes need ReceiveFrom.
func Receive(conn *net.UnixConn, deadline time.Time) (*Handoff, error) {
	return ReceiveFrom(conn, deadline, nil)
}

// ReceiveFrom reads one hand-off from conn. allow decides on the sender's
// SO_PEERCRED before anything is read (nil means uid 0 only); a refusal
// returns ErrNotRoot and leaves the message unread.
//
// It sets conn's read deadline to deadline (zero: none), so a silent or slow
// sender costs at most that long. It reads until EOF or until one complete
// JSON value has arrived, whichever comes first, because runc closes its side
// but the spec does not require it. On any error every received fd is closed
// and the Handoff is nil. conn stays open and owned by the caller.
func ReceiveFrom(conn *net.UnixConn, deadline time.Time, allow func(unix.Ucred) bool) (*Handoff, error) {
	cred, err := CheckPeer(conn, allow)
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}

	r := &rightsReader{rc: rc}
	var raw json.RawMessage
	// The decoder stops at the end of the first value, which is what lets a
	// sender that keeps the connection open still be served.
	err = json.NewDecoder(r).Decode(&raw)
	var h *Handoff
	var se *json.SyntaxError
	switch {
	case err == nil:
		h, err = Parse(raw, r.fds)
	case errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %v", ErrMalformed, err)
	case !errors.Is(err, ErrTooLarge):
		err = fmt.Errorf("handoff: recvmsg: %w", err)
	}
	for _, fd := range r.fds {
		if h == nil || fd != h.SeccompFd {
			unix.Close(fd)
		}
	}
	if err != nil {
		return nil, err
	}
	h.Peer = cred
	return h, nil
}

// CheckPeer reads conn's SO_PEERCRED, the credentials of whoever connected
// (the kernel's, not anything the peer says), and lets allow decide on them:
// nil allows uid 0 only. A refusal returns ErrNotRoot. Every socket that
// takes hand-offs or control from another process checks its peer with it.
func CheckPeer(conn *net.UnixConn, allow func(unix.Ucred) bool) (unix.Ucred, error) {
	if allow == nil {
		allow = RootOnly
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return unix.Ucred{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return unix.Ucred{}, err
	}
	if cerr != nil {
		return unix.Ucred{}, fmt.Errorf("handoff: SO_PEERCRED: %w", cerr)
	}
	if !allow(*cred) {
		return *cred, fmt.Errorf("%w: pid %d uid %d gid %d", ErrNotRoot, cred.Pid, cred.Uid, cred.Gid)
	}
	return *cred, nil
}

// RootOnly allows peers with uid 0, CheckPeer's default.
func RootOnly(c unix.Ucred) bool { return c.Uid == 0 }

// rightsReader is an io.Reader over recvmsg that keeps every fd that arrives
// alongside the bytes, so that the JSON decoder can pull as many segments as
// the sender used.
type rightsReader struct {
	rc  syscall.RawConn
	n   int
	fds []int
}

func (r *rightsReader) Read(p []byte) (int, error) {
	// One byte past the cap tells "exactly MaxPayload" from "more".
	p = p[:min(len(p), MaxPayload-r.n+1)]
	oob := make([]byte, unix.CmsgSpace(MaxFds*4))
	var n, oobn, flags int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), p, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	// Collect before any check so that whatever was installed gets closed.
	if cmsgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range cmsgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_RIGHTS {
				fds, _ := unix.ParseUnixRights(&m)
				r.fds = append(r.fds, fds...)
			}
		}
	}
	r.n += n
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		// The kernel drops the fds that did not fit (or hit RLIMIT_NOFILE);
		// the message can no longer match its "fds" list.
		return 0, fmt.Errorf("%w: control message truncated, fds lost (more than %d in one message, or out of fds)", ErrTooLarge, MaxFds)
	case len(r.fds) > MaxFds:
		return 0, fmt.Errorf("%w: more than %d fds", ErrTooLarge, MaxFds)
	case r.n > MaxPayload:
		return 0, fmt.Errorf("%w: payload over %d bytes", ErrTooLarge, MaxPayload)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Parse checks a hand-off payload against the fds received with it, in order.
// It never closes fds: on error the caller still owns all of them, on success
// the caller owns all of them too and learns which one is SeccompFd.
// Unknown JSON fields are accepted, as newer runtimes may add some.
func Parse(payload []byte, fds []int) (*Handoff, error) {
	var s specs.ContainerProcessState
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(s.Fds) != len(fds) {
		return nil, fmt.Errorf("%w: %d fd names %q but %d fds received", ErrMalformed, len(s.Fds), s.Fds, len(fds))
	}
	idx := -1
	for i, name := range s.Fds {
		if name != specs.SeccompFdName {
			continue
		}
		if idx >= 0 {
			return nil, fmt.Errorf("%w: %q named twice", ErrMalformed, name)
		}
		idx = i
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w in fd names %q", ErrNoSeccompFd, s.Fds)
	}
	if s.Pid <= 0 {
		return nil, fmt.Errorf("%w: pid %d", ErrMalformed, s.Pid)
	}
	if s.State.ID == "" {
		return nil, fmt.Errorf("%w: empty state.id", ErrMalformed)
	}
	return &Handoff{State: s, SeccompFd: fds[idx]}, nil
}

// Exec reports whether st is the hand-off of a process runc exec'd into a
// running container, which gets a filter and a notify fd of its own (they
// end with it, the container going on), rather than of the container's
// init.
func Exec(st *specs.ContainerProcessState) bool {
	return st.State.Pid != 0 && st.Pid != st.State.Pid
}

// AckByte is what a receiver that took a hand-off whole writes back (Ack).
// runc reads nothing and closes its side; the holder, which keeps the fd,
// must know: a hand-off the agent failed to take (out of fds, a bad message)
// would otherwise leave the container answered by nobody.
const AckByte = 'k'

// Ack tells the sender on conn that its hand-off arrived whole. A sender
// that reads nothing (runc) has closed its side: the error is of no use.
func Ack(conn *net.UnixConn) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write([]byte{AckByte})
}

// Send makes a hand-off as runc does: it dials path and sends the JSON of st
// with fd as SCM_RIGHTS in one message. st.Fds must name fd ("seccompFd").
// The seccomp-agent holder uses it to pass fds it keeps on to the agent, and
// so it waits, within timeout, for the receiver's Ack: without it the
// hand-off failed, whatever sendmsg said.
func Send(path string, st *specs.ContainerProcessState, fd int, timeout time.Duration) error {
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	conn := c.(*net.UnixConn)
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	n, oobn, err := conn.WriteMsgUnix(payload, unix.UnixRights(fd), nil)
	if err != nil {
		return err
	}
	if n != len(payload) || oobn == 0 {
		return fmt.Errorf("handoff: short send to %s (%d of %d bytes)", path, n, len(payload))
	}
	_ = conn.CloseWrite() // the receiver reads to EOF or one whole JSON value
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != AckByte {
		return fmt.Errorf("handoff: %s did not take the hand-off (no acknowledgement: %v)", path, err)
	}
	return nil
}
