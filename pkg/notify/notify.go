// Package notify is the seccomp notify agent: it receives each container's
// seccomp user-notification fd from runc over the OCI listenerPath hand-off,
// answers every notified syscall by policy, and writes the audit log of
// denied syscalls with the container they came from.
//
// Its shape is net/http's: a Server serves a listener, a Handler decides,
// Shutdown stops it. Each container is served on its own thread, so a flood
// from one never delays another: with a Policy, a C thread (package
// fastpath) that answers what depends only on the syscall and calls the
// Handler for the rest; otherwise a goroutine.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
	"github.com/seccomp-shim/seccomp-shim/pkg/handoff"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Container is what the agent knows of a container, from the hand-off.
type Container struct {
	ID, Bundle  string
	Annotations map[string]string
	Meta        *policy.AuditMeta // nil if the shim did not route this container
	// Complain is set where the container runs in complain mode: what its
	// profile would deny runs, recorded (complain.go).
	Complain *policy.ComplainMeta
	Exec     bool // the hand-off is a runc exec's process, not the container's

	// Rule names for Replay, made once: a decision must not allocate.
	// Only the container's own thread touches them.
	replayRule, newerRule string
	// plan is the notify rules compiled for this container (Policy.plan),
	// shared by its thread's decisions and its fast path's table.
	plan atomic.Pointer[plan]
}

func (c *Container) replayRules() (string, string) {
	if c.replayRule == "" {
		c.replayRule = "profile " + c.Meta.Profile
		if c.Meta.Profile == policy.ProfileEngineKept {
			c.replayRule = c.Meta.Profile
		}
		c.newerRule = c.replayRule + " (newer than the profile)"
	}
	return c.replayRule, c.newerRule
}

// Request is one notified syscall.
type Request struct {
	Container *Container
	Notif     *unotify.Notif
	Syscall   string // decoded by (arch, nr)
	Arch      string
	Fd        int // the notify fd, to check the notification is still valid

	counter *counter // the fast path's count of this syscall's denials, if any
}

// Decision is the answer to a Request.
type Decision struct {
	Continue bool   // let the syscall run (only where sound: see DESIGN-NOTES §2)
	Kill     bool   // kill the calling process (the syscall fails with Errno meanwhile)
	Errno    uint   // else fail it with this errno
	Rule     string // what decided, for the audit record
	Audit    bool   // record a Continue too (denials always are)
	// Complain: a Continue because the container is in complain mode;
	// Errno, Rule and Would say what the call would have got.
	Complain bool
	Would    string // the would-be action: "errno", "kill", or the profile's SCMP_ACT_*
}

// Handler decides notified syscalls. It runs on the container's thread:
// it must not block for long.
type Handler interface {
	Decide(*Request) Decision
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(*Request) Decision

// Decide calls f.
func (f HandlerFunc) Decide(r *Request) Decision { return f(r) }

// Replay answers what the profile answered before the shim routed the
// syscall to the agent, so the workload can't tell the difference. A
// container the shim did not describe gets EPERM: fail closed.
var Replay = HandlerFunc(func(r *Request) Decision {
	if r.Container.Meta == nil {
		return Decision{Errno: uint(unix.EPERM), Rule: "no policy metadata: deny"}
	}
	rule, newer := r.Container.replayRules()
	e, above := r.Container.Meta.Answer(&r.Notif.Data, r.Syscall)
	if above {
		rule = newer
	}
	return Decision{Errno: e, Rule: rule}
})

// Server is the agent.
type Server struct {
	Handler Handler
	Audit   *AuditLog
	Metrics *Metrics // nil counts nothing
	// Observer, if set, gets each would-be denial of a complain-mode
	// container and the end of each of its hand-offs.
	Observer Observer
	// Log gets the agent's own events (hand-offs, containers starting and
	// ending, errors), with the container's ID in a field; nil logs nothing.
	// Decisions are never logged here: that is the audit log's job.
	Log *logrus.Logger
	// AllowPeer decides who may hand off fds; nil means root only.
	AllowPeer func(unix.Ucred) bool
	// BlockingReceive waits in RECV on a locked thread instead of polling
	// first: one syscall less per notification. Only where the kernel wakes
	// a waiting RECV when the container ends (6.11+, see BlockingOK), and
	// then Shutdown can't wake the waiters: it stops serving at the
	// container's next notification, and returns without them.
	BlockingReceive bool
	// NoFastPath answers every notification in Go. By default, with a
	// Policy as Handler, a C thread per container answers what depends
	// only on the syscall (package fastpath) and asks Go for the rest.
	NoFastPath bool

	mu       sync.Mutex
	loops    map[*fastpath.Loop]struct{} // fast paths running, for Shutdown
	asked    atomic.Uint64               // notifications fast paths asked Go about (for tests)
	stop     int                         // eventfd that wakes every container loop on Shutdown
	wg       sync.WaitGroup
	listener net.Listener
	closed   bool
	pending  map[*net.UnixConn]struct{} // hand-offs being received
	stopping atomic.Bool
}

// log returns an entry for c's events (any container's if c is nil).
func (s *Server) log(c *Container) *logrus.Entry {
	return containerLog(s.Log, c)
}

// containerLog is l, or a logger that drops everything, with c's ID.
func containerLog(l *logrus.Logger, c *Container) *logrus.Entry {
	if l == nil {
		l = logrus.New()
		l.Out = io.Discard
	}
	e := logrus.NewEntry(l)
	if c != nil {
		e = e.WithField("container", c.ID)
	}
	return e
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("notify: server closed")

// Serve accepts hand-offs on l until Shutdown.
func (s *Server) Serve(l *net.UnixListener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if err := s.initStop(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.listener = l
	s.mu.Unlock()
	var backoff handoff.Backoff
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if s.Metrics != nil {
				s.Metrics.AcceptErrors.Add(1)
			}
			first, ok := backoff.Wait(err)
			if !ok {
				return err
			}
			if first {
				s.log(nil).WithError(err).Error("accept failed: retrying with backoff; hand-offs wait meanwhile")
			}
			continue
		}
		if backoff.Done() {
			s.log(nil).Info("accepting again")
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.accept(conn)
		}()
	}
}

// Adopt serves a container whose hand-off arrived some other way than on
// the Server's listener, until it ends or Shutdown.
// The server owns fd from here on, and closes it.
func (s *Server) Adopt(st *specs.ContainerProcessState, fd int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		unix.Close(fd)
		return ErrServerClosed
	}
	if err := s.initStop(); err != nil {
		unix.Close(fd)
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(st, fd)
	}()
	return nil
}

