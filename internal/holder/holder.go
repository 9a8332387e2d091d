// Package holder keeps containers' seccomp notify fds alive across restarts
// of the notify agent.
//
// A notify fd can't be handed to a filter again: if the last copy closes,
// every notified syscall of that container fails with ENOSYS for the rest of
// its life. So runc hands its fds to the holder, a small process that is
// never restarted for an upgrade, and the holder passes a copy to the agent,
// the process that has the policy and the audit log and may restart at will:
//
//	runc ──hand-off──▶ holder (socket) ──hand-off, dup'd fd──▶ agent (agent socket)
//	                          ◀──────── control connection ────────┘
//
// The agent keeps a control connection open to the holder. When it opens,
// the holder stops answering and forwards every fd it holds; when it closes
// (the agent stopped or crashed), the holder answers the fds itself, with the
// profile's own errno (package replay): the syscalls routed to the agent
// fail closed, exactly as the profile denies them, until an agent is back.
//
// Since it never restarts, the holder depends only on what it needs: the
// notify ioctls, the hand-off, and the replay of the profile's errnos; not
// on the agent's policy engine.
package holder

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/replay"
	"github.com/seccomp-shim/seccomp-shim/pkg/handoff"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Holder holds the fds.
type Holder struct {
	Agent string         // the agent's hand-off socket
	Log   *logrus.Logger // nil logs nothing
	// AllowPeer decides who may hand off fds and connect as the agent;
	// nil means root only.
	AllowPeer func(unix.Ucred) bool

	mu      sync.Mutex
	held    map[int]*specs.ContainerProcessState // by fd
	agentUp bool
	replay  *replayer // answers while no agent is connected
	// replayed are the held fds replay serves: one loop per fd, or a
	// second would block in RECV where the replayer's stop can't wake it.
	replayed map[int]bool
}

// log returns an entry for the holder's events, with the container's ID
// if st is not nil.
func (h *Holder) log(st *specs.ContainerProcessState) *logrus.Entry {
	l := h.Log
	if l == nil {
		l = logrus.New()
		l.Out = io.Discard
	}
	e := logrus.NewEntry(l)
	if st != nil {
		e = e.WithFields(logrus.Fields{"container": st.State.ID, "pid": st.Pid})
		if handoff.Exec(st) {
			e = e.WithField("exec", true)
		}
	}
	return e
}

// Serve accepts runc's hand-offs on runtime and agents on control, and
// drops fds whose containers are gone. It returns when runtime is closed.
func (h *Holder) Serve(runtime, control *net.UnixListener) error {
	rp, err := newReplayer()
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.held = map[int]*specs.ContainerProcessState{}
	h.replay, h.replayed = rp, map[int]bool{}
	h.mu.Unlock()
	done := make(chan struct{})
	defer close(done)
	go h.controls(control)
	go h.reap(done)
	var backoff handoff.Backoff
	for {
		conn, err := h.accept(runtime, &backoff, "runtime")
		if err != nil {
			return err
		}
		go func() {
			ho, err := handoff.ReceiveFrom(conn, time.Now().Add(5*time.Second), h.AllowPeer)
			conn.Close()
			if err != nil {
				if !errors.Is(err, handoff.ErrMalformed) {
					h.log(nil).WithError(err).Warn("hand-off refused")
				}
				return
			}
			h.add(&ho.State, ho.SeccompFd)
		}()
	}
}

// accept accepts on l, backing off while accept fails for want of fds:
// the holder must outlive any shortage, or every container's listener dies
// with it. It returns an error only once l is closed or broken.
func (h *Holder) accept(l *net.UnixListener, b *handoff.Backoff, socket string) (*net.UnixConn, error) {
	for {
		conn, err := l.AcceptUnix()
		if err == nil {
			if b.Done() {
				h.log(nil).WithField("socket", socket).Info("accepting again")
			}
			return conn, nil
		}
		first, ok := b.Wait(err)
		if !ok {
			return nil, err
		}
		if first {
			h.log(nil).WithField("socket", socket).WithError(err).Error("accept failed: retrying with backoff")
		}
	}
}

func (h *Holder) add(st *specs.ContainerProcessState, fd int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held[fd] = st
	h.log(st).Info("holding its notify fd")
	if h.agentUp && h.forward(st, fd) == nil {
		return
	}
	h.answer(st, fd)
}

// forward sends a copy of fd to the agent (SCM_RIGHTS copies it).
func (h *Holder) forward(st *specs.ContainerProcessState, fd int) error {
	err := handoff.Send(h.Agent, st, fd, 2*time.Second)
	if err != nil {
		h.log(st).WithError(err).Error("forwarding to the agent")
	}
	return err
}

