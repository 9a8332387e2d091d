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
// profile's own errno (notify.Replay): the syscalls routed to the agent fail
// closed, exactly as the profile denies them, until an agent is back.
package holder

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/handoff"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Holder holds the fds.
type Holder struct {
	Agent string         // the agent's hand-off socket
	Log   *logrus.Logger // nil logs nothing

	mu      sync.Mutex
	held    map[int]*specs.ContainerProcessState // by fd
	agentUp bool
	replay  *notify.Server // answers while no agent is connected
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
		e = e.WithField("container", st.State.ID)
	}
	return e
}

// Serve accepts runc's hand-offs on runtime and agents on control, and
// drops fds whose containers are gone. It returns when runtime is closed.
func (h *Holder) Serve(runtime, control *net.UnixListener) error {
	h.mu.Lock()
	h.held = map[int]*specs.ContainerProcessState{}
	h.replay = &notify.Server{Handler: notify.Replay, Log: h.Log}
	h.mu.Unlock()
	go h.controls(control)
	go h.reap()
	for {
		conn, err := runtime.AcceptUnix()
		if err != nil {
			return err
		}
		go func() {
			ho, err := handoff.Receive(conn, time.Now().Add(5*time.Second))
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

// answer serves a copy of fd with the profile's own answers; Shutdown of
// the replay server closes the copy, never the held fd.
func (h *Holder) answer(st *specs.ContainerProcessState, fd int) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = h.replay.Adopt(st, dup)
	}
	if err != nil {
		h.log(st).WithError(err).Error("answering without the agent")
	}
}

// controls tracks the agent: while one is connected it gets every fd.
func (h *Holder) controls(l *net.UnixListener) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		if cred, err := peer(conn); err != nil || cred.Uid != 0 {
			conn.Close()
			continue
		}
		h.mu.Lock()
		if h.agentUp { // one agent at a time
			h.mu.Unlock()
			conn.Close()
			continue
		}
		h.agentUp = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.replay.Shutdown(ctx) // stop answering before the agent does
		cancel()
		h.replay = &notify.Server{Handler: notify.Replay, Log: h.Log}
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

// reap closes fds no task uses any more (POLLHUP).
func (h *Holder) reap() {
	for range time.Tick(time.Second) {
		h.mu.Lock()
		for fd, st := range h.held {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(p, 0); n == 1 && p[0].Revents&unix.POLLHUP != 0 {
				unix.Close(fd)
				delete(h.held, fd)
				h.log(st).Info("released")
			}
		}
		h.mu.Unlock()
	}
}

func peer(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		return nil, err
	}
	return cred, cerr
}