func (s *Server) initStop() error {
	if s.stop != 0 {
		return nil
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return err
	}
	s.stop = fd
	return nil
}

// accept takes one hand-off and serves the container until it ends.
func (s *Server) accept(conn *net.UnixConn) {
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[*net.UnixConn]struct{}{}
	}
	s.pending[conn] = struct{}{}
	s.mu.Unlock()
	h, err := handoff.ReceiveFrom(conn, time.Now().Add(5*time.Second), s.AllowPeer)
	s.mu.Lock()
	delete(s.pending, conn)
	s.mu.Unlock()
	if err == nil {
		handoff.Ack(conn) // the holder keeps the fd until we say we have it
	}
	conn.Close()
	if err != nil && s.Metrics != nil && !isProbe(err) {
		s.Metrics.HandoffFailures.Add(1)
	}
	if err != nil {
		// A liveness probe (the shim dialling) sends nothing: not worth a line.
		if !isProbe(err) {
			s.log(nil).WithError(err).Warn("hand-off refused")
		}
		return
	}
	if s.BlockingReceive {
		go s.serve(&h.State, h.SeccompFd) // outside wg: Shutdown can't wake it
		return
	}
	s.serve(&h.State, h.SeccompFd)
}

// serve serves one container's fd until it ends, then closes the fd.
func (s *Server) serve(st *specs.ContainerProcessState, fd int) {
	c := &Container{ID: st.State.ID, Bundle: st.State.Bundle, Annotations: st.State.Annotations, Exec: handoff.Exec(st)}
	if st.Metadata != "" {
		var err error
		if c.Meta, err = policy.ParseAuditMeta(st.Metadata); err != nil {
			s.log(c).WithError(err).Warn("no policy metadata: denying its notified syscalls with EPERM")
		} else if c.Complain, err = policy.ParseComplainMeta(st.Metadata); err != nil {
			s.log(c).WithError(err).Warn("complain metadata unreadable: enforcing its profile")
		}
	}
	if s.Metrics != nil {
		s.Metrics.Containers.Add(1)
		defer s.Metrics.Containers.Add(-1)
	}
	log := s.log(c).WithField("pid", st.Pid)
	if handoff.Exec(st) {
		log = log.WithField("exec", true)
	}
	if c.Complain != nil {
		log = log.WithField("complain", true)
	}
	log.Info("watching")
	// A complain-mode container's calls are all decided in Go, where they
	// are recorded and observed.
	if t, ok := s.Handler.(tabler); !ok || s.NoFastPath || c.Complain != nil || !s.serveFast(c, fd, t) {
		s.serveContainer(c, fd)
	}
	unix.Close(fd)
	if c.Complain != nil && s.Observer != nil {
		s.Observer.Released(c, s.stopping.Load())
	}
	switch {
	case s.stopping.Load():
		// It may well run on: under a holder, answered by the holder;
		// without one, its routed syscalls fail with ENOSYS from here.
		log.Info("no longer served: agent stopping")
	case handoff.Exec(st):
		log.Info("exec'd process ended: its notify fd released") // the container goes on
	default:
		log.Info("released")
	}
}

// isProbe tells the shim's liveness check (connect, send nothing, close)
// from a broken hand-off.
func isProbe(err error) bool {
	return errors.Is(err, handoff.ErrMalformed) && strings.HasSuffix(err.Error(), ": EOF")
}