// answer serves a copy of fd with the profile's own answers; shutdown of
// the replayer closes the copy, never the held fd.
func (h *Holder) answer(st *specs.ContainerProcessState, fd int) {
	if h.replayed[fd] {
		return
	}
	if err := h.replay.serve(st, fd, h.log(st)); err != nil {
		h.log(st).WithError(err).Error("answering without the agent")
		return
	}
	h.replayed[fd] = true
}

// controls tracks the agent: while one is connected it gets every fd.
func (h *Holder) controls(l *net.UnixListener) {
	var backoff handoff.Backoff
	for {
		conn, err := h.accept(l, &backoff, "control")
		if err != nil {
			return
		}
		if _, err := handoff.CheckPeer(conn, h.AllowPeer); err != nil {
			conn.Close()
			continue
		}
		h.mu.Lock()
		if h.agentUp { // one agent at a time
			h.mu.Unlock()
			conn.Close()
			continue
		}
		rp, err := newReplayer()
		if err != nil {
			h.mu.Unlock()
			h.log(nil).WithError(err).Warn("agent refused")
			conn.Close()
			continue
		}
		h.agentUp = true
		h.replay.shutdown(5 * time.Second) // stop answering before the agent does
		h.replay, h.replayed = rp, map[int]bool{}
		for fd, st := range h.held {
			if h.forward(st, fd) != nil {
				h.answer(st, fd)
			}
		}
		h.log(nil).WithField("containers", len(h.held)).Info("agent connected: containers forwarded")
		h.mu.Unlock()
		var b [1]byte
		conn.Read(b[:]) // returns when the agent goes away
		conn.Close()
		h.mu.Lock()
		h.agentUp = false
		for fd, st := range h.held {
			h.answer(st, fd)
		}
		h.log(nil).WithField("containers", len(h.held)).Warn("agent gone: answering containers with their profiles' errnos")
		h.mu.Unlock()
	}
}

// reap closes fds no task uses any more (POLLHUP), until done.
func (h *Holder) reap(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for fd, st := range h.held {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(p, 0); n == 1 && p[0].Revents&unix.POLLHUP != 0 {
				unix.Close(fd)
				delete(h.held, fd)
				delete(h.replayed, fd)
				if handoff.Exec(st) {
					// The container goes on: only this process ended.
					h.log(st).Info("exec'd process ended: its notify fd released")
				} else {
					h.log(st).Info("released")
				}
			}
		}
		h.mu.Unlock()
	}
}

// replayer answers copies of the held fds with their profiles' errnos while
// no agent is connected, a goroutine per container, until shutdown.
type replayer struct {
	stop int // eventfd, readable once shut down
	wg   sync.WaitGroup
}

func newReplayer() (*replayer, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &replayer{stop: fd}, nil
}

// serve answers a copy of fd until shutdown or until no task uses it.
func (r *replayer) serve(st *specs.ContainerProcessState, fd int, log *logrus.Entry) error {
	var meta *replay.Meta // nil answers EPERM: fail closed
	if st.Metadata != "" {
		var err error
		if meta, err = replay.Parse(st.Metadata); err != nil {
			log.WithError(err).Warn("bad listener metadata: denying its notified syscalls with EPERM")
		}
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer unix.Close(dup)
		if err := r.loop(dup, meta); err != nil {
			log.WithError(err).Error("answering without the agent")
		}
	}()
	return nil
}

func (r *replayer) loop(fd int, meta *replay.Meta) error {
	var n unotify.Notif
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(r.stop), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if fds[1].Revents != 0 || fds[0].Revents&unix.POLLIN == 0 {
			return nil // shut down, or the container's tasks are gone
		}
		if err := unotify.Receive(fd, &n); err != nil {
			if errors.Is(err, unotify.ErrNoTasks) {
				return nil
			}
			if err == unix.ENOENT {
				continue // the caller was interrupted by a signal
			}
			return fmt.Errorf("receive: %w", err)
		}
		e, _ := meta.Answer(&n.Data, unotify.SyscallName(n.Data.Arch, n.Data.Nr))
		resp := unotify.Deny(n.ID, unix.Errno(e))
		if err := unotify.Send(fd, &resp); err != nil && err != unix.ENOENT {
			return fmt.Errorf("send: %w", err)
		}
	}
}

// shutdown stops every loop and waits up to wait for them to close their
// copies. A loop inside a receive ends after answering that call.
func (r *replayer) shutdown(wait time.Duration) {
	unix.Write(r.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	done := make(chan struct{})
	go func() { r.wg.Wait(); unix.Close(r.stop); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}