// serveContainer answers c's notifications until no task uses the filter
// (POLLHUP) or the server shuts down.
func (s *Server) serveContainer(c *Container, fd int) {
	defer func() {
		// A bug in a decision must not take every container down with the
		// agent: this one's fd closes (its routed syscalls fail with
		// ENOSYS, closed) and the rest go on.
		if p := recover(); p != nil {
			s.log(c).WithField("panic", p).Error("panic while deciding: no longer served")
		}
	}()
	_ = unotify.SetSyncWakeUp(fd) // faster where the kernel has it (6.6+)
	var n unotify.Notif
	r := &Request{Container: c, Fd: fd, Notif: &n} // one per container: no allocation per decision
	if s.BlockingReceive {
		runtime.LockOSThread() // the wake-up lands on this thread (SYNC_WAKE_UP)
		defer runtime.UnlockOSThread()
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(s.stop), Events: unix.POLLIN}}
	for {
		if s.BlockingReceive {
			if s.stopping.Load() {
				return
			}
		} else {
			fds[0].Revents, fds[1].Revents = 0, 0
			if _, err := unix.Poll(fds, -1); err != nil {
				if err == unix.EINTR {
					continue
				}
				s.log(c).WithError(err).Error("poll: no longer served")
				return
			}
			if fds[1].Revents != 0 || fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
				return
			}
		}
		if err := unotify.Receive(fd, &n); err != nil {
			if errors.Is(err, unotify.ErrNoTasks) {
				return
			}
			if err == unix.ENOENT {
				continue // the target was interrupted by a signal; the container goes on
			}
			s.log(c).WithError(err).Error("receive: no longer served")
			return
		}
		s.answer(r)
	}
}

// BlockingOK reports whether this kernel wakes a waiting RECV when the last
// task using the filter exits (6.11+): only then may a server block in it.
func BlockingOK() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 11
}

func (s *Server) answer(r *Request) {
	start := time.Now()
	if s.Metrics != nil {
		s.Metrics.InFlight.Add(1)
		defer s.Metrics.InFlight.Add(-1)
	}
	c, fd, n := r.Container, r.Fd, r.Notif
	r.Arch, r.Syscall = n.Data.ArchName(), unotify.SyscallName(n.Data.Arch, n.Data.Nr)
	var d Decision
	if c.Complain != nil {
		d = s.complain(r)
	} else {
		d = s.Handler.Decide(r)
	}
	resp := unotify.Deny(n.ID, unix.Errno(d.Errno))
	if d.Continue {
		resp = unotify.Continue(n.ID)
	}
	if d.Complain && s.Observer != nil {
		s.Observer.WouldDeny(r, d)
	}
	if s.Audit != nil && (!d.Continue || d.Audit || d.Complain) {
		// Recorded before the answer frees the caller (or the kill ends
		// it), while its pid still names it; procInfo checks IDValid.
		s.Audit.Record(c, fd, n, r, d, start)
	}
	if d.Kill {
		if err := kill(fd, n); err != nil {
			s.log(c).WithError(err).WithField("syscall", r.Syscall).Error("kill failed")
		}
	}
	if err := unotify.Send(fd, &resp); err != nil && err != unix.ENOENT {
		s.log(c).WithError(err).WithField("syscall", r.Syscall).Error("send")
	}
	action := "errno"
	switch {
	case d.Complain:
		action = "complain"
	case d.Continue:
		action = "continue"
	case d.Kill:
		action = "kill"
	}
	s.Metrics.decided(r.Syscall, action, time.Since(start))
}

// Shutdown stops accepting hand-offs and stops every container loop,
// closing the fds it holds: their notified syscalls then fail with ENOSYS.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.mu.Lock()
	s.closed = true
	if s.listener != nil {
		s.listener.Close()
	}
	if s.stop != 0 {
		unix.Write(s.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	for c := range s.pending {
		c.SetReadDeadline(time.Now()) // a silent sender must not hold us up
	}
	for l := range s.loops {
		l.Stop()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.mu.Lock()
		if s.stop > 0 {
			unix.Close(s.stop)
			s.stop = -1
		}
		s.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// procInfo reads who made the call. It checks the notification is still
// pending after reading, so a recycled pid can't put another process's name
// in the record.
func procInfo(fd int, n *unotify.Notif) (pid int, comm, exe string, uid int) {
	tid := int(n.Pid)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	exe, _ = os.Readlink("/proc/" + strconv.Itoa(tid) + "/exe")
	if err != nil || unotify.IDValid(fd, n.ID) != nil {
		return 0, "", "", -1
	}
	uid = -1
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			comm = v
		case "Tgid":
			pid, _ = strconv.Atoi(v)
		case "Uid":
			if f := strings.Fields(v); len(f) > 0 {
				uid, _ = strconv.Atoi(f[0])
			}
		}
	}
	return pid, comm, exe, uid
}
